"""The vanilla MLP GAN on flattened images (the summer-school notes' MNIST model).

G: z -> 128 -> 256 -> 512 -> 1024 -> H*W*C with BatchNorm after every hidden
layer but the first, LeakyReLU(0.2) and tanh. D: H*W*C -> 512 -> 256 -> 1 with
LeakyReLU(0.2). The popular PyTorch version of this model passes 0.8 as
BatchNorm1d's second positional argument, which is epsilon, not momentum; we
use the standard epsilon.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import blocks, layers


class MLPGenerator(nn.Module, kw_only=True):
  image_shape: Sequence[int] = (28, 28, 1)
  num_classes: int = 0
  bn_momentum: float = 0.9
  widths: Sequence[int] = (128, 256, 512, 1024)
  conditioning: str = 'concat'

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    x = layers.concat_label(
        z, labels, layers.concat_classes(self.num_classes, self.conditioning))
    for i, width in enumerate(self.widths):
      x = layers.dense(width)(x)
      if i > 0:
        x = blocks.generator_norm_for(self, labels, train)()(x)
      x = layers.leaky_relu(x)
    x = layers.dense(math.prod(self.image_shape))(x)
    return jnp.tanh(x).reshape((-1, *self.image_shape))


class MLPDiscriminator(nn.Module, kw_only=True):
  num_classes: int = 0
  widths: Sequence[int] = (512, 256)
  conditioning: str = 'concat'
  spectral_norm: bool = False
  minibatch: layers.Minibatch = layers.NO_MINIBATCH   # before the logit layer

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = blocks.spectral_for(self, train)
    x = layers.concat_label(x.reshape(x.shape[0], -1), labels,
                            layers.concat_classes(self.num_classes, self.conditioning))
    for width in self.widths:
      x = layers.leaky_relu(sn(layers.dense(width))(x))
    x = layers.minibatch_features(x, self.minibatch)
    logits = sn(layers.dense(1))(x).reshape(x.shape[0])
    return blocks.class_output(self, logits, x, labels, train)
