"""FLOPs per device of the data-parallel train step, from XLA's cost analysis: is the work split?

  python -m benchmarks.sharded_flops --devices=2 --model=dcgan32 --width_scale=0.25

Simulates `--devices` CPU devices, compiles the train step as gan_jax.train
does (replicated state, the batch sharded over a mesh) on 1, 2, 4, ... of
them, and prints the FLOPs of each device's compiled program. With the work
split, n devices each do 1/n of the one-device count. `--unconstrained`
builds the step without `devices_lib.batch_constraint` on the noise it draws,
as it was before (BENCHMARKS.md, "Data parallelism"). A count, not a timing:
it runs on any machine.
"""

from __future__ import annotations

import os

from absl import app, flags

flags.DEFINE_integer('devices', 2, 'Simulated CPU devices.')
flags.DEFINE_string('model', 'dcgan32', 'Model name (32x32x3 images).')
flags.DEFINE_float('width_scale', 0.25, 'config.model.width_scale.')
flags.DEFINE_integer('batch_size', 64, 'Global batch.')
flags.DEFINE_bool('unconstrained', False, "Leave the step's own noise unsharded.")
FLAGS = flags.FLAGS


def main(_):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             f' --xla_force_host_platform_device_count={FLAGS.devices}')
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
  from gan_jax.parallel import devices as devices_lib
  from gan_jax.training import setup as setup_lib
  from gan_jax.data.source import DatasetInfo  # pylint: disable=g-import-not-at-top
  from benchmarks.accelerator import peaks  # pylint: disable=g-import-not-at-top

  config = config_base.get_config()
  config.model.name, config.model.width_scale = FLAGS.model, FLAGS.width_scale
  config.train.batch_size = FLAGS.batch_size
  setup = setup_lib.build_setup(config, DatasetInfo((32, 32, 3), 10, tuple('0123456789'), 100, ''))
  rng = np.random.default_rng(0)
  host = {'image': rng.integers(0, 256, (1, FLAGS.batch_size, 32, 32, 3), dtype=np.uint8),
          'label': np.zeros((1, FLAGS.batch_size), np.int32)}
  n, one = 1, None
  while n <= jax.device_count():
    mesh = devices_lib.make_mesh(jax.devices()[:n])
    replicated, sharded = devices_lib.replicated(mesh), devices_lib.batch_sharded(mesh, 1)
    step = jax.jit(setup.train_step(config.train, None if FLAGS.unconstrained else mesh),
                   in_shardings=(replicated, sharded), out_shardings=(replicated, replicated))
    compiled = step.lower(jax.device_put(setup.init_state(), replicated),
                          jax.device_put(host, sharded)).compile()
    flops = peaks.flops_from_cost_analysis(peaks.cost_analysis(compiled))
    one = one or flops
    print(f'{n} device(s): {flops / 1e9:.2f} GFLOP per device per step '
          f'({flops / one:.2f} of one device; ideal {1 / n:.2f})')
    n *= 2


if __name__ == '__main__':
  app.run(main)
