"""The 2D lab on the reference report's sine wave (../shared/reports/dcgan-cifar10-and-2d-visualisation-report.txt, section 3.1).

Target: u ~ Unif[-1,1]^2, (x, y) -> (x, sin(f x) + y/4). The report writes
sin(x) (f = 1), but on x in [-1, 1] that is a nearly straight band that G
learns in a few hundred steps; the report's figures and text ("the points
gather in the white region between two wave peaks") show a wave with several
peaks, so this config sets f = 2 pi (two periods). --config.toy2d.sine_frequency=1
gives the formula as written. The report's model and optimizers: mlp2d (three
dense layers, LeakyReLU), 2D uniform noise, G lr 1e-4, D lr 1e-3, Adam b1 0.5,
batch 100, 60,000 steps; the four-panel figure every 500 steps, assembled
into animation.gif.

Run:
  python -m gan_jax.main --config=configs/toy2d_sine.py --workdir=runs/toy2d_sine
The report's Adam-b1 and learning-rate comparison (section 4.1):
  python -m experiments.sweep --config=configs/toy2d_sine.py --grid optim.g.b1=0.5,0.7 \
      --grid optim.d.lr=1e-3,5e-2 --seeds 3 --workdir=runs/sweep_sine
"""

import math

from gan_jax.toy2d.defaults import lab_config


def get_config():
  config = lab_config('sine')
  config.toy2d.sine_frequency = 2 * math.pi
  return config
