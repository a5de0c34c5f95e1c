"""Optimizers for G and D, built from `config.optim.g` and `config.optim.d` by name.

`weight_decay` follows PyTorch: for `adam` and `sgd` it is an L2 term added to
the gradient before the update; for `adamw` it is decoupled. `lr_schedule`
'linear' decays the learning rate linearly from `lr` to 0 over the network's
updates in the whole run (SNGAN's schedule), 'constant' keeps it; it scales
the optimizer's final update, which for these optimizers is the same as
scaling `lr`.
"""

from __future__ import annotations

import ml_collections
import optax

from gan_jax import errors
from gan_jax.registry import Registry

OPTIMIZERS = Registry('optimizer', 'config.optim.{g,d}.name')


SCHEDULES = ('constant', 'linear')


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


def build(cfg: ml_collections.ConfigDict,
          total_updates: int = 0) -> optax.GradientTransformation:
  """The optimizer of `cfg`; `total_updates` (this network's updates in the run) sets the schedule."""
  if cfg.lr <= 0:
    raise errors.ConfigError(f'Learning rate must be positive, got lr={cfg.lr}.')
  if cfg.lr_schedule not in SCHEDULES:
    raise errors.ConfigError(f'lr_schedule={cfg.lr_schedule!r} is not one of '
                             f'{", ".join(SCHEDULES)}.')
  if cfg.lr_schedule == 'linear' and total_updates < 1:
    raise errors.ConfigError("lr_schedule='linear' needs the run's length in updates.")
  return with_schedule(OPTIMIZERS.get(cfg.name)(cfg), cfg.lr_schedule, total_updates)


def updates_in_run(train_config: ml_collections.ConfigDict, net: str) -> int:
  """Updates of network `net` ('g' or 'd') in the whole run: what a linear schedule decays over."""
  return train_config.num_steps * (train_config.n_gen if net == 'g' else train_config.n_disc)


def with_schedule(tx: optax.GradientTransformation, schedule: str,
                  total_updates: int) -> optax.GradientTransformation:
  """`tx` with its updates scaled by `schedule` (unchecked: `build` validates the config)."""
  if schedule == 'linear':
    tx = optax.chain(tx, optax.scale_by_schedule(
        optax.linear_schedule(1.0, 0.0, total_updates)))
  return tx
