"""Values that move over training: a start value and a schedule spec that says how it reaches an end value.

A value that can move has a spec beside it, in a `schedule` dict of its
config group, under the value's own name:

  optim.{g,d}.lr, optim.{g,d}.b2   optim.{g,d}.schedule.{lr,b2}
  reg.NAME.weight                   reg.NAME.schedule.weight (r1 and r2 have one;
                                    a regulariser without one keeps its weight)
  augment.ada.p (adapt=False)       augment.ada.schedule.p
  train.ema_half_life               train.schedule.ema_half_life

A spec (`spec()`, the base config's `schedule_spec()`) has four keys:
  kind    constant (the default: the value stays what its key says, and the
          code path is the one without schedules, bit for bit) | linear | cosine
  end     the value at the end of the schedule
  length  how long the move takes, in `unit`s; after it the value stays at `end`
  unit    images (real images D has seen before the step: step x
          train.batch_size x train.n_disc) | steps (training steps)
The start is the value's own key (optim.g.lr, ...). `cosine` is R3GAN's
`cosine_decay_with_warmup` without warm-up (brownvc/R3GAN,
training/training_loop.py): start + (end - start) (1 - cos(pi t / length)) / 2,
with t the images (or steps) before the step, so one step's updates all see
the value at the step's start, as the authors set it once per iteration.

`build` turns a start value and a spec into a `Schedule`: a frozen dataclass,
called with the (traced) step, that returns the start value itself (a Python
float) when constant. Consumers read their specs where they are built
(`optim.build`, `regularizers.build`, `augment.build`, `steps.StepSpec`);
`images_per_step` converts image lengths to steps there.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import errors
from gan_jax.config import base as config_base

KINDS = ('constant', 'linear', 'cosine')
UNITS = ('images', 'steps')


# A schedule spec for a config (see the above); the default keeps the value constant.
spec = config_base.schedule_spec


def cosine(end: float, images: float) -> ml_collections.ConfigDict:
  """A cosine move to `end` over `images` real images (R3GAN's schedules)."""
  return spec('cosine', end, images, 'images')


@dataclasses.dataclass(frozen=True)
class Schedule:
  """A value as a function of the training step: `schedule(step)`."""
  start: float
  kind: str = 'constant'
  end: float = 0.0
  length_steps: float = 0.0   # the spec's length, in steps

  @property
  def constant(self) -> bool:
    return self.kind == 'constant'

  def __call__(self, step):
    """The value before `step` (an int or a traced integer); the start itself when constant."""
    if self.constant:
      return self.start
    t = jnp.clip(jnp.asarray(step, jnp.float32) / self.length_steps, 0.0, 1.0)
    if self.kind == 'linear':
      moved = t
    else:
      moved = 0.5 * (1.0 - jnp.cos(math.pi * t))
    return self.start + moved * (self.end - self.start)

  def at(self, step: float) -> float:
    """The value before `step`, in Python floats (for reports and tests)."""
    return float(jax.device_get(self(step))) if not self.constant else self.start


def build(start: float, cfg: ml_collections.ConfigDict | None, key: str,
          images_per_step: float = 0) -> Schedule:
  """The `Schedule` from `start` along spec `cfg` (None: constant); `key` names the spec in errors."""
  if cfg is None or cfg.kind == 'constant':
    if cfg is not None:
      check(cfg, key)
    return Schedule(float(start))
  check(cfg, key)
  length = cfg.length
  if cfg.unit == 'images':
    if images_per_step <= 0:
      raise errors.ConfigError(
          f'config.{key} counts images, which needs the images per step '
          '(train.batch_size x train.n_disc): build it with images_per_step, as '
          f"gan_jax.training.setup does, or set config.{key}.unit='steps'.")
    length = length / images_per_step
  return Schedule(float(start), cfg.kind, float(cfg.end), float(length))


def check(cfg: ml_collections.ConfigDict, key: str) -> None:
  """ConfigError naming the key when the spec at config.`key` cannot work."""
  if cfg.kind not in KINDS:
    raise errors.ConfigError(f'config.{key}.kind={cfg.kind!r} is not one of '
                             f'{", ".join(KINDS)}.')
  if cfg.unit not in UNITS:
    raise errors.ConfigError(f'config.{key}.unit={cfg.unit!r} is not one of '
                             f'{", ".join(UNITS)}.')
  if cfg.kind != 'constant' and not cfg.length > 0:
    raise errors.ConfigError(
        f'config.{key}.length={cfg.length} must be positive for a {cfg.kind} schedule '
        f'(the {cfg.unit} over which the value moves to config.{key}.end).')


def of(group: ml_collections.ConfigDict, name: str, key: str,
       images_per_step: float = 0) -> Schedule:
  """The schedule of `group[name]` from `group.schedule[name]` (constant without one); `key` is group's."""
  schedules = group.get('schedule')
  cfg = schedules.get(name) if schedules is not None else None
  return build(group[name], cfg, f'{key}.schedule.{name}', images_per_step)


def half_life_decay(half_life_images, images_per_step: float):
  """The EMA decay per step of a half-life in images: 0.5 ** (images per step / half-life).

  As R3GAN's loop computes its G_ema beta (Karras et al.'s ema_kimg): a
  half-life of 0 gives decay 0, a copy of G.
  """
  return jnp.exp2(-images_per_step / jnp.maximum(half_life_images, 1e-8))
