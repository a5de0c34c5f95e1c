"""Adversarial losses, registered by name (`config.loss.name`), all computed from D's logits.

With D(x) = sigmoid(l):
  minimax        D: -log D(x) - log(1 - D(G(z)))     G: log(1 - D(G(z)))
  nonsaturating  D: as minimax                       G: -log D(G(z))
Each function returns per-example losses; the step averages them, and D's
total loss is mean(d_real) + mean(d_fake), as in the reference PyTorch code.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from gan_jax.registry import Registry

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class GANLoss:
  d_real: Callable[[Array], Array]   # D's loss on real logits
  d_fake: Callable[[Array], Array]   # D's loss on generated logits
  g: Callable[[Array], Array]        # G's loss on generated logits


LOSSES: Registry[GANLoss] = Registry('loss', 'config.loss.name')


def _bce_real(logits: Array) -> Array:
  return optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits))


def _bce_fake(logits: Array) -> Array:
  return optax.sigmoid_binary_cross_entropy(logits, jnp.zeros_like(logits))


LOSSES.register('minimax')(GANLoss(
    d_real=_bce_real, d_fake=_bce_fake, g=lambda logits: -_bce_fake(logits)))

LOSSES.register('nonsaturating')(GANLoss(
    d_real=_bce_real, d_fake=_bce_fake, g=_bce_real))
