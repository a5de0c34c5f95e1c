"""A small class-conditional DDPM on MNIST (model.family='ddpm').

U-Net `ddpm_unet` (widths 32, 64, 64; two residual blocks per level, no
attention) predicting the noise, T = 1000 with the linear schedule, Adam(2e-4),
batch 128, labels dropped 10% of the time so classifier-free guidance
(--config.ddpm.guidance=W) works. Samples by DDIM in 50 steps by default
(--config.ddpm.sampler=ancestral runs all 1000). A DDPM needs far more
steps than a GAN; on a CPU this is a demonstration at MNIST size, not a
recipe for good samples in minutes.

Run:
  python -m gan_jax.main --config=configs/ddpm_mnist.py --workdir=runs/ddpm_mnist \
      --config.data.source=idx --config.data.path=DIR_WITH_IDX_FILES

CPU step time: 26.6 s per step at batch 128: 20,000 steps would take days on
this CPU, so train it on a GPU; measured with `python -m
benchmarks.family_step_time --steps=2 --rounds=1 configs/cvae_mnist.py
configs/ddpm_mnist.py configs/cvae_cifar10.py configs/ddpm_cifar10.py` on a
2-core CPU shared with other jobs (load average ~15), so inflated several-
fold; re-measure on a quiet machine.
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'mnist'
  config.data.image_size = 28
  config.data.channels = 1
  config.model.name = 'ddpm_unet'
  config.model.family = 'ddpm'
  config.model.conditional = True
  config.ddpm.timesteps = 1000
  config.ddpm.schedule = 'linear'
  config.ddpm.sampler = 'ddim'
  config.ddpm.sample_steps = 50
  config.ddpm.p_uncond = 0.1
  config.optim.g.lr = 2e-4
  config.optim.g.b1 = 0.9
  config.train.batch_size = 128
  config.train.num_steps = 20_000
  config.train.ema_decay = 0.999
  config.train.log_every = 100
  config.train.sample_every = 2_000
  config.train.checkpoint_every = 2_000
  return config
