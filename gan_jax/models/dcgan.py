"""DCGAN generators and discriminators: the MNIST course report's 28x28 model and the standard 32x32 one.

Both are conditional when built with `num_classes > 0`: the one-hot class is
concatenated to G's noise and, as constant feature maps, to D's input.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import layers


class Generator28(nn.Module):
  """The MNIST report's G: z(1x1) -> 3 -> 7 -> 14 -> 28 by transposed convs."""
  channels: int = 1
  num_classes: int = 0
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    x = layers.concat_label(z, labels, self.num_classes)[:, None, None, :]
    # (features, kernel, stride, padding) of torch.nn.ConvTranspose2d.
    for features, kernel, stride, padding in ((64, 3, 1, 0), (32, 3, 2, 0),
                                              (16, 4, 2, 1)):
      x = layers.conv_transpose(features, kernel, stride, padding)(x)
      x = layers.batch_norm(train, self.bn_momentum)(x)
      x = nn.relu(x)
    x = layers.conv_transpose(self.channels, 4, 2, 1)(x)
    return jnp.tanh(x)


class Discriminator28(nn.Module):
  """The MNIST report's D: 28 -> 14 -> 7 -> 3 -> 1 logit, mirroring G."""
  num_classes: int = 0
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    x = layers.concat_label_maps(x, labels, self.num_classes)
    x = layers.leaky_relu(layers.conv(16, 4, 2, 1)(x))
    for features, kernel, stride, padding in ((32, 4, 2, 1), (64, 3, 2, 0)):
      x = layers.conv(features, kernel, stride, padding)(x)
      x = layers.batch_norm(train, self.bn_momentum)(x)
      x = layers.leaky_relu(x)
    x = layers.conv(1, 3, 1, 0)(x)
    return x.reshape(x.shape[0])


class Generator32(nn.Module):
  """Standard DCGAN G for 32x32: dense to 4x4x512, three stride-2 up-convs, 3x3 conv."""
  channels: int = 3
  num_classes: int = 0
  bn_momentum: float = 0.9
  widths: Sequence[int] = (512, 256, 128, 64)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    x = layers.concat_label(z, labels, self.num_classes)
    x = layers.dense(4 * 4 * self.widths[0])(x).reshape(-1, 4, 4, self.widths[0])
    x = nn.relu(layers.batch_norm(train, self.bn_momentum)(x))
    for features in self.widths[1:]:
      x = layers.conv_transpose(features, 4, 2, 1)(x)
      x = nn.relu(layers.batch_norm(train, self.bn_momentum)(x))
    x = layers.conv(self.channels, 3, 1, 1)(x)
    return jnp.tanh(x)


class Discriminator32(nn.Module):
  """Standard DCGAN D for 32x32: convs 64 -> 512 with LeakyReLU, then a dense logit."""
  num_classes: int = 0
  bn_momentum: float = 0.9
  widths: Sequence[int] = (64, 128, 256, 512)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    x = layers.concat_label_maps(x, labels, self.num_classes)
    x = layers.leaky_relu(layers.conv(self.widths[0], 4, 2, 1)(x))   # 16x16
    for features in self.widths[1:-1]:                                 # 8x8, 4x4
      x = layers.conv(features, 4, 2, 1)(x)
      x = layers.leaky_relu(layers.batch_norm(train, self.bn_momentum)(x))
    x = layers.conv(self.widths[-1], 3, 1, 1)(x)                       # 4x4
    x = layers.leaky_relu(layers.batch_norm(train, self.bn_momentum)(x))
    x = layers.dense(1)(x.reshape(x.shape[0], -1))
    return x.reshape(x.shape[0])
