"""A conditional VAE (model.family='vae'): the GAN reports' point of comparison, on MNIST or CIFAR-10.

Presets (`--config=configs/cvae.py:PRESET`; no preset is `mnist`):
  mnist    Encoder: x + class maps -> conv 32, 64 (k4 s2) -> dense 256 -> mean,
           log-variance of a 16-d latent. Decoder: (z, one-hot y) -> dense
           7x7x64 -> transposed conv 32, 1 (k4 s2). Bernoulli likelihood,
           beta = 1 (the ELBO), Adam(1e-3) for both, batch 128, 10,000 steps.
           Sampling draws z ~ N(0, I) per class (`generate --label=K`,
           `--per_class`); expect blurrier digits than a GAN's.
  cifar10  Encoder: x + class maps -> conv 32, 64, 128 (k4 s2) -> dense 256 ->
           mean, log-variance of a 128-d latent. Decoder mirrors it from
           4x4x128. Gaussian likelihood with std 0.1 on [-1, 1] pixels (a
           Bernoulli likelihood is wrong for colour images), beta = 1,
           Adam(1e-3), batch 128, 20,000 steps. VAE samples on CIFAR-10 are
           blurry at any budget; this preset is the comparison point, not a
           recipe for good images.

Run (DIR_WITH_IDX_FILES: MNIST's IDX files; CIFAR10_DIR: a folder with one
subfolder of images per class):
  python -m gan_jax.main --config=configs/cvae.py:mnist --workdir=runs/cvae_mnist \\
      --config.data.source=idx --config.data.path=DIR_WITH_IDX_FILES
  python -m gan_jax.main --config=configs/cvae.py:cifar10 --workdir=runs/cvae_cifar10 \\
      --config.data.source=folder --config.data.path=CIFAR10_DIR

CPU step time: `python -m benchmarks.family_step_time configs/cvae.py:mnist
configs/cvae.py:cifar10` measures it. No quiet figure is on record yet.
"""

from gan_jax.config import files as config_files
from gan_jax.config.base import get_config as base_config

# What differs between the presets, as dotted keys.
PRESETS = {
    'mnist': {
        'data.name': 'mnist', 'data.image_size': 28, 'data.channels': 1,
        'model.latent_dim': 16, 'vae.likelihood': 'bernoulli',
        'train.num_steps': 10_000,       # ~21 epochs of 60,000 digits
    },
    'cifar10': {
        'data.name': 'cifar10', 'data.image_size': 32, 'data.channels': 3,
        'model.latent_dim': 128, 'vae.likelihood': 'gaussian', 'vae.sigma': 0.1,
        'train.num_steps': 20_000,       # ~51 epochs of 50,000 images
    },
}


def get_config(preset: str = ''):
  target, _ = config_files.split_preset(preset or 'mnist', 'configs/cvae.py', tuple(PRESETS))
  config = base_config()
  config.data.source = 'tfds'
  config.model.name = 'vae'
  config.model.family = 'vae'
  config.model.conditional = True
  config.vae.beta = 1.0
  config.optim.g.lr = config.optim.d.lr = 1e-3
  config.optim.g.b1 = config.optim.d.b1 = 0.9
  config.train.batch_size = 128
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  config.update_from_flattened_dict(PRESETS[target])
  return config
