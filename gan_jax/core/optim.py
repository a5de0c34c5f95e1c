"""Optimizers for G and D, built from `config.optim.g` and `config.optim.d` by name.

`weight_decay` follows PyTorch: for `adam` and `sgd` it is an L2 term added to
the gradient before the update; for `adamw` it is decoupled. `lr_schedule`
'linear' decays the learning rate linearly from `lr` to 0 over the network's
updates in the whole run (SNGAN's schedule), 'constant' keeps it; it scales
the optimizer's final update, which for these optimizers is the same as
scaling `lr`.

`schedule.lr` and `schedule.b2` move `lr` and Adam's `b2` over the run
(`gan_jax.core.schedules`: linear or cosine to an end value over some images
or steps; R3GAN's lr 2e-4 -> 5e-5 and b2 0.9 -> 0.99). A scheduled optimizer
is built with `optax.inject_hyperparams`, which evaluates the schedules at
every update from the network's update count, converted to the training step
(count // updates per step, so every update of a step sees the step's value,
as R3GAN sets them once per iteration). With both specs constant (the
default) the optimizer is built as before, bit for bit. A 'linear'
`lr_schedule` and a scheduled `lr` are exclusive.
"""

from __future__ import annotations

import ml_collections
import optax

from gan_jax import errors
from gan_jax.core import schedules
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


def build(cfg: ml_collections.ConfigDict, total_updates: int = 0, *,
          images_per_step: float = 0, updates_per_step: int = 1,
          key: str = 'optim.{g,d}') -> optax.GradientTransformation:
  """The optimizer of `cfg`; `total_updates` (this network's updates in the run) sets the schedule.

  `images_per_step` (train.batch_size x train.n_disc) and `updates_per_step`
  (this network's updates per training step) place `cfg.schedule`'s specs
  on the training clock; `key` names `cfg` in errors ('optim.g').
  """
  if cfg.lr <= 0:
    raise errors.ConfigError(f'Learning rate must be positive, got lr={cfg.lr}.')
  if cfg.lr_schedule not in SCHEDULES:
    raise errors.ConfigError(f'lr_schedule={cfg.lr_schedule!r} is not one of '
                             f'{", ".join(SCHEDULES)}.')
  if cfg.lr_schedule == 'linear' and total_updates < 1:
    raise errors.ConfigError("lr_schedule='linear' needs the run's length in updates.")
  lr, b2 = (schedules.of(cfg, name, key, images_per_step) for name in ('lr', 'b2'))
  if lr.constant and b2.constant:
    return with_schedule(OPTIMIZERS.get(cfg.name)(cfg), cfg.lr_schedule, total_updates)
  if not lr.constant and cfg.lr_schedule != 'constant':
    raise errors.ConfigError(
        f"config.{key}.lr_schedule={cfg.lr_schedule!r} and config.{key}.schedule.lr "
        f"(kind={lr.kind!r}) both move the learning rate: keep one.")
  return with_schedule(_scheduled(cfg, lr, b2, updates_per_step, key), cfg.lr_schedule,
                       total_updates)


# Optimizers whose hyperparameters a schedule can move, and which of them.
_SCHEDULABLE = {'adam': ('lr', 'b2'), 'adamw': ('lr', 'b2'), 'sgd': ('lr',)}


def _scheduled(cfg, lr: schedules.Schedule, b2: schedules.Schedule, updates_per_step: int,
               key: str) -> optax.GradientTransformation:
  """`cfg`'s optimizer with `lr` and `b2` evaluated at every update (optax.inject_hyperparams)."""
  moving = [name for name, s in (('lr', lr), ('b2', b2)) if not s.constant]
  allowed = _SCHEDULABLE.get(cfg.name, ())
  refused = [name for name in moving if name not in allowed]
  if refused:
    raise errors.ConfigError(
        f'config.{key}.schedule.{refused[0]} moves {refused[0]}, which optimizer '
        f'{cfg.name!r} cannot schedule; schedules apply to '
        + ', '.join(f'{n} ({", ".join(k)})' for n, k in _SCHEDULABLE.items()) + '.')

  def on_steps(schedule):
    # optax counts this network's updates; the schedules count training steps.
    return schedule.start if schedule.constant else (
        lambda count: schedule(count // updates_per_step))

  if cfg.name == 'sgd':
    return _with_l2(cfg, optax.inject_hyperparams(optax.sgd)(
        learning_rate=on_steps(lr), momentum=cfg.b1 or None))
  if cfg.name == 'adamw':
    return optax.inject_hyperparams(optax.adamw)(
        learning_rate=on_steps(lr), b1=cfg.b1, b2=on_steps(b2), eps=cfg.eps,
        weight_decay=cfg.weight_decay)
  return _with_l2(cfg, optax.inject_hyperparams(optax.adam)(
      learning_rate=on_steps(lr), b1=cfg.b1, b2=on_steps(b2), eps=cfg.eps))


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
