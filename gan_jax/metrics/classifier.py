"""A domain classifier per dataset: the feature space of the offline metrics (no download needed).

  python -m gan_jax.metrics.classifier --config=configs/dcgan_mnist.py \
      --config.data.source=idx --config.data.path=DIR --out=classifiers/mnist

trains a small CNN on the labelled data that `config.data` describes (the same
data section a training run uses: MNIST, CIFAR-10, any labelled folder). The
examples are split deterministically into a training part and a held-out
part (`--holdout`, a seeded permutation); the held-out accuracy is printed
and stored in `OUT/classifier.json`, beside the orbax checkpoint in
`OUT/variables`. Evaluation loads it through `config.eval.classifier`.

Its 128-d penultimate layer is the feature space of cls_fd, cls_pr and the
near-duplicate count; its predictions give cls_acc and cls_cov.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import cli, errors
from gan_jax.metrics import weights_dir

META_FILE = 'classifier.json'
FEATURE_DIM = 128


class DomainClassifier(nn.Module):
  """Two stages of conv 3x3 + stride-2 conv 3x3 (16, 32 channels) -> dense 128 (features) -> logits.

  Small on purpose: it trains to ~98% on MNIST in about a minute on a laptop CPU.
  """
  num_classes: int
  widths: Sequence[int] = (16, 32)

  @nn.compact
  def __call__(self, images):
    x = images.astype(jnp.float32) / 127.5 - 1.0 if images.dtype == jnp.uint8 else images
    for width in self.widths:
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2))(x))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(FEATURE_DIM)(x))
    return {'features': features, 'logits': nn.Dense(self.num_classes)(features)}


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A trained classifier: `apply(variables, uint8 images)` -> {'features', 'logits'}."""
  module: DomainClassifier
  variables: dict
  meta: dict

  @property
  def num_classes(self) -> int:
    return self.module.num_classes

  @property
  def image_shape(self) -> tuple:
    return tuple(self.meta['image_shape'])

  def apply(self, variables, images):
    return self.module.apply(variables, images)


def holdout_split(num: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, held-out indices): a seeded permutation, the last `fraction` held out."""
  order = np.random.default_rng(seed).permutation(num)
  held = max(1, int(round(num * fraction)))
  return np.sort(order[:num - held]), np.sort(order[num - held:])


def all_examples(source) -> tuple[np.ndarray, np.ndarray]:
  """Every (image, label) of a source, as uint8 (N, H, W, C) and int32 (N,)."""
  from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  batch = pipeline.fetch(source, np.arange(len(source)))
  return np.asarray(batch['image'], np.uint8), np.asarray(batch['label'], np.int32)


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, *, steps: int = 1000,
          batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
          log=print) -> tuple[DomainClassifier, dict]:
  """Adam on softmax cross-entropy over shuffled batches, no augmentation."""
  module = DomainClassifier(num_classes)
  key = jax.random.PRNGKey(seed)
  variables = module.init(key, jnp.zeros((1, *images.shape[1:]), jnp.uint8))
  tx = optax.adam(lr)
  opt_state = tx.init(variables['params'])

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      logits = module.apply({'params': p}, x)['logits']
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params = variables['params']
  rng = np.random.default_rng(seed)
  order, pos = rng.permutation(len(images)), 0
  start = time.time()
  for i in range(1, steps + 1):
    if pos + batch_size > len(order):
      order, pos = rng.permutation(len(images)), 0
    idx = order[pos:pos + batch_size]
    pos += batch_size
    params, opt_state, loss = step(params, opt_state, images[idx], labels[idx])
    if i % max(1, steps // 5) == 0 or i == steps:
      log(f'  step {i}/{steps} loss {float(loss):.4f} ({time.time() - start:.0f}s)')
  return module, {'params': params}


def predict(module, variables, images: np.ndarray, batch_size: int = 1000) -> dict:
  fn = jax.jit(module.apply)
  outs = [jax.device_get(fn(variables, images[i:i + batch_size]))
          for i in range(0, len(images), batch_size)]
  return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def save(out_dir: str, variables: dict, meta: dict) -> str:
  return weights_dir.save(out_dir, variables, meta, META_FILE)


def load(path: str) -> Classifier:
  path = os.path.abspath(os.path.expanduser(path or ''))
  if not weights_dir.exists(path, META_FILE):
    raise errors.DataNotFoundError(
        f'No domain classifier at {path!r} (no {META_FILE}). Train one on the same '
        'data as the run, e.g.\n  python -m gan_jax.metrics.classifier '
        '--config=configs/dcgan_mnist.py --config.data.source=idx '
        '--config.data.path=DIR --out=classifiers/mnist\nand pass '
        '--config.eval.classifier=classifiers/mnist (or --classifier=... to '
        'gan_jax.evaluate).')
  variables, meta = weights_dir.load(path, META_FILE)
  module = DomainClassifier(meta['num_classes'])
  meta['path'] = path
  return Classifier(module, variables, meta)


def train_and_save(data_config, out_dir: str, *, steps: int = 1000, batch_size: int = 64,
                   lr: float = 1e-3, holdout: float = 0.2, seed: int = 0, source=None,
                   log=print) -> dict:
  """Builds the data (unless `source` is it), trains, measures held-out accuracy, saves; returns the metadata."""
  from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  if not 0 < holdout < 1:
    raise errors.ConfigError(f'--holdout must be in (0, 1), got {holdout}.')
  source = data_lib.build_source(data_config) if source is None else source
  info = source.info
  if info.num_classes < 2:
    raise errors.DataError(f'{info.description} has no class labels (or only one '
                           'class): a domain classifier needs labelled data.')
  images, labels = all_examples(source)
  train_idx, held_idx = holdout_split(len(images), holdout, seed)
  log(f'Training a domain classifier on {info.description}: {len(train_idx)} '
      f'training / {len(held_idx)} held-out images (seeded split, seed {seed}), '
      f'{info.num_classes} classes')
  module, variables = train(images[train_idx], labels[train_idx], info.num_classes,
                            steps=steps, batch_size=batch_size, lr=lr, seed=seed, log=log)
  accuracy = {}
  for name, idx in (('train', train_idx), ('heldout', held_idx)):
    pred = predict(module, variables, images[idx])['logits'].argmax(-1)
    accuracy[name] = float(np.mean(pred == labels[idx]))
  meta = {
      'num_classes': info.num_classes, 'class_names': list(info.class_names),
      'image_shape': list(info.image_shape), 'data': data_config.to_dict(),
      'data_description': info.description, 'feature_dim': FEATURE_DIM,
      'num_train': int(len(train_idx)), 'num_heldout': int(len(held_idx)),
      'holdout_fraction': holdout, 'split_seed': seed, 'steps': steps,
      'batch_size': batch_size, 'lr': lr, 'train_accuracy': accuracy['train'],
      'heldout_accuracy': accuracy['heldout'],
      'created': time.strftime('%Y-%m-%dT%H:%M:%S'),
  }
  save(out_dir, variables, meta)
  log(f'Held-out accuracy {accuracy["heldout"]:.4f} ({len(held_idx)} images; '
      f'train {accuracy["train"]:.4f}). Saved to {os.path.abspath(out_dir)}')
  return meta


def main():
  from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string('out', None, 'Output directory for the classifier.')
  flags.DEFINE_integer('steps', 1000, 'Training steps.')
  flags.DEFINE_integer('batch_size', 64, 'Batch size.')
  flags.DEFINE_float('lr', 1e-3, 'Adam learning rate.')
  flags.DEFINE_float('holdout', 0.2, 'Fraction of the examples held out for the accuracy.')
  flags.DEFINE_integer('seed', 0, 'Seed of the split, the initialisation and the batches.')
  flags.mark_flag_as_required('out')
  try:
    config_flags.DEFINE_config_file(
        'config', config_base.BASE_CONFIG_PATH,
        'Experiment config whose `data` section names the dataset.', lock_config=True)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(f'error: bad --config override: {e}')

  def run(argv):
    if len(argv) > 1:
      raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
    fl = flags.FLAGS
    if not fl['verbosity'].present:  # orbax's INFO lines would drown the result
      logging.set_verbosity(logging.WARNING)
    train_and_save(fl.config.data, fl.out, steps=fl.steps, batch_size=fl.batch_size,
                   lr=fl.lr, holdout=fl.holdout, seed=fl.seed,
                   log=functools.partial(print, flush=True))
  cli.run(run)


if __name__ == '__main__':
  main()
