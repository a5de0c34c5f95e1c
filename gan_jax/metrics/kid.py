"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD^2 with a cubic polynomial kernel.

k(x, y) = (x.y / d + 1)^3, averaged over `num_subsets` random subsets of
`subset_size` samples from each set (100 and 1000 by default, as in the
paper's code), drawn without replacement within a subset. Subsets are
evaluated in groups sharded over every device.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gan_jax.parallel import devices


def _unbiased_mmd2(x, y):
  d = x.shape[-1]
  m = x.shape[0]
  k_xx = (x @ x.T / d + 1.0) ** 3
  k_yy = (y @ y.T / d + 1.0) ** 3
  k_xy = (x @ y.T / d + 1.0) ** 3
  off_diagonal = m * (m - 1)
  return ((jnp.sum(k_xx) - jnp.trace(k_xx)) / off_diagonal
          + (jnp.sum(k_yy) - jnp.trace(k_yy)) / off_diagonal
          - 2.0 * jnp.mean(k_xy))


def _group_mmd(fake_idx, real_idx, fake, real):
  return jax.vmap(lambda i, j: _unbiased_mmd2(fake[i], real[j]))(fake_idx, real_idx)


@functools.lru_cache(maxsize=None)
def _group_fn(mesh: Mesh):
  rep, sharded = devices.replicated(mesh), devices.batch_sharded(mesh, 0)
  return jax.jit(_group_mmd, in_shardings=(sharded, sharded, rep, rep))


def kernel_inception_distance(fake, real, mesh: Mesh | None = None, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0,
                              group: int = 8) -> tuple[float, float, int]:
  """(mean, std, subset size used) of the subset MMD^2 estimates between (N, D) feature sets."""
  mesh = mesh or devices.make_mesh()
  m = min(subset_size, len(fake), len(real))
  if m < 2:
    raise ValueError('KID needs at least 2 samples in each set.')
  rng = np.random.default_rng(seed)
  fake_idx = np.stack([rng.choice(len(fake), m, replace=False) for _ in range(num_subsets)])
  real_idx = np.stack([rng.choice(len(real), m, replace=False) for _ in range(num_subsets)])
  n_dev = mesh.devices.size
  group = -(-group // n_dev) * n_dev
  rep = devices.replicated(mesh)
  fn = _group_fn(mesh)
  fake = jax.device_put(np.asarray(fake, np.float32), rep)
  real = jax.device_put(np.asarray(real, np.float32), rep)
  values = []
  for start in range(0, num_subsets, group):
    fi, ri = fake_idx[start:start + group], real_idx[start:start + group]
    n = len(fi)
    if n < group:  # pad the last group (repeat a subset) to keep one compilation
      fi = np.concatenate([fi, np.repeat(fi[-1:], group - n, 0)])
      ri = np.concatenate([ri, np.repeat(ri[-1:], group - n, 0)])
    values.append(np.asarray(fn(fi, ri, fake, real))[:n])
  values = np.concatenate(values).astype(np.float64)
  return float(values.mean()), float(values.std()), m
