"""CPU time of one train step for given configs (the VAE and DDPM configs' docstrings quote it).

  python -m benchmarks.family_step_time configs/cvae.py:mnist configs/ddpm.py:mnist ...

Runs each config's real jitted train step at its own batch size on synthetic
uint8 batches (no data loading) and prints the best of `--rounds` rounds of
`--steps` steps, after compilation. On a shared machine, note the load.
"""

from __future__ import annotations

import os
import time

from absl import app, flags
import jax
import numpy as np

from gan_jax.config import files as config_files
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib

flags.DEFINE_integer('steps', 3, 'Steps per timed round.')
flags.DEFINE_integer('rounds', 2, 'Timed rounds; the best is reported.')
FLAGS = flags.FLAGS


def step_seconds(config, steps: int, rounds: int) -> float:
  size, channels = config.data.image_size, config.data.channels or 3
  info = DatasetInfo((size, size, channels), 10, tuple(map(str, range(10))), 1000, 'synthetic')
  setup = setup_lib.build_setup(config, info)
  state = jax.jit(setup.init_state)()
  tc = config.train
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (tc.n_disc, tc.batch_size, size, size, channels),
                                 dtype=np.uint8),
           'label': rng.integers(0, 10, (tc.n_disc, tc.batch_size)).astype(np.int32)}
  step = jax.jit(setup.train_step(tc), donate_argnums=0)
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  best = float('inf')
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    best = min(best, (time.perf_counter() - start) / steps)
  return best


def main(argv):
  print(f'load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores')
  for path in argv[1:]:
    config = config_files.load_file(path)
    seconds = step_seconds(config, FLAGS.steps, FLAGS.rounds)
    print(f'{path}: batch {config.train.batch_size}, {seconds * 1000:.0f} ms/step', flush=True)


if __name__ == '__main__':
  app.run(main)
