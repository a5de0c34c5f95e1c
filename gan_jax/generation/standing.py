"""Standing statistics: BatchNorm statistics recomputed for an EMA generator before it draws (BigGAN's remedy).

Why. `core.state.update_ema` averages every variable of G, BatchNorm's
running mean and variance included, and G draws in inference mode, where
BatchNorm normalises by those running statistics. But the statistics of a
layer's input under the averaged weights are not the average of the
statistics under the weights averaged: averaging weights that wander
shrinks them (the variance of sum_t w_t x / T is at most the mean of the
variances of w_t x), and every layer after a nonlinearity sees a different
input distribution again. So the EMA G normalises by statistics of other
networks, and the error compounds layer by layer (tests/test_standing_stats.py
measures it on a tiny G). BigGAN-PyTorch's EMA (`utils.ema`) averages the
BatchNorm buffers the same way; its code samples the EMA G in train mode
(batch statistics; the CIFAR-10 script), or with "standing statistics"
(`utils.accumulate_standing_stats`, `--G_eval_mode --accumulate_stats`).

What. Standing statistics, as `accumulate_standing_stats` computes them:
G with the EMA weights runs in train mode on `batches` batches of
`batch_size` draws (z ~ N(0, I), labels uniform; fixed noise from `seed`, so
every call gives the same statistics); each BatchNorm layer's batch mean and
(biased) batch variance of its input are recorded, averaged over the batches,
and put in place of that layer's running statistics in the variables G
samples with. Spectral norm's vectors and every parameter stay as they are.

When. `sampling_variables` applies it to a run that keeps an EMA whose
variables hold BatchNorm statistics, when `sample.standing_stats_batches` > 0
(the default, 16, BigGAN's num_standing_accumulations), and G is called
directly (not a family sampler such as the DDPM's). It runs once per action
that draws: a sample grid, an evaluation, a `generate` call, an analysis
session. Cost: `batches` train-mode forward passes of G at `batch_size`
(16 x 64 = 1,024 images at the defaults; about the cost of drawing that many
samples, a tenth of a 10,000-sample evaluation), plus one compile per run.

Derived, not stored: the state's EMA stays as training left it, so
checkpoints, resume and the train step are unchanged, and
`sample.standing_stats_batches` may change when a run resumes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp

from gan_jax.generation import sampling

# Folded into config.seed so the standing noise is not the grid's or evaluation's noise.
NOISE_TAG = 0x57A9D


@dataclasses.dataclass(frozen=True)
class StandingStats:
  """How standing statistics are computed: `batches` batches of `batch_size` from `seed` (0 batches: off)."""
  batches: int = 16
  batch_size: int = 64
  seed: int = 0

  @classmethod
  def from_config(cls, config) -> 'StandingStats':
    return cls(config.sample.get('standing_stats_batches', 0), config.train.batch_size,
               config.seed)


def has_batch_norm(variables: dict) -> bool:
  """Whether `variables` hold BatchNorm running statistics (a 'mean' and a 'var')."""
  flat = flax.traverse_util.flatten_dict(variables.get('batch_stats', {}))
  return any(path[-1] == 'mean' for path in flat)


def batch_moments(gan, variables: dict, z: jax.Array, labels: jax.Array) -> dict:
  """{BatchNorm path: (mean, var)} of each BatchNorm's input in one train-mode pass of G (traceable).

  The mean and the biased variance over every axis but the features, in
  float32, as Flax's BatchNorm computes the statistics it normalises by.
  """
  moments = {}

  def record(call, args, kwargs, context):
    module = context.module
    if isinstance(module, nn.BatchNorm) and context.method_name == '__call__':
      x = jnp.asarray(args[0], jnp.float32)
      axis = module.axis % x.ndim if isinstance(module.axis, int) else None
      axes = tuple(a for a in range(x.ndim) if a != axis)
      mean = jnp.mean(x, axes)
      moments[module.path] = (mean, jnp.maximum(jnp.mean(jnp.square(x), axes) - mean ** 2, 0.0))
    return call(*args, **kwargs)

  with nn.intercept_methods(record):
    gan.generator.apply(variables, z, labels, train=True, mutable=['batch_stats'])
  return moments


_JITTED: dict[int, tuple[Any, Any]] = {}   # id(gan) -> (gan, jitted moments of one batch)


def _batch_moments_fn(gan):
  """`moments(variables, key, index, batch_size)` of batch `index`'s draws, jitted once per gan."""
  cached = _JITTED.get(id(gan))
  if cached is not None and cached[0] is gan:
    return cached[1]

  def moments(variables, key, index, batch_size):
    z, labels = sampling.latents(jax.random.fold_in(key, index), gan, batch_size)
    return batch_moments(gan, variables, z, labels)

  fn = jax.jit(moments, static_argnums=3)
  _JITTED.clear()   # one generator at a time in practice: old programs do not pile up
  _JITTED[id(gan)] = (gan, fn)
  return fn


def with_standing_statistics(gan, variables: dict, spec: StandingStats) -> dict:
  """`variables` with every BatchNorm's running mean and variance replaced by standing statistics."""
  moments = _batch_moments_fn(gan)
  key = jax.random.fold_in(jax.random.PRNGKey(spec.seed), NOISE_TAG)
  # A Python loop over one compiled G pass: `batches` passes unrolled in one
  # program would compile that many times longer.
  sums = moments(variables, key, 0, spec.batch_size)
  for index in range(1, spec.batches):
    sums = jax.tree.map(jnp.add, sums, moments(variables, key, index, spec.batch_size))
  flat = flax.traverse_util.flatten_dict(variables['batch_stats'])
  for path, (mean_sum, var_sum) in sums.items():
    for name, total in (('mean', mean_sum), ('var', var_sum)):
      flat[path + (name,)] = (total / spec.batches).astype(flat[path + (name,)].dtype)
  return {**variables, 'batch_stats': flax.traverse_util.unflatten_dict(flat)}


def sampling_variables(gan, state, spec: StandingStats | None) -> dict:
  """G's variables to draw with: `state.sampling_variables()`, with standing statistics where they apply.

  They apply to an EMA G (`state.ema`) with BatchNorm, called directly
  (`gan.sampler` is None), when `spec.batches` > 0 (module docstring).
  """
  variables = state.sampling_variables()
  if (spec is None or spec.batches < 1 or not state.ema or gan.sampler is not None
      or not has_batch_norm(variables)):
    return variables
  return with_standing_statistics(gan, variables, spec)
