"""How close generated 2D points are to the target: mode coverage and a sample distance.

Mode coverage (ring, grid) is the rule of VEEGAN (Srivastava et al. 2017) and
PacGAN (Lin et al. 2018): a generated point is *high quality* when it lies
within 3 standard deviations of its nearest mode centre; a mode is *covered*
when at least one high-quality point is nearest to it. Both papers report the
covered modes and the % of high-quality points over 2,500 samples.

PacGAN adds the reverse KL divergence of the mode histogram: the high-quality
points counted per nearest mode (the authors' "detail of coverage",
fjxmlzn/PacGAN synthetic_data_experiments/PacGAN/pacgan/extensions.py),
normalised to a distribution q over the K modes, against the target's uniform
p = 1/K:
  reverse KL = KL(q || p) = sum_{i: q_i > 0} q_i log(q_i K)   (natural log)
It is 0 when the high-quality points spread evenly over every mode and log(K/k)
when they spread evenly over k of them; "reverse" because the model's
distribution comes first, so that a missed mode (q_i = 0) adds 0 rather than
making the divergence infinite. With no high-quality point q is undefined and
the value is NaN.

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


def mode_histogram(points: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
  """(K,) counts: the high-quality points (within 3 std of their nearest centre) per mode."""
  points = np.asarray(points, np.float64)
  centres = np.asarray(centres, np.float64)
  d2 = np.sum((points[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
  nearest = np.argmin(d2, axis=1)
  good = np.min(d2, axis=1) <= (HIGH_QUALITY_STDS * std) ** 2
  return np.bincount(nearest[good], minlength=len(centres))


def reverse_kl(counts: np.ndarray) -> float:
  """KL(q || uniform) of the histogram `counts` over K modes (module docstring); NaN if empty."""
  counts = np.asarray(counts, np.float64)
  total = counts.sum()
  if total == 0:
    return float('nan')
  q = counts[counts > 0] / total
  return float(np.sum(q * np.log(q * len(counts))))


def mode_coverage(points: np.ndarray, centres: np.ndarray, std: float) -> dict:
  """{'modes': covered modes, 'hq_percent': % of points within 3 std of their nearest
  centre, 'reverse_kl': PacGAN's reverse KL of the mode histogram}."""
  counts = mode_histogram(points, centres, std)
  return {'modes': float(np.count_nonzero(counts)),
          'hq_percent': 100.0 * float(counts.sum()) / max(len(points), 1),
          'reverse_kl': reverse_kl(counts)}


def directions(num_directions: int = NUM_DIRECTIONS) -> np.ndarray:
  angles = np.pi * np.arange(num_directions) / num_directions
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sorted_projections(points: np.ndarray, num_directions: int = NUM_DIRECTIONS) -> np.ndarray:
  """(num_directions, n): the points projected on each direction, sorted.

  A fixed reference sample is projected and sorted once and then compared
  with every generated sample (`sliced_wasserstein_to`).
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] != 2:
    raise ValueError(f'expected (n, 2) points, got shape {points.shape}.')
  return np.sort(directions(num_directions) @ points.T, axis=1)


def sliced_wasserstein_to(points: np.ndarray, reference_sorted: np.ndarray) -> float:
  """SW2 between `points` and a reference given by its `sorted_projections` (same n)."""
  projected = sorted_projections(points, reference_sorted.shape[0])
  if projected.shape != reference_sorted.shape:
    raise ValueError(f'sliced_wasserstein needs samples of one size, got {projected.shape[1]} '
                     f'and {reference_sorted.shape[1]} points.')
  return float(np.sqrt(np.mean((projected - reference_sorted) ** 2)))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray,
                       num_directions: int = NUM_DIRECTIONS) -> float:
  """SW2 between two (n, 2) samples of the same size (see the module docstring)."""
  return sliced_wasserstein_to(x, sorted_projections(y, num_directions))
