"""The 2D lab on the reference report's sine wave (../shared/reports/dcgan-cifar10-and-2d-visualisation-report.txt, section 3.1).

Target: u ~ Unif[-1,1]^2, (x, y) -> (x, sin(x) + y/4). G and D: three dense
layers with LeakyReLU (mlp2d); 2D uniform noise; G lr 1e-4, D lr 1e-3, Adam
b1 0.5 for both, batch 100, 60,000 iterations, as in the report. The
four-panel figure every 500 steps, assembled into animation.gif.

Run:
  python -m gan_jax.main --config=configs/toy2d_sine.py --workdir=runs/toy2d_sine
"""

from gan_jax.toy2d.defaults import lab_config


def get_config():
  return lab_config('sine')
