"""Multi-host start-up: `jax.distributed.initialize` from the config, the environment, or a detected cluster.

One process runs per host (or per GPU, as the launcher decides); after
initialisation every process sees all devices of the job in `jax.devices()`,
and the same jitted step runs on all of them over one global device mesh.

Where the settings come from, first match wins:

1. `config.distributed.coordinator_address` (with `num_processes` and
   `process_id`), e.g. for processes started by hand;
2. the environment variable `JAX_COORDINATOR_ADDRESS` (JAX's own), with the
   process count and id from the config or a detected cluster;
3. a cluster that JAX detects by itself (`config.distributed.auto_detect`):
   a SLURM job step started by `srun`, the hosts of a Cloud TPU pod slice,
   Open MPI's `mpirun`, or Kubernetes (with the `kubernetes` package);
4. otherwise a single process with its local devices.
"""

from __future__ import annotations

import os

from absl import logging
import jax
import ml_collections

from gan_jax import errors


def _explicit(dist: ml_collections.ConfigDict) -> dict:
  """The settings given in the config, as `jax.distributed.initialize` arguments."""
  kwargs = {'initialization_timeout': dist.initialization_timeout}
  if dist.coordinator_address:
    kwargs['coordinator_address'] = dist.coordinator_address
  if dist.num_processes > 0:
    kwargs['num_processes'] = dist.num_processes
  if dist.process_id >= 0:
    kwargs['process_id'] = dist.process_id
  return kwargs


def initialize(dist: ml_collections.ConfigDict) -> None:
  """Joins the multi-process job the config or environment describes; a no-op for one process.

  Must run before JAX touches a device (any computation, `jax.devices()`);
  `train.train_and_evaluate` calls it first. Calling it again, or after the
  caller has initialised `jax.distributed` itself, does nothing.
  """
  if jax.distributed.is_initialized():
    return
  kwargs = _explicit(dist)
  explicit = bool('coordinator_address' in kwargs or
                  os.environ.get('JAX_COORDINATOR_ADDRESS'))
  if not explicit and not dist.auto_detect:
    return
  try:
    jax.distributed.initialize(**kwargs)
  except RuntimeError as e:
    if 'must be called before' not in str(e):
      raise
    if explicit:
      raise errors.ConfigError(
          'jax.distributed must be initialised before JAX uses any device, but '
          'this process already has. Start training in a fresh process '
          '(python -m gan_jax.main ...), or call jax.distributed.initialize() '
          'yourself before anything else.') from e
    # A library caller that already ran JAX owns the process layout.
    logging.info('JAX already started: not looking for a cluster (%s)', e)
    return
  except ValueError as e:
    if not explicit and 'coordinator_address' in str(e) and len(kwargs) == 1:
      return  # no cluster detected and none asked for: one process
    raise errors.ConfigError(
        f'Cannot start the multi-process job: {e}. Give every process the same '
        '--config.distributed.coordinator_address=HOST:PORT and '
        '--config.distributed.num_processes=N, and each its own '
        '--config.distributed.process_id (0..N-1).') from e
  logging.info('jax.distributed: process %d of %d, %d local of %d devices',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  _skip_compilation_cache_on_cpu()


def _skip_compilation_cache_on_cpu() -> None:
  """Turns JAX's persistent compilation cache off for a multi-process CPU job.

  Under JAX 0.12 a multi-process CPU step loaded from that cache never
  returns from its first gloo collective (compiled afresh it runs), so such
  jobs compile every time; CPU jobs of several processes are for testing.
  """
  if (jax.process_count() > 1 and jax.default_backend() == 'cpu'
      and jax.config.jax_compilation_cache_dir and jax.config.jax_enable_compilation_cache):
    jax.config.update('jax_enable_compilation_cache', False)
    logging.warning('Multi-process CPU job: JAX\'s persistent compilation cache is off '
                    '(a CPU step loaded from it hangs in its first collective).')
