"""The embedded quickstart: what `python -m gan_jax.main --workdir=DIR` trains without --config.

The base config (gan_jax/config.py) with the recipe that scored best in a
search on this 2-core CPU (experiments/RESULTS.md, "The quickstart recipe",
which gives the command, the time and the scores): the MNIST report's small
DCGAN (`dcgan28`) at twice its width, on scikit-learn's 1,797 bundled 8x8
digits upscaled to 28x28, with G's learning rate ten times D's (2e-3 against
2e-4), for 2,500 steps. At the report's width and equal rates D wins the game
within a few hundred steps (D(x) about 0.93, D(G(z)) about 0.05) and the grid
shows blurred, broken strokes; the wider, faster G keeps up and draws every
class.

Experiment files start from `gan_jax.config.get_config()`, not from this.
"""

from __future__ import annotations

import os

import ml_collections

from gan_jax.config import base as config_base

QUICKSTART_CONFIG_PATH = os.path.abspath(__file__)


def get_config() -> ml_collections.ConfigDict:
  config = config_base.get_config()
  config.model.width_scale = 2.0
  config.optim.g.lr = 2e-3
  config.train.num_steps = 2500
  return config
