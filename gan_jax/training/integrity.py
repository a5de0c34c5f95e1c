"""Per-array digests of a state, saved with each checkpoint and checked on restore.

Orbax stores array bytes in chunks that are compressed only when they
compress: the bytes of trained float weights mostly do not, and a flipped
byte there restores silently as a different weight. The digest of an array is
sum_i w_i * (2i + 1) mod 2^32 over its bytes read as 32-bit words (narrower
types widened, typed PRNG keys as their key data). Every multiplier is odd,
so any single changed word changes the digest; it is a check against damage,
not a cryptographic hash. It is computed on the device, so only one number
per array reaches the host.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_UNSIGNED = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}


def _words(x: jax.Array) -> jax.Array:
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    x = x.astype(jnp.uint8)
  x = jnp.ravel(x)
  size = x.dtype.itemsize
  if size == 8:  # only with jax_enable_x64: two words each
    return jax.lax.bitcast_convert_type(x, jnp.uint32).ravel()
  return jax.lax.bitcast_convert_type(x, _UNSIGNED[size]).astype(jnp.uint32)


def _array_digest(x: jax.Array) -> jax.Array:
  words = _words(x)
  odd = 2 * jnp.arange(words.size, dtype=jnp.uint32) + 1
  return jnp.sum(words * odd, dtype=jnp.uint32)


@functools.partial(jax.jit)
def _digests(state: Any) -> list[jax.Array]:
  return [_array_digest(x) for x in jax.tree.leaves(state)]


def _names(state: Any) -> list[str]:
  return [jax.tree_util.keystr(path, simple=True, separator='.')
          for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]


def digest(state: Any) -> dict[str, int]:
  """{array name: digest} for every array of `state` (names as in orbax's metadata)."""
  values = np.asarray(jax.device_get(_digests(state)), np.uint32)
  return dict(zip(_names(state), (int(v) for v in values)))


def mismatches(state: Any, saved: dict) -> list[str]:
  """The names of `state`'s arrays whose digest differs from `saved`, with both values."""
  now = digest(state)
  return [f'{name}: saved digest {saved.get(name)}, read back {value}'
          for name, value in now.items() if saved.get(name) != value]
