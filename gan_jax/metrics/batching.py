"""Running a jitted function over a large array in fixed-size batches sharded over every device.

Batches are padded to one fixed size (a multiple of the device count), so a
function compiles once whatever the number of examples, and each batch is
split over the mesh axis 'data' like a training batch. Results come back to
the host as numpy, padding removed, on every process: with several processes,
each must call `map_batched` with the same inputs (it gathers collectively).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh

from gan_jax.parallel import devices


def round_batch(batch_size: int, mesh: Mesh) -> int:
  """`batch_size` rounded up to a multiple of the device count."""
  n = mesh.devices.size
  return max(n, -(-batch_size // n) * n)


def map_batched(fn: Callable[..., Any], inputs: Any, batch_size: int, mesh: Mesh,
                *replicated_args: Any) -> Any:
  """`fn(batch, *replicated_args)` over axis 0 of the pytree `inputs`; outputs concatenated.

  `fn` must be jitted with `batch` sharded as `devices.batch_sharded(mesh, 0)`
  (see `jit_batched`); its outputs keep the batch axis first.
  """
  leaves = jax.tree.leaves(inputs)
  num = len(leaves[0])
  batch_size = round_batch(min(batch_size, max(num, 1)), mesh)
  sharding = devices.batch_sharded(mesh, 0)
  outputs = []
  for start in range(0, num, batch_size):
    stop = min(start + batch_size, num)

    def take(x):
      part = np.asarray(x[start:stop])
      if stop - start < batch_size:  # pad with copies of the last row: one compilation
        pad = np.repeat(part[-1:], batch_size - (stop - start), axis=0)
        part = np.concatenate([part, pad])
      return jax.device_put(part, sharding)

    result = fn(jax.tree.map(take, inputs), *replicated_args)
    # to_host gathers the shards other processes hold (every process calls this)
    outputs.append(jax.tree.map(lambda y, n=stop - start: np.asarray(y)[:n],
                                devices.to_host(result)))
  return jax.tree.map(lambda *parts: np.concatenate(parts), *outputs)


def jit_batched(fn: Callable[..., Any], mesh: Mesh, num_replicated: int = 0):
  """jax.jit of `fn(batch, *replicated)`: batch sharded over 'data', the rest replicated."""
  rep = devices.replicated(mesh)
  return jax.jit(fn, in_shardings=(devices.batch_sharded(mesh, 0),) + (rep,) * num_replicated)
