"""Command line for sampling a trained run: images to an .npz or to an image folder.

  python -m gan_jax.generate --workdir=DIR --num=N --out=FILE.npz [--grid=FILE.png] [--label=K]
  python -m gan_jax.generate --workdir=DIR --num=N --out=OUT_DIR/ [--per_class]

The npz holds `images` (uint8, N x H x W x C) and, for conditional models,
`labels` (int32, N); for a 2D-lab run (config.trainer='toy2d') it holds
`points` (float32, N x 2) instead. An --out ending in '/' (or an existing
directory, or --format=png) writes PNG files instead, one subfolder per class
(flat for an unconditional model), ready for the `folder` data source, plus
OUT_DIR/manifest.json with the checkpoint step, seed, counts and the run's
config. Folder output streams: each batch is written before the next is
drawn, so 100,000 images need the memory of one batch. --per_class makes
--num a count per class. Samples come from the EMA generator when the run
keeps one, in inference mode (with standing BatchNorm statistics,
config.sample.standing_stats_batches), from the latest checkpoint unless
--step is given.
"""

from __future__ import annotations

import functools
import os

from absl import flags
import numpy as np

from gan_jax import cli, errors
from gan_jax.generation import export

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Workdir of a training run.')
flags.DEFINE_integer('num', 64, 'Number of images to generate.')
flags.DEFINE_string('out', None, "Output .npz file, or a directory (ending in '/') for PNG class folders.")
flags.DEFINE_string('grid', None, 'Also write the first images as a grid PNG here.')
flags.DEFINE_integer('label', None, 'Class of every image (conditional models); '
                     'default: classes drawn uniformly.')
flags.DEFINE_integer('seed', 0, 'Seed of the noise (and labels).')
flags.DEFINE_integer('batch_size', 256, 'Images generated per device call.')
flags.DEFINE_integer('step', None, 'Checkpoint step to load; default: the latest.')
flags.DEFINE_bool('per_class', False, 'Folder output: --num images for every class.')
flags.DEFINE_enum('format', 'auto', ['auto', 'npz', 'png'],
                  "auto: png folder if --out ends in '/' or is a directory, else npz.")

flags.mark_flags_as_required(['workdir', 'out'])


def generate(workdir: str, num: int, seed: int = 0, label: int | None = None,
             batch_size: int = 256, step: int | None = None):
  """Returns (images uint8 [num, H, W, C], labels int32 [num] or None, checkpoint step)."""
  if num < 1:
    raise errors.ConfigError(f'--num must be at least 1, got {num}.')
  from gan_jax.training import setup as setup_lib  # pylint: disable=g-import-not-at-top  (slow: JAX)
  _, setup, state = setup_lib.restore_setup(workdir, step)
  if len(setup.gan.image_shape) == 1:
    raise errors.ConfigError(f'{workdir} is a 2D-lab run: its samples are points; use '
                             'generate_points (the command line does).')
  images, labels = zip(*export.generate_batches(setup, state, num, seed, label, batch_size))
  labels = np.concatenate(labels) if setup.gan.num_classes else None
  return np.concatenate(images), labels, int(state.step)


def _folder_output(out: str, fmt: str) -> bool:
  if fmt != 'auto':
    return fmt == 'png'
  return out.endswith(('/', os.sep)) or os.path.isdir(out)


def generate_points(workdir: str, num: int, seed: int = 0, batch_size: int = 256,
                    step: int | None = None):
  """Returns (points float32 [num, 2], checkpoint step) of a 2D-lab run's generator."""
  import jax  # pylint: disable=g-import-not-at-top  (slow: JAX)
  from gan_jax.training import setup as setup_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.toy2d import lab  # pylint: disable=g-import-not-at-top

  if num < 1:
    raise errors.ConfigError(f'--num must be at least 1, got {num}.')
  config, setup, state = setup_lib.restore_setup(workdir, step)
  sample = jax.jit(functools.partial(lab.generate_points, setup.gan, config.toy2d.latent),
                   static_argnums=2)
  key = jax.random.PRNGKey(seed)
  points = [np.asarray(jax.device_get(sample(state.sampling_variables(),
                                             jax.random.fold_in(key, start),
                                             min(batch_size, num - start))))
            for start in range(0, num, batch_size)]
  return np.concatenate(points).astype(np.float32), int(state.step)


def _is_2d_run(workdir: str) -> bool:
  from gan_jax.config import saved as saved_config  # pylint: disable=g-import-not-at-top
  return saved_config.load_from_workdir(workdir).trainer == 'toy2d'


def _write_points(result) -> None:
  points, step = result
  out = FLAGS.out if FLAGS.out.endswith('.npz') else FLAGS.out + '.npz'
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez_compressed(out, points=points)
  print(f'Wrote {len(points)} points from step {step} to {out}')


def write_folder(workdir: str, out_dir: str, num: int, seed: int = 0,
                 label: int | None = None, batch_size: int = 256,
                 step: int | None = None, per_class: bool = False) -> dict:
  """Writes the run's samples as PNG class folders plus manifest.json (generation.export); returns the manifest."""
  from gan_jax.training import resume, setup as setup_lib  # pylint: disable=g-import-not-at-top  (slow: JAX)
  config, setup, state = setup_lib.restore_setup(workdir, step)
  return export.write_folder(
      out_dir, setup, state, resume.load_data_info(workdir), num, seed, label, batch_size,
      per_class, provenance={'workdir': os.path.abspath(workdir), 'config': config.to_dict()})


def main(argv):
  cli.start(argv)
  if _is_2d_run(FLAGS.workdir):
    _write_points(generate_points(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.batch_size,
                                  FLAGS.step))
    return
  if _folder_output(FLAGS.out, FLAGS.format):
    manifest = write_folder(FLAGS.workdir, FLAGS.out, FLAGS.num, FLAGS.seed, FLAGS.label,
                            FLAGS.batch_size, FLAGS.step, FLAGS.per_class)
    print(f'Wrote {manifest["num_images"]} PNG images from step '
          f'{manifest["checkpoint_step"]} to {FLAGS.out} '
          f'({len(manifest["counts"])} folder(s)); manifest in '
          f'{os.path.join(FLAGS.out, export.MANIFEST_FILE)}')
    return
  if FLAGS.per_class:
    raise errors.ConfigError('--per_class writes an image folder: give an --out ending '
                             "in '/' (or --format=png).")
  images, labels, step = generate(FLAGS.workdir, FLAGS.num, FLAGS.seed,
                                  FLAGS.label, FLAGS.batch_size, FLAGS.step)
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
  cli.run(main)
