"""A conditional VAE on MNIST (model.family='vae'): the GAN reports' point of comparison.

Encoder: x + class maps -> conv 32, 64 (k4 s2) -> dense 256 -> mean, log-variance
of a 16-d latent. Decoder: (z, one-hot y) -> dense 7x7x64 -> transposed conv 32,
1 (k4 s2). Bernoulli likelihood, beta = 1 (the ELBO), Adam(1e-3) for both,
batch 128. Sampling draws z ~ N(0, I) per class (`generate --label=K`,
`--per_class`); expect blurrier digits than a GAN's.

Run:
  python -m gan_jax.main --config=configs/cvae_mnist.py --workdir=runs/cvae_mnist \
      --config.data.source=idx --config.data.path=DIR_WITH_IDX_FILES

CPU step time: 1.56 s per step at batch 128 (the study ran it at batch 64: ~3
steps/s at the same load), measured with `python -m
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
  config.model.name = 'vae'
  config.model.family = 'vae'
  config.model.conditional = True
  config.model.latent_dim = 16
  config.vae.beta = 1.0
  config.vae.likelihood = 'bernoulli'
  config.optim.g.lr = config.optim.d.lr = 1e-3
  config.optim.g.b1 = config.optim.d.b1 = 0.9
  config.train.batch_size = 128
  config.train.num_steps = 10_000      # ~21 epochs of 60,000 digits
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  return config
