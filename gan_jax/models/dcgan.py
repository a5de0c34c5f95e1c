"""DCGAN generators and discriminators: the MNIST course report's 28x28 model and the standard 32x32 one.

Both are conditional when built with `num_classes > 0`, in the way their
`conditioning` names (see `layers`): by default the one-hot class is
concatenated to G's noise and, as constant feature maps, to D's input.
`spectral_norm=True` spectrally normalises every layer of D.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import layers


class Generator28(nn.Module):
  """The MNIST report's G: z(1x1) -> 3 -> 7 -> 14 -> 28 by transposed convs."""
  channels: int = 1
  num_classes: int = 0
  bn_momentum: float = 0.9
  conditioning: str = 'concat'
  widths: Sequence[int] = (64, 32, 16)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    x = layers.concat_label(
        z, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = x[:, None, None, :]
    norm = functools.partial(layers.generator_norm, train, self.bn_momentum, labels,
                             self.num_classes, self.conditioning)
    # (features, kernel, stride, padding) of torch.nn.ConvTranspose2d.
    for features, (kernel, stride, padding) in zip(self.widths, ((3, 1, 0), (3, 2, 0),
                                                                (4, 2, 1))):
      x = layers.conv_transpose(features, kernel, stride, padding)(x)
      x = norm()(x)
      x = nn.relu(x)
    x = layers.conv_transpose(self.channels, 4, 2, 1)(x)
    return jnp.tanh(x)


class Discriminator28(nn.Module):
  """The MNIST report's D: 28 -> 14 -> 7 -> 3 -> 1 logit, mirroring G."""
  num_classes: int = 0
  bn_momentum: float = 0.9
  conditioning: str = 'concat'
  spectral_norm: bool = False
  widths: Sequence[int] = (16, 32, 64)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = functools.partial(layers.spectral, enabled=self.spectral_norm, train=train)
    x = layers.concat_label_maps(
        x, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = layers.leaky_relu(sn(layers.conv(self.widths[0], 4, 2, 1))(x))
    for features, (kernel, stride, padding) in zip(self.widths[1:], ((4, 2, 1), (3, 2, 0))):
      x = sn(layers.conv(features, kernel, stride, padding))(x)
      x = layers.batch_norm(train, self.bn_momentum)(x)
      x = layers.leaky_relu(x)
    features = x.reshape(x.shape[0], -1)   # the 3x3 conv below is linear in these
    logits = sn(layers.conv(1, 3, 1, 0))(x).reshape(x.shape[0])
    return layers.discriminator_output(logits, features, labels, self.num_classes,
                                       self.conditioning, self.spectral_norm, train)


class Generator32(nn.Module):
  """Standard DCGAN G for 32x32: dense to 4x4x512, three stride-2 up-convs, 3x3 conv."""
  channels: int = 3
  num_classes: int = 0
  bn_momentum: float = 0.9
  widths: Sequence[int] = (512, 256, 128, 64)
  conditioning: str = 'concat'

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    norm = functools.partial(layers.generator_norm, train, self.bn_momentum, labels,
                             self.num_classes, self.conditioning)
    x = layers.concat_label(
        z, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = layers.dense(4 * 4 * self.widths[0])(x).reshape(-1, 4, 4, self.widths[0])
    x = nn.relu(norm()(x))
    for features in self.widths[1:]:
      x = layers.conv_transpose(features, 4, 2, 1)(x)
      x = nn.relu(norm()(x))
    x = layers.conv(self.channels, 3, 1, 1)(x)
    return jnp.tanh(x)


class Discriminator32(nn.Module):
  """Standard DCGAN D for 32x32: convs 64 -> 512 with LeakyReLU, then a dense logit."""
  num_classes: int = 0
  bn_momentum: float = 0.9
  widths: Sequence[int] = (64, 128, 256, 512)
  conditioning: str = 'concat'
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = functools.partial(layers.spectral, enabled=self.spectral_norm, train=train)
    x = layers.concat_label_maps(
        x, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = layers.leaky_relu(sn(layers.conv(self.widths[0], 4, 2, 1))(x))   # 16x16
    for features in self.widths[1:-1]:                                     # 8x8, 4x4
      x = sn(layers.conv(features, 4, 2, 1))(x)
      x = layers.leaky_relu(layers.batch_norm(train, self.bn_momentum)(x))
    x = sn(layers.conv(self.widths[-1], 3, 1, 1))(x)                       # 4x4
    x = layers.leaky_relu(layers.batch_norm(train, self.bn_momentum)(x))
    features = x.reshape(x.shape[0], -1)
    logits = sn(layers.dense(1))(features).reshape(x.shape[0])
    return layers.discriminator_output(logits, features, labels, self.num_classes,
                                       self.conditioning, self.spectral_norm, train)
