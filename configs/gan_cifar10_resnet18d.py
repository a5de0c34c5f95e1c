"""The CIFAR-10 A8 report's GAN: ResNet-18 discriminator, transposed-conv G with average pooling.

Model `resnet18d` (gan_jax/models/cifar_resnet.py): D is a CIFAR-style
ResNet-18 then a dense logit; G is transposed-conv blocks with BatchNorm and
ReLU, then average pooling, a dense layer and tanh. BCE loss (the report's D
ends in a sigmoid; G's loss is the usual non-saturating one). AdamW with D at
2e-5 and G at 5e-5 (so that D does not outpace G), batch 64, 50 epochs
(781.25 steps per epoch, 39,063 steps), two G updates per D update
(train.n_gen=2), pixels normalised with mean 0.5 and std 0.5 (to [-1, 1],
as every gan_jax run).

Resolved where the report is silent: widths (D: ResNet-18's 64..512; G:
512/256/128/64 with pooling to 4x4), z of 100 dimensions, AdamW's other
settings at PyTorch's defaults (betas 0.9/0.999, weight decay 0.01).

What the report saw: losses near ln 2 = 0.69 at the start, then D stronger
than G with oscillating D losses and rising G loss; recognisable animal and
ship features by epoch 50, with visible mode collapse (near-identical samples).

Run:
  python -m gan_jax.main --config=configs/gan_cifar10_resnet18d.py --workdir=runs/gan_r18d \\
      --config.data.source=folder --config.data.path=CIFAR10_DIR
  python -m experiments.report_figures --config=configs/gan_cifar10_resnet18d.py ...  (figures)

Data: TFDS `cifar10`, prepared once where there is internet
(`tfds build cifar10 --file_format=array_record --data_dir=DIR`, then
--config.data.path=DIR). Or the `folder` source on CIFAR10_DIR, a folder
with one subfolder of images per class (e.g. the 50,000 training images as
JPEG files), as in the command above.

CPU time: 18.7 s/step wall, 27.7 CPU-s/step at batch 64 with two G updates
per step (compile 16 s) on a 2-core CPU with nothing else running (load
2.0), 2026-11-24: `python -m
benchmarks.report_configs_step_time --steps=1 --configs=gan_cifar10_resnet18d.py`.
The report's 50 epochs (39,063 steps) would take over a week there: a GPU job.
"""

from gan_jax.config.base import get_config as base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.model.name = 'resnet18d'
  config.model.latent_dim = 100
  config.loss.name = 'nonsaturating'
  for opt, lr in ((config.optim.d, 2e-5), (config.optim.g, 5e-5)):
    opt.name = 'adamw'
    opt.lr, opt.b1, opt.b2, opt.eps = lr, 0.9, 0.999, 1e-8
    opt.weight_decay = 0.01
  config.train.batch_size = 64
  config.train.n_disc = 1
  config.train.n_gen = 2
  config.train.num_steps = 39_063      # 50 epochs of 50,000 images
  config.train.log_every = 100
  config.train.sample_every = 782      # about once per epoch
  config.train.checkpoint_every = 3_910
  config.sample.num = 32               # the report shows 32 samples
  return config
