"""The recommended unconditional CIFAR-10 recipe: SNGAN (ResNet, spectral norm, hinge loss) with an EMA generator.

Model `sngan32`: ResNet G (z 128 -> 4x4x256 -> three up-blocks of 256 ->
BatchNorm, ReLU, 3x3 conv, tanh) and ResNet D (four blocks of 128, the first
two downsampling -> ReLU, global sum pooling, dense logit) with spectral norm
on every D layer, as in Miyato et al. (2018) and the authors' code
(pfnet-research/sngan_projection, configs/sn_cifar10_unconditional.yml).
Hinge loss, Adam(2e-4, b1=0, b2=0.9) for both networks, n_disc=5 D updates
per G update, batch 64, 50,000 G updates (320 epochs of D batches), learning
rates decayed linearly to 0 as in that code. Added here: an EMA of G (decay 0.9999 from step 1,000) for sample
grids, `generate` and evaluation. Not reproduced: the authors' G update
draws 128 samples, twice the D batch; here both use train.batch_size.

Published: Miyato et al., "Spectral Normalization for Generative Adversarial
Networks", ICLR 2018, report IS 8.22 and FID 21.7 on CIFAR-10 for SN-GAN
with this ResNet.
Measured by this project: no FID or IS yet. The metrics exist (`python -m
gan_jax.evaluate --workdir=DIR --metrics=fid,is`; IS needs pytorch-fid's
weights, docs/fid.md), but this recipe has not been trained to the end:
50,000 steps are a GPU job (`CPU time` below).

Run:
  python -m gan_jax.main --config=configs/gan_cifar10.py --workdir=runs/gan_cifar10

Data: TFDS `cifar10`, prepared once where there is internet
(`tfds build cifar10 --file_format=array_record --data_dir=DIR`, then
--config.data.path=DIR). Or the `folder` source on CIFAR10_DIR, a folder
with one subfolder of 32x32 images per class (e.g. the 50,000 training
images as JPEG files):
  ... --config.data.source=folder --config.data.path=CIFAR10_DIR

CPU time: 65.7 s/step wall, 124 CPU-s/step (5 D + 1 G updates at batch 64,
compile 18 s) on a 2-core CPU with nothing else running, 2026-11-24:
`python -m benchmarks.report_configs_step_time --steps=1
--configs=gan_cifar10.py`; 50,000 steps would take five weeks there, so a
full run is a GPU job. Earlier, on that CPU shared with other jobs
(2026-11-23), the full recipe (batch 64, n_disc 5, full widths) on the
CIFAR-10 JPEG folder compiled its train
step in 335 s at load average 16-21; its four steps took 828 s (load
14-16), 314 s (8-13), 154 s (3-7) and 79 s (about 3), per metrics.jsonl:
figures dominated by the load, upper bounds, not speeds. It ran without error:
  python -m gan_jax.main --config=configs/gan_cifar10.py --workdir=runs/gan_short
    --config.data.source=folder --config.data.path=CIFAR10_DIR
    --config.train.num_steps=4 --config.train.log_every=1
    --config.train.sample_every=0 --config.train.checkpoint_every=0
The same recipe at 1/16 width, batch 8 and n_disc 1 trains for 4 steps on
mock CIFAR-10 (and on real CIFAR-10 JPEGs where the test finds them) without
error (tests/test_recipes.py).
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.model.name = 'sngan32'
  config.model.latent_dim = 128
  config.model.spectral_norm = 'default'   # sngan32: every D layer
  config.loss.name = 'hinge'
  for opt in (config.optim.g, config.optim.d):
    opt.name = 'adam'
    opt.lr, opt.b1, opt.b2 = 2e-4, 0.0, 0.9
    opt.lr_schedule = 'linear'
  config.train.batch_size = 64
  config.train.n_disc = 5
  config.train.num_steps = 50_000
  config.train.ema_decay = 0.9999
  config.train.ema_start = 1_000
  config.train.log_every = 100
  config.train.sample_every = 1_000
  config.train.checkpoint_every = 2_000
  return config
