"""Generated datasets: a trained run's samples streamed batch by batch, and written as class folders of PNGs.

`generate_batches` draws from a restored run (`training.setup.restore_setup`)
one batch at a time; `write_folder` writes them as one subfolder per class
(flat when unconditional) plus manifest.json, so any size costs one batch of
memory. The `gan_jax.generate` command line and the augmentation study use
both.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from gan_jax import errors

MANIFEST_FILE = 'manifest.json'


def generate_batches(setup, state, num: int, seed: int = 0, label: int | None = None,
                     batch_size: int = 256, per_class: bool = False):
  """Yields (uint8 images, int32 labels) batch by batch: `num` images, or `num` per class.

  Batch keys are fold_in(PRNGKey(seed), first index) -- and, per class,
  folded with the class first -- so a batch never depends on the others.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax.generation import sampling, standing  # pylint: disable=g-import-not-at-top

  if num < 1:
    raise errors.ConfigError(f'--num must be at least 1, got {num}.')
  if batch_size < 1:
    raise errors.ConfigError(f'--batch_size must be at least 1, got {batch_size}.')
  gan = setup.gan
  if (label is not None or per_class) and not gan.num_classes:
    raise errors.ConfigError(f'--{"label" if label is not None else "per_class"} needs a '
                             'conditional model; this run is unconditional '
                             '(config.model.conditional=False).')
  if per_class and label is not None:
    raise errors.ConfigError('--per_class and --label exclude each other: pick one.')
  sample = sampling.make_sampler(gan)
  # The EMA G with its standing BatchNorm statistics, computed once for all batches.
  variables = standing.sampling_variables(gan, state, getattr(setup, 'standing_stats', None))
  key = jax.random.PRNGKey(seed)
  runs = ([(jax.random.fold_in(key, c), c) for c in range(gan.num_classes)]
          if per_class else [(key, label)])
  for run_key, run_label in runs:
    for start in range(0, num, batch_size):
      n = min(batch_size, num - start)
      z, labels = sampling.latents(jax.random.fold_in(run_key, start), gan, n, run_label)
      yield (np.asarray(jax.device_get(sample(variables, z, labels))),
             np.asarray(labels, np.int32))


def class_folder_names(class_names, num_classes: int) -> list[str]:
  """Subfolder per class, named so that the folder source's sorted order is label order."""
  names = [str(n) for n in class_names] if len(class_names) == num_classes else []
  if names and sorted(names) == names and len(set(names)) == len(names) and all(
      n and os.sep not in n and not n.startswith('.') for n in names):
    return names
  width = len(str(num_classes - 1))
  return [f'{i:0{width}d}' + (f'_{names[i]}' if names else '') for i in range(num_classes)]


def write_folder(out_dir: str, setup, state, info, num: int, seed: int = 0,
                 label: int | None = None, batch_size: int = 256, per_class: bool = False,
                 provenance: dict | None = None) -> dict:
  """Writes PNGs (a subfolder per class) and manifest.json into `out_dir`; returns the manifest.

  `setup` and `state` are a restored run's, `info` its data's DatasetInfo;
  `provenance` (the workdir, the config) is copied into the manifest.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  num_classes = setup.gan.num_classes
  folders = class_folder_names(info.class_names, num_classes) if num_classes else []
  if os.path.exists(os.path.join(out_dir, MANIFEST_FILE)) or (
      os.path.isdir(out_dir) and os.listdir(out_dir)):
    raise errors.ConfigError(f'--out={out_dir} is not empty: pick a new directory, so '
                             'images of two runs never mix.')
  counts = [0] * max(num_classes, 1)
  written = 0
  for images, labels in generate_batches(setup, state, num, seed, label, batch_size,
                                         per_class):
    for image, lab in zip(images, labels):
      sub = os.path.join(out_dir, folders[lab]) if num_classes else out_dir
      if counts[lab if num_classes else 0] == 0:
        os.makedirs(sub, exist_ok=True)
      counts[lab if num_classes else 0] += 1
      pixels = image[..., 0] if image.shape[-1] == 1 else image
      Image.fromarray(pixels).save(os.path.join(sub, f'{written:07d}.png'))
      written += 1
  manifest = {
      **(provenance or {}), 'checkpoint_step': int(state.step),
      'seed': seed, 'num_images': written, 'per_class': per_class, 'label': label,
      'sampled_from': 'ema' if state.ema else 'generator',
      'image_shape': list(info.image_shape), 'class_names': list(info.class_names),
      'folders': folders,
      'counts': ({f: c for f, c in zip(folders, counts)} if num_classes else
                 {'.': counts[0]}),
      'created': time.strftime('%Y-%m-%dT%H:%M:%S'),
  }
  with open(os.path.join(out_dir, MANIFEST_FILE), 'w') as f:
    json.dump(manifest, f, indent=2)
    f.write('\n')
  return manifest
