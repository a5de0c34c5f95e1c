"""DCGAN on one CIFAR-10 class, dogs or airplanes, as the DCGAN/2D-visualisation report trains it.

The report trains a GAN on the 5,000 training images of a single CIFAR-10
class (dogs, then airplanes) with the DCGAN tricks it lists: tanh output,
Gaussian noise, strided convolutions instead of pooling, LeakyReLU. Its
architecture figures are missing from the text, so this uses gan_jax's
standard 32x32 DCGAN (`dcgan32`: dense to 4x4x512, transposed convs
256/128/64, tanh; D convs 64..512 with LeakyReLU, dense logit) with BCE and
Adam(2e-4, b1=0.5), batch 64, 10,000 steps (128 epochs of 78 steps).
`config.data.classes` keeps the one class the preset names.

Presets (`--config=configs/dcgan_cifar10_class.py:CLASS`; no preset is `dog`):
  dog       The report's first run. What it saw: dog images that are blurry,
            some with noise, but with recognisable outlines and faces. It
            hand-picked the images it shows.
  airplane  The report's second run. It found airplanes easier than dogs:
            wings, fuselage and tail were clearly drawn.
  Any other CIFAR-10 class name works the same way (e.g. `:cat`).

Run (CIFAR10_DIR: a folder with one subfolder of images per class, e.g. the
50,000 CIFAR-10 training images as JPEG files; TFDS `cifar10` works too, as
in configs/gan_cifar10.py):
  python -m gan_jax.main --config=configs/dcgan_cifar10_class.py:dog --workdir=runs/dcgan_dog \\
      --config.data.source=folder --config.data.path=CIFAR10_DIR
  python -m gan_jax.main --config=configs/dcgan_cifar10_class.py:airplane --workdir=runs/dcgan_airplane \\
      --config.data.source=folder --config.data.path=CIFAR10_DIR

CPU time (every class: the same model and batch): 1.37 s/step wall, 2.39
CPU-s/step at batch 64 (compile 8 s) on a 2-core CPU with nothing else
running (load 1.5), 2026-11-24: `python -m
benchmarks.report_configs_step_time --steps=2
--configs=dcgan_cifar10_class.py:dog` (then named configs/dcgan_cifar10_dog.py;
random in-memory data; the folder source decodes its images once, then only
indexes memory).
"""

from gan_jax.config import files as config_files
from gan_jax.config.base import get_config as base_config

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                   'ship', 'truck')


def get_config(preset: str = ''):
  class_name, _ = config_files.split_preset(preset or 'dog', 'configs/dcgan_cifar10_class.py',
                                            CIFAR10_CLASSES)
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.data.classes = (class_name,)
  config.model.name = 'dcgan32'
  config.model.latent_dim = 100
  config.loss.name = 'nonsaturating'
  config.optim.g.lr = config.optim.d.lr = 2e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.train.batch_size = 64
  config.train.num_steps = 10_000      # 128 epochs of the class's 5,000 images
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  return config
