"""A class-conditional DDPM (model.family='ddpm') on MNIST or CIFAR-10.

U-Net `ddpm_unet` predicting the noise, T = 1000, Adam(2e-4), batch 128,
labels dropped 10% of the time so classifier-free guidance
(--config.ddpm.guidance=W) works; samples by DDIM (--config.ddpm.sampler=ancestral
runs all 1000 steps). A DDPM needs far more steps than a GAN.

Presets (`--config=configs/ddpm.py:PRESET`; no preset is `mnist`):
  mnist    A small DDPM: widths 32, 64, 64 (two residual blocks per level, no
           attention), the linear schedule, DDIM in 50 steps, EMA 0.999,
           20,000 steps. On a CPU this is a demonstration at MNIST size, not a
           recipe for good samples in minutes.
  cifar10  A GPU job: width_scale 2 (widths 64, 128, 128), cosine schedule,
           DDIM in 100 steps, EMA 0.9999, 200,000 steps. Published DDPMs train
           CIFAR-10 for hundreds of thousands of steps with larger U-Nets; on
           a CPU this preset only shows that the code runs. Use a GPU for
           anything useful.

Run (DIR_WITH_IDX_FILES: MNIST's IDX files; CIFAR10_DIR: a folder with one
subfolder of images per class):
  python -m gan_jax.main --config=configs/ddpm.py:mnist --workdir=runs/ddpm_mnist \\
      --config.data.source=idx --config.data.path=DIR_WITH_IDX_FILES
  python -m gan_jax.main --config=configs/ddpm.py:cifar10 --workdir=runs/ddpm_cifar10 \\
      --config.data.source=folder --config.data.path=CIFAR10_DIR

CPU step time: `python -m benchmarks.family_step_time configs/ddpm.py:mnist
configs/ddpm.py:cifar10` measures it. The quiet figure on record is 1.78 s
per step for :mnist at batch 128 (`--steps=5 --rounds=2`, load 1.2;
experiments/RESULTS.md, the augmentation study): 20,000 steps would take
about ten hours. A GPU job.
"""

from gan_jax.config import files as config_files
from gan_jax.config.base import get_config as base_config

# What differs between the presets, as dotted keys.
PRESETS = {
    'mnist': {
        'data.name': 'mnist', 'data.image_size': 28, 'data.channels': 1,
        'ddpm.schedule': 'linear', 'ddpm.sample_steps': 50,
        'train.num_steps': 20_000, 'train.ema_decay': 0.999,
        'train.sample_every': 2_000, 'train.checkpoint_every': 2_000,
    },
    'cifar10': {
        'data.name': 'cifar10', 'data.image_size': 32, 'data.channels': 3,
        'model.width_scale': 2.0,
        'ddpm.schedule': 'cosine', 'ddpm.sample_steps': 100,
        'train.num_steps': 200_000, 'train.ema_decay': 0.9999,
        'train.sample_every': 5_000, 'train.checkpoint_every': 5_000,
    },
}


def get_config(preset: str = ''):
  target, _ = config_files.split_preset(preset or 'mnist', 'configs/ddpm.py', tuple(PRESETS))
  config = base_config()
  config.data.source = 'tfds'
  config.model.name = 'ddpm_unet'
  config.model.family = 'ddpm'
  config.model.conditional = True
  config.ddpm.timesteps = 1000
  config.ddpm.sampler = 'ddim'
  config.ddpm.p_uncond = 0.1
  config.optim.g.lr = 2e-4
  config.optim.g.b1 = 0.9
  config.train.batch_size = 128
  config.train.log_every = 100
  config.update_from_flattened_dict(PRESETS[target])
  return config
