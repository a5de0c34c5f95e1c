"""The 2D lab on the reference report's wing (../shared/reports/dcgan-cifar10-and-2d-visualisation-report.txt, section 3.3).

Target: x ~ Unif[-1,1] mapped to (x/2 cos(3 pi x), x/2 sin(3 pi x)), two
spirals joined at the origin. The report's model and optimizers (mlp2d, 2D
uniform noise, G lr 1e-4, D lr 1e-3, Adam b1 0.5, batch 100, 60,000 steps), a
snapshot every 500 steps. The report's section 4.2 setting (G lr 5e-4, D lr
0.05, b1 0.9 for both) makes G collapse; compare them with
  python -m experiments.sweep --config=configs/toy2d_wing.py \
      --grid optim.g.lr=1e-4,5e-4 --grid optim.d.lr=1e-3,5e-2 \
      --grid optim.g.b1+optim.d.b1=0.5,0.9 --seeds 3 --workdir=runs/sweep_wing

Run:
  python -m gan_jax.main --config=configs/toy2d_wing.py --workdir=runs/toy2d_wing
"""

from gan_jax.toy2d.defaults import lab_config


def get_config():
  return lab_config('wing')
