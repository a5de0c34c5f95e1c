"""Command line for sampling a trained run: images to an .npz, optionally a grid PNG.

  python -m gan_jax.generate --workdir=DIR --num=N --out=FILE.npz [--grid=FILE.png] [--label=K]

The npz holds `images` (uint8, N x H x W x C) and, for conditional models,
`labels` (int32, N); for a 2D-lab run (config.trainer='toy2d') it holds
`points` (float32, N x 2) instead. Samples come from the EMA generator when
the run keeps one, in inference mode, from the latest checkpoint unless
--step is given.
"""

from __future__ import annotations

import functools
import os
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

from gan_jax import errors

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Workdir of a training run.')
flags.DEFINE_integer('num', 64, 'Number of images to generate.')
flags.DEFINE_string('out', None, 'Output .npz file.')
flags.DEFINE_string('grid', None, 'Also write the first images as a grid PNG here.')
flags.DEFINE_integer('label', None, 'Class of every image (conditional models); '
                     'default: classes drawn uniformly.')
flags.DEFINE_integer('seed', 0, 'Seed of the noise (and labels).')
flags.DEFINE_integer('batch_size', 256, 'Images generated per device call.')
flags.DEFINE_integer('step', None, 'Checkpoint step to load; default: the latest.')
flags.mark_flags_as_required(['workdir', 'out'])


def generate(workdir: str, num: int, seed: int = 0, label: int | None = None,
             batch_size: int = 256, step: int | None = None):
  """Returns (images uint8 [num, H, W, C], labels int32 [num] or None, checkpoint step)."""
  import jax  # pylint: disable=g-import-not-at-top  (slow: JAX)
  from gan_jax import sampling, train  # pylint: disable=g-import-not-at-top

  if num < 1:
    raise errors.ConfigError(f'--num must be at least 1, got {num}.')
  _, setup, state = train.restore_setup(workdir, step)
  gan = setup.gan
  if len(gan.image_shape) == 1:
    raise errors.ConfigError(f'{workdir} is a 2D-lab run: its samples are points; use '
                             'generate_points (the command line does).')
  if label is not None and not gan.num_classes:
    raise errors.ConfigError('--label needs a conditional model; this run is '
                             'unconditional (config.model.conditional=False).')
  sample = sampling.make_sampler(gan)
  variables = state.sampling_variables()
  key = jax.random.PRNGKey(seed)
  images, labels = [], []
  for start in range(0, num, batch_size):
    n = min(batch_size, num - start)
    z, batch_labels = sampling.latents(jax.random.fold_in(key, start), gan, n, label)
    images.append(np.asarray(jax.device_get(sample(variables, z, batch_labels))))
    labels.append(np.asarray(batch_labels))
  labels = np.concatenate(labels).astype(np.int32) if gan.num_classes else None
  return np.concatenate(images), labels, int(state.step)


def generate_points(workdir: str, num: int, seed: int = 0, batch_size: int = 256,
                    step: int | None = None):
  """Returns (points float32 [num, 2], checkpoint step) of a 2D-lab run's generator."""
  import jax  # pylint: disable=g-import-not-at-top  (slow: JAX)
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  from gan_jax.toy2d import lab  # pylint: disable=g-import-not-at-top

  if num < 1:
    raise errors.ConfigError(f'--num must be at least 1, got {num}.')
  config, setup, state = train.restore_setup(workdir, step)
  sample = jax.jit(functools.partial(lab.generate_points, setup.gan, config.toy2d.latent),
                   static_argnums=2)
  key = jax.random.PRNGKey(seed)
  points = [np.asarray(jax.device_get(sample(state.sampling_variables(),
                                             jax.random.fold_in(key, start),
                                             min(batch_size, num - start))))
            for start in range(0, num, batch_size)]
  return np.concatenate(points).astype(np.float32), int(state.step)


def _is_2d_run(workdir: str) -> bool:
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.load_from_workdir(workdir).trainer == 'toy2d'


def _write_points(result) -> None:
  points, step = result
  out = FLAGS.out if FLAGS.out.endswith('.npz') else FLAGS.out + '.npz'
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez_compressed(out, points=points)
  print(f'Wrote {len(points)} points from step {step} to {out}')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    if _is_2d_run(FLAGS.workdir):
      _write_points(generate_points(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.batch_size,
                                    FLAGS.step))
      return
    images, labels, step = generate(FLAGS.workdir, FLAGS.num, FLAGS.seed,
                                    FLAGS.label, FLAGS.batch_size, FLAGS.step)
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')
  out = FLAGS.out if FLAGS.out.endswith('.npz') else FLAGS.out + '.npz'
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  arrays = {'images': images}
  if labels is not None:
    arrays['labels'] = labels
  np.savez_compressed(out, **arrays)
  print(f'Wrote {len(images)} images {images.shape[1:]} from step {step} to {out}')
  if FLAGS.grid:
    from gan_jax.viz import grids  # pylint: disable=g-import-not-at-top
    shown = images[:256]
    grids.save_grid(shown, FLAGS.grid, int(np.ceil(np.sqrt(len(shown)))))
    print(f'Wrote a grid of {len(shown)} images to {FLAGS.grid}')


if __name__ == '__main__':
  app.run(main)
