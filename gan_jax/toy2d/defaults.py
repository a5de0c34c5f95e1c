"""The reference report's 2D-lab settings, which every preset of configs/toy2d.py starts from, and PacGAN's.

Report (section 3): G and D with three dense layers and LeakyReLU, 2D uniform
noise, G lr 1e-4, D lr 1e-3, Adam b1 0.5 for both, batch 100, 60,000
iterations, BCE loss.

PacGAN (Lin et al., NeurIPS 2018, section 5.1 and Table 1; the authors' code,
fjxmlzn/PacGAN synthetic_data_experiments/2D{Ring,Grid}_GAN&PacGAN/config.py):
G 4 x 400 with BatchNorm and ReLU, D 3 x 200 LinearMaxout with 5 pieces
(model 'pacgan2d'), 2D N(0, I) noise, Adam lr 1e-4, b1 0.8 (b2 0.999) for
both, batch 100, BCE loss, 400 epochs of their 100,000-point training set =
400,000 iterations.
"""

from __future__ import annotations

import ml_collections

from gan_jax.config.base import get_config as base_config


def lab_config(distribution: str) -> ml_collections.ConfigDict:
  """The base config switched to the 2D lab on `distribution`, with the report's hyperparameters."""
  config = base_config()
  config.trainer = 'toy2d'
  config.data.source = 'toy2d'
  config.data.name = distribution
  config.model.name = 'mlp2d'
  config.model.latent_dim = 2
  config.toy2d.latent = 'uniform'
  config.loss.name = 'nonsaturating'
  config.optim.g.lr = 1e-4
  config.optim.d.lr = 1e-3
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.train.batch_size = 100
  config.train.num_steps = 60_000
  config.train.log_every = 500
  config.train.sample_every = 500
  config.train.checkpoint_every = 20_000
  return config


def mode_benchmark_config(distribution: str) -> ml_collections.ConfigDict:
  """The report's GAN on PacGAN's 2D-ring or 2D-grid, with 2D Gaussian noise as in the benchmark, for 30,000 steps.

  configs/toy2d.py starts its `ring` and `grid` presets here: as they are
  with the `report` modifier, else with the settings that covered the modes
  (experiments/RESULTS.md).
  """
  config = lab_config(distribution)
  config.toy2d.latent = 'normal'
  config.train.num_steps = 30_000
  return config


# PacGAN's training length: 400 epochs of 100,000 points at batch 100.
PACGAN_STEPS = 400 * 100_000 // 100


def pacgan_config(distribution: str) -> ml_collections.ConfigDict:
  """PacGAN's GAN (Table 1's "GAN" row) on the 2D-ring or 2D-grid: its networks, optimizer, batch, length.

  Differences that remain: the authors update G and D simultaneously from one
  batch (ALI's algorithm), gan_jax alternates D then G; they draw a fixed
  training set of 100,000 points and reshuffle it every epoch, the lab draws
  fresh points every step (an unbounded training set).
  """
  config = mode_benchmark_config(distribution)
  config.model.name = 'pacgan2d'
  config.model.bn_momentum = 0.95   # their population statistics: 0.95 old + 0.05 batch
  config.optim.g.lr = config.optim.d.lr = 1e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.8
  config.train.batch_size = 100
  config.train.num_steps = PACGAN_STEPS
  config.train.log_every = 1_000          # an epoch of theirs
  config.train.sample_every = 10_000
  config.train.checkpoint_every = 20_000
  return config
