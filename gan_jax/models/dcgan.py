"""DCGAN generators and discriminators: the MNIST course report's 28x28 model and the standard 32x32 one.

Both are conditional when built with `num_classes > 0`, in the way their
`conditioning` names (see `layers`): by default the one-hot class is
concatenated to G's noise and, as constant feature maps, to D's input.
`spectral_norm=True` spectrally normalises every layer of D.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import blocks, layers


class Generator28(blocks.ImageGenerator, kw_only=True):
  """The MNIST report's G: z(1x1) -> 3 -> 7 -> 14 -> 28 by transposed convs."""
  channels: int = 1
  widths: Sequence[int] = (64, 32, 16)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    x = layers.concat_label(
        z, labels, layers.concat_classes(self.num_classes, self.conditioning))
    norm = blocks.generator_norm_for(self, labels, train)
    # (features, kernel, stride, padding) of torch.nn.ConvTranspose2d.
    convs = [(features, *conv) for features, conv in zip(
        self.widths, ((3, 1, 0), (3, 2, 0), (4, 2, 1)))]
    x = blocks.up_convs(x[:, None, None, :], convs, norm)
    x = layers.conv_transpose(self.channels, 4, 2, 1)(x)
    return jnp.tanh(x)


class Discriminator28(blocks.ImageDiscriminator, kw_only=True):
  """The MNIST report's D: 28 -> 14 -> 7 -> 3 -> 1 logit, mirroring G."""
  widths: Sequence[int] = (16, 32, 64)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.concat_label_maps(
        x, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = layers.leaky_relu(sn(layers.conv(self.widths[0], 4, 2, 1))(x))
    for features, (kernel, stride, padding) in zip(self.widths[1:], ((4, 2, 1), (3, 2, 0))):
      x = blocks.conv_norm_lrelu(x, sn(layers.conv(features, kernel, stride, padding)),
                                 train, self.bn_momentum)
    x = layers.minibatch_features(x, self.minibatch)
    features = x.reshape(x.shape[0], -1)   # the 3x3 conv below is linear in these
    logits = sn(layers.conv(1, 3, 1, 0))(x).reshape(x.shape[0])
    return blocks.class_output(self, logits, features, labels, train)


class Generator32(blocks.ImageGenerator, kw_only=True):
  """Standard DCGAN G for 32x32: dense to 4x4x512, three stride-2 up-convs, 3x3 conv."""
  widths: Sequence[int] = (512, 256, 128, 64)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    norm = blocks.generator_norm_for(self, labels, train)
    x = layers.concat_label(
        z, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = layers.dense(4 * 4 * self.widths[0])(x).reshape(-1, 4, 4, self.widths[0])
    x = nn.relu(norm()(x))
    x = blocks.up_convs(x, [(features, 4, 2, 1) for features in self.widths[1:]], norm)
    x = layers.conv(self.channels, 3, 1, 1)(x)
    return jnp.tanh(x)


class Discriminator32(blocks.ImageDiscriminator, kw_only=True):
  """Standard DCGAN D for 32x32: convs 64 -> 512 with LeakyReLU, then a dense logit."""
  widths: Sequence[int] = (64, 128, 256, 512)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.concat_label_maps(
        x, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = layers.leaky_relu(sn(layers.conv(self.widths[0], 4, 2, 1))(x))   # 16x16
    convs = [(features, 4, 2, 1) for features in self.widths[1:-1]]        # 8x8, 4x4
    for features, kernel, stride, padding in convs + [(self.widths[-1], 3, 1, 1)]:   # 4x4
      x = blocks.conv_norm_lrelu(x, sn(layers.conv(features, kernel, stride, padding)),
                                 train, self.bn_momentum)
    x = layers.minibatch_features(x, self.minibatch)
    features = x.reshape(x.shape[0], -1)
    logits = sn(layers.dense(1))(features).reshape(x.shape[0])
    return blocks.class_output(self, logits, features, labels, train)
