"""A conditional VAE on CIFAR-10 (model.family='vae').

Encoder: x + class maps -> conv 32, 64, 128 (k4 s2) -> dense 256 -> mean,
log-variance of a 128-d latent. Decoder mirrors it from 4x4x128. Gaussian
likelihood with std 0.1 on [-1, 1] pixels (a Bernoulli likelihood is wrong
for colour images), beta = 1, Adam(1e-3), batch 128. VAE samples on CIFAR-10
are blurry at any budget; this config is the comparison point, not a recipe
for good images.

Run:
  python -m gan_jax.main --config=configs/cvae_cifar10.py --workdir=runs/cvae_cifar10 \
      --config.data.source=folder --config.data.path=/tmp/cifar10/train

CPU step time: 4.06 s per step at batch 128, measured with `python -m
benchmarks.family_step_time --steps=2 --rounds=1 configs/cvae_mnist.py
configs/ddpm_mnist.py configs/cvae_cifar10.py configs/ddpm_cifar10.py` on a
2-core CPU shared with other jobs (load average ~15), so inflated several-
fold; re-measure on a quiet machine.
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.model.name = 'vae'
  config.model.family = 'vae'
  config.model.conditional = True
  config.model.latent_dim = 128
  config.vae.beta = 1.0
  config.vae.likelihood = 'gaussian'
  config.vae.sigma = 0.1
  config.optim.g.lr = config.optim.d.lr = 1e-3
  config.optim.g.b1 = config.optim.d.b1 = 0.9
  config.train.batch_size = 128
  config.train.num_steps = 20_000      # ~51 epochs of 50,000 images
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  return config
