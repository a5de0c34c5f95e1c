"""Orbax checkpointing of the GANState: save every N steps, keep the last K, restore the latest.

Orbax writes each checkpoint into a temporary directory (`N.orbax-checkpoint-tmp`)
and renames it to `N` only once complete, so a save interrupted at any moment,
by SIGKILL included, never replaces or damages the previous checkpoint, and
`latest_step` only ever sees finished ones. Old checkpoints are deleted only
after the new one is complete. The leftover temporary directory of a killed
save is removed when the next training run opens the directory (orbax 0.12.8,
checked in tests/test_resilience.py).

Saving is asynchronous: `save` returns once the arrays are copied off the
device, and orbax writes them on a background thread while training goes on.
The train step donates the state's buffers, which is safe: on accelerators
the save has copied the arrays to host memory, and on CPU, where that copy
is a view of the same memory, JAX does not donate a buffer that a view still
references (tested in tests/test_resilience.py).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for one pytree state."""

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True,
               remove_partial_saves: bool = False):
    """`remove_partial_saves`: delete what killed saves left; only for the run that trains
    (a reader such as `generate` must not touch the saves of a run in progress)."""
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory, item_handlers=ocp.StandardCheckpointHandler(),  # metadata needs it
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, cleanup_tmp_directories=remove_partial_saves,
            enable_async_checkpointing=async_save))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """Restores `step` (default: latest) into the shapes and shardings of `abstract_state`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    self._check_fits(step, abstract_state)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

  def _check_fits(self, step: int, abstract_state: Any) -> None:
    """Raises ValueError naming the arrays whose shapes differ, from the metadata alone.

    Checked before restoring because a restore that fails half-way leaves
    orbax's pending reads behind, to be reported when they are collected.
    """
    saved = {meta.name: tuple(meta.shape)
             for meta in jax.tree.leaves(self._manager.item_metadata(step).tree)}
    wanted = {jax.tree_util.keystr(path, simple=True, separator='.'): tuple(x.shape)
              for path, x in jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
    differ = [f'{name}: saved {saved.get(name)}, expected {wanted.get(name)}'
              for name in sorted(set(saved) | set(wanted), key=lambda n: ('opt_state' in n, n))
              if saved.get(name) != wanted.get(name)]  # parameters first: users know them
    if differ:
      raise ValueError(f'{len(differ)} array(s) differ from step {step}\'s checkpoint, e.g. '
                       + '; '.join(differ[:2]))

  def restore_or_init(self, init_fn: Callable[[], Any],
                      sharding: jax.sharding.Sharding) -> tuple[Any, bool]:
    """The latest checkpoint if there is one, else `init_fn()`, placed with `sharding`.

    Returns the state and whether it was restored.
    """
    if self.latest_step() is None:
      return jax.jit(init_fn, out_shardings=sharding)(), False
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
        jax.eval_shape(init_fn))
    return self.restore(abstract), True

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
