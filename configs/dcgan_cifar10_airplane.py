"""DCGAN on one CIFAR-10 class, airplanes: configs/dcgan_cifar10_dog.py with config.data.classes=('airplane',).

See that file for the recipe and its sources
(../shared/reports/dcgan-cifar10-and-2d-visualisation-report.txt). The
report found airplanes easier than dogs: wings, fuselage and tail were clearly
drawn.

Run:
  python -m gan_jax.main --config=configs/dcgan_cifar10_airplane.py --workdir=runs/dcgan_airplane \\
      --config.data.source=folder --config.data.path=/tmp/cifar10/train

CPU time: as configs/dcgan_cifar10_dog.py (the same model and batch).
"""

from gan_jax.config import files as config_files


def get_config():
  return config_files.from_sibling(__file__, 'dcgan_cifar10_dog.py', 'airplane')
