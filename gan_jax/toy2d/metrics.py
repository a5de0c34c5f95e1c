"""How close generated 2D points are to the target: mode coverage and a sample distance.

Mode coverage (ring, grid) is the rule of VEEGAN (Srivastava et al. 2017) and
PacGAN (Lin et al. 2018): a generated point is *high quality* when it lies
within 3 standard deviations of its nearest mode centre; a mode is *covered*
when at least one high-quality point is nearest to it. Both papers report the
covered modes and the % of high-quality points over 2,500 samples.

The distance, for every distribution, is the sliced Wasserstein-2 distance
  SW2(P, Q) = sqrt( mean_k W2^2(<theta_k, P>, <theta_k, Q>) ),
with theta_k = (cos a_k, sin a_k) at K = 32 equally spaced angles
a_k = pi k / K in [0, pi), and W2 between two equally sized 1D samples the
root mean squared difference of their sorted values. It is in the units of
the data, is 0 for identical samples, and a translation by t gives
|t| / sqrt(2) (the mean of cos^2 over the directions is 1/2); between two
independent samples of 10,000 points from the same distribution it is a
small positive number (sampling noise), not 0.

Both are computed on the host with NumPy: XLA's CPU sort is several times
slower than NumPy's, and the inputs are a few thousand points.
"""

from __future__ import annotations

import numpy as np

HIGH_QUALITY_STDS = 3.0
NUM_DIRECTIONS = 32


def mode_coverage(points: np.ndarray, centres: np.ndarray, std: float) -> dict:
  """{'modes': covered modes, 'hq_percent': % of points within 3 std of their nearest centre}."""
  points = np.asarray(points, np.float64)
  centres = np.asarray(centres, np.float64)
  d2 = np.sum((points[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
  nearest = np.argmin(d2, axis=1)
  good = np.min(d2, axis=1) <= (HIGH_QUALITY_STDS * std) ** 2
  return {'modes': float(len(np.unique(nearest[good]))),
          'hq_percent': 100.0 * float(np.mean(good))}


def directions(num_directions: int = NUM_DIRECTIONS) -> np.ndarray:
  angles = np.pi * np.arange(num_directions) / num_directions
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sliced_wasserstein(x: np.ndarray, y: np.ndarray,
                       num_directions: int = NUM_DIRECTIONS) -> float:
  """SW2 between two (n, 2) samples of the same size (see the module docstring)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 2:
    raise ValueError(f'sliced_wasserstein needs two (n, 2) samples of one shape, got '
                     f'{x.shape} and {y.shape}.')
  theta = directions(num_directions)
  px = np.sort(x @ theta.T, axis=0)
  py = np.sort(y @ theta.T, axis=0)
  return float(np.sqrt(np.mean((px - py) ** 2)))
