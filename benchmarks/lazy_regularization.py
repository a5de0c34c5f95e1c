"""Lazy R1 on CPU: is skipping the penalty with lax.cond cheaper than computing and masking it?

  python -m benchmarks.lazy_regularization [--model=dcgan32] [--batch=64] [--every=4] [--rounds=5]

Times the jitted train step (synthetic uint8 batches, no data loading) with
R1 off, R1 on every update, and lazy R1 (every k updates) skipped by
`lax.cond` or by masking, interleaving the variants round by round and
reporting each one's best round (the machine may be shared). A round runs
`every` steps, so each lazy variant does one regularised update per round.
"""

from __future__ import annotations

import time

from absl import app, flags
import jax
import numpy as np

from gan_jax.config.base import get_config
from gan_jax.core import regularizers
from gan_jax.core import steps
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib

flags.DEFINE_string('model', 'dcgan32', 'config.model.name (32x32 RGB).')
flags.DEFINE_float('width_scale', 1.0, 'config.model.width_scale.')
flags.DEFINE_integer('batch', 64, 'Batch size.')
flags.DEFINE_integer('every', 4, 'Lazy interval k.')
flags.DEFINE_integer('rounds', 5, 'Timed rounds per variant.')
FLAGS = flags.FLAGS


def _step(variant: str):
  config = get_config()
  config.model.name, config.model.width_scale = FLAGS.model, FLAGS.width_scale
  config.data.image_size, config.train.batch_size = 32, FLAGS.batch
  if variant != 'off':
    config.reg.r1.weight = 1.0
    config.reg.r1.every = 1 if variant == 'every update' else FLAGS.every
  info = DatasetInfo((32, 32, 3), 10, tuple('0123456789'), 1000, 'synthetic')
  setup = setup_lib.build_setup(config, info)
  lazy = 'mask' if variant == 'lazy, mask' else 'cond'
  fn = steps.make_train_step(setup.gan, setup.loss, setup.g_tx, setup.d_tx,
                             steps.StepSpec.from_config(config.train),
                             regularizer=regularizers.build(config.reg, lazy=lazy))
  state = setup.init_state()
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (1, FLAGS.batch, 32, 32, 3), dtype=np.uint8),
           'label': rng.integers(0, 10, (1, FLAGS.batch)).astype(np.int32)}
  start = time.perf_counter()
  step = jax.jit(fn).lower(state, batch).compile()
  state, _ = step(state, batch)
  jax.block_until_ready(state)
  print(f'{variant}: compiled in {time.perf_counter() - start:.0f}s', flush=True)
  return step, state, batch


def main(argv):
  del argv
  variants = ['off', 'every update', 'lazy, cond', 'lazy, mask']
  built = {v: list(_step(v)) for v in variants}
  best = {v: float('inf') for v in variants}
  for _ in range(FLAGS.rounds):
    for v in variants:
      step, state, batch = built[v]
      start = time.perf_counter()
      for _ in range(FLAGS.every):
        state, _ = step(state, batch)
      jax.block_until_ready(state)
      best[v] = min(best[v], (time.perf_counter() - start) / FLAGS.every)
      built[v][1] = state
  print(f'{FLAGS.model} x{FLAGS.width_scale} batch {FLAGS.batch}, R1 every {FLAGS.every}, '
        f'{jax.devices()[0].platform}; best of {FLAGS.rounds} rounds, ms per step:')
  for v in variants:
    print(f'  {v:14s} {best[v] * 1000:8.1f}')


if __name__ == '__main__':
  app.run(main)
