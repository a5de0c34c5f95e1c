"""BigGAN on CIFAR-10, as the authors' code configures it: class-conditional, hinge loss, 4 D steps per G step.

Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis", ICLR 2019; code github.com/ajbrock/BigGAN-PyTorch,
whose scripts/launch_cifar_ema.sh this follows:
  --batch_size 50 --num_D_steps 4 --G_lr 2e-4 --D_lr 2e-4 --G_ortho 0.0
  --G_attn 0 --D_attn 0 --G_init N02 --D_init N02 --ema --use_ema
  --ema_start 1000 --num_epochs 500 --dataset C10
with the rest at utils.py's defaults: G_ch = D_ch = 64, dim_z 128, no shared
embedding, no hierarchical z, Adam b1 0 and b2 0.999 (eps 1e-8) for both,
EMA decay 0.9999, spectral norm (one power iteration, eps 1e-8) in G and D,
BatchNorm eps 1e-5, D_wide.

Model `biggan32` (gan_jax/models/biggan.py): G is a linear layer from z to
4x4x256, three residual up-blocks at width 256 with class-conditional
BatchNorm (per-class gain and bias tables), BatchNorm, ReLU, conv3x3, tanh;
D is four residual blocks at width 256 (the first two halve the
resolution), ReLU, global sum pooling, a linear logit plus the projection
onto a class embedding. Loss `hinge`. Every step: 4 D updates, each on a
fresh batch of 50 real images, then 1 G update. Length: 500 epochs of
50,000 images at 200 images a step = 125,000 steps. The EMA of G samples
with standing BatchNorm statistics (`sample.standing_stats_batches`;
BigGAN's code samples its EMA G with batch statistics at CIFAR-10).

Parameters (G / D): 4,304,387 / 4,207,361, counted layer by layer from
BigGAN.py and layers.py at this setting (PyTorch's `.parameters()`: SN's u
and BatchNorm's running statistics are buffers, not parameters):
  G  linear 128 x 4096 + 4096 = 528,384; per block (x3) ccbn gain and bias
     tables 4 x 10 x 256 = 10,240, conv3x3 2 x (256 x 256 x 9 + 256) =
     1,180,160, shortcut conv1x1 256 x 256 + 256 = 65,792; output BatchNorm
     gain and bias 512; output conv 256 x 3 x 9 + 3 = 6,915.
  D  block 1 (3 -> 256, down) 7,168 + 590,080 + 1,024; block 2 (down)
     590,080 x 2 + 65,792; blocks 3-4 (no shortcut conv) 590,080 x 2 each;
     linear 256 + 1; class embedding 10 x 256.
Not checked by running the authors' code (no PyTorch run of it here); the
arithmetic above and tests/test_biggan.py's count of gan_jax's own
parameters agree.

Presets after a colon:
  cpu  a run that fits half an hour on a 2-core CPU: width 16 (`model.width_scale`
       1/4, G_ch = D_ch = 16: 64 channels in every block), the `folder` source
       (--config.data.path=CIFAR10_DIR), `train.max_minutes=29`, checkpoints
       (the half-hour benchmark's curve points) every 250 steps, and an EMA of
       decay 0.999 from step 500 (0.9999 from step 1,000 averages over more
       steps than a half-hour run has). Everything else as above.

Published: no FID is quoted here from the authors for this script (their
README gives none); StudioGAN's CIFAR-10 table lists FID 4.16 for its own
BigGAN implementation and protocol. GPU-hours of the authors' CIFAR-10
run: not stated in their repository.
gan_jax's GPU-hours: not measured yet (benchmarks/accelerator_suite.py).
Measured by this project: no FID yet.

Departures from the code: BigGAN's D step draws its fake batch with G in
train mode, which also moves G's BatchNorm running statistics; gan_jax
(`gan_jax.core.steps`) does as its other models do. Flax's BatchNorm keeps
the biased running variance (see gan_jax/models/biggan.py).

Run:
  python -m gan_jax.main --config=configs/biggan_cifar10.py --workdir=runs/biggan_cifar10
  python -m gan_jax.main --config=configs/biggan_cifar10.py:cpu --workdir=runs/biggan_cpu \\
      --config.data.path=CIFAR10_DIR

Data: as configs/gan_cifar10.py (TFDS `cifar10`, or the `folder` source on a
folder with one subfolder of images per class: --config.data.source=folder
--config.data.path=CIFAR10_DIR).
"""

from gan_jax.config import files as config_files
from gan_jax.config.base import get_config as base_config

PRESETS = ('cpu',)
STEPS = 125_000     # 500 epochs x 50,000 images / (50 x 4) images a step


def _official(config) -> None:
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.model.name = 'biggan32'
  config.model.latent_dim = 128
  config.model.width_scale = 1.0          # G_ch = D_ch = 64
  config.model.spectral_norm = 'gd'
  config.model.conditional = True
  config.model.g_conditioning = 'cbn'
  config.model.d_conditioning = 'projection'
  config.model.bn_momentum = 0.9          # PyTorch's momentum 0.1
  config.model.biggan.attention = 0
  config.model.biggan.shared_dim = 0
  config.model.biggan.hier = False
  config.loss.name = 'hinge'
  for opt in (config.optim.g, config.optim.d):
    opt.name = 'adam'
    opt.lr, opt.b1, opt.b2, opt.eps = 2e-4, 0.0, 0.999, 1e-8
    opt.ortho = 0.0                       # G_ortho = D_ortho = 0 at CIFAR-10
  tc = config.train
  tc.batch_size, tc.n_disc, tc.n_gen = 50, 4, 1
  tc.num_steps = STEPS
  tc.ema_decay, tc.ema_start = 0.9999, 1_000
  tc.log_every, tc.sample_every, tc.checkpoint_every = 100, 5_000, 2_000


def _cpu(config) -> None:
  config.data.source = 'folder'
  config.data.path = ''       # required: --config.data.path=FOLDER (the extracted images)
  config.model.width_scale = 0.25
  tc = config.train
  tc.max_minutes = 29.0
  tc.ema_decay, tc.ema_start = 0.999, 500
  tc.log_every, tc.sample_every, tc.checkpoint_every = 50, 250, 250
  config.eval.metrics = ('cls_fd', 'cls_cov')


def get_config(preset: str = ''):
  config = base_config()
  _official(config)
  parts = config_files.preset_parts(preset, 'configs/biggan_cifar10.py', PRESETS)
  if 'cpu' in parts:
    _cpu(config)
  return config
