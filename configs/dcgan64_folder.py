"""DCGAN at 64x64 on your own image folder, with instance noise and TTUR (the cats/anime report).

Model `dcgan64_wide` (gan_jax/models/dcgan64.py), the report's TensorFlow
code: G dense z -> 8x8x1024 (BatchNorm, ReLU), transposed convs 512/256/128
(k4, s2) with BatchNorm and LeakyReLU(0.2), a k4 conv to 3 channels, tanh;
D 5x5 convs 128/256/512/1024 (strides 1, 2, 2, 2), BatchNorm and LeakyReLU,
dense logit. BatchNorm momentum 0.99 and epsilon 1e-5 (TF's), Glorot-uniform
weights. Gaussian instance noise on every D input (real and generated):
std augment.instance_noise.std=0.1, decaying linearly to 0 over the run
(decay_steps; 0 keeps it constant). Two time-scale update rule: Adam with D
at 5e-5 and G at 2e-4, the rates the report found to avoid collapse at 64x64.
BCE on D's logit (the report's sigmoid is commented out; its loss is not
shown, the usual sigmoid cross-entropy is assumed). Batch 64; 30,000 steps,
about the report's 209 epochs for a ~9,000-image cat set.

Resolved where the report is silent: z of 100 dimensions, the noise std and
its decay, Adam's beta1 = 0.5 (DCGAN's), batch 64, and the step count.

What the report saw: realistic cats after 2-3 hours (GPU) and 209 epochs,
no mode collapse with these separate learning rates; anime faces as well.

Run (any folder of images, flat or with subfolders; images are centre-
cropped and resized to 64x64):
  python -m gan_jax.main --config=configs/dcgan64_folder.py --workdir=runs/cats \\
      --config.data.path=/path/to/cats

Presets (`--config=configs/dcgan64_folder.py:ada`):
  ada  for small folders (a few thousand images or fewer, as the report's cats
       and anime faces): adaptive discriminator augmentation (gan_jax.ada;
       Karras et al. 2020) in place of the instance noise, p steered toward
       r_t = 0.6 and able to go from 0 to 1 in 500k images, with the
       blit, geom and color groups. What it did on small CIFAR-10 and MNIST
       subsets at CPU scale is in experiments/RESULTS.md, "Small datasets".

CPU time: more than 2.5 minutes per step at batch 64 on a 2-core CPU with
nothing else running (2026-11-24): `python -m
benchmarks.report_configs_step_time --steps=2 --configs=dcgan64_folder.py`
had not finished compiling, one warm-up step and two timed steps after 10.5
minutes and was stopped. The 1024-channel 5x5 convolutions make this a GPU
job; on CPU use --config.model.width_scale=0.25 to try it.
"""

from gan_jax import errors
from gan_jax.config.base import get_config as base_config


def get_config(preset: str = ''):
  if preset not in ('', 'ada'):
    raise errors.ConfigError(f'Unknown preset {preset!r} for configs/dcgan64_folder.py; '
                             'the only preset is "ada" (--config=configs/'
                             'dcgan64_folder.py:ada).')
  config = base_config()
  config.data.source = 'folder'
  config.data.path = ''                # your image folder: --config.data.path=DIR
  config.data.image_size = 64
  config.data.channels = 3
  config.model.name = 'dcgan64_wide'
  config.model.latent_dim = 100
  config.model.bn_momentum = 0.99
  config.loss.name = 'nonsaturating'
  config.optim.d.lr, config.optim.g.lr = 5e-5, 2e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.augment.transforms = ('instance_noise',)
  config.augment.instance_noise.std = 0.1
  config.train.batch_size = 64
  config.train.num_steps = 30_000
  config.augment.instance_noise.decay_steps = config.train.num_steps
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  if preset == 'ada':
    config.augment.transforms = ('ada',)
    config.augment.ada.target = 0.6
    config.augment.ada.kimg = 500.0
    config.augment.ada.ops = 'blit,geom,color'
  return config
