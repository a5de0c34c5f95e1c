"""The reference report's 2D-lab settings, which every configs/toy2d_*.py starts from.

Report (section 3): G and D with three dense layers and LeakyReLU, 2D uniform
noise, G lr 1e-4, D lr 1e-3, Adam b1 0.5 for both, batch 100, 60,000
iterations, BCE loss.
"""

from __future__ import annotations

import ml_collections

from gan_jax import errors
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


def mode_benchmark_config(distribution: str, preset: str, tuned: dict) -> ml_collections.ConfigDict:
  """PacGAN's 2D-ring or 2D-grid: `tuned` overrides by default, the report's GAN with preset 'report'.

  Both start from the report's settings with 2D Gaussian noise, as in the
  benchmark, for 30,000 steps; `tuned` holds the keys (dotted) that covered
  the modes in experiments/RESULTS.md.
  """
  config = lab_config(distribution)
  config.toy2d.latent = 'normal'
  config.train.num_steps = 30_000
  if preset == 'report':
    return config
  if preset:
    raise errors.ConfigError(
        f'Unknown preset {preset!r} for configs/toy2d_{distribution}.py; the only preset is '
        f'"report" (--config=configs/toy2d_{distribution}.py:report).')
  config.update_from_flattened_dict(tuned)
  return config
