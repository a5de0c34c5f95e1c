"""The 2D lab on the mode-collapse benchmark's 2D-ring (VEEGAN, PacGAN), with the reference report's GAN.

PLACEHOLDER

Run:
  python -m gan_jax.main --config=configs/toy2d_ring.py --workdir=runs/toy2d_ring
"""

from gan_jax.toy2d.defaults import lab_config


def get_config():
  config = lab_config('ring')
  config.toy2d.latent = 'normal'
  return config
