"""CIFAR-10 you can see in half an hour on a laptop: the unconditional GAN recipe for a 2-core CPU.

DCGAN-32 (`dcgan32`: dense to 4x4, three stride-2 transposed convs, 3x3 conv,
tanh; a mirrored conv D with BatchNorm and LeakyReLU) at half width, so that
a 2-core CPU makes about 4 steps a second; the non-saturating BCE loss,
Adam(2e-4, b1=0.5, b2=0.999) for both networks, batch 64, one D update per
step, and an EMA of G (decay 0.999 from step 1,000) for grids, `generate`
and evaluation. `train.max_minutes=29` ends the run at 29 minutes (with a
checkpoint and a grid) if 7,000 steps take longer on your machine;
rerunning the command continues toward 7,000. The candidates it was chosen
from (half against full width, hinge with spectral norm, EMA) are in
experiments/RESULTS.md, "CIFAR-10 in half an hour on a 2-core CPU".

Run (CIFAR10_DIR: a folder with one subfolder of images per class, e.g. the
50,000 CIFAR-10 training images as JPEG files):
  python -m gan_jax.main --config=configs/gan_cifar10_cpu.py --workdir=runs/gan_cifar10_cpu \\
      --config.data.path=CIFAR10_DIR
From the official cifar-10-binary.tar.gz (lossless PNGs, train and test):
  python -m gan_jax.data.prepare cifar10 --src=cifar-10-binary.tar.gz --out=CIFAR10_PNG
and --config.data.path=CIFAR10_PNG/train.

Measured on a 2-core CPU, nothing else running (load 1.1 ->
1.8), 2026-12-02: stopped by the budget at step 6,865 after 29.1 minutes
(3.9 steps/s); FID 76.9 (5,000 samples against 20,000 training images, real
Inception weights), against 97.9 for eager PyTorch's full-width DCGAN-32
trained for the same time; all 10 classes under the CIFAR-10 domain
classifier, the rarest at 4.4%. Command, curves and grids:
experiments/RESULTS.md (benchmarks/quality_per_time.py).
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'folder'
  config.data.name = 'cifar10'
  config.data.path = ''   # required: --config.data.path=FOLDER (the extracted JPEGs)
  config.data.image_size = 32
  config.data.channels = 3
  config.model.name = 'dcgan32'
  config.model.width_scale = 0.5
  config.model.spectral_norm = 'none'
  config.loss.name = 'nonsaturating'
  for opt in (config.optim.g, config.optim.d):
    opt.name = 'adam'
    opt.lr, opt.b1, opt.b2 = 2e-4, 0.5, 0.999
  config.train.batch_size = 64
  config.train.n_disc = 1
  config.train.num_steps = 7_000
  config.train.max_minutes = 29.0
  config.train.ema_decay = 0.999
  config.train.ema_start = 1_000
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 1_000
  config.eval.metrics = ('cls_fd', 'cls_cov')
  return config
