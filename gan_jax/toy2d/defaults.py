"""The reference report's 2D-lab settings, which every preset of configs/toy2d.py starts from.

Report (section 3): G and D with three dense layers and LeakyReLU, 2D uniform
noise, G lr 1e-4, D lr 1e-3, Adam b1 0.5 for both, batch 100, 60,000
iterations, BCE loss.
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
