"""Mode collapse measured directly: class coverage, Stacked-MNIST modes, and near-duplicate pairs.

Class coverage (cls_cov): how many of the K classes the domain classifier
finds among the samples, and KL(sample class histogram || uniform), the
PacGAN / VEEGAN statistic (0 for perfectly balanced classes, log K when every
sample is one class). On Stacked MNIST the classes are the 1,000 digit
triples. Near duplicates: pairs of samples closer than a distance threshold in
the classifier's feature space.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gan_jax.metrics import batching
from gan_jax.parallel import devices


def class_coverage(predictions: np.ndarray, num_classes: int) -> tuple[int, float, np.ndarray]:
  """(classes present, KL(histogram || uniform) in nats, histogram) of predicted classes."""
  counts = np.bincount(np.asarray(predictions), minlength=num_classes)[:num_classes]
  p = counts / max(1, counts.sum())
  nonzero = p > 0
  kl = float(np.sum(p[nonzero] * np.log(p[nonzero] * num_classes)))
  return int(nonzero.sum()), kl, counts


def _close_pairs_per_row(rows_and_ids, cols, threshold_sq):
  rows, row_ids = rows_and_ids
  d = (jnp.sum(rows ** 2, -1)[:, None] + jnp.sum(cols ** 2, -1)[None, :]
       - 2.0 * rows @ cols.T)
  others = row_ids[:, None] != jnp.arange(cols.shape[0])[None, :]
  return jnp.sum((d <= threshold_sq) & others, axis=1)


@functools.lru_cache(maxsize=None)
def _close_pairs_fn(mesh: Mesh):
  return batching.jit_batched(_close_pairs_per_row, mesh, 2)


def near_duplicate_pairs(features, threshold: float, mesh: Mesh | None = None,
                         block: int = 1024) -> int:
  """Number of unordered pairs i < j with |f_i - f_j| <= threshold."""
  mesh = mesh or devices.make_mesh()
  features = np.asarray(features, np.float32)
  fn = _close_pairs_fn(mesh)
  rep = devices.replicated(mesh)
  counts = batching.map_batched(
      fn, (features, np.arange(len(features), dtype=np.int32)), block, mesh,
      jax.device_put(features, rep), jax.device_put(np.float32(threshold ** 2), rep))
  return int(counts.sum()) // 2


def pair_distance_quantile(features, quantile: float) -> float:
  """The `quantile` of all pairwise distances among `features` (for a calibrated threshold)."""
  f = np.asarray(features, np.float64)
  sq = np.sum(f ** 2, 1)
  d2 = sq[:, None] + sq[None, :] - 2 * f @ f.T
  upper = d2[np.triu_indices(len(f), 1)]
  return float(np.sqrt(max(0.0, np.quantile(upper, quantile))))
