"""Packing (PacGAN, Lin et al. 2018): D judges m samples at once, concatenated along channels.

With `config.model.pack = m`, every batch D sees in the train step (real and
generated, in D's and G's updates and in the penalties) is regrouped after
the D-input transforms: consecutive samples 0..m-1 form pack 0, m..2m-1
pack 1, and so on, so real samples are packed with real ones and generated
with generated ones. Images (B, H, W, C) become (B/m, H, W, m*C), channel
block i holding the pack's i-th image; 2D points (B, 2) become (B/m, 2m). D
is initialised on that shape (`GANModels.d_input_shape`), so its first layer
sees m*C channels, and gives one logit per pack; the losses are means over
packs.

Packs are formed from consecutive samples because the global batch is
sharded contiguously along axis 0 (`gan_jax.parallel.devices`): when every
device's share of the batch is a multiple of m, no pack straddles two
devices and packing moves no data between them. `check_batch` refuses the
batches for which that fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_jax import errors


def pack(x: jax.Array, m: int) -> jax.Array:
  """(B, ...) -> (B/m, ..., m * last): consecutive samples side by side along the last axis.

  `m` = 1 returns `x` itself, so an unpacked step traces exactly the ops it
  traced before packing existed.
  """
  if m == 1:
    return x
  batch = x.shape[0]
  if batch % m:
    raise errors.ConfigError(
        f'D packs {m} samples at once (config.model.pack={m}), but it was given a batch '
        f'of {batch}, which {m} does not divide. Use a config.train.batch_size that is a '
        f'multiple of {m}.')
  grouped = x.reshape(batch // m, m, *x.shape[1:])
  # Move the pack's member axis next to the feature axis, so member i's features
  # are the block [i * C, (i + 1) * C) of the packed features.
  grouped = jnp.moveaxis(grouped, 1, -2)
  return grouped.reshape(*grouped.shape[:-2], m * x.shape[-1])


def unpack(x: jax.Array, m: int) -> jax.Array:
  """The inverse of `pack`: (B/m, ..., m * C) -> (B, ..., C)."""
  if m == 1:
    return x
  channels = x.shape[-1] // m
  grouped = jnp.moveaxis(x.reshape(*x.shape[:-1], m, channels), -2, 1)
  return grouped.reshape(x.shape[0] * m, *grouped.shape[2:])


def pack_labels(labels: jax.Array, m: int) -> jax.Array:
  """One label per pack: its first member's (packing is refused for conditional models)."""
  if m == 1:
    return labels
  return labels.reshape(labels.shape[0] // m, m)[:, 0]


def packed_shape(data_shape: tuple, m: int) -> tuple:
  """The shape of one of D's inputs: (H, W, m*C) for images (H, W, C), (2m,) for points (2,)."""
  data_shape = tuple(data_shape)
  return data_shape[:-1] + (m * data_shape[-1],)


def check_batch(batch_size: int, m: int, num_devices: int = 1,
                stddev_group: int = 0) -> None:
  """ConfigError unless packs (and minibatch-stddev groups) fit in each device's share of a batch.

  `batch_size` is the global batch of one update, split evenly over
  `num_devices` (`devices.check_batch_size` checks that split).
  `stddev_group` > 0: D's minibatch-stddev layer groups that many of its
  inputs (packs), min(group, packs in the batch) as StyleGAN does; the groups
  must not straddle devices either.
  """
  per_device = batch_size // max(num_devices, 1)
  on = f'over {num_devices} device{"s" if num_devices > 1 else ""}'
  if batch_size % m or per_device % m:
    raise errors.ConfigError(
        f'config.train.batch_size={batch_size} {on} gives {per_device} samples per '
        f'device, which config.model.pack={m} does not divide: packs are formed inside '
        f"each device's share of the batch. Use a batch that is a multiple of "
        f'{m * max(num_devices, 1)} (pack x devices), e.g. '
        f'--config.train.batch_size={max(1, batch_size // (m * num_devices)) * m * num_devices}.')
  if stddev_group:
    inputs, per_device_inputs = batch_size // m, per_device // m
    group = min(stddev_group, inputs)
    if per_device_inputs % group:
      raise errors.ConfigError(
          f'config.model.minibatch_group={stddev_group}: D sees {inputs} inputs per update '
          f'(config.train.batch_size={batch_size} / config.model.pack={m}), '
          f'{per_device_inputs} per device {on}, which groups of {group} do not divide. '
          'Pick a group size that divides the per-device count.')
