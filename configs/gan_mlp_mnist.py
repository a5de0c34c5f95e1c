"""The vanilla MLP GAN on MNIST followed by the summer-school notes.

G: 100 -> 128 -> 256 -> 512 -> 1024 -> 784, BatchNorm after every hidden layer
but the first, LeakyReLU(0.2), tanh; D: 784 -> 512 -> 256 -> 1, LeakyReLU(0.2).
Adam(2e-4, b1=0.5), batch 128, 200 epochs (468 steps per epoch), as in the
notes, which saw mode collapse with this model.

Run:
  python -m gan_jax.main --config=configs/gan_mlp_mnist.py --workdir=runs/gan_mlp_mnist

Data: as configs/dcgan_mnist.py (TFDS `mnist`, or --config.data.source=idx
--config.data.path=DIR_WITH_IDX_FILES).
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'mnist'
  config.data.image_size = 28
  config.data.channels = 1
  config.model.name = 'mlp'
  config.model.latent_dim = 100
  config.optim.g.lr = config.optim.d.lr = 2e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.train.batch_size = 128
  config.train.num_steps = 93_600      # 200 epochs x 468 steps
  config.train.log_every = 100
  config.train.sample_every = 2_000
  config.train.checkpoint_every = 5_000
  return config
