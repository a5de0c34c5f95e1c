"""Optimizers for G and D, built from `config.optim.g` and `config.optim.d` by name.

`weight_decay` follows PyTorch: for `adam` and `sgd` it is an L2 term added to
the gradient before the update; for `adamw` it is decoupled.
"""

from __future__ import annotations

import ml_collections
import optax

from gan_jax import errors
from gan_jax.registry import Registry

OPTIMIZERS = Registry('optimizer', 'config.optim.{g,d}.name')


def _with_l2(cfg, tx: optax.GradientTransformation) -> optax.GradientTransformation:
  if cfg.weight_decay:
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay), tx)
  return tx


@OPTIMIZERS.register('adam')
def _adam(cfg):
  return _with_l2(cfg, optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))


@OPTIMIZERS.register('adamw')
def _adamw(cfg):
  return optax.adamw(cfg.lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                     weight_decay=cfg.weight_decay)


@OPTIMIZERS.register('sgd')
def _sgd(cfg):
  return _with_l2(cfg, optax.sgd(cfg.lr, momentum=cfg.b1 or None))


def build(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  if cfg.lr <= 0:
    raise errors.ConfigError(f'Learning rate must be positive, got lr={cfg.lr}.')
  return OPTIMIZERS.get(cfg.name)(cfg)
