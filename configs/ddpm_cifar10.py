"""A class-conditional DDPM on CIFAR-10 (model.family='ddpm'): a GPU job.

U-Net `ddpm_unet` at width_scale 2 (widths 64, 128, 128), cosine schedule,
T = 1000, Adam(2e-4), batch 128, EMA 0.9999, classifier-free guidance
available (labels dropped 10% of the time). Published DDPMs train CIFAR-10
for hundreds of thousands of steps with larger U-Nets; on a CPU this config
only shows that the code runs. Use a GPU for anything useful.

Run:
  python -m gan_jax.main --config=configs/ddpm_cifar10.py --workdir=runs/ddpm_cifar10 \
      --config.data.source=folder --config.data.path=/tmp/cifar10/train

CPU step time: 139.7 s per step at batch 128, measured with `python -m
benchmarks.family_step_time --steps=2 --rounds=1 configs/cvae_mnist.py
configs/ddpm_mnist.py configs/cvae_cifar10.py configs/ddpm_cifar10.py` on a
2-core CPU shared with other jobs (load average ~15), so inflated several-
fold; re-measure on a quiet machine. A GPU job.
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.model.name = 'ddpm_unet'
  config.model.family = 'ddpm'
  config.model.conditional = True
  config.model.width_scale = 2.0
  config.ddpm.timesteps = 1000
  config.ddpm.schedule = 'cosine'
  config.ddpm.sampler = 'ddim'
  config.ddpm.sample_steps = 100
  config.ddpm.p_uncond = 0.1
  config.optim.g.lr = 2e-4
  config.optim.g.b1 = 0.9
  config.train.batch_size = 128
  config.train.num_steps = 200_000
  config.train.ema_decay = 0.9999
  config.train.log_every = 100
  config.train.sample_every = 5_000
  config.train.checkpoint_every = 5_000
  return config
