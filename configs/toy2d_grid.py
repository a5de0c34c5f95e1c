"""The 2D lab on the mode-collapse benchmark's 2D-grid (VEEGAN, PacGAN), with the reference report's GAN.

Target: 25 Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2 (PacGAN's 2D-grid).
Metrics, logged during training and in final_metrics.json: modes with at
least one high-quality sample (within 3 std of its nearest centre) and the %
of high-quality samples, over 2,500 samples, as in VEEGAN and PacGAN Table 1
(GAN: 17.3 / 25 modes, 94.8% high quality), and the sliced Wasserstein
distance to the target. Model and optimizers are the report's (mlp2d, G lr
1e-4, D lr 1e-3, Adam b1 0.5, batch 100), with 2D Gaussian noise as in the
benchmark, for 30,000 steps.

Run:
  python -m gan_jax.main --config=configs/toy2d_grid.py --workdir=runs/toy2d_grid
"""

from gan_jax.toy2d.defaults import lab_config


def get_config():
  config = lab_config('grid')
  config.toy2d.latent = 'normal'
  config.train.num_steps = 30_000
  return config
