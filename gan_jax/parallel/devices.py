"""Data parallelism over every device: a 1-D `Mesh`, replicated state, batch-sharded data.

The train step is a plain `jax.jit` over global arrays: the batch is sharded
along its batch axis over the mesh axis 'data' and the state is replicated.
XLA inserts the collectives, so BatchNorm's batch mean inside the step is the
mean over the *global* batch (synchronised BatchNorm) and gradients are
averaged over all devices without any code here.

With several processes (see `gan_jax.distributed`) the mesh spans the devices
of every process; each process supplies its slice of the batch and gets whole
replicated arrays back, and every jitted call must be made by all processes.
Random numbers need no per-device keys: with `jax_threefry_partitionable` (the
default) a sharded random array has the same values for any sharding, each
device computing only its own part.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import errors

DATA_AXIS = 'data'


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  """Shards axis `batch_axis` over the devices (step batches have n_disc first)."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def batch_constraint(mesh: Mesh):
  """`constrain(x)`: x sharded along its first axis over the mesh, inside a jitted step.

  Arrays a step makes itself (G's noise and labels) get no sharding from its
  inputs, and XLA then replicates them: with two devices, each computed G
  and D's pass on generated images for the whole global batch (94% of the
  one-device work per device, measured by XLA's cost analysis). The
  constraint splits them like the real batch.
  """
  sharding = batch_sharded(mesh)
  return lambda x: jax.lax.with_sharding_constraint(x, sharding)


def check_batch_size(global_batch: int, mesh: Mesh,
                     config_key: str = 'config.train.batch_size') -> None:
  """ConfigError unless the batch splits evenly over the mesh's devices.

  Only the split is checked here, where the mesh is known; that the batch is
  positive is `config.base.validate`'s.
  """
  n = mesh.devices.size
  if global_batch % n:
    lower = max(n, global_batch // n * n)
    raise errors.ConfigError(
        f'{config_key}={global_batch} does not divide evenly over the {n} '
        f'devices ({jax.devices()[0].platform}). Use a multiple of {n}, e.g. '
        f'--{config_key}={lower}.')


def global_batch(local: Any, mesh: Mesh, batch_axis: int = 1) -> Any:
  """This process's numpy batch -> global jax arrays sharded over all devices."""
  sharding = batch_sharded(mesh, batch_axis)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), local)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Host values that every process holds identically -> global arrays replicated on all devices."""
  sharding = replicated(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree: Any) -> Any:
  """Global arrays -> numpy on every process: replicated ones are read locally, others gathered.

  Gathering is a collective, so with several processes all of them must call this.
  """
  def fetch(x):
    if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
      return multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))
  return jax.tree.map(fetch, tree)


def sync_processes(name: str) -> None:
  """Waits until every process reaches the barrier `name`; free with one process."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
