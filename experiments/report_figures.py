"""Reproduces a reference report's figures from its config: sample grids at chosen epochs, loss curves, per-class grid.

  python -m experiments.report_figures --config=configs/cgan_cifar10_resnet18d.py \\
      --workdir=runs/cgan_r18d [--epochs=1,35,50 | --steps=100,200,300] [--config.KEY=VALUE ...]

Trains in stages, resuming the same workdir (a resumed run continues exactly,
see gan_jax/train.py), up to each chosen epoch; after each stage it writes
the fixed-noise sample grid as `figures/samples_epoch_E.png` (or
`samples_step_S.png` with --steps). At the end: `figures/loss_curves.png`
with the report's curve names, `figures/real.png` (training images, the
reports' "original" panel) and, for a conditional model,
`figures/class_grid.png` with one labelled row per class. `figures/README.txt`
says which report figure each file reproduces. Training is the normal one,
so the workdir also serves `gan_jax.generate`.

Configs with a learning-rate schedule over `train.num_steps` cannot be
staged (each stage would see a different schedule) and are refused.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from gan_jax import cli, errors

FLAGS = flags.FLAGS

@dataclasses.dataclass(frozen=True)
class ReportFigures:
  report: str                      # file in ../shared/reports
  epochs: tuple                    # sample grids shown in the report
  curves: tuple                    # (metric key, the report's curve name)
  shown: str                       # which figures of the report these are


_A8_CURVES = (('d_loss_real', 'disc_real_loss'), ('d_loss_fake', 'disc_fake_loss'),
              ('g_loss', 'generate_loss'))
_GD_CURVES = (('d_loss', 'D'), ('g_loss', 'G'))

_DOGS = ReportFigures('dcgan-cifar10-and-2d-visualisation-report.txt', (128,), _GD_CURVES,
                      'figure 4 (generated dogs)')

# Keyed by config file name, or NAME:PRESET where presets are different
# figures (see figures_of). The reports' figures are missing from their
# text; their captions and surrounding text say what they showed.
FIGURES = {
    'dcgan_mnist': ReportFigures(
        'dcgan-mnist-course-report.txt', (1, 20, 100),
        (('d_loss', 'loss_D'), ('g_loss', 'loss_G')),
        'sample grids after 1, 20 and 100 epochs, the original images, the G/D loss curves'),
    'gan_cifar10_resnet18d': ReportFigures(
        'gan-cgan-cifar10-a8-report.txt', (1, 15, 35, 50), _A8_CURVES,
        'GAN: loss plot and intermediate results at "Epoch 0" (= after the first epoch), 15, 35, 50'),
    'cgan_cifar10_resnet18d': ReportFigures(
        'gan-cgan-cifar10-a8-report.txt', (1, 35, 50),
        _A8_CURVES + (('g_similarity_loss', 'mse_simuloss'),),
        'cGAN: loss plot with mse_simuloss, results at "Epoch 0", 35, 50, one class per image'),
    'dcgan_cifar10_class': _DOGS,             # no preset: dogs
    'dcgan_cifar10_class:dog': _DOGS,
    'dcgan_cifar10_class:airplane': ReportFigures(
        'dcgan-cifar10-and-2d-visualisation-report.txt', (128,), _GD_CURVES,
        'figure 5 (generated airplanes)'),
    'dcgan64_folder': ReportFigures(
        'dcgan64-cats-anime-report.txt', (209,), _GD_CURVES,
        'section 4: generated cats (or anime faces) after 209 epochs'),
    'dcgan_celeba': ReportFigures(
        'gan-dcgan-summer-school-notes.txt', (5,), (('g_loss', 'G'), ('d_loss', 'D')),
        'CelebA faces (generated beside real) and "G_D_Loss" (G blue, D orange)'),
}
_DEFAULT = ReportFigures('', (), _GD_CURVES, 'no report figure: final samples and losses')


def figures_of(name: str) -> ReportFigures:
  """The figures of config NAME or NAME:PRESET.

  A preset without an entry of its own has its file's figures, unless other
  presets of that file have entries (then they are other figures: none).
  """
  stem = name.partition(':')[0]
  if name in FIGURES:
    return FIGURES[name]
  if any(key.startswith(stem + ':') for key in FIGURES):
    return _DEFAULT
  return FIGURES.get(stem, _DEFAULT)


def _examples(config):
  """(source, indices of the examples training uses), listed without decoding images."""
  from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  source = data_lib.SOURCES.get(config.data.source)(config.data)
  keep = np.arange(len(source))
  if config.data.classes:
    keep = data_lib.source.select_classes(
        source.labels, source.info.class_names, config.data.classes)[0]
  return source, keep


def steps_per_epoch(config) -> float:
  _, keep = _examples(config)
  return len(keep) / (config.train.batch_size * config.train.n_disc)


def plot_report_curves(records: Sequence[dict], curves, per_epoch: float, path: str,
                       title: str) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4))
  for key, name in curves:
    points = [(r['step'] / per_epoch, r[key]) for r in records if key in r]
    if points:
      x, y = zip(*points)
      ax.plot(x, y, label=name, linewidth=1.2)
  ax.set_xlabel('epoch')
  ax.set_ylabel('loss')
  ax.set_title(title)
  ax.grid(alpha=0.3)
  if ax.has_data():
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def plot_class_grid(images: np.ndarray, class_names: Sequence[str], per_class: int,
                    path: str) -> str:
  """One row per class, labelled with the class name."""
  from gan_jax.viz import grids  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = len(class_names)
  fig, axes = plt.subplots(rows, 1, figsize=(per_class * 0.8 + 1.5, rows * 0.8 + 0.2),
                           squeeze=False)
  for row, (ax, name) in enumerate(zip(axes[:, 0], class_names)):
    strip = grids.tile(images[row * per_class:(row + 1) * per_class], per_class)
    ax.imshow(strip[..., 0] if strip.shape[-1] == 1 else strip,
              cmap='gray' if strip.shape[-1] == 1 else None)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(name, rotation=0, ha='right', va='center')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def reproduce(config, workdir: str, name: str, epochs: Sequence[float] | None = None,
              steps: Sequence[int] | None = None) -> list[str]:
  """Trains `config` in stages and writes the report's figures; returns their paths."""
  import jax  # pylint: disable=g-import-not-at-top  (slow: JAX)
  from gan_jax.training import reporting  # pylint: disable=g-import-not-at-top
  from gan_jax.generation import sampling
  from gan_jax.training import image as image_trainer
  from gan_jax.training import resume
  from gan_jax.training import setup as setup_lib
  from gan_jax.viz import grids  # pylint: disable=g-import-not-at-top

  if 'linear' in (config.optim.g.lr_schedule, config.optim.d.lr_schedule):
    raise errors.ConfigError(
        'experiments.report_figures trains in stages, which would change a '
        "learning-rate schedule over train.num_steps; set lr_schedule='constant'.")
  figures = figures_of(name)
  per_epoch = steps_per_epoch(config)
  if steps:
    stages = [(int(s), f'step_{int(s)}') for s in steps]
  else:
    chosen = epochs or figures.epochs or (config.train.num_steps / per_epoch,)
    stages = [(max(1, round(float(e) * per_epoch)), f'epoch_{float(e):g}') for e in chosen]
  figure_dir = os.path.join(workdir, 'figures')
  os.makedirs(figure_dir, exist_ok=True)
  written = []
  for num_steps, tag in sorted(stages):
    config.train.num_steps = num_steps
    image_trainer.train_and_evaluate(config, workdir)
    grid = os.path.join(workdir, 'samples', f'step_{num_steps:07d}.png')
    written.append(shutil.copyfile(grid, os.path.join(figure_dir, f'samples_{tag}.png')))

  info = resume.load_data_info(workdir)
  written.append(plot_report_curves(
      reporting.read_metrics(workdir), figures.curves, per_epoch,
      os.path.join(figure_dir, 'loss_curves.png'), f'{name} on {info.description}'))
  source, keep = _examples(config)
  shown = keep[np.linspace(0, len(keep) - 1, min(64, len(keep))).astype(int)]
  real = np.stack([source[int(i)]['image'] for i in shown])
  written.append(grids.save_grid(real, os.path.join(figure_dir, 'real.png'),
                                 int(np.ceil(np.sqrt(len(real))))))
  _, setup, state = setup_lib.restore_setup(workdir)
  if setup.gan.num_classes:
    per_class = config.sample.per_class
    z, labels, _ = sampling.grid_latents(config.seed, setup.gan, 1, per_class)
    images = jax.device_get(sampling.make_sampler(setup.gan)(
        state.sampling_variables(), z, labels))
    written.append(plot_class_grid(np.asarray(images), info.class_names, per_class,
                                   os.path.join(figure_dir, 'class_grid.png')))
  with open(os.path.join(figure_dir, 'README.txt'), 'w') as f:
    f.write(f'Figures of {name} (config) after {int(state.step)} steps '
            f'({int(state.step) / per_epoch:.2f} epochs).\n'
            f'Reproduces: {figures.report or "-"}: {figures.shown}.\n'
            f'Files: {", ".join(os.path.basename(p) for p in written)}.\n')
  return written


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  filename, _, preset = config_flags.get_config_filename(FLAGS['config']).partition(':')
  name = os.path.splitext(os.path.basename(filename))[0] + (f':{preset}' if preset else '')
  try:
    paths = reproduce(FLAGS.config, FLAGS.workdir, name, FLAGS.epochs, FLAGS.steps)
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')
  print('Wrote ' + ', '.join(paths))


def _define_flags():
  # Defined only when run as a script: importing this module (tests) must not
  # clash with other modules' flags such as gan_jax.generate's --workdir.
  config_flags.DEFINE_config_file('config', None, 'A config file in configs/.')
  flags.DEFINE_string('workdir', None, 'Training workdir; figures go to WORKDIR/figures.')
  flags.DEFINE_list('epochs', None, 'Epochs after which to draw a sample grid '
                    "(default: the report's, see FIGURES).")
  flags.DEFINE_list('steps', None, 'Steps instead of epochs (for short runs).')
  flags.mark_flags_as_required(['config', 'workdir'])


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
