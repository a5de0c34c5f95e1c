"""The data of a study: the full data's config, and N balanced training images beside a fixed held-out set."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from experiments.small_data.settings import Settings
from gan_jax import errors


def balanced_split(labels: np.ndarray, num_train: int, num_heldout: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(training indices: num_train / classes of each class present, held-out indices), disjoint.

  The held-out set depends only on the data and `num_heldout`
  (experiments.augment.split's fixed test set); the training set on `seed` too.
  """
  from experiments import augment  # pylint: disable=g-import-not-at-top
  num_classes = len(np.unique(labels))
  if num_classes < 2:
    raise errors.DataError(f'A balanced split needs labelled data with at least 2 classes; '
                           f'this data has {num_classes}. Use a labelled source.')
  if num_train < num_classes or num_train % num_classes:
    raise errors.ConfigError(f'--num_train={num_train} must be a positive multiple of the '
                             f'{num_classes} classes (the training set is balanced).')
  if not 1 <= num_heldout <= len(labels) - num_train:
    raise errors.ConfigError(f'--num_heldout={num_heldout} must be in [1, {len(labels)} '
                             f'images - --num_train={num_train}].')
  try:
    heldout, train, _ = augment.split(labels, num_train // num_classes, num_heldout, seed)
  except errors.DataError as e:
    raise errors.DataError(f'{e} (--num_train={num_train} is {num_train // num_classes} per '
                           f'class, outside the {num_heldout} held-out images): lower '
                           '--num_train or --num_heldout.') from None
  return train, heldout


def full_data_config(s: Settings):
  """The --config file's data with the flags' source, path, size and channels: the reference."""
  from gan_jax.config import files as config_files  # pylint: disable=g-import-not-at-top
  data = config_files.load_file(s.config).data
  data.source, data.path, data.split, data.classes = s.data_source, s.data_path, '', ()
  data.image_size, data.channels = s.image_size, s.channels
  return data


def prepare_split(s: Settings, data_config, log=print) -> dict:
  """Draws (or reloads) the split; returns its arrays and the training folder.

  {'train_dir', 'info', 'train_idx', 'train_images', 'train_labels', 'heldout_idx',
   'heldout_images', 'heldout_labels'}.
  """
  from experiments import augment  # pylint: disable=g-import-not-at-top
  from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  data_dir = os.path.join(s.workdir, 'data')
  train_dir = os.path.abspath(os.path.join(data_dir, 'train'))
  spec = {'data_source': s.data_source, 'data_path': os.path.abspath(s.data_path),
          'image_size': s.image_size, 'channels': s.channels, 'num_train': s.num_train,
          'num_heldout': s.num_heldout, 'seed': s.seed}
  spec_path = os.path.join(data_dir, 'split.json')
  if os.path.exists(spec_path) and os.path.isdir(train_dir):
    return _reload_split(s, spec, data_dir, train_dir, log)
  source = data_lib.build_source(data_config)
  info = source.info
  log(f'Data: loading every image of {info.description}')
  images, labels = classifier.all_examples(source)
  train, heldout = balanced_split(labels, s.num_train, s.num_heldout, s.seed)
  os.makedirs(data_dir, exist_ok=True)
  width = len(str(info.num_classes - 1))
  names = [f'{c:0{width}d}' for c in range(info.num_classes)]   # folder order = label order
  partial = train_dir + '.partial'
  shutil.rmtree(partial, ignore_errors=True)
  augment.write_class_folder(images[train], labels[train], names, partial)
  shutil.rmtree(train_dir, ignore_errors=True)
  os.rename(partial, train_dir)
  out = {'train_dir': train_dir,
         'info': {'description': info.description, 'num_examples': len(labels),
                  'num_classes': info.num_classes, 'class_names': list(info.class_names)}}
  for part, idx in (('train', train), ('heldout', heldout)):
    arrays = {'idx': idx, 'images': images[idx], 'labels': labels[idx]}
    np.savez(os.path.join(data_dir, f'{part}.npz'), **arrays)
    out.update({f'{part}_{k}': v for k, v in arrays.items()})
  with open(spec_path, 'w') as f:
    json.dump({'spec': spec, 'info': out['info']}, f, indent=2)
  per_class = s.num_train // len(np.unique(labels))
  log(f'Split: {len(train)} training images ({per_class} per class, seed {s.seed}) in '
      f'{train_dir}; {len(heldout)} held-out images in '
      f'{os.path.join(data_dir, "heldout.npz")}')
  return out


def _reload_split(s: Settings, spec: dict, data_dir: str, train_dir: str, log) -> dict:
  """The split saved in `data_dir`, if it was drawn with the same `spec`."""
  with open(os.path.join(data_dir, 'split.json')) as f:
    saved = json.load(f)
  if saved['spec'] != spec:
    changed = ', '.join(f'{k}: {saved["spec"].get(k)!r} -> {v!r}' for k, v in spec.items()
                        if saved['spec'].get(k) != v)
    raise errors.ConfigError(f'{s.workdir} holds the split of another study ({changed}); '
                             'use a new --workdir.')
  out = {'train_dir': train_dir, 'info': saved['info']}
  for part in ('train', 'heldout'):
    with np.load(os.path.join(data_dir, f'{part}.npz'), allow_pickle=False) as npz:
      out.update({f'{part}_{k}': npz[k] for k in ('idx', 'images', 'labels')})
  log(f'Split: reusing {data_dir} ({len(out["train_idx"])} training, '
      f'{len(out["heldout_idx"])} held-out images)')
  return out
