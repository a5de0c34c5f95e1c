"""The CIFAR-10 A8 report's conditional GAN: label embeddings in G and D, and the MSE similarity loss.

As configs/gan_cifar10_resnet18d.py (model `resnet18d`, BCE, AdamW, batch 64,
50 epochs, n_gen=2), with the report's conditional changes: D and G both at
lr 5e-5, and each network has a dense label embedding that lifts the one-hot
class (model.g_conditioning = d_conditioning = 'embed'): G concatenates it
(as wide as z) with the noise, D reshapes it to one 32x32 map and
concatenates it with the image as a fourth channel. G's loss adds the
report's MSE "similarity" between each generated image and a real image of
the same class (G borrows the real batch's labels), weight
loss.similarity_weight (the report gives none; 1.0 here, a plain sum; set 0
to turn it off). It is logged as `g_similarity_loss` and drawn as its own
curve beside D's real and fake losses and G's loss.

Sample grids have one row per class; `generate --label=K` draws class K.

What the report saw: more diverse samples than the unconditional GAN (no mass
of duplicates), but slower, less stable training; the similarity loss curve
showed little, which it put down to the variety within each CIFAR-10 class.

Run (CIFAR10_DIR: a folder with one subfolder of images per class):
  python -m gan_jax.main --config=configs/cgan_cifar10_resnet18d.py --workdir=runs/cgan_r18d \\
      --config.data.source=folder --config.data.path=CIFAR10_DIR
  python -m gan_jax.generate --workdir=runs/cgan_r18d --num=16 --label=3 --out=runs/cgan_r18d/cats.npz
  python -m experiments.report_figures --config=configs/cgan_cifar10_resnet18d.py ...  (figures)

Data: as configs/gan_cifar10_resnet18d.py (labels come from TFDS or from the
class subfolders).

CPU time: 16.3 s/step wall, 24.0 CPU-s/step at batch 64 (compile 16 s) on
a 2-core CPU with nothing else running (load 1.7),
2026-11-24: `python -m benchmarks.report_configs_step_time --steps=1
--configs=cgan_cifar10_resnet18d.py`. At --config.model.width_scale=0.25 a
run on the CIFAR-10 JPEG folder trained at 0.82 steps/s (300 steps via
experiments/report_figures.py). The report's 50 epochs are a GPU job.
"""

from gan_jax.config import files as config_files


def get_config():
  config = config_files.from_sibling(__file__, 'gan_cifar10_resnet18d.py')
  config.model.conditional = True
  config.model.g_conditioning = 'embed'
  config.model.d_conditioning = 'embed'
  config.optim.d.lr = config.optim.g.lr = 5e-5
  config.loss.similarity_weight = 1.0
  config.sample.per_class = 10
  return config
