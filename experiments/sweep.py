"""Hyperparameter sweeps of the 2D lab: the report's Adam-b1 and learning-rate comparison, and more.

  python -m experiments.sweep --config=configs/toy2d.py:sine \
      --grid optim.g.b1=0.5,0.7 --grid optim.d.lr=1e-3,5e-2 --seeds 3 --workdir=runs/sweep_sine

Every combination of the --grid values runs with --seeds seeds (config.seed,
config.seed + 1, ...). Runs that differ only in optimizer numbers and seed are
trained together in one vmapped program (gan_jax/toy2d/sweep.py). Writes
results.csv and results.md (final metrics, mean and std over seeds),
runs.csv, final_panels.png (the final four-panel figure per setting, side by
side) and panels/. `--config.KEY=VALUE` overrides apply to every run.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from gan_jax import cli, errors

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'A 2D-lab config file (configs/toy2d.py:TARGET).',
                                lock_config=True)
flags.DEFINE_multi_string('grid', [], 'KEY=V1,V2,...: values of one config key; repeat the '
                          'flag for more keys. Every combination runs.')
flags.DEFINE_integer('seeds', 1, 'Seeds per setting.')
flags.DEFINE_string('workdir', None, 'Directory for the tables and figures.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  from gan_jax.toy2d import sweep  # pylint: disable=g-import-not-at-top  (slow: JAX)
  try:
    grid = sweep.parse_grid(FLAGS.grid, FLAGS.config)
    sweep.run_sweep(FLAGS.config, grid, FLAGS.seeds, FLAGS.workdir)
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')
  with open(os.path.join(FLAGS.workdir, 'results.md')) as f:
    print(f.read())
  print(f'Wrote results.csv, results.md, runs.csv and final_panels.png to {FLAGS.workdir}')


if __name__ == '__main__':
  cli.run(main)
