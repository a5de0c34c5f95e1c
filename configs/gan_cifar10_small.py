"""CIFAR-10 from a few thousand images on a CPU: the half-hour recipe with DiffAugment on D's inputs.

configs/gan_cifar10_cpu.py (DCGAN-32 at half width, BCE, Adam(2e-4, 0.5),
batch 64, EMA of G, a 29-minute budget) plus DiffAugment (colour,
translation, cutout; Zhao et al. 2020) on every image D sees. It is the
combination that did best in the small-data study at CPU scale
(experiments/RESULTS.md, "Small datasets"). That study compared the plain
recipe, DiffAugment, ADA and ADA + LeCam for 1,500 steps on 1,000 and 5,000
CIFAR-10 training images:
  - DiffAugment had the lowest FID at both sizes (1,000 samples: 323 against
    337 for the plain recipe on 1,000 images, 219 against 339 on 5,000);
  - its domain-classifier distance was no better (42.9 against 35.7 on
    1,000 images, 35.4 against 35.1 on 5,000);
  - D's memorisation of its training images went away (AUC of D telling
    them from held-out images 0.50, against 0.83 for the plain recipe on
    1,000 images);
  - ADA, with p steered by r_t, and ADA + LeCam were worse than the plain
    recipe on both measures at this length.
The EMA starts at step 500 instead of 1,000, as in the study.

Run (any class folder; `data.path` is required):
  python -m gan_jax.main --config=configs/gan_cifar10_small.py --workdir=runs/cifar_small \\
      --config.data.path=/path/to/your/small/cifar10/folder
"""

from gan_jax.config import files as config_files


def get_config():
  config = config_files.from_sibling(__file__, 'gan_cifar10_cpu.py')
  config.augment.transforms = ('diffaugment',)
  config.augment.diffaugment.policy = 'color,translation,cutout'
  config.train.ema_start = 500
  return config
