"""The 2D lab's networks (the report's section 3): three dense layers with LeakyReLU.

G: z (2) -> hidden -> hidden -> 2, a linear output, since targets such as the
25-grid reach past [-1, 1]. D: x (2) -> hidden -> hidden -> 1 logit.
`layers` sets the number of hidden layers (2 in the report; PacGAN's 2D
networks have 4 of 400 units). No BatchNorm, so both are plain functions of
their parameters.
"""

from __future__ import annotations

import flax.linen as nn

from gan_jax.models import layers


class _MLP(nn.Module):
  hidden: int
  out: int
  layers: int = 2

  @nn.compact
  def __call__(self, x):
    for _ in range(self.layers):
      x = layers.leaky_relu(layers.dense(self.hidden)(x))
    return layers.dense(self.out)(x)


class MLP2DGenerator(nn.Module, kw_only=True):
  dim: int = 2
  hidden: int = 128
  layers: int = 2

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    del labels, train
    return _MLP(self.hidden, self.dim, self.layers)(z)


class MLP2DDiscriminator(nn.Module, kw_only=True):
  hidden: int = 128
  layers: int = 2

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    del labels, train
    return _MLP(self.hidden, 1, self.layers)(x).reshape(x.shape[0])
