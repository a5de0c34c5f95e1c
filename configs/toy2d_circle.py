"""The 2D lab on the reference report's circle (../shared/reports/dcgan-cifar10-and-2d-visualisation-report.txt, section 3.2).

Target: u ~ Unif[-1,1]^2 mapped to radius x/2 and angle y*pi, a disc of
radius 0.5 that is densest at its centre (the report's map). The report's
model and optimizers (mlp2d, 2D uniform noise, G lr 1e-4, D lr 1e-3, Adam b1
0.5, batch 100, 60,000 steps), a snapshot every 500 steps.

Run:
  python -m gan_jax.main --config=configs/toy2d_circle.py --workdir=runs/toy2d_circle
"""

from gan_jax.toy2d.defaults import lab_config


def get_config():
  return lab_config('circle')
