"""The small DCGAN of the MNIST course report on Stacked MNIST (28x28x3, 1,000 modes).

Three MNIST digits on the R, G and B channels (gan_jax/data/stacked_mnist.py);
the model is `dcgan28` with 3 output channels, trained like configs/dcgan_mnist.py.
The mode-collapse test of VEEGAN and PacGAN counts how many of the 1,000
digit triples appear among 26,000 samples and the KL of their histogram from
uniform (`stacked_modes`; the literature puts DCGAN at about 99 modes and KL
3.4, VEEGAN Table 2). That needs an MNIST domain classifier:

  python -m gan_jax.metrics.classifier --config=configs/dcgan_mnist.py \\
      --config.data.source=idx --config.data.path=DIR --out=runs/classifiers/mnist
  python -m gan_jax.main --config=configs/dcgan_stacked_mnist.py --workdir=runs/stacked \\
      --config.data.path=DIR --config.eval.classifier=runs/classifiers/mnist
  python -m gan_jax.evaluate --workdir=runs/stacked --metrics=stacked_modes

Data: MNIST IDX files in config.data.path (`data.split` picks train or t10k).
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'stacked_mnist'
  config.data.image_size = 28
  config.data.channels = 3
  config.model.name = 'dcgan28'
  config.model.latent_dim = 100
  config.optim.g.lr = config.optim.d.lr = 2e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.train.batch_size = 128
  config.train.num_steps = 46_800
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  config.eval.metrics = ('stacked_modes',)
  return config
