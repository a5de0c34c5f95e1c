"""Feature statistics and the Fréchet distance between two Gaussians (FID, and cls_fd in classifier space).

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

tr((S1 S2)^{1/2}) is computed as tr((A S2 A)^{1/2}) with A = S1^{1/2}: both
matrices are symmetric positive semi-definite, so two symmetric
eigendecompositions replace the generic (non-symmetric, complex-valued)
`scipy.linalg.sqrtm` of the reference code. The distance is computed in
float64 on the host CPU: in float32, eigenvalues that are zero up to rounding
would each add ~sqrt(1e-7 * |S|) to the trace, enough to move a 2048-d FID.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _moments(features):
  features = features.astype(jnp.float32)
  mu = jnp.mean(features, axis=0)
  centred = features - mu   # two passes: no cancellation in E[xx^T] - mu mu^T
  sigma = centred.T @ centred / (features.shape[0] - 1)
  return mu, sigma


def statistics(features) -> dict:
  """{'mu', 'sigma'} (float64 numpy) of (N, D) features; jitted, on the features' devices."""
  if len(features) < 2:
    raise ValueError(f'Need at least 2 feature vectors for a covariance, got {len(features)}.')
  mu, sigma = _moments(features)
  return {'mu': np.asarray(mu, np.float64), 'sigma': np.asarray(sigma, np.float64)}


def _sqrt_psd(matrix):
  eigenvalues, vectors = jnp.linalg.eigh(matrix)
  return (vectors * jnp.sqrt(jnp.clip(eigenvalues, 0.0))) @ vectors.T


@jax.jit
def _frechet(mu1, sigma1, mu2, sigma2):
  root1 = _sqrt_psd(sigma1)
  product = root1 @ sigma2 @ root1
  product = (product + product.T) / 2   # exactly symmetric for eigvalsh
  trace_sqrt = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(product), 0.0)))
  diff = mu1 - mu2
  return diff @ diff + jnp.trace(sigma1) + jnp.trace(sigma2) - 2.0 * trace_sqrt


def frechet_distance(stats1: dict, stats2: dict) -> float:
  """Fréchet distance between {'mu', 'sigma'} statistics, in float64 on the CPU."""
  if np.shape(stats1['mu']) != np.shape(stats2['mu']):
    raise ValueError(f'Feature dimensions differ: {np.shape(stats1["mu"])} vs '
                     f'{np.shape(stats2["mu"])}.')
  cpu = jax.local_devices(backend='cpu')[0]  # this process's: another's is not addressable
  with jax.enable_x64(True):
    args = [jax.device_put(np.asarray(s[k], np.float64), cpu)
            for s in (stats1, stats2) for k in ('mu', 'sigma')]
    return float(_frechet(*args))
