"""Eager PyTorch versions of gan_jax's DCGANs and train step, the baseline of `compare_torch`.

Same networks as `gan_jax.models` (layer for layer, same widths, kernels,
strides, BatchNorm and activations) and the same step as `gan_jax.steps` with
the default config: one D update on a real and a generated batch (separate D
calls, the generated batch detached), then one G update on fresh noise with
the non-saturating BCE loss, Adam(2e-4, 0.5, 0.999) for both. Real batches
arrive as uint8 NHWC and are scaled to [-1, 1] inside the step, as in gan_jax.

The DCGAN-64 is the one issue 3 specifies (../shared/reports/dcgan64-cats-anime-report.txt):
dense z -> 8x8x1024, transposed convs 512/256/128 (k4 s2), k4 conv to 3
channels, tanh; D 5x5 convs 128/256/512/1024 at strides 1, 2, 2, 2, dense logit.

PyTorch is an optional dependency: `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _bn(features: int) -> nn.BatchNorm2d:
  return nn.BatchNorm2d(features, eps=1e-5, momentum=0.1)


def _lrelu() -> nn.LeakyReLU:
  return nn.LeakyReLU(0.2)


class Generator28(nn.Module):
  def __init__(self, latent_dim: int = 100, channels: int = 1):
    super().__init__()
    blocks = []
    in_ch = latent_dim
    for features, kernel, stride, padding in ((64, 3, 1, 0), (32, 3, 2, 0), (16, 4, 2, 1)):
      blocks += [nn.ConvTranspose2d(in_ch, features, kernel, stride, padding),
                 _bn(features), nn.ReLU()]
      in_ch = features
    blocks += [nn.ConvTranspose2d(in_ch, channels, 4, 2, 1), nn.Tanh()]
    self.net = nn.Sequential(*blocks)

  def forward(self, z):
    return self.net(z[:, :, None, None])


class Discriminator28(nn.Module):
  def __init__(self, channels: int = 1):
    super().__init__()
    self.net = nn.Sequential(
        nn.Conv2d(channels, 16, 4, 2, 1), _lrelu(),
        nn.Conv2d(16, 32, 4, 2, 1), _bn(32), _lrelu(),
        nn.Conv2d(32, 64, 3, 2, 0), _bn(64), _lrelu(),
        nn.Conv2d(64, 1, 3, 1, 0))

  def forward(self, x):
    return self.net(x).reshape(x.shape[0])


class Generator32(nn.Module):
  def __init__(self, latent_dim: int = 100, channels: int = 3, widths=(512, 256, 128, 64)):
    super().__init__()
    self.w0 = widths[0]
    self.dense = nn.Linear(latent_dim, 4 * 4 * widths[0])
    self.bn0 = _bn(widths[0])
    blocks = []
    for in_ch, features in zip(widths[:-1], widths[1:]):
      blocks += [nn.ConvTranspose2d(in_ch, features, 4, 2, 1), _bn(features), nn.ReLU()]
    blocks += [nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh()]
    self.net = nn.Sequential(*blocks)

  def forward(self, z):
    x = self.dense(z).reshape(-1, self.w0, 4, 4)
    return self.net(F.relu(self.bn0(x)))


class Discriminator32(nn.Module):
  def __init__(self, channels: int = 3, widths=(64, 128, 256, 512)):
    super().__init__()
    self.net = nn.Sequential(
        nn.Conv2d(channels, widths[0], 4, 2, 1), _lrelu(),
        nn.Conv2d(widths[0], widths[1], 4, 2, 1), _bn(widths[1]), _lrelu(),
        nn.Conv2d(widths[1], widths[2], 4, 2, 1), _bn(widths[2]), _lrelu(),
        nn.Conv2d(widths[2], widths[3], 3, 1, 1), _bn(widths[3]), _lrelu())
    self.dense = nn.Linear(4 * 4 * widths[3], 1)

  def forward(self, x):
    return self.dense(self.net(x).flatten(1)).reshape(x.shape[0])


class Generator64(nn.Module):
  def __init__(self, latent_dim: int = 100, channels: int = 3):
    super().__init__()
    self.dense = nn.Linear(latent_dim, 8 * 8 * 1024)
    self.bn0 = _bn(1024)
    blocks = []
    for in_ch, features in ((1024, 512), (512, 256), (256, 128)):
      blocks += [nn.ConvTranspose2d(in_ch, features, 4, 2, 1), _bn(features), _lrelu()]
    # TF's padding='SAME' for an even kernel: one row/column before, two after.
    blocks += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(128, channels, 4), nn.Tanh()]
    self.net = nn.Sequential(*blocks)

  def forward(self, z):
    x = self.dense(z).reshape(-1, 1024, 8, 8)
    return self.net(F.relu(self.bn0(x)))


class Discriminator64(nn.Module):
  def __init__(self, channels: int = 3):
    super().__init__()
    blocks, in_ch = [], channels
    for features, stride in ((128, 1), (256, 2), (512, 2), (1024, 2)):
      blocks += [nn.Conv2d(in_ch, features, 5, stride, 2), _bn(features), _lrelu()]
      in_ch = features
    self.net = nn.Sequential(*blocks)
    self.dense = nn.Linear(8 * 8 * 1024, 1)

  def forward(self, x):
    return self.dense(self.net(x).flatten(1)).reshape(x.shape[0])


MODELS = {
    'dcgan28': (Generator28, Discriminator28, (28, 28, 1)),
    'dcgan32': (Generator32, Discriminator32, (32, 32, 3)),
    'dcgan64': (Generator64, Discriminator64, (64, 64, 3)),
}


class TrainStep:
  """`step(real_uint8_nhwc)`: one D update then one G update, like gan_jax's default step."""

  def __init__(self, model: str, latent_dim: int = 100, lr: float = 2e-4,
               betas=(0.5, 0.999), seed: int = 0):
    torch.manual_seed(seed)
    g_cls, d_cls, shape = MODELS[model]
    self.image_shape = shape
    self.latent_dim = latent_dim
    self.G = g_cls(latent_dim=latent_dim, channels=shape[2])
    self.D = d_cls(channels=shape[2])
    self.g_opt = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
    self.d_opt = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)

  def __call__(self, real_uint8: torch.Tensor) -> dict:
    batch = real_uint8.shape[0]
    real = real_uint8.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    ones, zeros = torch.ones(batch), torch.zeros(batch)

    # D update: the generated batch is made by G in train mode and detached.
    with torch.no_grad():
      fake = self.G(torch.randn(batch, self.latent_dim))
    d_loss_real = F.binary_cross_entropy_with_logits(self.D(real), ones)
    d_loss_fake = F.binary_cross_entropy_with_logits(self.D(fake), zeros)
    self.d_opt.zero_grad(set_to_none=True)
    (d_loss_real + d_loss_fake).backward()
    self.d_opt.step()

    # G update on fresh noise, non-saturating loss.
    fake = self.G(torch.randn(batch, self.latent_dim))
    g_loss = F.binary_cross_entropy_with_logits(self.D(fake), ones)
    self.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    self.g_opt.step()
    # Losses stay tensors: reading them (.item()) would add a sync per step.
    return {'d_loss': d_loss_real + d_loss_fake, 'g_loss': g_loss}
