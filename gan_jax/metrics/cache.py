"""Where evaluation keeps what it computes once: converted Inception weights and reference statistics.

The cache directory is, in order: `config.eval.cache_dir`, `$GAN_JAX_CACHE_DIR`,
`$XDG_CACHE_HOME/gan_jax`, `~/.cache/gan_jax`. Reference statistics are keyed
by a hash of everything that determines them (feature extractor, dataset,
split, sample count, seed), so a changed setting never reuses stale numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable

import numpy as np

CACHE_ENV = 'GAN_JAX_CACHE_DIR'


def cache_dir(configured: str = '') -> str:
  if configured:
    return os.path.abspath(os.path.expanduser(configured))
  if os.environ.get(CACHE_ENV):
    return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'gan_jax')


def fingerprint(description: dict) -> str:
  """A short stable hash of a JSON-serialisable description."""
  text = json.dumps(description, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_arrays(directory: str, name: str, description: dict,
                  compute: Callable[[], dict]) -> tuple[dict, str]:
  """`compute()` (a dict of arrays) stored as `directory/name-HASH.npz`; returns (arrays, path).

  The description is stored beside the arrays (`.json`), so a cache entry
  says what it holds.
  """
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, f'{name}-{fingerprint(description)}.npz')
  if os.path.exists(path):
    with np.load(path) as npz:
      return {k: npz[k] for k in npz.files}, path
  arrays = compute()
  # Per-process temporary names: several processes (or runs) may fill one entry at once.
  tmp = f'{path}.{os.getpid()}.tmp.npz'
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  with open(f'{path[:-4]}.{os.getpid()}.tmp', 'w') as f:
    json.dump(description, f, indent=2, sort_keys=True, default=str)
  os.replace(f.name, path[:-4] + '.json')
  return arrays, path
