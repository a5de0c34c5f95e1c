"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), mean and std over 10 splits.

Splits are contiguous, with the boundaries of the original TensorFlow code
(split i holds samples [i*N//S, (i+1)*N//S)). The softmax is over all 1008
logits of the FID Inception, as in that code.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames='num_splits')
def _split_scores(logits, split_ids, num_splits: int):
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  p = jnp.exp(log_p)
  counts = jax.ops.segment_sum(jnp.ones(len(p)), split_ids, num_splits)
  p_y = jax.ops.segment_sum(p, split_ids, num_splits) / counts[:, None]
  kl = jnp.sum(p * (log_p - jnp.log(p_y[split_ids])), axis=-1)
  return jnp.exp(jax.ops.segment_sum(kl, split_ids, num_splits) / counts)


def inception_score(logits, num_splits: int = 10) -> tuple[float, float]:
  """(mean, std) of the per-split scores of (N, K) logits."""
  n = len(logits)
  if n < num_splits:
    raise ValueError(f'IS with {num_splits} splits needs at least {num_splits} samples, got {n}.')
  bounds = np.arange(num_splits + 1) * n // num_splits
  split_ids = np.searchsorted(bounds, np.arange(n), side='right') - 1
  scores = np.asarray(_split_scores(logits, split_ids, num_splits), np.float64)
  return float(scores.mean()), float(scores.std())
