"""DCGAN on CelebA faces at 64x64, as the summer-school notes train it.

The notes train a PyTorch DCGAN on CelebA (and a home-made anime-face
folder) and point to their repository for settings. This is the standard
recipe of Radford et al. as in PyTorch's DCGAN tutorial, model `dcgan64`
(gan_jax/models/dcgan64.py): G z(100) -> 4x4x512 -> 256 -> 128 -> 64 ->
64x64x3 by transposed convs with BatchNorm and ReLU, tanh; D mirrors it with
LeakyReLU(0.2), BatchNorm from the second layer, a 4x4 conv to the logit.
BCE, Adam(2e-4, b1=0.5) for both, batch 128, 5 epochs of the 162,770
training images (1,271.6 steps per epoch). Images are centre-cropped to a
square (178x178 of the 178x218 originals) and resized to 64x64, which is the
tutorial's Resize(64) + CenterCrop(64).

What the notes saw: recognisable faces (figure only; no numbers).

Run:
  python -m gan_jax.main --config=configs/dcgan_celeba.py --workdir=runs/celeba \\
      --config.data.path=TFDS_DATA_DIR

Data: TFDS `celeb_a`, prepared once where there is internet (its files come
from Google Drive and may need a manual download, see the TFDS catalogue):
`tfds build celeb_a --file_format=array_record --data_dir=DIR`, then
--config.data.path=DIR. A folder of face images works too:
--config.data.source=folder --config.data.path=DIR; CelebA's own
img_align_celeba.zip becomes one, cropped and resized as above, with
`python -m gan_jax.data.prepare celeba --src=img_align_celeba.zip --out=DIR`.

CPU time: 6.29 s/step wall, 10.88 CPU-s/step at batch 128 (compile 7 s) on
a 2-core CPU with nothing else running (load 1.6),
2026-11-24: `python -m benchmarks.report_configs_step_time --steps=2
--configs=dcgan_celeba.py`. Five epochs (6,358 steps) would take about 11
hours there: a GPU job.
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'celeb_a'
  config.data.image_size = 64
  config.data.channels = 3
  config.model.name = 'dcgan64'
  config.model.latent_dim = 100
  config.loss.name = 'nonsaturating'
  config.optim.g.lr = config.optim.d.lr = 2e-4
  config.optim.g.b1 = config.optim.d.b1 = 0.5
  config.train.batch_size = 128
  config.train.num_steps = 6_358      # 5 epochs
  config.train.log_every = 100
  config.train.sample_every = 500
  config.train.checkpoint_every = 1_000
  return config
