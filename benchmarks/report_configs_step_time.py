"""Time per training step of the reference-report configs at full size, on random in-memory data.

  python -m benchmarks.report_configs_step_time [--configs=a.py,b.py:PRESET] [--steps=3]

For each config: builds its models, optimizers and train step exactly as
training does (config batch size, n_disc, n_gen, augmentation), compiles it,
runs one warm-up step and then `--steps` timed steps on random uint8
images of the config's shape (10 labels when the config is conditional).
Prints wall seconds per step and the process's CPU seconds per step (all
threads); on a shared machine the wall time is inflated by other load, the
CPU time much less so. Data loading is not included (a real run decodes
folder images once, then only indexes memory).
"""

from __future__ import annotations

import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from gan_jax.config import base as config_base
from gan_jax.config import files as config_files
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib

FLAGS = flags.FLAGS
flags.DEFINE_list('configs', ['dcgan_cifar10_class.py:dog', 'dcgan_celeba.py',
                              'gan_cifar10_resnet18d.py', 'cgan_cifar10_resnet18d.py',
                              'dcgan64_folder.py'],
                  'Config files in configs/, each NAME.py or NAME.py:PRESET.')
flags.DEFINE_integer('steps', 3, 'Timed steps per config.')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_config(config, steps: int) -> tuple[float, float, float]:
  """(compile seconds, wall seconds per step, CPU seconds per step)."""
  config_base.validate(config)
  size, channels = config.data.image_size, config.data.channels or 3
  classes = 10 if config.model.conditional else 0
  info = DatasetInfo((size, size, channels), classes, tuple(str(i) for i in range(classes)),
                     1000, 'random')
  setup = setup_lib.build_setup(config, info)
  tc = config.train
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (tc.n_disc, tc.batch_size, size, size, channels),
                                 dtype=np.uint8),
           'label': rng.integers(0, max(classes, 1), (tc.n_disc, tc.batch_size)).astype(np.int32)}
  state = setup.init_state()
  start = time.perf_counter()
  step = jax.jit(setup.train_step(tc), donate_argnums=0).lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  wall, cpu = time.perf_counter(), time.process_time()
  for _ in range(steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return (compile_s, (time.perf_counter() - wall) / steps,
          (time.process_time() - cpu) / steps)


def main(argv):
  del argv
  for name in FLAGS.configs:
    load = os.getloadavg()[0]
    config = config_files.load_file(os.path.join(REPO_ROOT, 'configs', name))
    compile_s, wall, cpu = time_config(config, FLAGS.steps)
    print(f'{name}: {wall:.2f} s/step wall, {cpu:.2f} CPU-s/step '
          f'(compile {compile_s:.0f}s; load average {load:.1f} before, '
          f'{os.getloadavg()[0]:.1f} after; {jax.devices()[0].platform})', flush=True)


if __name__ == '__main__':
  app.run(main)
