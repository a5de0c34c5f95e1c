"""R3GAN on CIFAR-10, as the authors' code configures it: the relativistic loss, R1 + R2 and a plain modern ResNet.

Huang, Gokaslan, Kuleshov and Tompkin, "The GAN is dead; long live the GAN!
A Modern GAN Baseline", NeurIPS 2024; code github.com/brownvc/R3GAN, whose
`train.py --preset=CIFAR10 --batch=512 --mirror=1 --aug=1 [--cond=1]` this
follows (README; `--cond=1` is `:conditional`).

Model `r3gan32` (gan_jax/models/r3gan.py): G and D of 4 stages (4x4 to 32x32)
of 2 residual blocks each, width 768, grouped 3x3 convolutions of cardinality
96 inside blocks widened 2x, LeakyReLU(0.2) with a bias, no normalisation,
bilinear [1, 2, 1] resampling, 64-dimensional noise. Loss `rpgan`:
softplus(l(G(z)) - l(x)) for D, softplus(l(x) - l(G(z))) for G. R1 and R2
(r1, r2), both at gamma with the gradient taken before the augmentation.
Adam with b1 = 0 and eps 1e-8 for both networks, batch 512, one D and one
G update per step. Every schedule is the authors' cosine over 20M images
(their decay_nimg 2e7), then flat (gan_jax.core.schedules):
  learning rate  2e-4 -> 5e-5      (optim.{g,d}.schedule.lr)
  Adam b2        0.9 -> 0.99       (optim.{g,d}.schedule.b2)
  gamma          0.05 -> 0.005     (reg.{r1,r2}.schedule.weight)
  EMA half-life  0 -> 5M images    (train.schedule.ema_half_life; G_ema decays by
                                    0.5 ** (512 / half-life) per step)
  augmentation p 0 -> 0.55         (augment.ada.schedule.p, adapt=False)
Augmentation: ADA's blit, geom, color and cutout ops, the colour ops at p x
0.5 (their AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1,
aniso=1, xfrac=1, brightness=0.5, contrast=0.5, lumaflip=0.5, hue=0.5,
saturation=0.5, cutout=1)). Data: the training set doubled with mirrored
copies (`data.mirror`, their --mirror=1). Length: 488,282 steps = 250M
images, the CIFAR-10 length of the paper's Table 9 (their train.py runs
until stopped; brownvc/R3GAN issue #18).

Parameters (G / D): 20,732,160 / 20,683,776 unconditional, 20,781,952 /
21,280,512 with `:conditional`. The authors' networks at this setting,
counted layer by layer from their R3GAN/Networks.py with train.py's CIFAR10
preset arguments (read from public copies of brownvc/R3GAN): per residual
block 768 x 1536 + 1536 x 16 x 9 + 1536 x 768 weights and 2 x 1536 biases
(2,583,552; 8 blocks in G and in D); G's basis 768 x 16 and linear
64 x 768 (128 x 768 conditional, plus the 10 x 64 class embedding), its
1x1 conv to RGB 768 x 3; D's 1x1 conv from RGB 3 x 768, its depthwise 4x4
basis 768 x 16 and linear 768 x 1 (768 x 768 conditional, plus the 10 x 768
class embedding). Not obtained by running the authors' code.
tests/test_r3gan.py checks the counts.

Presets after a colon, composable with a comma:
  conditional  class-conditional G (class embedding concatenated to z,
               `g_conditioning='embed'`) and D (projection onto a class
               embedding, `d_conditioning='projection'`): the published run.
  cpu          a run for half an hour on a 2-core CPU: cardinality 4 and width
               32 (model.width_scale 1/24), batch 64, at most 1,000 steps
               within `train.max_minutes=29`, checkpoints (the half-hour
               benchmark's curve points) every 100 steps, the schedules
               shortened to those 64,000 images (lengths and the EMA half-life
               scaled by 64,000 / 20M), the `folder` source
               (--config.data.path=CIFAR10_DIR). R1 and R2 take a double
               backward pass of D every update, so a step costs far more than
               a DCGAN step of the same width: the run sees few images.

Published: FID 1.96 on CIFAR-10, class-conditional (the paper's Table 4).
GPU-hours of that run: 8 NVIDIA L40 for 4 days, about 768 L40-hours (the
paper's appendix D "Compute resources", as quoted in brownvc/R3GAN issue
#19; not read from the paper here).
gan_jax's GPU-hours to that FID: not measured yet (benchmarks/accelerator_suite.py).
Measured by this project: no FID yet.

Where the code and the paper differ this follows the code; departures from
the code: their G update draws a fresh real batch for its relativistic term,
gan_jax's reuses the step's D batch (D update i's, `gan_jax.core.steps`);
their augmentation draws real and fake parameters independently, gan_jax
shares them within an update (`gan_jax.core.augment`); their stages 2-4 of G
and 1-3 of D compute in bfloat16, gan_jax's `train.compute_dtype` is one
dtype for all (float32 here; bfloat16 on GPUs is faster).

Run:
  python -m gan_jax.main --config=configs/r3gan_cifar10.py --workdir=runs/r3gan_cifar10
  python -m gan_jax.main --config=configs/r3gan_cifar10.py:conditional --workdir=runs/r3gan_c10c
  python -m gan_jax.main --config=configs/r3gan_cifar10.py:cpu --workdir=runs/r3gan_cpu \\
      --config.data.path=CIFAR10_DIR

Data: as configs/gan_cifar10.py (TFDS `cifar10`, or the `folder` source on a
folder with one subfolder of images per class: --config.data.source=folder
--config.data.path=CIFAR10_DIR).
"""

from gan_jax.config import files as config_files
from gan_jax.config.base import get_config as base_config
from gan_jax.config.base import schedule_spec

DECAY_IMAGES = 20_000_000     # their decay_nimg: every schedule's length
EMA_HALF_LIFE = 5_000_000     # their ema_nimg at the end of its schedule
PRESETS = ('conditional', 'cpu')


def _schedules(config, images: float, ema_half_life: float) -> None:
  """The preset's cosine schedules, each over `images` real images."""
  for opt in (config.optim.g, config.optim.d):
    opt.schedule.lr = schedule_spec('cosine', 5e-5, images)
    opt.schedule.b2 = schedule_spec('cosine', 0.99, images)
  for name in ('r1', 'r2'):
    config.reg[name].schedule.weight = schedule_spec('cosine', 0.005, images)
  config.augment.ada.schedule.p = schedule_spec('cosine', 0.55, images)
  config.train.schedule.ema_half_life = schedule_spec('cosine', ema_half_life, images)


def _official(config) -> None:
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.data.mirror = True
  config.model.name = 'r3gan32'
  config.model.latent_dim = 64
  config.model.spectral_norm = 'none'
  config.model.conditional = False
  config.model.g_conditioning = 'none'
  config.model.d_conditioning = 'none'
  config.loss.name = 'rpgan'
  for name in ('r1', 'r2'):
    config.reg[name].weight = 0.05
    config.reg[name].before_augment = True
  for opt in (config.optim.g, config.optim.d):
    opt.name = 'adam'
    opt.lr, opt.b1, opt.b2, opt.eps = 2e-4, 0.0, 0.9, 1e-8
  config.augment.transforms = ('ada',)
  config.augment.ada.p = 0.0
  config.augment.ada.adapt = False
  config.augment.ada.ops = 'blit,geom,color:0.5,cutout'
  _schedules(config, DECAY_IMAGES, EMA_HALF_LIFE)
  tc = config.train
  tc.batch_size, tc.n_disc, tc.n_gen = 512, 1, 1
  tc.num_steps = 488_282      # 250M images (the paper's Table 9) at 512 a step
  tc.ema_decay, tc.ema_half_life = 0.0, 0.0
  tc.log_every, tc.sample_every, tc.checkpoint_every = 100, 5_000, 5_000


def _conditional(config) -> None:
  config.model.conditional = True
  config.model.g_conditioning = 'embed'
  config.model.d_conditioning = 'projection'


def _cpu(config) -> None:
  run_steps = 1_000           # an upper bound of the steps 29 minutes hold (docstring)
  run_images = run_steps * 64
  config.data.source = 'folder'
  config.data.path = ''       # required: --config.data.path=FOLDER (the extracted images)
  config.model.width_scale = 1 / 24
  config.train.batch_size = 64
  config.train.num_steps = run_steps
  config.train.max_minutes = 29.0
  config.train.log_every, config.train.sample_every = 20, 100
  config.train.checkpoint_every = 100
  scale = run_images / DECAY_IMAGES
  _schedules(config, run_images, EMA_HALF_LIFE * scale)
  config.eval.metrics = ('cls_fd', 'cls_cov')


def get_config(preset: str = ''):
  config = base_config()
  _official(config)
  parts = config_files.preset_parts(preset, 'configs/r3gan_cifar10.py', PRESETS)
  if 'conditional' in parts:
    _conditional(config)
  if 'cpu' in parts:
    _cpu(config)
  return config
