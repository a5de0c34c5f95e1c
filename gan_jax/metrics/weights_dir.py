"""A directory holding a network's variables (an orbax checkpoint) beside a JSON description.

The converted Inception weights and every domain classifier are stored this
way: `DIR/variables/` (orbax) and `DIR/<meta file>.json`.
"""

from __future__ import annotations

import json
import os

from gan_jax import errors

VARIABLES_SUBDIR = 'variables'


def save(out_dir: str, variables: dict, meta: dict, meta_file: str) -> str:
  """Writes the variables and `meta`; refuses to overwrite an existing directory's variables."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  out_dir = os.path.abspath(out_dir)
  target = os.path.join(out_dir, VARIABLES_SUBDIR)
  if os.path.exists(target):
    raise errors.ConfigError(f'{out_dir} already holds saved weights; remove it or '
                             'choose another --out.')
  os.makedirs(out_dir, exist_ok=True)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(target, variables)
  checkpointer.wait_until_finished()
  with open(os.path.join(out_dir, meta_file), 'w') as f:
    json.dump(meta, f, indent=2, sort_keys=True)
  return out_dir


def exists(path: str, meta_file: str) -> bool:
  return os.path.exists(os.path.join(path, meta_file))


def load(path: str, meta_file: str) -> tuple[dict, dict]:
  """(variables as numpy, meta); callers check `exists` first to give their own advice.

  Restored into numpy arrays of the saved shapes: every process of a
  multi-process run reads the whole of each array, whatever the topology it
  was saved from (a jax.Array target would need the saving run's devices).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  with open(os.path.join(path, meta_file)) as f:
    meta = json.load(f)
  checkpointer = ocp.StandardCheckpointer()
  directory = os.path.join(path, VARIABLES_SUBDIR)
  saved = checkpointer.metadata(directory).item_metadata.tree
  target = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), saved)
  return checkpointer.restore(directory, target), meta
