"""PacGAN's 2D networks (Lin et al., NeurIPS 2018, section 5.1; fjxmlzn/PacGAN, synthetic_data_experiments).

The networks PacGAN (and VEEGAN before it) trained on the 2D-ring and the
2D-grid, as the authors' code builds them with Blocks:

  G: z (2) -> 4 x [Linear 400 (no bias) -> BatchNorm -> ReLU] -> Linear 2
  D: x (2 m) -> 3 x [LinearMaxout 200, 5 pieces] -> Linear 1 logit

Weights start from N(0, 0.02^2) and biases from 0 (the authors'
`weights_init_std`, `biases_init`); G's hidden layers have no bias, since
BatchNorm's shift takes its place. G's BatchNorm keeps running statistics
with momentum 0.95 there (`m * 0.05 + p * 0.95`: `config.model.bn_momentum`)
and samples with them at evaluation, as the authors' figures and metrics do.
Blocks' BatchNormalization has epsilon 1e-4, kept here.

D flattens whatever it is given to one row per example, so its first layer
takes its input width from the data: 2 for plain points, 2 m when packing
(PacGAN-m) hands it m points side by side, (B, 2 m) or (B, m, 2).

`model.width_scale` scales both widths (400 and 200) for smaller or larger
versions of the same networks; the depths and the 5 maxout pieces are fixed.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

G_HIDDEN, G_LAYERS = 400, 4
D_HIDDEN, D_LAYERS, D_PIECES = 200, 3, 5
INIT_STD = 0.02          # the authors' IsotropicGaussian(0.02)
BN_EPSILON = 1e-4        # Blocks' BatchNormalization default
PAPER_BN_MOMENTUM = 0.95  # their population-statistics update: p <- 0.95 p + 0.05 m

_init = nn.initializers.normal(INIT_STD)


def _dense(features: int, use_bias: bool = True, name: str | None = None) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, kernel_init=_init,
                  bias_init=nn.initializers.zeros, name=name)


class LinearMaxout(nn.Module):
  """Blocks' LinearMaxout: a linear map to `features * pieces` units, then the max over pieces."""
  features: int
  pieces: int = D_PIECES

  @nn.compact
  def __call__(self, x):
    y = _dense(self.features * self.pieces, name='linear')(x)
    # Blocks groups the units as (features, pieces); grouping them as
    # (pieces, features) is the same family of functions (a permutation of
    # the kernel's columns, drawn i.i.d.), and on CPU XLA takes the max over
    # a leading axis several times faster than over a trailing one of 5.
    return jnp.max(y.reshape(*y.shape[:-1], self.pieces, self.features), axis=-2)


class PacGAN2DGenerator(nn.Module, kw_only=True):
  dim: int = 2
  hidden: int = G_HIDDEN
  layers: int = G_LAYERS
  bn_momentum: float = PAPER_BN_MOMENTUM

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    del labels
    x = z
    for i in range(self.layers):
      x = _dense(self.hidden, use_bias=False, name=f'h{i + 1}')(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=BN_EPSILON, name=f'bn{i + 1}')(x)
      x = nn.relu(x)
    return _dense(self.dim, name='out')(x)


class PacGAN2DDiscriminator(nn.Module, kw_only=True):
  hidden: int = D_HIDDEN
  layers: int = D_LAYERS
  pieces: int = D_PIECES

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    del labels, train
    x = x.reshape(x.shape[0], -1)   # packed points side by side: (B, m, 2) -> (B, 2m)
    for i in range(self.layers):
      x = LinearMaxout(self.hidden, self.pieces, name=f'h{i + 1}')(x)
    return _dense(1, name='out')(x).reshape(x.shape[0])


def build(*, image_shape, width_scale: float = 1.0, bn_momentum: float = PAPER_BN_MOMENTUM,
          **_) -> tuple[nn.Module, nn.Module]:
  """(G, D) for points of `image_shape` ((2,)); `width_scale` scales 400 and 200."""
  return (PacGAN2DGenerator(dim=image_shape[0], hidden=max(1, round(G_HIDDEN * width_scale)),
                            bn_momentum=bn_momentum),
          PacGAN2DDiscriminator(hidden=max(1, round(D_HIDDEN * width_scale))))
