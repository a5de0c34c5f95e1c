"""Transforms of every batch D sees, registered by name and listed in `config.augment.transforms`.

The train step passes each batch that goes into D (real and generated, in D's
and in G's updates) through the listed transforms, in order, after the pixels
are scaled to [-1, 1]. They are jax functions, so gradients flow through them
to G. Each transform gets two keys:
  shared_key  the same for the real and the generated batch of one D update,
              so parameters drawn from it (DiffAugment's shifts, cutout boxes,
              colour factors) are identical for real[i] and fake[i];
  own_key     different for every batch (instance noise's per-pixel noise).
A transform may keep state in the train state (`state.aux['augment'][name]`):
it gets it as `state`, and `observe` updates it from D's logits on the real
batch after every D update (ADA's p). Either way each loss term sees correctly distributed inputs; sharing only
makes the real and fake terms of one update use common random numbers, and
D cannot separate real from fake by their augmentations.

  instance_noise  x + s_t * N(0, I), s_t = std, or std * max(0, 1 - step /
                  decay_steps) when decay_steps > 0 (Sonderby et al. 2017;
                  the DCGAN-64 report's noise on D's input)
  diffaugment     DiffAugment (Zhao et al. 2020) with `policy` a comma list of
                  color (brightness +U(-0.5, 0.5), saturation x U(0, 2),
                  contrast x U(0.5, 1.5)), translation (shift by up to
                  `translation` of the size, zero fill) and cutout (a zeroed
                  square of side `cutout` of the size), all per example.
                  Zhao et al. draw real and fake parameters independently;
                  here they are shared, as above.
  ada             adaptive discriminator augmentation (Karras et al. 2020,
                  gan_jax.ada): the `ops` groups blit, geom, color (and
                  cutout), each op applied per example with probability p.
                  With `adapt`, every `interval` D updates p moves by
                  sign(r_t - target) * batch * interval / (kimg * 1000),
                  where r_t = E[sign(D(x_real))] over those updates' global
                  batches; p starts at `p` and stays in [0, 1]. Logged as
                  ada_p (after the step) and ada_rt (this step's batches).
                  With PacGAN packing (config.model.pack = m) each sample is
                  augmented before it is packed, r_t is the mean over packs
                  and `batch` still counts images, so p moves as fast per
                  image as without packing.
                  Without `adapt`, `schedule.p` may move p over training
                  instead (`gan_jax.core.schedules`; R3GAN's 0 -> 0.55), and
                  an `ops` entry may scale its ops' probability ('color:0.5':
                  p x 0.5, StyleGAN2-ADA's per-op strengths).

A transform declares which of its config keys a schedule may move
(`Transform.schedulable`); the value is then its state's entry of that name,
replaced by the schedule's value at the step before the transform and its
`observe` see it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import errors
from gan_jax.core import ada as ada_lib
from gan_jax.core import schedules
from gan_jax.registry import Registry

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Transform:
  # fn(images, cfg, *, shared_key, own_key, step, state) -> images of the same shape.
  fn: Callable[..., Array]
  # validate(cfg) raises ConfigError for settings that cannot work, before jit.
  validate: Callable[[ml_collections.ConfigDict], None] = lambda cfg: None
  # init(cfg) -> the transform's initial state, for a transform that keeps one.
  init: Callable[[ml_collections.ConfigDict], dict] | None = None
  # observe(state, cfg, real_logits, update_index, batch_size=N) -> (state, metrics), after
  # each D update; N is the number of real samples behind the logits (with PacGAN
  # packing, m per logit).
  observe: Callable[..., tuple[dict, dict]] | None = None
  # Config keys that `cfg.schedule` may move; each is also a key of the state.
  schedulable: tuple[str, ...] = ()


TRANSFORMS: Registry[Transform] = Registry('D-input transform', 'config.augment.transforms')


def _uniform(key, images, low=0.0, high=1.0):
  return jax.random.uniform(key, (images.shape[0], 1, 1, 1), images.dtype, low, high)


def brightness(x: Array, key: jax.Array) -> Array:
  return x + _uniform(key, x, -0.5, 0.5)


def saturation(x: Array, key: jax.Array) -> Array:
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return (x - mean) * _uniform(key, x, 0.0, 2.0) + mean


def contrast(x: Array, key: jax.Array) -> Array:
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _uniform(key, x, 0.5, 1.5) + mean


def _shift_axis(x: Array, shift: Array, axis: int) -> Array:
  """out[b, i] = x[b, i + shift[b]] along `axis` (1 or 2), 0 outside the image."""
  size = x.shape[axis]
  source = jnp.arange(size)[None, :] + shift[:, None]                  # (B, size)
  valid = (source >= 0) & (source < size)
  index_shape = [x.shape[0], 1, 1, 1]
  index_shape[axis] = size
  index = jnp.clip(source, 0, size - 1).reshape(index_shape)
  gathered = jnp.take_along_axis(x, jnp.broadcast_to(index, x.shape[:axis] + (size,)
                                                     + x.shape[axis + 1:]), axis=axis)
  return gathered * valid.reshape(index_shape).astype(x.dtype)


def translation(x: Array, key: jax.Array, ratio: float = 0.125) -> Array:
  """Shifts each image by up to round(ratio * size) pixels per axis, filling with zeros."""
  for axis, k in zip((1, 2), jax.random.split(key)):
    limit = int(x.shape[axis] * ratio + 0.5)
    shift = jax.random.randint(k, (x.shape[0],), -limit, limit + 1)
    x = _shift_axis(x, shift, axis)
  return x


def cutout(x: Array, key: jax.Array, ratio: float = 0.5) -> Array:
  """Zeroes a square of side round(ratio * size) centred at a random pixel, clipped at the edges."""
  masks = []
  for axis, k in zip((1, 2), jax.random.split(key)):
    size = x.shape[axis]
    side = int(size * ratio + 0.5)
    centre = jax.random.randint(k, (x.shape[0],), 0, size + (1 - side % 2))
    start = centre - side // 2
    pos = jnp.arange(size)[None, :]
    masks.append((pos >= start[:, None]) & (pos < start[:, None] + side))   # (B, size)
  inside = masks[0][:, :, None] & masks[1][:, None, :]
  return x * (~inside)[..., None].astype(x.dtype)


DIFFAUGMENT_OPS = {
    'color': lambda x, key, cfg: contrast(saturation(brightness(
        x, jax.random.fold_in(key, 0)), jax.random.fold_in(key, 1)),
                                          jax.random.fold_in(key, 2)),
    'translation': lambda x, key, cfg: translation(x, key, cfg.translation),
    'cutout': lambda x, key, cfg: cutout(x, key, cfg.cutout),
}


def diffaugment_policy(cfg) -> list[str]:
  ops = [p.strip() for p in cfg.policy.split(',') if p.strip()]
  unknown = [p for p in ops if p not in DIFFAUGMENT_OPS]
  if unknown or not ops:
    raise errors.ConfigError(
        f'config.augment.diffaugment.policy={cfg.policy!r}: give a comma list of '
        f'{", ".join(DIFFAUGMENT_OPS)}' + (f' (unknown: {", ".join(unknown)}).' if unknown
                                           else '.'))
  return ops


def _diffaugment(images, cfg, *, shared_key, own_key, step, state):
  del own_key, step, state
  for i, op in enumerate(diffaugment_policy(cfg)):
    images = DIFFAUGMENT_OPS[op](images, jax.random.fold_in(shared_key, i), cfg)
  return images


def instance_noise_std(cfg, step) -> Array:
  if cfg.decay_steps > 0:
    # (decay - step) / decay rather than 1 - step / decay: exactly 0 at the end.
    return cfg.std * jnp.maximum(0, cfg.decay_steps - step) / cfg.decay_steps
  return jnp.asarray(cfg.std, jnp.float32)


def _instance_noise(images, cfg, *, shared_key, own_key, step, state):
  del shared_key, state
  noise = jax.random.normal(own_key, images.shape, images.dtype)
  return images + instance_noise_std(cfg, step).astype(images.dtype) * noise


def _check_instance_noise(cfg):
  if cfg.std < 0 or cfg.decay_steps < 0:
    raise errors.ConfigError(
        f'config.augment.instance_noise: std={cfg.std} and decay_steps='
        f'{cfg.decay_steps} must be >= 0.')


def _ada(images, cfg, *, shared_key, own_key, step, state):
  del own_key, step
  return ada_lib.augment(images, state['p'], shared_key, ada_lib.parse_ops(cfg.ops),
                         ada_lib.parse_multipliers(cfg.ops))


def _ada_init(cfg) -> dict:
  return {'p': jnp.asarray(cfg.p, jnp.float32), 'rt_sum': jnp.zeros((), jnp.float32),
          'rt_count': jnp.zeros((), jnp.int32)}


def _ada_observe(state, cfg, real_logits, update_index, batch_size=None):
  """Accumulates r_t over `interval` D updates, then moves p (when `adapt`).

  r_t is the mean sign of D's logits, one per pack when D judges packs; p
  moves by the real images seen, `batch_size` (default: one per logit).
  """
  rt = ada_lib.heuristic_rt(real_logits)
  rt_sum, rt_count = state['rt_sum'] + rt, state['rt_count'] + 1
  p = state['p']
  if cfg.adapt:
    due = (update_index + 1) % cfg.interval == 0
    adjusted = ada_lib.adjust_p(p, rt_sum / rt_count, target=cfg.target,
                                batch_size=batch_size or real_logits.shape[0],
                                interval=cfg.interval,
                                kimg=cfg.kimg)
    p = jnp.where(due, adjusted, p)
    rt_sum = jnp.where(due, 0.0, rt_sum)
    rt_count = jnp.where(due, 0, rt_count)
  return {'p': p, 'rt_sum': rt_sum, 'rt_count': rt_count}, {'ada_p': p, 'ada_rt': rt}


def _check_ada(cfg):
  ada_lib.parse_multipliers(cfg.ops)
  p_schedule = (cfg.get('schedule') or {}).get('p')
  if cfg.adapt and p_schedule is not None and p_schedule.kind != 'constant':
    raise errors.ConfigError(
        f'config.augment.ada.schedule.p (kind={p_schedule.kind!r}) moves p, and '
        'config.augment.ada.adapt=True steers it by r_t: set adapt=False for a scheduled p.')
  if not (0 <= cfg.p <= 1 and cfg.interval >= 1 and cfg.kimg > 0 and 0 < cfg.target <= 1):
    raise errors.ConfigError(
        f'config.augment.ada: p={cfg.p} must be in [0, 1], interval={cfg.interval} >= 1, '
        f'kimg={cfg.kimg} > 0 and target={cfg.target} in (0, 1] (the paper: 0.6).')


TRANSFORMS.register('diffaugment')(Transform(_diffaugment, diffaugment_policy))
TRANSFORMS.register('instance_noise')(Transform(_instance_noise, _check_instance_noise))
TRANSFORMS.register('ada')(Transform(_ada, _check_ada, _ada_init, _ada_observe,
                                     schedulable=('p',)))


class DInput:
  """The listed transforms in order: `d_input(images, shared_key, own_key, step, state)`.

  `state` is `init_state()`'s dict (stateless chains take {} or None);
  `observe` updates it after a D update. `scheduled` ({name: {key:
  Schedule}}) holds the state entries that follow a schedule of the step.
  """

  def __init__(self, chain, scheduled: dict | None = None):
    self._chain = chain   # [(name, Transform, cfg)]
    self._scheduled = scheduled or {}

  def __call__(self, images: Array, shared_key: jax.Array, own_key: jax.Array, step,
               state: dict | None = None) -> Array:
    state = state or {}
    for i, (name, transform, cfg) in enumerate(self._chain):
      images = transform.fn(images, cfg, shared_key=jax.random.fold_in(shared_key, i),
                            own_key=jax.random.fold_in(own_key, i), step=step,
                            state=self._at(name, state.get(name), step))
    return images

  def _at(self, name: str, state, step):
    """A transform's state with its scheduled entries at their values before `step`."""
    if name not in self._scheduled:
      return state
    if step is None:
      raise ValueError(f'config.augment.{name} follows a schedule: pass the step.')
    return {**state, **{key: jnp.asarray(s(step), jnp.float32)
                        for key, s in self._scheduled[name].items()}}

  def init_state(self) -> dict:
    return {name: t.init(cfg) for name, t, cfg in self._chain if t.init}

  def observe(self, state: dict, real_logits: Array, update_index,
              batch_size: int | None = None, step=None) -> tuple[dict, dict]:
    """(new state, metrics) after a D update of `step` that gave `real_logits` on the real batch.

    `batch_size`: the real samples behind the logits, when not one per logit
    (PacGAN packing).
    """
    new, metrics = dict(state), {}
    for name, transform, cfg in self._chain:
      if transform.observe:
        new[name], m = transform.observe(self._at(name, state[name], step), cfg, real_logits,
                                         update_index, batch_size=batch_size)
        metrics.update(m)
    return new, metrics


def _schedules_of(name: str, transform: Transform, cfg, images_per_step: float) -> dict:
  """{key: Schedule} of the keys `cfg.schedule` moves (ConfigError for a key it may not move)."""
  moved = {}
  for key in (cfg.get('schedule') or {}).keys():
    if key not in transform.schedulable:
      raise errors.ConfigError(
          f'config.augment.{name}.schedule.{key}: transform {name!r} has no schedule for '
          f'{key!r}' + (f'; it schedules {", ".join(transform.schedulable)}.'
                        if transform.schedulable else '.'))
    schedule = schedules.of(cfg, key, f'augment.{name}', images_per_step)
    if not schedule.constant:
      moved[key] = schedule
  return moved


def build(augment_config: ml_collections.ConfigDict, images_per_step: float = 0) -> DInput:
  """The `DInput` of `augment_config.transforms`, validated.

  `images_per_step` (train.batch_size x train.n_disc) places schedules counted
  in images on the training clock.
  """
  names = list(augment_config.transforms)
  chain, scheduled = [], {}
  for name in names:
    transform = TRANSFORMS.get(name)
    cfg = augment_config[name] if name in augment_config else ml_collections.ConfigDict()
    chain.append((name, transform, cfg))
    transform.validate(cfg)
    moved = _schedules_of(name, transform, cfg, images_per_step)
    if moved:
      scheduled[name] = moved
  if len(set(names)) != len(names):
    raise errors.ConfigError(f'config.augment.transforms={tuple(names)} lists a '
                             'transform twice.')
  return DInput(chain, scheduled)
