"""Checks before the first training step, so a run does not die hours in over something knowable at start.

  * the workdir can be created and written (an error naming the directory);
  * its disk has room for `keep_checkpoints + 1` checkpoints (a warning:
    compression and other files make the estimate rough);
  * what periodic evaluation needs is loaded by `PeriodicEvaluation` itself,
    before the first step (gan_jax.metrics.hook).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import jax
import numpy as np

from gan_jax import errors


def check_writable(workdir: str) -> None:
  """Creates `workdir` if needed and writes a file in it; ConfigError naming the cause otherwise."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=workdir, prefix='.gan_jax_write_test'):
      pass
  except OSError as e:
    raise errors.ConfigError(
        f'The workdir {workdir} cannot be written ({e.strerror or e}). Choose a --workdir on a writable disk, or fix its '
        'permissions.') from e


def state_bytes(abstract_state) -> int:
  """Bytes of a state's arrays: an upper bound on one checkpoint (orbax compresses)."""
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
             for x in jax.tree.leaves(abstract_state))


def space_warning(workdir: str, checkpoint_bytes: int, keep: int) -> str | None:
  """A warning line when the workdir's disk may not hold `keep + 1` checkpoints, else None.

  Orbax writes a new checkpoint before it deletes the oldest, so keep + 1 of
  them exist for a moment.
  """
  needed = (keep + 1) * checkpoint_bytes
  try:
    free = shutil.disk_usage(workdir).free
  except OSError:
    return None
  if free >= needed:
    return None
  return (f'Warning: {free / 2**20:.1f} MB free on the disk of {workdir}, and '
          f'{keep + 1} checkpoints of up to '
          f'{checkpoint_bytes / 2**20:.1f} MB each (train.keep_checkpoints + 1) need '
          f'{needed / 2**20:.1f} MB. A save that runs out of space stops the run, keeping '
          'the last complete checkpoint; free some space or lower train.keep_checkpoints.')
