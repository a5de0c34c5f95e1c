"""The recommended class-conditional CIFAR-10 recipe: SNGAN with a projection D and conditional BatchNorm in G.

As configs/gan_cifar10.py (ResNet `sngan32`, spectral norm in D, hinge loss,
Adam(2e-4, b1=0, b2=0.9), n_disc=5, batch 64, 50,000 G updates with linearly
decaying learning rates, EMA of G from step 1,000), made class-conditional
the way Miyato & Koyama (2018) do it and their code configures it
(pfnet-research/sngan_projection, configs/sn_cifar10.yml): G's block
BatchNorms take a per-class scale and shift (`g_conditioning='cbn'`) and D
adds the projection <embed(y), features> to its logit
(`d_conditioning='projection'`, with a spectrally normalised embedding).
Sample grids have one row per class; `generate --label=K` draws class K.

Presets after a colon: `:diffaugment` adds DiffAugment (colour, translation,
cutout; Zhao et al. 2020) to every batch D sees, which helps most when data is
scarce (e.g. with --config.data.classes or a small folder).

Published: Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018,
report IS 8.62 and FID 17.5 on CIFAR-10 for this model; re-implementations
that train longer or compute FID differently report lower FIDs (9 to 17.5
across implementations).
Measured by this project: no FID or IS yet. The metrics exist (`python -m
gan_jax.evaluate --workdir=DIR --metrics=fid,is`; IS needs pytorch-fid's
weights, docs/fid.md), but this recipe has not been trained to the end:
50,000 steps are a GPU job (`CPU time` below). The accelerator suite's
quality sprint trains it (BENCHMARKS.md) but has not yet been run on a GPU.

Run:
  python -m gan_jax.main --config=configs/cgan_cifar10.py --workdir=runs/cgan_cifar10
  python -m gan_jax.main --config=configs/cgan_cifar10.py:diffaugment --workdir=runs/cgan_cifar10_da

Data: as configs/gan_cifar10.py (TFDS `cifar10`, or the `folder` source on a
folder with one subfolder of images per class: --config.data.source=folder
--config.data.path=CIFAR10_DIR).

CPU time: 65.3 s/step wall, 120.5 CPU-s/step (5 D + 1 G updates at batch
64, compile 21 s) on a 2-core CPU with nothing else running, 2026-11-24:
`python -m benchmarks.report_configs_step_time --steps=1
--configs=cgan_cifar10.py`: a full run is a GPU job. Earlier, on that CPU
shared with other jobs at load average 16-21, the full recipe (batch 64,
n_disc 5, full widths) on the CIFAR-10 JPEG folder compiled its train step
in 411 s (2026-11-23), and its first
step had not finished after 10 more minutes (the run was stopped there), so
no step time was measured; the unconditional recipe's four steps took 828,
314, 154 and 79 s as the load fell (configs/gan_cifar10.py):
  python -m gan_jax.main --config=configs/cgan_cifar10.py --workdir=runs/cgan_short
    --config.data.source=folder --config.data.path=CIFAR10_DIR
    --config.train.num_steps=4 --config.train.log_every=1
    --config.train.sample_every=0 --config.train.checkpoint_every=0
The same recipe at 1/16 width, batch 8 and n_disc 1 trains for 4 steps on
mock CIFAR-10 (and on real CIFAR-10 JPEGs where the test finds them) without
error (tests/test_recipes.py).
"""

from gan_jax import errors
from gan_jax.config import files as config_files


def get_config(preset: str = ''):
  config = config_files.from_sibling(__file__, 'gan_cifar10.py')
  config.model.conditional = True
  config.model.g_conditioning = 'cbn'
  config.model.d_conditioning = 'projection'
  if preset == 'diffaugment':
    config.augment.transforms = ('diffaugment',)
    config.augment.diffaugment.policy = 'color,translation,cutout'
  elif preset:
    raise errors.ConfigError(f'Unknown preset {preset!r} for configs/cgan_cifar10.py; '
                             'the only preset is "diffaugment" (--config=configs/'
                             'cgan_cifar10.py:diffaugment).')
  return config
