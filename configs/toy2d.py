"""The 2D lab: a GAN on 2D points, on the mode-collapse benchmark's ring and grid and on the reference report's sine, circle and wing.

Preset: `TARGET[,MODIFIER...]`, e.g. `--config=configs/toy2d.py:grid,report`;
no preset is `ring`. Every target starts from the reference report's 2D-lab
settings (gan_jax/toy2d/defaults.py; the DCGAN/2D-visualisation report,
section 3): the networks mlp2d (three dense layers, LeakyReLU), 2D uniform
noise, G lr 1e-4, D lr 1e-3, Adam b1 0.5, batch 100, 60,000 steps, a snapshot
every 500 steps.

Targets of the mode-collapse benchmark (VEEGAN, PacGAN), with the best rates
measured. Metrics, logged during training and in final_metrics.json: modes
with at least one high-quality sample (within 3 std of its nearest centre)
and the % of high-quality samples, over 2,500 samples, as in VEEGAN and
PacGAN Table 1, and the sliced Wasserstein distance to the target. Both use
2D Gaussian noise, as the benchmark does.
  ring    8 Gaussians of std 0.01 evenly spaced on the unit circle (PacGAN's
          2D-ring; their GAN: 6.3 / 8 modes, 98.2% high quality). Default:
          the report's networks at 64 units, G and D lr 1e-4 (PacGAN's), Adam
          b1 0.5, batch 1,000, 60,000 steps. Over 5 seeds: 8 of 8 modes in
          every seed, 90.1 +- 3.9% high-quality samples, sliced Wasserstein
          0.061 (experiments/RESULTS.md, "Defaults for the ring and the
          grid").
  grid    25 Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2 (PacGAN's 2D-grid;
          their GAN: 17.3 / 25 modes, 94.8% high quality). Default: the
          report's networks (mlp2d, 32 units, LeakyReLU) with G and D lr 1e-4
          (PacGAN's), Adam b1 0.5, batch 100, 30,000 steps. Over 5 seeds it
          covers 20.2 of 25 modes but puts only about 3% of its samples
          within 3 std of a centre (experiments/RESULTS.md): its points lie
          on lines through the grid. Wider networks and batches did not do
          better in 30,000 steps; PacGAN's 94.8% comes from a 4 x 400
          BatchNorm generator trained about 13 times longer.

Targets of the reference report, with its model and optimizers:
  sine    Section 3.1. u ~ Unif[-1,1]^2, (x, y) -> (x, sin(f x) + y/4). The
          report writes sin(x) (f = 1), but on x in [-1, 1] that is a nearly
          straight band that G learns in a few hundred steps; the report's
          figures and text ("the points gather in the white region between
          two wave peaks") show a wave with several peaks, so this target
          sets f = 2 pi (two periods). --config.toy2d.sine_frequency=1 gives
          the formula as written. The four-panel figure every 500 steps,
          assembled into animation.gif.
  circle  Section 3.2. u ~ Unif[-1,1]^2 mapped to radius x/2 and angle y*pi,
          a disc of radius 0.5 that is densest at its centre (the report's
          map).
  wing    Section 3.3. x ~ Unif[-1,1] mapped to (x/2 cos(3 pi x), x/2 sin(3 pi
          x)), two spirals joined at the origin. The report's section 4.2
          setting (G lr 5e-4, D lr 0.05, b1 0.9 for both) makes G collapse;
          compare them with the sweep below.

Modifiers:
  report  ring and grid only: the reference report's GAN in place of the
          tuned settings (32 units, D lr 1e-3, batch 100, 30,000 steps, with
          the benchmark's 2D Gaussian noise). On the ring it collapses onto
          2-4 of the 8 modes; on the grid it covers 11.6 modes.
  gan     ring and grid only: PacGAN's GAN (Lin et al., NeurIPS 2018, Table 1),
          with the paper's networks (model pacgan2d: G 4 x 400 BatchNorm+ReLU,
          D 3 x 200 LinearMaxout with 5 pieces), Adam lr 1e-4 b1 0.8, batch
          100, 400,000 steps (gan_jax/toy2d/defaults.py, pacgan_config).
  pac2, pac3, pac4
          ring and grid only: the same, with D judging packs of 2, 3 or 4
          points (config.model.pack); the batch is 100 packs, 100 m points.
          experiments/mode_collapse.py runs these rows beside the paper's.

Run:
  python -m gan_jax.main --config=configs/toy2d.py:ring --workdir=runs/toy2d_ring
  python -m gan_jax.main --config=configs/toy2d.py:ring,report --workdir=runs/toy2d_ring_report
  python -m gan_jax.main --config=configs/toy2d.py:grid --workdir=runs/toy2d_grid
  python -m gan_jax.main --config=configs/toy2d.py:grid,report --workdir=runs/toy2d_grid_report
  python -m gan_jax.main --config=configs/toy2d.py:grid,gan --workdir=runs/toy2d_grid_gan
  python -m gan_jax.main --config=configs/toy2d.py:grid,pac4 --workdir=runs/toy2d_grid_pac4
  python -m gan_jax.main --config=configs/toy2d.py:sine --workdir=runs/toy2d_sine
  python -m gan_jax.main --config=configs/toy2d.py:circle --workdir=runs/toy2d_circle
  python -m gan_jax.main --config=configs/toy2d.py:wing --workdir=runs/toy2d_wing
The report's Adam-b1 and learning-rate comparison on the sine (section 4.1):
  python -m experiments.sweep --config=configs/toy2d.py:sine --grid optim.g.b1=0.5,0.7 \\
      --grid optim.d.lr=1e-3,5e-2 --seeds 3 --workdir=runs/sweep_sine
The report's section 4.2 setting against its default on the wing:
  python -m experiments.sweep --config=configs/toy2d.py:wing \\
      --grid optim.g.lr=1e-4,5e-4 --grid optim.d.lr=1e-3,5e-2 \\
      --grid optim.g.b1+optim.d.b1=0.5,0.9 --seeds 3 --workdir=runs/sweep_wing
"""

import math

from gan_jax import errors
from gan_jax.config import files as config_files
from gan_jax.toy2d.defaults import lab_config, mode_benchmark_config, pacgan_config

TARGETS = ('ring', 'grid', 'sine', 'circle', 'wing')
# 'report' first: error messages list the modifiers in this order.
MODIFIERS = ('report', 'gan', 'pac2', 'pac3', 'pac4')
PACKING = {'pac2': 2, 'pac3': 3, 'pac4': 4}
# The mode-benchmark targets: the keys (dotted) that covered the modes, over
# the report's GAN (mode_benchmark_config).
TUNED = {
    'ring': {'optim.d.lr': 1e-4, 'model.hidden': 64, 'train.batch_size': 1000,
             'train.num_steps': 60_000, 'train.sample_every': 2_000,
             'train.log_every': 2_000},
    'grid': {'optim.d.lr': 1e-4},
}


def _mode_benchmark(target: str, modifiers: tuple):
  """ring or grid: the tuned default, or the setting a modifier names."""
  if len(modifiers) > 1:
    raise errors.ConfigError(
        f'Preset modifiers {", ".join(modifiers)} each pick a whole setting; give one '
        f'(--config=configs/toy2d.py:{target},{modifiers[0]}).')
  if not modifiers:
    config = mode_benchmark_config(target)
    config.update_from_flattened_dict(TUNED[target])
    return config
  modifier = modifiers[0]
  if modifier == 'report':
    return mode_benchmark_config(target)
  config = pacgan_config(target)
  if modifier in PACKING:
    if 'pack' not in config.model:
      raise errors.ConfigError(
          f'The preset modifier "{modifier}" packs {PACKING[modifier]} points into each of '
          "D's inputs (config.model.pack), which this version of gan_jax does not have.")
    config.model.pack = PACKING[modifier]
    # PacGAN's batch is 100 packs of m points each: gan_jax counts points.
    config.train.batch_size = 100 * PACKING[modifier]
  return config


def get_config(preset: str = ''):
  target, modifiers = config_files.split_preset(preset or 'ring', 'configs/toy2d.py', TARGETS,
                                                MODIFIERS)
  if target in TUNED:
    return _mode_benchmark(target, modifiers)
  if modifiers:
    raise errors.ConfigError(
        f'The preset modifiers ({", ".join(MODIFIERS)}) apply to {" and ".join(TUNED)} only; '
        f'{target} has the report\'s settings (--config=configs/toy2d.py:{target}).')
  config = lab_config(target)
  if target == 'sine':
    config.toy2d.sine_frequency = 2 * math.pi
  return config
