"""Pieces the zoo's G and D modules share: conditioning and spectral-norm hooks, conv stacks.

The hooks read the calling module's own fields (`num_classes`,
`conditioning`, `bn_momentum`, `spectral_norm`), so every model wires them
the same way. Everything here creates its layers inside the calling
module's compact `__call__`, in the order the models always created them,
so parameter names (auto-named per layer class) and checkpoints are those
of the models before these pieces were shared.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import layers


class ImageGenerator(nn.Module, kw_only=True):
  """The fields every image G of the zoo shares; a model adds its own (`widths`, ...) and `__call__`."""
  channels: int = 3
  num_classes: int = 0          # 0: unconditional
  bn_momentum: float = 0.9
  conditioning: str = 'concat'  # layers.G_CONDITIONINGS


class ImageDiscriminator(nn.Module, kw_only=True):
  """The fields every BatchNorm image D of the zoo shares; a model adds `widths` and `__call__`."""
  num_classes: int = 0
  bn_momentum: float = 0.9
  conditioning: str = 'concat'  # layers.D_CONDITIONINGS
  spectral_norm: bool = False
  # The minibatch layer before D's last layer (config.model.d_minibatch); none by default.
  minibatch: layers.Minibatch = layers.NO_MINIBATCH


def spectral_for(module: nn.Module, train: bool) -> Callable:
  """`sn(layer)`: `layer`, spectrally normalised when `module.spectral_norm` is set."""
  return functools.partial(layers.spectral, enabled=module.spectral_norm, train=train)


def generator_norm_for(module: nn.Module, labels, train: bool) -> Callable:
  """`norm()`: a new G BatchNorm, class-conditional under `module.conditioning='cbn'`."""
  return functools.partial(layers.generator_norm, train, module.bn_momentum, labels,
                           module.num_classes, module.conditioning)


def class_output(module: nn.Module, logits: jnp.ndarray, features: jnp.ndarray, labels,
                 train: bool):
  """D's output under `module.conditioning` (projection, ACGAN head) from logits and features."""
  return layers.discriminator_output(logits, features, labels, module.num_classes,
                                     module.conditioning, module.spectral_norm, train)


def up_convs(x: jnp.ndarray, convs: Iterable[tuple[int, int, int, int]], norm: Callable,
             use_bias: bool = True) -> jnp.ndarray:
  """x through ConvT(features, kernel, stride, padding), G's norm and ReLU, for each of `convs`."""
  for features, kernel, stride, padding in convs:
    x = layers.conv_transpose(features, kernel, stride, padding, use_bias=use_bias)(x)
    x = nn.relu(norm()(x))
  return x


def dcgan_up_convs(x: jnp.ndarray, widths, norm: Callable,
                   use_bias: bool = True) -> jnp.ndarray:
  """A vector as a 1x1 map -> ConvT widths[0] (k4, s1) 4x4 -> ConvT widths[1:] (k4, s2, p1)."""
  convs = [(widths[0], 4, 1, 0)] + [(features, 4, 2, 1) for features in widths[1:]]
  return up_convs(x[:, None, None, :], convs, norm, use_bias)


def conv_norm_lrelu(x: jnp.ndarray, conv: Callable, train: bool,
                    momentum: float) -> jnp.ndarray:
  """D's inner layer: `conv` (the caller's, spectrally normalised or not), BatchNorm, LeakyReLU."""
  return layers.leaky_relu(layers.batch_norm(train, momentum)(conv(x)))
