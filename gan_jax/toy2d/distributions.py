"""The lab's 2D target distributions, registered by name (`config.data.name`), sampled on device.

Each distribution is a pure function `sample(key, n) -> (n, 2) float32`, so the
training data is drawn inside the compiled step from a key folded by step:
there is no dataset and the stream depends only on (seed, step).

  sine    u ~ Unif[-1,1]^2, (x, y) -> (x, sin(f x) + y/4)    (the report; f = toy2d.sine_frequency)
  circle  (x, y) -> radius x/2, angle y*pi, as Cartesian points (the report; densest at the centre)
  wing    (x, y) -> (x/2 cos(3 pi x), x/2 sin(3 pi x)): two joined spirals (the report)
  ring    toy2d.ring_modes Gaussians evenly spaced on a circle (VEEGAN / PacGAN 2D-ring:
          8 modes, radius 1, std 0.01)
  grid    toy2d.grid_size^2 Gaussians on a square grid centred at 0 (2D-grid: 25 modes
          at {-4,-2,0,2,4}^2, std 0.05)
  points  any N x 2 array from a .npy or .csv file at `config.data.path`, drawn uniformly
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Distribution2D:
  name: str
  sample: Callable[[jax.Array, int], jax.Array]   # (key, n) -> (n, 2) float32
  bounds: tuple                  # (xmin, xmax, ymin, ymax): the sample space the figures show
  description: str
  modes: np.ndarray | None = None  # (M, 2) mode centres, for the mode metric
  mode_std: float = 0.0            # std of every mode


DISTRIBUTIONS: Registry[Callable[[ml_collections.ConfigDict], Distribution2D]] = Registry(
    '2D distribution', 'config.data.name')


def _unit_square(key, n):
  u = jax.random.uniform(key, (n, 2), jnp.float32, -1.0, 1.0)
  return u[:, 0], u[:, 1]


def _padded(xmin, xmax, ymin, ymax, pad=0.1):
  dx, dy = (xmax - xmin) * pad, (ymax - ymin) * pad
  return (xmin - dx, xmax + dx, ymin - dy, ymax + dy)


@DISTRIBUTIONS.register('sine')
def _sine(config):
  f = float(config.toy2d.sine_frequency)

  def sample(key, n):
    x, y = _unit_square(key, n)
    return jnp.stack([x, jnp.sin(f * x) + y / 4], axis=1)

  top = 1.25 if f >= math.pi / 2 else math.sin(f) + 0.25
  return Distribution2D('sine', sample, _padded(-1, 1, -top, top),
                        f'sine (x, sin({f:g}x) + y/4)')


@DISTRIBUTIONS.register('circle')
def _circle(config):
  del config

  def sample(key, n):
    x, y = _unit_square(key, n)
    r, angle = x / 2, y * jnp.pi
    return jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], axis=1)

  return Distribution2D('circle', sample, _padded(-0.5, 0.5, -0.5, 0.5),
                        'circle (radius x/2, angle y*pi)')


@DISTRIBUTIONS.register('wing')
def _wing(config):
  del config

  def sample(key, n):
    x, _ = _unit_square(key, n)
    return jnp.stack([x / 2 * jnp.cos(3 * jnp.pi * x), x / 2 * jnp.sin(3 * jnp.pi * x)], axis=1)

  return Distribution2D('wing', sample, _padded(-0.5, 0.5, -0.5, 0.5),
                        'wing (x/2 cos 3 pi x, x/2 sin 3 pi x)')


def _mixture(name, centres, std, description):
  centres = np.asarray(centres, np.float32)
  device_centres = jnp.asarray(centres)

  def sample(key, n):
    k_mode, k_noise = jax.random.split(key)
    mode = jax.random.randint(k_mode, (n,), 0, len(centres))
    return device_centres[mode] + std * jax.random.normal(k_noise, (n, 2), jnp.float32)

  reach = 4 * std
  return Distribution2D(name, sample, _padded(centres[:, 0].min() - reach, centres[:, 0].max() + reach,
                                              centres[:, 1].min() - reach, centres[:, 1].max() + reach),
                        description, centres, float(std))


def _require_positive(config, *keys):
  config_base.raise_failed(config, [(config.toy2d[k] > 0, f'toy2d.{k}', 'must be positive')
                                   for k in keys])


@DISTRIBUTIONS.register('ring')
def _ring(config):
  t = config.toy2d
  _require_positive(config, 'ring_modes', 'ring_radius', 'ring_std')
  angles = 2 * np.pi * np.arange(t.ring_modes) / t.ring_modes
  centres = t.ring_radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return _mixture('ring', centres, t.ring_std,
                  f'ring of {t.ring_modes} Gaussians (radius {t.ring_radius:g}, std {t.ring_std:g})')


@DISTRIBUTIONS.register('grid')
def _grid(config):
  t = config.toy2d
  _require_positive(config, 'grid_size', 'grid_spacing', 'grid_std')
  axis = t.grid_spacing * (np.arange(t.grid_size) - (t.grid_size - 1) / 2)
  centres = np.stack(np.meshgrid(axis, axis, indexing='ij'), axis=-1).reshape(-1, 2)
  return _mixture('grid', centres, t.grid_std,
                  f'grid of {t.grid_size}x{t.grid_size} Gaussians (spacing {t.grid_spacing:g}, '
                  f'std {t.grid_std:g})')


def load_points(path: str) -> np.ndarray:
  """An N x 2 float32 array from a .npy or .csv file (comma or whitespace separated)."""
  if not path:
    raise errors.ConfigError("data.name='points' needs --config.data.path=FILE (.npy or .csv "
                             'holding an N x 2 array).')
  if not os.path.isfile(path):
    raise errors.DataNotFoundError(f'config.data.path={path!r}: no such file.')
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext == '.npy':
      points = np.load(path, allow_pickle=False)
    elif ext in ('.csv', '.txt'):
      with open(path) as f:
        first = f.readline()
      delimiter = ',' if ',' in first else None
      skip = 0 if _is_numeric_row(first, delimiter) else 1   # a header line
      points = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2)
    else:
      raise errors.DataError(f'{path}: unsupported extension {ext!r}; use .npy or .csv.')
  except ValueError as e:
    if isinstance(e, errors.GanJaxError):
      raise
    raise errors.DataError(f'{path}: cannot read an N x 2 array of numbers: {e}') from e
  points = np.asarray(points)
  if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
    raise errors.DataError(f'{path}: expected an N x 2 array of points, got shape {points.shape}.')
  if not np.issubdtype(points.dtype, np.number) or not np.all(np.isfinite(points)):
    raise errors.DataError(f'{path}: the points must be finite numbers.')
  return points.astype(np.float32)


def _is_numeric_row(line: str, delimiter) -> bool:
  try:
    [float(x) for x in line.strip().split(delimiter) if x.strip()]
    return True
  except ValueError:
    return False


@DISTRIBUTIONS.register('points')
def _points(config):
  path = config.data.path
  points = load_points(path)
  device_points = jnp.asarray(points)

  def sample(key, n):
    return device_points[jax.random.randint(key, (n,), 0, len(points))]

  lo, hi = points.min(axis=0), points.max(axis=0)
  span = np.maximum(hi - lo, 1e-3)
  return Distribution2D('points', sample,
                        _padded(lo[0], lo[0] + span[0], lo[1], lo[1] + span[1]),
                        f'{len(points)} points from {os.path.basename(path)}')


def build(config: ml_collections.ConfigDict) -> Distribution2D:
  """The target distribution named by `config.data.name`, with its parameters from `config.toy2d`."""
  return DISTRIBUTIONS.get(config.data.name)(config)
