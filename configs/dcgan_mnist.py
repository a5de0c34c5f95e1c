"""The small DCGAN of the MNIST course report.

G: z(100) -> ConvT 64 (k3 s1) -> 32 (k3 s2) -> 16 (k4 s2 p1) -> 1 (k4 s2 p1),
BatchNorm + ReLU between, tanh out; D mirrors it with LeakyReLU(0.2).
BCE loss, Adam(2e-4, b1=0.5) for both, batch 128, 100 epochs of the 60,000
training digits (468 steps per epoch), as in the report.

Run:
  python -m gan_jax.main --config=configs/dcgan_mnist.py --workdir=runs/dcgan_mnist

Data: TFDS `mnist`, prepared once on a machine with internet access
(`tfds build mnist --file_format=array_record --data_dir=DIR`, then
--config.data.path=DIR). The raw IDX files work too, with no TFDS step:
  --config.data.source=idx --config.data.path=DIR_WITH_IDX_FILES

Presets (`--config=configs/dcgan_mnist.py:PRESET`), D-input augmentation for
a few hundred digits; experiments/RESULTS.md, "Small datasets", measures each
on 100 and 1,000 digits:
  diffaugment  DiffAugment on every image D sees.
  ada          adaptive discriminator augmentation, with the paper's kimg 500
               and target 0.6.
"""

from gan_jax import errors
from gan_jax.config.base import get_config as base_config

PRESETS = ('diffaugment', 'ada')


def get_config(preset: str = ''):
  if preset and preset not in PRESETS:
    raise errors.ConfigError(f'Unknown preset {preset!r} for configs/dcgan_mnist.py; '
                             f'presets: {", ".join(PRESETS)}.')
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'mnist'
  config.data.image_size = 28
  config.data.channels = 1
  config.model.name = 'dcgan28'
  config.model.latent_dim = 100
  config.optim.g.lr = config.optim.d.lr = 2e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.train.batch_size = 128
  config.train.num_steps = 46_800      # 100 epochs x 468 steps
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  if preset:
    config.augment.transforms = (preset,)   # ada: the paper's kimg 500 and target 0.6
  return config
