"""The CIFAR-10 A8 report's GAN: a CIFAR-style ResNet-18 discriminator and a transposed-conv generator.

The report (../shared/reports/gan-cgan-cifar10-a8-report.txt) gives D as
"ResNet-18 + a dense layer + sigmoid" and G as "transposed-conv blocks with
BatchNorm and ReLU, then average pooling, a dense layer and tanh", without
widths. Resolved here:
  D  the CIFAR variant of ResNet-18 (3x3 stem, stride 1, no max-pool; four
     stages of two basic blocks, 64/128/256/512 channels, strides 1/2/2/2;
     global average pooling), as in the widely used kuangliu/pytorch-cifar
     model, then a dense layer to one logit (the sigmoid is in the loss).
     At full width it has 11,169,345 parameters.
  G  z as a 1x1 map -> ConvT 512 (k4, s1) 4x4 -> ConvT 256/128/64 (k4, s2,
     p1) to 32x32, each with BatchNorm and ReLU; average pooling to 4x4
     (`pooled_size`); dense to H*W*C; tanh.
Conditioning follows `layers`; the report's own is 'embed' for both.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import blocks, layers


class BasicBlock(nn.Module):
  """ResNet's basic block: two 3x3 convs with BatchNorm, and a 1x1 projection when the shape changes."""
  features: int
  stride: int
  bn_momentum: float
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, *, train: bool):
    sn = blocks.spectral_for(self, train)
    norm = functools.partial(layers.batch_norm, train, self.bn_momentum)
    y = sn(layers.conv(self.features, 3, self.stride, 1, use_bias=False))(x)
    y = nn.relu(norm()(y))
    y = sn(layers.conv(self.features, 3, 1, 1, use_bias=False))(y)
    y = norm()(y)
    if self.stride != 1 or x.shape[-1] != self.features:
      x = sn(layers.conv(self.features, 1, self.stride, 0, use_bias=False,
                         name='shortcut'))(x)
      x = norm(name='shortcut_norm')(x)
    return nn.relu(x + y)


class ResNet18Discriminator(blocks.ImageDiscriminator, kw_only=True):
  """CIFAR-style ResNet-18 backbone, global average pooling, dense logit."""
  widths: Sequence[int] = (64, 128, 256, 512)
  conditioning: str = 'embed'

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.condition_maps(x, labels, self.num_classes, self.conditioning)
    x = sn(layers.conv(self.widths[0], 3, 1, 1, use_bias=False))(x)
    x = nn.relu(layers.batch_norm(train, self.bn_momentum)(x))
    for stage, features in enumerate(self.widths):
      for block in range(2):
        stride = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(features=features, stride=stride, bn_momentum=self.bn_momentum,
                       spectral_norm=self.spectral_norm)(x, train=train)
    features = layers.minibatch_features(jnp.mean(x, axis=(1, 2)), self.minibatch)
    logits = sn(layers.dense(1))(features).reshape(x.shape[0])
    return blocks.class_output(self, logits, features, labels, train)


class AvgPoolGenerator(nn.Module, kw_only=True):
  """Transposed-conv blocks (BatchNorm, ReLU) to full size, average pooling, dense, tanh."""
  image_shape: Sequence[int] = (32, 32, 3)
  num_classes: int = 0
  bn_momentum: float = 0.9
  widths: Sequence[int] = (512, 256, 128, 64)
  conditioning: str = 'embed'
  pooled_size: int = 4

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    norm = blocks.generator_norm_for(self, labels, train)
    x = layers.condition_vector(z, labels, self.num_classes, self.conditioning)
    x = blocks.dcgan_up_convs(x, self.widths, norm)   # 4x4, then x2 each
    window = x.shape[1] // self.pooled_size
    x = nn.avg_pool(x, (window, window), strides=(window, window))
    height, width, channels = self.image_shape
    x = layers.dense(height * width * channels)(x.reshape(x.shape[0], -1))
    return jnp.tanh(x).reshape(-1, height, width, channels)
