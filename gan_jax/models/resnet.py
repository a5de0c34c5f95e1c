"""SNGAN ResNet generator and discriminator (Miyato et al. 2018; Miyato & Koyama 2018).

G: dense z -> bottom x bottom x c0, residual up-blocks (BN, ReLU, nearest 2x
upsampling, 3x3 conv, BN, ReLU, 3x3 conv; 1x1 conv shortcut), BN, ReLU, 3x3
conv, tanh. D: residual down-blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2
average pooling; the first block convolves before its first ReLU), ReLU,
global sum pooling, a dense logit; every D layer is spectrally normalised when
`spectral_norm` is set (the SNGAN default). Residual convs use Glorot-uniform
init with gain sqrt(2), shortcuts and the rest gain 1, as the authors' Chainer
code does.

Conditioning follows the same hooks as every model (see `layers`): under
'cbn' both BatchNorms of every G block are class-conditional (the output
BatchNorm stays plain, as in the projection paper's code); 'projection' and
'acgan' act on the pooled D features.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import blocks, layers


def _upsample(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _conv3(features, sn, **kwargs):
  return sn(layers.conv(features, 3, 1, 1, kernel_init=layers.glorot_relu_init, **kwargs))


def _conv1(features, sn):
  return sn(layers.conv(features, 1, 1, 0, kernel_init=layers.glorot_init))


class GeneratorBlock(nn.Module):
  features: int
  num_classes: int = 0
  conditioning: str = 'none'
  bn_momentum: float = 0.9
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, labels, *, train: bool):
    sn = blocks.spectral_for(self, train)
    norm = blocks.generator_norm_for(self, labels, train)
    h = _upsample(nn.relu(norm()(x)))
    h = _conv3(self.features, sn)(h)
    h = _conv3(self.features, sn)(nn.relu(norm()(h)))
    return h + _conv1(self.features, sn)(_upsample(x))


class DiscriminatorBlock(nn.Module):
  features: int
  downsample: bool = True
  first: bool = False            # SNGAN's "optimized" first block on the image
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, *, train: bool):
    sn = blocks.spectral_for(self, train)
    h = x if self.first else nn.relu(x)
    h = _conv3(self.features, sn)(h)
    h = _conv3(self.features, sn)(nn.relu(h))
    shortcut = x
    if self.first:
      shortcut = _conv1(self.features, sn)(_downsample(x))
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = _conv1(self.features, sn)(x)
    if self.downsample:
      h = _downsample(h)
      if not self.first:
        shortcut = _downsample(shortcut)
    return h + shortcut


class ResNetGenerator(blocks.ImageGenerator, kw_only=True):
  """`bottom`x`bottom`x`widths[0]` from z, then one up-block per entry of `widths[1:]`."""
  bottom: int = 4
  widths: Sequence[int] = (256, 256, 256, 256)
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.concat_label(
        z, labels, layers.concat_classes(self.num_classes, self.conditioning))
    x = sn(layers.dense(self.bottom ** 2 * self.widths[0],
                        kernel_init=layers.glorot_init))(x)
    x = x.reshape(-1, self.bottom, self.bottom, self.widths[0])
    for features in self.widths[1:]:
      x = GeneratorBlock(features=features, num_classes=self.num_classes,
                         conditioning=self.conditioning, bn_momentum=self.bn_momentum,
                         spectral_norm=self.spectral_norm)(x, labels, train=train)
    x = nn.relu(layers.batch_norm(train, self.bn_momentum)(x))
    x = sn(layers.conv(self.channels, 3, 1, 1, kernel_init=layers.glorot_init))(x)
    return jnp.tanh(x)


class ResNetDiscriminator(nn.Module, kw_only=True):
  """One block per entry of `widths`; `downsample[i]` halves the resolution in block i."""
  num_classes: int = 0
  widths: Sequence[int] = (128, 128, 128, 128)
  downsample: Sequence[bool] = (True, True, False, False)
  conditioning: str = 'concat'
  spectral_norm: bool = True
  minibatch: layers.Minibatch = layers.NO_MINIBATCH   # on the pooled features

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    x = layers.concat_label_maps(
        x, labels, layers.concat_classes(self.num_classes, self.conditioning))
    for i, (features, down) in enumerate(zip(self.widths, self.downsample)):
      x = DiscriminatorBlock(features=features, downsample=down, first=i == 0,
                             spectral_norm=self.spectral_norm)(x, train=train)
    features = jnp.sum(nn.relu(x), axis=(1, 2))      # global sum pooling
    features = layers.minibatch_features(features, self.minibatch)
    logits = layers.spectral(
        layers.dense(1, use_bias=False, kernel_init=layers.glorot_init),
        self.spectral_norm, train)(features).reshape(x.shape[0])
    return blocks.class_output(self, logits, features, labels, train)


# (G bottom size, G widths, D widths, D downsampling) of the published models:
# 32x32 from the CIFAR-10 experiments (ch 256 in G, 128 in D), 48x48 from the
# STL-10 ones, 64x64 from the projection paper's 64x64 ImageNet model (ch 64).
ARCHITECTURES = {
    32: (4, (256, 256, 256, 256), (128, 128, 128, 128), (True, True, False, False)),
    48: (6, (512, 256, 128, 64), (64, 128, 256, 512, 1024),
         (True, True, True, True, False)),
    64: (4, (1024, 512, 256, 128, 64), (64, 128, 256, 512, 1024),
         (True, True, True, True, True)),
}
