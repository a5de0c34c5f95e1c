"""GANs on small datasets: a baseline against DiffAugment, ADA and ADA + LeCam at the same budget.

With N training images D memorises them: it scores its own training images
as real and everything else, held-out real images included, as fake, and G's
feedback degrades. DiffAugment (Zhao et al. 2020) and ADA (Karras et al.
2020, p steered so that r_t = E[sign(D(x_real))] stays at a target) augment
every image D sees; LeCam (Tseng et al. 2021) keeps D's outputs near
moving anchors. For one dataset and one N this script

  1. loads every image of the data (--data_source, --data_path), sets aside a
     fixed held-out set of --num_heldout images (seed 1234, the same for every
     N and --seed, as experiments/augment.py's test set), and draws the
     N = --num_train training images from the rest, balanced
     (N / classes per class, --seed), written once as a class folder in
     WORKDIR/data/train (the held-out and training arrays: WORKDIR/data/*.npz);
  2. trains each variant of VARIANTS (--variants) from the --config file on
     that folder, for exactly --steps steps (train.max_minutes off) with the
     same batch, seed and model, into WORKDIR/VARIANT, keeping --checkpoints
     evenly spaced checkpoints and recording the wall seconds and the machine
     load (os.getloadavg) before and after;
  3. scores each variant's last checkpoint against the FULL data (not the N
     images: the question is how well G learned the distribution): the
     domain-classifier Fréchet distance cls_fd and class coverage cls_cov
     (classes present, the rarest class's share) of --eval_num samples against
     --num_reference images, with the cached domain classifier of the full
     data; FID of --fid_num samples against --fid_stats (real Inception
     weights) when given; and D's memorisation: mean sigmoid(D(x)) (running
     BatchNorm statistics) on the N training images and on min(N,
     --num_heldout) held-out images, their gap, and the AUC of telling the
     two apart by D's logit (0.5: no memorisation);
  4. writes WORKDIR/results.json (every number, protocol, the command and the
     settings), WORKDIR/RESULTS.md (one table row per variant, the last sample
     grids) and WORKDIR/ada_p.png (ADA's p and r_t against the step, with the
     target, for the variants that log ada_p).

  python -m experiments.small_data --workdir=runs/small/mnist_100 --config=configs/dcgan_mnist.py \\
      --data_source=idx --data_path=../shared/data/mnist --image_size=28 --channels=1 \\
      --num_train=100 --num_heldout=1000 --steps=1500 --batch_size=64
  python -m experiments.small_data --workdir=runs/small/mnist_1000 --config=configs/dcgan_mnist.py \\
      --data_source=idx --data_path=../shared/data/mnist --image_size=28 --channels=1 \\
      --num_train=1000 --num_heldout=1000 --steps=1500 --batch_size=64
  mkdir -p /tmp/cifar10 && tar xzf ../shared/data/cifar10/cifar10-train-jpeg.tar.gz -C /tmp/cifar10
  python -m experiments.small_data --workdir=runs/small/cifar_1000 --config=configs/gan_cifar10_cpu.py \\
      --data_source=folder --data_path=/tmp/cifar10/train --image_size=32 --channels=3 \\
      --num_train=1000 --num_heldout=1000 --steps=800 \\
      --fid_stats=runs/qpt/cifar10_train_20k_stats.npz --fid_num=1000
  python -m experiments.small_data --workdir=runs/small/cifar_5000 --config=configs/gan_cifar10_cpu.py \\
      --data_source=folder --data_path=/tmp/cifar10/train --image_size=32 --channels=3 \\
      --num_train=5000 --num_heldout=1000 --steps=800 \\
      --fid_stats=runs/qpt/cifar10_train_20k_stats.npz --fid_num=1000

The reference data config is the --config file's `data` with --data_source,
--data_path, --image_size and --channels, so that it finds the domain
classifiers already cached for those datasets (keyed by the data config,
`name` included) instead of training one. Re-running resumes: a variant with a
checkpoint at --steps is not retrained (its recorded wall seconds and load are
kept), an unfinished one continues from its last checkpoint; the split is
checked against the one on disk. A new variant is one line in VARIANTS;
`--override=KEY=VALUE` changes any config key of every variant (e.g.
model.width_scale=0.125 for a smoke run).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Callable

from absl import app, flags, logging
import numpy as np

from gan_jax import cli, errors

FLAGS = flags.FLAGS
RESULTS_JSON, RESULTS_MD, ADA_FIGURE = 'results.json', 'RESULTS.md', 'ada_p.png'
TRAIN_RECORD = 'small_data_train.json'   # per variant: wall seconds and load of its training
SCORE_RECORD = 'small_data_score.json'   # per variant: its scores, reused by a rerun
SAMPLE_SEED = 0

# variant -> function of the Settings giving its config overrides {dotted key: value}.
VARIANTS: dict[str, Callable[['Settings'], dict]] = {
    'baseline': lambda s: {},
    'diffaugment': lambda s: {'augment.transforms': ('diffaugment',)},
    'ada': lambda s: {'augment.transforms': ('ada',), 'augment.ada.target': s.ada_target,
                      'augment.ada.kimg': s.ada_kimg},
    'ada_lecam': lambda s: {**VARIANTS['ada'](s), 'reg.lecam.weight': s.lecam_weight},
}


@dataclasses.dataclass
class Settings:
  """Everything a study depends on (the command line's flags)."""
  workdir: str
  config: str
  data_source: str
  data_path: str
  image_size: int = 28
  channels: int = 1
  num_train: int = 100
  num_heldout: int = 1000
  seed: int = 0
  steps: int = 1500
  batch_size: int = 64
  variants: tuple = ('baseline', 'diffaugment', 'ada', 'ada_lecam')
  lecam_weight: float = 0.3
  ada_target: float = 0.6
  ada_kimg: float = 100
  checkpoints: int = 4
  metrics: tuple = ('cls_fd', 'cls_cov')
  eval_num: int = 5000
  num_reference: int = 10_000
  fid_stats: str = ''
  fid_num: int = 1000
  overrides: tuple = ()


def define_flags():
  """The command line's flags (defined only when run as a script: others share absl's FLAGS)."""
  d = Settings('', '', '', '')
  flags.DEFINE_string('workdir', None, 'Directory for the split, every run and the results.')
  flags.DEFINE_string('config', None, 'Config file every variant starts from.')
  flags.DEFINE_string('data_source', 'idx', 'Source of the full data (config.data.source).')
  flags.DEFINE_string('data_path', None, 'Its config.data.path.')
  flags.DEFINE_integer('image_size', d.image_size, 'config.data.image_size.')
  flags.DEFINE_integer('channels', d.channels, 'config.data.channels.')
  flags.DEFINE_integer('num_train', d.num_train, 'N: training images, balanced over the classes.')
  flags.DEFINE_integer('num_heldout', d.num_heldout,
                       'Held-out real images (fixed seed; never trained on).')
  flags.DEFINE_integer('seed', d.seed, 'Seeds the training subset and every run.')
  flags.DEFINE_integer('steps', d.steps, 'Training steps of every variant.')
  flags.DEFINE_integer('batch_size', d.batch_size, 'Training batch of every variant.')
  flags.DEFINE_list('variants', list(d.variants), f'Some of {", ".join(VARIANTS)}.')
  flags.DEFINE_float('lecam_weight', d.lecam_weight, 'ada_lecam: config.reg.lecam.weight.')
  flags.DEFINE_float('ada_target', d.ada_target, 'ADA: config.augment.ada.target (r_t).')
  flags.DEFINE_float('ada_kimg', d.ada_kimg, 'ADA: config.augment.ada.kimg (thousands of '
                     'images for p to move by 1; short CPU runs need less than the paper\'s 500).')
  flags.DEFINE_integer('checkpoints', d.checkpoints, 'Evenly spaced checkpoints kept per run.')
  flags.DEFINE_list('metrics', list(d.metrics), 'Domain-classifier metrics against the full '
                    'data (cls_acc is added for conditional models); empty: none.')
  flags.DEFINE_integer('eval_num', d.eval_num, 'Samples for the classifier metrics.')
  flags.DEFINE_integer('num_reference', d.num_reference, 'Reference images of the full data '
                       '(seeded subset; 0 = all).')
  flags.DEFINE_string('fid_stats', d.fid_stats, 'FID reference: a stats .npz (python -m '
                      'gan_jax.metrics.fid), an images .npz or a folder; empty: no FID.')
  flags.DEFINE_integer('fid_num', d.fid_num, 'Samples for FID.')
  flags.DEFINE_multi_string('override', [], 'KEY=VALUE config override for every variant '
                            '(a Python literal or a string), e.g. model.width_scale=0.125.')


# --- data ------------------------------------------------------------------------------

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
    with open(spec_path) as f:
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


# --- configs and training ------------------------------------------------------------------

def parse_override(item: str) -> tuple[str, object]:
  key, sep, text = item.partition('=')
  if not sep or not key:
    raise errors.ConfigError(f'--override={item!r} must be KEY=VALUE, e.g. '
                             'model.width_scale=0.125.')
  try:
    return key.strip(), ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return key.strip(), text


def set_dotted(config, key: str, value) -> None:
  """config.KEY = value, with a message naming the key when it does not exist or does not fit."""
  node, parts = config, key.split('.')
  for i, part in enumerate(parts):
    if not hasattr(node, 'keys') or part not in node:
      raise errors.ConfigError(
          f'The config has no key {key!r} ({".".join(parts[:i + 1])} is missing). For the '
          'ada/ada_lecam variants, gan_jax needs ADA (config.augment.ada) and LeCam '
          '(config.reg.lecam); otherwise check the spelling of --override.')
    if i < len(parts) - 1:
      node = node[part]
  old = node[parts[-1]]
  if isinstance(old, tuple) and isinstance(value, (list, str)):
    value = tuple(value) if isinstance(value, list) else (value,)
  if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float):
    if not value.is_integer():
      raise errors.ConfigError(f'config.{key} is an integer; {value!r} is not.')
    value = int(value)
  try:
    node[parts[-1]] = value
  except TypeError as e:
    raise errors.ConfigError(f'config.{key}={value!r}: {e}') from None


def variant_config(s: Settings, variant: str, train_dir: str):
  """The --config file's config, trained on `train_dir` with the study's budget and the variant's overrides."""
  from gan_jax.config import files as config_files  # pylint: disable=g-import-not-at-top
  if variant not in VARIANTS:
    raise errors.ConfigError(f'Unknown variant {variant!r}: --variants takes some of '
                             f'{", ".join(VARIANTS)}.')
  config = config_files.load_file(s.config)
  config.seed = s.seed
  d = config.data
  d.source, d.path, d.split, d.classes = 'folder', train_dir, '', ()
  d.image_size, d.channels = s.image_size, s.channels
  tc = config.train
  tc.num_steps, tc.batch_size, tc.max_minutes = s.steps, s.batch_size, 0.0
  tc.checkpoint_every = tc.sample_every = max(1, s.steps // max(1, s.checkpoints))
  tc.keep_checkpoints = max(1, s.checkpoints) + 1   # the last step may fall between them
  tc.log_every = max(1, s.steps // 50)
  config.eval.every = 0
  for key, value in [*VARIANTS[variant](s).items(), *map(parse_override, s.overrides)]:
    set_dotted(config, key, value)
  return config


def last_checkpoint(workdir: str) -> int | None:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return None
  done = [int(n) for n in os.listdir(directory) if n.isdigit()]
  return max(done) if done else None


def train_variant(config, workdir: str, log=print) -> dict:
  """Trains (or resumes) one variant; skips a finished one. Returns wall seconds and load."""
  from gan_jax.training import image as image_trainer  # pylint: disable=g-import-not-at-top
  record_path = os.path.join(workdir, TRAIN_RECORD)
  steps = config.train.num_steps
  done = last_checkpoint(workdir)
  if done is not None and done >= steps:
    from gan_jax.config import saved as saved_config
    conflicts = saved_config.resume_conflicts(saved_config.load_from_workdir(workdir), config)
    if conflicts:
      raise errors.ConfigError(
          f'{workdir} holds a finished run of another config ('
          + ', '.join(f'{k}: {old!r} -> {new!r}' for k, old, new in conflicts[:5])
          + '); use a new --workdir, or remove that variant\'s directory to retrain it.')
    record = {}
    if os.path.exists(record_path):
      with open(record_path) as f:
        record = json.load(f)
    return {**record, 'skipped': True}
  load_before = os.getloadavg()
  start = time.perf_counter()
  image_trainer.train_and_evaluate(config, workdir)
  record = {'wall_s': time.perf_counter() - start, 'load_before': list(load_before),
            'load_after': list(os.getloadavg()), 'resumed_from': done or 0}
  with open(record_path, 'w') as f:
    json.dump(record, f, indent=2)
  return {**record, 'skipped': False}


# --- scoring ----------------------------------------------------------------------------

def auc(positive: np.ndarray, negative: np.ndarray) -> float:
  """P(score of a positive > score of a negative) + P(tie) / 2: the rank (Mann-Whitney) AUC."""
  positive, negative = np.ravel(positive), np.ravel(negative)
  _, inverse, counts = np.unique(np.concatenate([positive, negative]), return_inverse=True,
                                 return_counts=True)
  ranks = (np.cumsum(counts) - counts + (counts + 1) / 2)[inverse]   # ties: average rank
  n_pos, n_neg = len(positive), len(negative)
  return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def d_memorisation(setup, state, train_images: np.ndarray, heldout_images: np.ndarray,
                   train_labels: np.ndarray | None = None,
                   heldout_labels: np.ndarray | None = None, batch_size: int = 500) -> dict:
  """How much better D scores its training images than held-out real ones.

  D runs in inference mode (running BatchNorm statistics) on uint8 images;
  a conditional D gets the labels, an unconditional one zeros. Returns the
  mean sigmoid(D(x)) and mean logit on each set, d_gap = mean sigmoid on the
  training images - on the held-out ones, and the AUC of telling them apart by
  the logit (0.5: D treats them alike; 1: it knows its training images).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  from gan_jax.core import steps
  gan = setup.gan
  variables = state.d.variables

  @jax.jit
  def logits_of(v, images, labels):
    out = gan.discriminator.apply(v, steps.images_to_float(images), labels, train=False)
    return models.split_output(out)[0].reshape(-1)

  def run(images, labels):
    n = len(images)
    labels = (np.zeros(n, np.int32) if labels is None or not gan.num_classes
              else np.asarray(labels, np.int32))
    size = min(batch_size, n)
    out = []
    for i in range(0, n, size):   # the last batch padded: one compiled shape
      x, y = images[i:i + size], labels[i:i + size]
      pad = size - len(x)
      if pad:
        x = np.concatenate([x, np.repeat(x[:1], pad, 0)])
        y = np.concatenate([y, np.repeat(y[:1], pad, 0)])
      out.append(np.asarray(logits_of(variables, x, y))[:size - pad])
    return np.concatenate(out).astype(np.float64)

  train_logits = run(np.asarray(train_images), train_labels)
  heldout_logits = run(np.asarray(heldout_images), heldout_labels)
  sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
  d_train, d_heldout = float(sigmoid(train_logits).mean()), float(sigmoid(heldout_logits).mean())
  return {'num_train': len(train_logits), 'num_heldout': len(heldout_logits),
          'd_train': d_train, 'd_heldout': d_heldout, 'd_gap': d_train - d_heldout,
          'logit_train': float(train_logits.mean()),
          'logit_heldout': float(heldout_logits.mean()),
          'auc': auc(train_logits, heldout_logits)}


class FidReference:
  """The Inception extractor and the --fid_stats statistics, loaded on first use."""

  def __init__(self, path: str, log=print):
    self.path, self.log, self._loaded = path, log, None

  def score(self, images: np.ndarray, what: str) -> tuple[float, str]:
    from gan_jax.metrics import fid, frechet  # pylint: disable=g-import-not-at-top
    if self._loaded is None:
      sets = fid.FeatureSets(log=self.log)
      self._loaded = (sets, *sets.statistics(self.path))
    sets, reference, about = self._loaded
    stats = frechet.statistics(sets.features(images, what))
    protocol = (f'{len(images)} samples vs {about.get("num", "?")} images of {about["path"]} '
                f'({about.get("subset", "")}); {sets.protocol["weights"]}, '
                f'{sets.protocol["preprocessing"]}')
    return frechet.frechet_distance(stats, reference), protocol


def kept_checkpoints(workdir: str) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def score_variant(s: Settings, workdir: str, data_config, split: dict, fid_reference,
                  log=print, step: int | None = None) -> dict:
  """A checkpoint's (default: the last) metrics against the full data, and D's memorisation.

  FID and D's memorisation are computed only without `step` (the last checkpoint).
  """
  from gan_jax.config import saved as saved_config
  from gan_jax.parallel import devices
  from gan_jax.training import setup as setup_lib
  from gan_jax.evaluation import evaluators  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top
  last = step is None
  fid_reference = fid_reference if last else None
  _, setup, state = setup_lib.restore_setup(workdir, step)
  step = int(state.step)
  out = {'step': step, 'metrics': {}, 'protocols': {}}
  config = saved_config.load_from_workdir(workdir)
  names = list(s.metrics) + (['cls_acc'] if s.metrics and config.model.conditional else [])
  if names or fid_reference:
    config.data.update(data_config.to_dict())   # the reference: the full data, not the N images
    config.eval.num, config.eval.num_reference = s.eval_num, s.num_reference
    config.eval.seed = SAMPLE_SEED
    evaluation = Evaluation(config, None, devices.make_mesh(), log=log)
    samples = evaluation.generator_samples(setup.gan, state, step)
    for name, metric in evaluators.run(evaluation, samples, names).items():
      out['metrics'][name] = metric.value
      out['protocols'][name] = metric.protocol
      if name == 'cls_classes':
        out['class_histogram'] = metric.extra['histogram']
    if fid_reference:
      value, protocol = fid_reference.score(samples.take(s.fid_num)[0], f'step {step}')
      out['metrics']['fid'], out['protocols']['fid'] = value, protocol
  if not last:
    return out
  num_heldout = min(len(split['train_images']), len(split['heldout_images']))
  out['d_memorisation'] = d_memorisation(
      setup, state, split['train_images'], split['heldout_images'][:num_heldout],
      split['train_labels'], split['heldout_labels'][:num_heldout])
  return out


def ada_curves(workdir: str, variants) -> dict[str, list[dict]]:
  """{variant: its metrics.jsonl records with ada_p} for the variants that log it."""
  from gan_jax.training import reporting  # pylint: disable=g-import-not-at-top
  curves = {}
  for variant in variants:
    records = [r for r in reporting.read_metrics(os.path.join(workdir, variant)) if 'ada_p' in r]
    if records:
      curves[variant] = records
  return curves


def write_ada_figure(curves: dict[str, list[dict]], target: float, path: str) -> str | None:
  """ADA's p (top) and r_t with the target (bottom) against the step; None without curves."""
  if not curves:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax_p, ax_r) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True)
  for variant, records in curves.items():
    step = [r['step'] for r in records]
    ax_p.plot(step, [r['ada_p'] for r in records], label=variant)
    rt = [(r['step'], r['ada_rt']) for r in records if 'ada_rt' in r]
    if rt:
      ax_r.plot(*zip(*rt), label=variant)
  ax_p.set_ylim(0, max(0.05, 1.1 * max(r['ada_p'] for rs in curves.values() for r in rs)))
  ax_r.axhline(target, color='k', ls='--', lw=1, label=f'target {target:g}')
  ax_p.set_ylabel('ADA p')
  ax_r.set_ylabel('r_t = E[sign D(x_real)]')
  ax_r.set_xlabel('step')
  ax_p.legend(loc='best')
  ax_r.legend(loc='best')
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


# --- the study ------------------------------------------------------------------------------

def _jsonable(value):
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def write_json(path: str, value) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(_jsonable(value), f, indent=2)
    f.write('\n')
  os.replace(path + '.tmp', path)


def run_study(s: Settings, command: str = '', log=print) -> dict:
  """Runs (or resumes) the whole study; writes and returns the results."""
  started = time.perf_counter()
  for variant in s.variants:
    if variant not in VARIANTS:
      raise errors.ConfigError(f'Unknown variant {variant!r}: --variants takes some of '
                               f'{", ".join(VARIANTS)}.')
  if not os.path.exists(s.config):
    raise errors.ConfigError(f'--config={s.config} does not exist.')
  if s.fid_stats and not os.path.exists(s.fid_stats):
    raise errors.DataNotFoundError(f'--fid_stats={s.fid_stats} does not exist; compute it '
                                   'with python -m gan_jax.metrics.fid, or leave it empty.')
  os.makedirs(s.workdir, exist_ok=True)
  data_config = full_data_config(s)
  split = prepare_split(s, data_config, log)
  configs = {v: variant_config(s, v, split['train_dir']) for v in s.variants}  # errors first
  fid_reference = FidReference(s.fid_stats, log) if s.fid_stats else None
  results = {'command': command, 'settings': dataclasses.asdict(s), 'data': split['info'],
             'reference': {k: v for k, v in data_config.to_dict().items()
                           if k not in ('read_threads', 'prefetch')},
             'train_dir': split['train_dir'], 'num_train': len(split['train_idx']),
             'num_heldout': len(split['heldout_idx']), 'variants': {}}
  for variant, config in configs.items():
    workdir = os.path.join(s.workdir, variant)
    log(f'[{variant}] training {s.steps} steps on {len(split["train_idx"])} images '
        f'({", ".join(f"{k}={v!r}" for k, v in VARIANTS[variant](s).items()) or "no overrides"})')
    trained = train_variant(config, workdir, log)
    log(f'[{variant}] ' + ('finished before: not retrained' if trained['skipped'] else
                           f'trained in {trained["wall_s"]:.0f}s, load '
                           f'{trained["load_before"][0]:.2f} -> {trained["load_after"][0]:.2f}'))
    scored = cached_scores(s, workdir, data_config, split, fid_reference, log)
    curves = ada_curves(s.workdir, [variant]).get(variant, [])
    grid = os.path.join(variant, 'samples', f'step_{scored["step"]:07d}.png')
    record = {'workdir': workdir, 'overrides': VARIANTS[variant](s), 'train': trained,
              **scored, 'grid': grid if os.path.exists(os.path.join(s.workdir, grid)) else None,
              'ada_p': curves[-1]['ada_p'] if curves else None,
              'ada_rt': curves[-1].get('ada_rt') if curves else None}
    results['variants'][variant] = record
    m, mem = record['metrics'], record['d_memorisation']
    log(f'[{variant}] step {record["step"]}: '
        + ''.join(f'{k} {v:.4g}, ' for k, v in m.items())
        + f'D(train) {mem["d_train"]:.3f}, D(held-out) {mem["d_heldout"]:.3f}, '
        f'gap {mem["d_gap"]:+.3f}, AUC {mem["auc"]:.3f}')
    results['wall_seconds'] = time.perf_counter() - started
    write_json(os.path.join(s.workdir, RESULTS_JSON), results)   # after every variant
  results['ada_figure'] = write_ada_figure(ada_curves(s.workdir, s.variants), s.ada_target,
                                           os.path.join(s.workdir, ADA_FIGURE))
  results['wall_seconds'] = time.perf_counter() - started
  write_json(os.path.join(s.workdir, RESULTS_JSON), results)
  with open(os.path.join(s.workdir, RESULTS_MD), 'w') as f:
    f.write(markdown_report(results))
  log(f'Wrote {os.path.join(s.workdir, RESULTS_MD)} and {RESULTS_JSON}'
      + (f', {ADA_FIGURE}' if results['ada_figure'] else ''))
  return results


def cached_scores(s: Settings, workdir: str, data_config, split: dict, fid_reference,
                  log=print) -> dict:
  """The last checkpoint's scores and the classifier metrics of the earlier ones (the curve).

  Kept in VARIANT/SCORE_RECORD with the settings they depend on, so a rerun
  (say, with more --variants) scores only what is new.
  """
  path = os.path.join(workdir, SCORE_RECORD)
  key = {k: getattr(s, k) for k in ('metrics', 'eval_num', 'num_reference', 'fid_stats',
                                    'fid_num')}
  key = _jsonable(key)
  record = {}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  steps = kept_checkpoints(workdir)
  if record.get('key') != key or record.get('last', {}).get('step') != steps[-1]:
    log(f'[{os.path.basename(workdir)}] scoring step {steps[-1]} against '
        f'{split["info"]["description"]}')
    record = {'key': key, 'last': score_variant(s, workdir, data_config, split,
                                                fid_reference, log), 'curve': {}}
    write_json(path, record)
  for step in steps[:-1]:
    if str(step) not in record['curve'] and s.metrics:
      record['curve'][str(step)] = score_variant(s, workdir, data_config, split, None, log,
                                                 step=step)['metrics']
      write_json(path, record)
  curve = [{'step': int(k), **v} for k, v in sorted(record['curve'].items(),
                                                    key=lambda kv: int(kv[0]))]
  last = record['last']
  return {**last, 'curve': curve + [{'step': last['step'], **last['metrics']}]}


# --- the report -----------------------------------------------------------------------------

TABLE_HEADER = ('| variant | steps | FID | cls_fd | cls_fd at the kept checkpoints | '
                'classes covered (rarest %) | D(train) | D(held-out) | gap | AUC | final p | '
                'wall s | load |')


def _num(value, fmt: str) -> str:
  return '–' if value is None else format(value, fmt)


def markdown_table(results: dict) -> str:
  """One row per variant: quality against the full data, D's memorisation, ADA's p, cost."""
  lines = [TABLE_HEADER, '|' + ' --- |' * TABLE_HEADER.count(' | ') + ' --- |']
  for variant, r in results['variants'].items():
    m, mem, t = r.get('metrics', {}), r.get('d_memorisation', {}), r.get('train', {})
    covered = '–'
    if m.get('cls_classes') is not None:
      covered = f'{m["cls_classes"]:.0f}'
      if m.get('cls_min_class') is not None:
        covered += f' ({100 * m["cls_min_class"]:.1f}%)'
    load = '–'
    if t.get('load_before') and t.get('load_after'):
      load = f'{t["load_before"][0]:.2f} → {t["load_after"][0]:.2f}'
    curve = ' / '.join(f'{c["cls_fd"]:.0f}' for c in r.get('curve', []) if 'cls_fd' in c)
    lines.append(
        f'| {variant} | {r.get("step", "–")} | {_num(m.get("fid"), ".1f")} | '
        f'{_num(m.get("cls_fd"), ".2f")} | {curve or "–"} | {covered} | {_num(mem.get("d_train"), ".3f")} | '
        f'{_num(mem.get("d_heldout"), ".3f")} | {_num(mem.get("d_gap"), "+.3f")} | '
        f'{_num(mem.get("auc"), ".3f")} | {_num(r.get("ada_p"), ".3f")} | '
        f'{_num(t.get("wall_s"), ".0f")} | {load} |')
  return '\n'.join(lines) + '\n'


def markdown_report(results: dict) -> str:
  s = results['settings']
  first = next(iter(results['variants'].values()), {})
  protocols = '\n'.join(f'- {k}: {v}' for k, v in first.get('protocols', {}).items())
  grids = '\n'.join(f'{v}:\n\n![{v}]({r["grid"]})\n' for v, r in results['variants'].items()
                    if r.get('grid'))
  figure = (f'\nADA\'s p and r_t over training (target {s["ada_target"]:g}):\n\n'
            f'![ADA p]({ADA_FIGURE})\n' if results.get('ada_figure') else '')
  return (
      f'# Small-data GANs: {results["num_train"]} training images of '
      f'{results["data"]["description"]}\n\n'
      f'Every variant: {s["config"]}, {s["steps"]} steps of batch {s["batch_size"]}, seed '
      f'{s["seed"]}, on the same {results["num_train"]} images (balanced over the classes). '
      f'Quality is measured against the full data; D(.) is the mean sigmoid of D\'s logit '
      f'(inference-mode BatchNorm) on the training images and on '
      f'{first.get("d_memorisation", {}).get("num_heldout", "?")} held-out real images; gap = '
      f'D(train) - D(held-out); AUC: telling them apart by the logit (0.5 = not at all). '
      f'Load: 1-minute load average before → after training.\n\n'
      f'{markdown_table(results)}\n'
      f'Protocols:\n\n{protocols or "- (no sample metrics)"}\n{figure}\n'
      f'Last sample grids:\n\n{grids}\n'
      f'Wall-clock of this invocation: {results.get("wall_seconds", 0):.0f}s.\n\n'
      f'Command:\n\n    {results.get("command", "")}\n')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  if not FLAGS.workdir or not FLAGS.config or not FLAGS.data_path:
    raise errors.ConfigError('--workdir, --config and --data_path are required.')
  settings = Settings(
      workdir=FLAGS.workdir, config=FLAGS.config, data_source=FLAGS.data_source,
      data_path=FLAGS.data_path, image_size=FLAGS.image_size, channels=FLAGS.channels,
      num_train=FLAGS.num_train, num_heldout=FLAGS.num_heldout, seed=FLAGS.seed,
      steps=FLAGS.steps, batch_size=FLAGS.batch_size, variants=tuple(FLAGS.variants),
      lecam_weight=FLAGS.lecam_weight, ada_target=FLAGS.ada_target, ada_kimg=FLAGS.ada_kimg,
      checkpoints=FLAGS.checkpoints, metrics=tuple(FLAGS.metrics), eval_num=FLAGS.eval_num,
      num_reference=FLAGS.num_reference, fid_stats=FLAGS.fid_stats, fid_num=FLAGS.fid_num,
      overrides=tuple(FLAGS.override))
  command = 'python -m experiments.small_data ' + ' '.join(sys.argv[1:])
  results = run_study(settings, command, log=lambda *a: print(*a, flush=True))
  print(markdown_table(results))


if __name__ == '__main__':
  define_flags()
  cli.run(main)
