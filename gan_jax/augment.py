"""Transforms of every batch D sees, registered by name and listed in `config.augment.transforms`.

The train step passes each batch that goes into D (real and generated, in D's
and in G's updates) through the listed transforms, in order, after the pixels
are scaled to [-1, 1]. They are jax functions, so gradients flow through them
to G. Each transform gets two keys:
  shared_key  the same for the real and the generated batch of one D update,
              so parameters drawn from it (DiffAugment's shifts, cutout boxes,
              colour factors) are identical for real[i] and fake[i];
  own_key     different for every batch (instance noise's per-pixel noise).
Either way each loss term sees correctly distributed inputs; sharing only
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
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import errors
from gan_jax.registry import Registry

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Transform:
  # fn(images, cfg, *, shared_key, own_key, step) -> images of the same shape.
  fn: Callable[..., Array]
  # validate(cfg) raises ConfigError for settings that cannot work, before jit.
  validate: Callable[[ml_collections.ConfigDict], None] = lambda cfg: None


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


def _diffaugment(images, cfg, *, shared_key, own_key, step):
  del own_key, step
  for i, op in enumerate(diffaugment_policy(cfg)):
    images = DIFFAUGMENT_OPS[op](images, jax.random.fold_in(shared_key, i), cfg)
  return images


def instance_noise_std(cfg, step) -> Array:
  if cfg.decay_steps > 0:
    # (decay - step) / decay rather than 1 - step / decay: exactly 0 at the end.
    return cfg.std * jnp.maximum(0, cfg.decay_steps - step) / cfg.decay_steps
  return jnp.asarray(cfg.std, jnp.float32)


def _instance_noise(images, cfg, *, shared_key, own_key, step):
  del shared_key
  noise = jax.random.normal(own_key, images.shape, images.dtype)
  return images + instance_noise_std(cfg, step).astype(images.dtype) * noise


def _check_instance_noise(cfg):
  if cfg.std < 0 or cfg.decay_steps < 0:
    raise errors.ConfigError(
        f'config.augment.instance_noise: std={cfg.std} and decay_steps='
        f'{cfg.decay_steps} must be >= 0.')


TRANSFORMS.register('diffaugment')(Transform(_diffaugment, diffaugment_policy))
TRANSFORMS.register('instance_noise')(Transform(_instance_noise, _check_instance_noise))


def build(augment_config: ml_collections.ConfigDict):
  """Returns `d_input(images, shared_key, own_key, step) -> images`: the listed transforms in order."""
  names = list(augment_config.transforms)
  chain = []
  for name in names:
    transform = TRANSFORMS.get(name)
    cfg = augment_config[name] if name in augment_config else ml_collections.ConfigDict()
    chain.append((transform, cfg))
    transform.validate(cfg)
  if len(set(names)) != len(names):
    raise errors.ConfigError(f'config.augment.transforms={tuple(names)} lists a '
                             'transform twice.')

  def d_input(images: Array, shared_key: jax.Array, own_key: jax.Array, step) -> Array:
    for i, (transform, cfg) in enumerate(chain):
      images = transform.fn(images, cfg, shared_key=jax.random.fold_in(shared_key, i),
                            own_key=jax.random.fold_in(own_key, i), step=step)
    return images

  return d_input
