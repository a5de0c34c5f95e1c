"""DCGANs at 64x64: Radford et al.'s (CelebA, as in the PyTorch tutorial) and the cats/anime report's wider one.

`Generator64` / `Discriminator64` (model `dcgan64`): G z(1x1) -> ConvT 512
(k4, s1) 4x4 -> 256 -> 128 -> 64 (k4, s2, p1) -> ConvT 3 (k4, s2, p1) 64x64,
BatchNorm and ReLU between, tanh out; D mirrors it: conv 64 (k4, s2, p1,
LeakyReLU 0.2, no BatchNorm) -> 128 -> 256 -> 512 (BatchNorm, LeakyReLU) ->
conv 1 (k4, s1, p0) logit.

`WideGenerator64` / `WideDiscriminator64` (model `dcgan64_wide`), the
TensorFlow code of ../shared/reports/dcgan64-cats-anime-report.txt:
G dense z -> 8x8x1024, BatchNorm, ReLU; ConvT 512/256/128 (k4, s2, 'SAME'),
each BatchNorm and LeakyReLU; conv 3 (k4, s1, 'SAME'); tanh. D: 5x5 convs
128/256/512/1024 with strides 1/2/2/2 ('SAME'), each BatchNorm and
LeakyReLU; flatten; dense logit. TF's default initialiser (Glorot uniform,
zero bias) and padding are kept. Gaussian instance noise on D's input is
`config.augment`'s 'instance_noise', not part of the model.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import blocks, layers


class Generator64(blocks.ImageGenerator, kw_only=True):
  """Radford et al.'s DCGAN G for 64x64."""
  widths: Sequence[int] = (512, 256, 128, 64)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    norm = blocks.generator_norm_for(self, labels, train)
    x = layers.condition_vector(z, labels, self.num_classes, self.conditioning)
    x = blocks.dcgan_up_convs(x, self.widths, norm, use_bias=False)
    return jnp.tanh(layers.conv_transpose(self.channels, 4, 2, 1, use_bias=False)(x))


class Discriminator64(blocks.ImageDiscriminator, kw_only=True):
  """Radford et al.'s DCGAN D for 64x64."""
  widths: Sequence[int] = (64, 128, 256, 512)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.condition_maps(x, labels, self.num_classes, self.conditioning)
    x = layers.leaky_relu(sn(layers.conv(self.widths[0], 4, 2, 1, use_bias=False))(x))
    for features in self.widths[1:]:
      x = blocks.conv_norm_lrelu(x, sn(layers.conv(features, 4, 2, 1, use_bias=False)),
                                 train, self.bn_momentum)
    x = layers.minibatch_features(x, self.minibatch)
    features = x.reshape(x.shape[0], -1)   # the 4x4 conv below is linear in these
    logits = sn(layers.conv(1, 4, 1, 0, use_bias=False))(x).reshape(x.shape[0])
    return blocks.class_output(self, logits, features, labels, train)


def _tf_conv_transpose(features: int) -> nn.ConvTranspose:
  return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME',
                          kernel_init=layers.glorot_init)


def _tf_conv(features: int, kernel: int, stride: int) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding='SAME',
                 kernel_init=layers.glorot_init)


class WideGenerator64(blocks.ImageGenerator, kw_only=True):
  """The cats/anime report's G: dense to 8x8x1024, three ConvT to 64x64, k4 conv, tanh."""
  bn_momentum: float = 0.99
  widths: Sequence[int] = (1024, 512, 256, 128)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    norm = blocks.generator_norm_for(self, labels, train)
    x = layers.condition_vector(z, labels, self.num_classes, self.conditioning)
    x = layers.dense(8 * 8 * self.widths[0], kernel_init=layers.glorot_init)(x)
    x = nn.relu(norm()(x)).reshape(-1, 8, 8, self.widths[0])
    for features in self.widths[1:]:
      x = layers.leaky_relu(norm()(_tf_conv_transpose(features)(x)))
    return jnp.tanh(_tf_conv(self.channels, 4, 1)(x))


class WideDiscriminator64(blocks.ImageDiscriminator, kw_only=True):
  """The cats/anime report's D: 5x5 convs 128 -> 1024 (strides 1, 2, 2, 2), BatchNorm, LeakyReLU, dense logit."""
  bn_momentum: float = 0.99
  widths: Sequence[int] = (128, 256, 512, 1024)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.condition_maps(x, labels, self.num_classes, self.conditioning)
    for features, stride in zip(self.widths, (1, 2, 2, 2)):
      x = blocks.conv_norm_lrelu(x, sn(_tf_conv(features, 5, stride)), train, self.bn_momentum)
    x = layers.minibatch_features(x, self.minibatch)
    features = x.reshape(x.shape[0], -1)
    logits = sn(layers.dense(1, kernel_init=layers.glorot_init))(features).reshape(x.shape[0])
    return blocks.class_output(self, logits, features, labels, train)
