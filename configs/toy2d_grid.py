"""The 2D lab on the mode-collapse benchmark's 2D-grid (VEEGAN, PacGAN), with the reference report's GAN.

PLACEHOLDER

Run:
  python -m gan_jax.main --config=configs/toy2d_grid.py --workdir=runs/toy2d_grid
"""

from gan_jax.toy2d.defaults import lab_config


def get_config():
  config = lab_config('grid')
  config.toy2d.latent = 'normal'
  return config
