"""Improved precision and recall (Kynkäänniemi et al. 2019) with k-nearest-neighbour balls, k=3.

Each real feature gets a ball reaching its k-th nearest real neighbour (itself
excluded); precision is the fraction of generated features inside at least
one real ball. Recall swaps the roles. Distances are computed in blocks of
rows sharded over every device, so memory stays at block x N.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gan_jax.metrics import batching
from gan_jax.parallel import devices


def _squared_distances(rows, cols):
  d = (jnp.sum(rows ** 2, -1)[:, None] + jnp.sum(cols ** 2, -1)[None, :]
       - 2.0 * rows @ cols.T)
  return jnp.maximum(d, 0.0)


def _kth_neighbour(rows, cols, k):
  # Each row is also a column: the smallest distance is to itself, so take k+1.
  nearest = -jax.lax.top_k(-_squared_distances(rows, cols), k + 1)[0]
  return nearest[:, k]


def _covered(rows, cols, col_radii):
  return jnp.any(_squared_distances(rows, cols) <= col_radii[None, :], axis=1)


# Built once per (k, mesh): repeated evaluations during training reuse the compilation.
@functools.lru_cache(maxsize=None)
def _knn_fn(k: int, mesh: Mesh):
  return batching.jit_batched(functools.partial(_kth_neighbour, k=k), mesh, 1)


@functools.lru_cache(maxsize=None)
def _covered_fn(mesh: Mesh):
  return batching.jit_batched(_covered, mesh, 2)


def knn_radii(features, k: int = 3, mesh: Mesh | None = None, block: int = 1024) -> np.ndarray:
  """Squared distance from each feature to its k-th nearest other feature."""
  mesh = mesh or devices.make_mesh()
  if len(features) <= k:
    raise ValueError(f'k={k} nearest neighbours need more than {k} samples, got {len(features)}.')
  features = np.asarray(features, np.float32)
  cols = jax.device_put(features, devices.replicated(mesh))
  return batching.map_batched(_knn_fn(k, mesh), features, block, mesh, cols)


def coverage_fraction(queries, supports, support_radii, mesh: Mesh | None = None,
                      block: int = 1024) -> float:
  """Fraction of `queries` inside at least one ball (supports[j], radius_j) (squared radii)."""
  mesh = mesh or devices.make_mesh()
  rep = devices.replicated(mesh)
  inside = batching.map_batched(
      _covered_fn(mesh), np.asarray(queries, np.float32), block, mesh,
      jax.device_put(np.asarray(supports, np.float32), rep),
      jax.device_put(np.asarray(support_radii, np.float32), rep))
  return float(np.mean(inside))


def precision_recall(fake, real, k: int = 3, mesh: Mesh | None = None,
                     real_radii: np.ndarray | None = None) -> tuple[float, float]:
  """(precision, recall) of generated vs real (N, D) features; `real_radii` may be cached."""
  mesh = mesh or devices.make_mesh()
  if real_radii is None:
    real_radii = knn_radii(real, k, mesh)
  precision = coverage_fraction(fake, real, real_radii, mesh)
  recall = coverage_fraction(real, fake, knn_radii(fake, k, mesh), mesh)
  return precision, recall
