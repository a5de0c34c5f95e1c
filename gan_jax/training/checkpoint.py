"""Orbax checkpointing of the GANState: save every N steps, keep the last K, restore the newest readable one.

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
references (tested in tests/test_resilience.py). A background save that
failed (a full disk) raises `CheckpointSaveFailed` at the next `poll`, `save`
or `wait`, with the partial save removed.

Each checkpoint carries a digest of its arrays (`gan_jax.integrity`), because
orbax stores most array bytes without a checksum: a flipped byte there
restores silently as a wrong weight. A checkpoint that cannot be read
(checksum or decoding failure, missing or truncated file, invalid metadata,
digest mismatch) raises `CheckpointUnreadable`, which is told apart from one
that does not fit the config (`ValueError`); `restore_newest_readable` moves
unreadable ones aside to `N.corrupt` and falls back to the newest readable one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from gan_jax import errors
from gan_jax.parallel import devices
from gan_jax.training import integrity

STATE_ITEM = 'default'   # orbax's name for a manager's single item: older checkpoints have only it
DIGEST_ITEM = 'digest'
CORRUPT_SUFFIX = '.corrupt'
TMP_SUFFIX = '.orbax-checkpoint-tmp'   # orbax's unfinished saves


class CheckpointUnreadable(errors.GanJaxError):
  """A checkpoint whose files cannot be read back as they were saved."""

  def __init__(self, step: int, where: str, cause: str):
    super().__init__(f'the checkpoint at step {step} cannot be read: {cause} ({where})')
    self.step, self.where, self.cause = step, where, cause


class CheckpointSaveFailed(errors.GanJaxError):
  """A save that did not complete: the message says why and which checkpoint is kept."""


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for one pytree state and its digest."""

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True,
               remove_partial_saves: bool = False):
    """`remove_partial_saves`: delete what killed saves left; only for the run that trains
    (a reader such as `generate` must not touch the saves of a run in progress)."""
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        item_handlers={STATE_ITEM: ocp.StandardCheckpointHandler(),  # metadata needs it
                       DIGEST_ITEM: ocp.JsonCheckpointHandler()},
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, cleanup_tmp_directories=remove_partial_saves,
            enable_async_checkpointing=async_save))
    self._saving: int | None = None     # the step of the save that may still be in flight
    self._failed: CheckpointSaveFailed | None = None

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  # --- saving ------------------------------------------------------------------------
  def save(self, step: int, state: Any) -> None:
    """Starts saving `state` as step `step`; raises CheckpointSaveFailed if this or an earlier save failed."""
    self.poll()
    if self._saving is not None:  # orbax waits for it anyway; this names the step that failed
      self.wait()
    digest = integrity.digest(state)
    try:
      self._manager.save(step, args=ocp.args.Composite(
          **{STATE_ITEM: ocp.args.StandardSave(state), DIGEST_ITEM: ocp.args.JsonSave(digest)}),
          force=True)
    except Exception as e:  # pylint: disable=broad-except  (orbax and tensorstore raise many kinds)
      raise self._save_failed(step, e) from e
    self._saving = step

  def poll(self) -> None:
    """Raises CheckpointSaveFailed if a background save has failed; cheap, call it every step."""
    if self._failed:
      raise self._failed
    if self._saving is None:
      return
    try:
      self._manager.check_for_errors()
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_failed(self._saving, e) from e

  def wait(self) -> None:
    """Waits for the save in flight; raises CheckpointSaveFailed if it failed."""
    if self._failed:
      raise self._failed
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_failed(self._saving, e) from e
    self._saving = None

  def _save_failed(self, step: int | None, e: Exception) -> CheckpointSaveFailed:
    """Removes the partial save and describes the failure: the OS error, space, what is kept."""
    with contextlib.suppress(Exception):
      self._manager.wait_until_finished()   # let orbax's threads stop writing first
    removed = self._remove_partial()
    with contextlib.suppress(Exception):
      self._manager.reload()
    kept = self._complete_steps()
    free = _free_bytes(self.directory)
    size = self.checkpoint_bytes()
    self._failed = CheckpointSaveFailed(
        f'Saving the checkpoint at step {step} in {self.directory} failed: '
        f'{os_error_text(e)}. Free space there: {_format_bytes(free)}'
        + (f'; one checkpoint takes {_format_bytes(size)}' if size else '')
        + ('; the partial save was removed' if removed else '') + '. '
        + (f'The last complete checkpoint (step {kept[-1]}) is kept: free some space '
           '(or lower train.keep_checkpoints) and rerun the command to resume from it.'
           if kept else 'No complete checkpoint was kept: rerunning starts from step 0.'))
    self._saving = None
    return self._failed

  def _remove_partial(self) -> bool:
    """Removes the temporary directories of failed saves (no save is in flight now)."""
    if jax.process_index() != 0 or not os.path.isdir(self.directory):
      return False
    removed = False
    for name in os.listdir(self.directory):
      if TMP_SUFFIX in name:
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        removed = True
    return removed

  def _complete_steps(self) -> list[int]:
    with contextlib.suppress(Exception):
      return self.all_steps()
    return []

  # --- restoring ---------------------------------------------------------------------
  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """Restores `step` (default: latest) into the shapes and shardings of `abstract_state`.

    Raises ValueError when the checkpoint does not fit `abstract_state`, and
    CheckpointUnreadable when its files cannot be read back as saved.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    where = os.path.join(self.directory, str(step))
    try:
      metadata = self._manager.item_metadata(step)
      saved = metadata[STATE_ITEM].tree
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointUnreadable(step, _file_in(e, where), _cause(e)) from e
    self._check_fits(step, saved, abstract_state)
    has_digest = os.path.isdir(os.path.join(where, DIGEST_ITEM))
    args = {STATE_ITEM: ocp.args.StandardRestore(abstract_state)}
    if has_digest:
      args[DIGEST_ITEM] = ocp.args.JsonRestore()
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(**args))
    except Exception as e:  # pylint: disable=broad-except  (names and shapes fit: the files are bad)
      raise CheckpointUnreadable(step, _file_in(e, where), _cause(e)) from e
    state = restored[STATE_ITEM]
    if has_digest:
      differ = integrity.mismatches(state, restored[DIGEST_ITEM])
      if differ:
        raise CheckpointUnreadable(
            step, os.path.join(where, STATE_ITEM),
            f'{len(differ)} array(s) differ from the digest saved with them, e.g. {differ[0]}')
    return state

  @staticmethod
  def _check_fits(step: int, saved_tree: Any, abstract_state: Any) -> None:
    """Raises ValueError naming the arrays whose shapes differ, from the metadata alone.

    Checked before restoring because a restore that fails half-way leaves
    orbax's pending reads behind, to be reported when they are collected.
    """
    saved = {meta.name: tuple(meta.shape) for meta in jax.tree.leaves(saved_tree)}
    wanted = {jax.tree_util.keystr(path, simple=True, separator='.'): tuple(x.shape)
              for path, x in jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
    differ = [f'{name}: saved {saved.get(name)}, expected {wanted.get(name)}'
              for name in sorted(set(saved) | set(wanted), key=lambda n: ('opt_state' in n, n))
              if saved.get(name) != wanted.get(name)]  # parameters first: users know them
    if differ:
      raise ValueError(f'{len(differ)} array(s) differ from step {step}\'s checkpoint, e.g. '
                       + '; '.join(differ[:2]))

  def restore_newest_readable(self, abstract_state: Any, say: Callable[[str], None] = print,
                              move_aside: bool = True) -> tuple[Any, int]:
    """(state, step) of the newest checkpoint that reads back intact.

    Newer unreadable ones are moved aside to `N.corrupt` (never deleted;
    a reader passes move_aside=False), with one line each. When none is
    readable nothing is moved, and
    CheckpointUnreadable names them all. A checkpoint that does not fit
    `abstract_state` raises ValueError, as in `restore`.
    """
    unreadable: list[CheckpointUnreadable] = []
    for step in reversed(self.all_steps()):
      try:
        state = self.restore(abstract_state, step)
      except CheckpointUnreadable as e:
        unreadable.append(e)
        continue
      _agree_across_processes(step)
      for bad in unreadable:
        moved = f'Moved it to {self._move_aside(bad.step)}; resuming' if move_aside else 'Using'
        say(f'Warning: {bad}. {moved} from the newest readable checkpoint (step {step}).')
      if unreadable and move_aside:
        self._manager.reload()
      return state, step
    raise CheckpointUnreadable(
        unreadable[0].step, self.directory,
        'no checkpoint in it can be read: '
        + '; '.join(f'step {e.step}: {e.cause} ({e.where})' for e in unreadable)
        + '. Nothing was moved or deleted. Restore the directory from a copy, or '
        'start again in a new --workdir')

  def _move_aside(self, step: int) -> str:
    source = os.path.join(self.directory, str(step))
    target, n = source + CORRUPT_SUFFIX, 1
    while os.path.exists(target):
      n += 1
      target = f'{source}{CORRUPT_SUFFIX}-{n}'
    devices.sync_processes(f'move aside {step}')  # every process has finished reading it
    if jax.process_index() == 0:
      os.rename(source, target)
    devices.sync_processes(f'moved aside {step}')
    return target

  def restore_or_init(self, init_fn: Callable[[], Any], sharding: jax.sharding.Sharding,
                      say: Callable[[str], None] = print) -> tuple[Any, bool]:
    """The newest readable checkpoint if there is one, else `init_fn()`, placed with `sharding`.

    Returns the state and whether it was restored.
    """
    if self.latest_step() is None:
      return jax.jit(init_fn, out_shardings=sharding)(), False
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
        jax.eval_shape(init_fn))
    return self.restore_newest_readable(abstract, say)[0], True

  def checkpoint_bytes(self) -> int | None:
    """Bytes on disk of the newest complete checkpoint, or None without one."""
    steps = self._complete_steps()
    return _dir_bytes(os.path.join(self.directory, str(steps[-1]))) if steps else None

  def close(self) -> None:
    """Waits for the save in flight and stops orbax's threads; never raises a failure twice."""
    try:
      if not self._failed:
        self.wait()
    finally:
      with contextlib.suppress(Exception):
        self._manager.close()


def _agree_across_processes(step: int) -> None:
  if jax.process_count() > 1:
    multihost_utils.assert_equal(step, 'processes restored different checkpoints')


# --- describing failures ------------------------------------------------------------
_OS_ERROR = re.compile(r'(No space left on device|Disk quota exceeded|Read-only file system|'
                       r'Permission denied|Input/output error|File too large)', re.I)


def os_error_text(e: BaseException) -> str:
  """The OS error behind `e` (orbax and tensorstore wrap it in their own), else `e` itself, shortened."""
  seen = e
  while seen is not None:
    if isinstance(seen, OSError) and seen.strerror:
      return f'{seen.strerror} (errno {errno.errorcode.get(seen.errno, seen.errno)})'
    seen = seen.__cause__ or seen.__context__
  match = _OS_ERROR.search(str(e))
  return match.group(1) if match else _cause(e)


def _cause(e: BaseException) -> str:
  text = ' '.join(str(e).split())
  text = re.sub(r' See full TensorStore details:.*', '', text)
  return f'{type(e).__name__}: {text[:300]}'


def _file_in(e: BaseException, default: str) -> str:
  """The file a tensorstore or json error names, else `default`."""
  match = re.search(r'(?:local )?file "([^"]+)"', str(e))
  return match.group(1) if match else default


def _free_bytes(path: str) -> int | None:
  with contextlib.suppress(OSError):
    return shutil.disk_usage(path).free
  return None


def _dir_bytes(path: str) -> int:
  total = 0
  for root, _, files in os.walk(path):
    for name in files:
      with contextlib.suppress(OSError):
        total += os.path.getsize(os.path.join(root, name))
  return total


def _format_bytes(n: int | None) -> str:
  if n is None:
    return 'unknown'
  for unit in ('B', 'KB', 'MB', 'GB'):
    if n < 1024 or unit == 'GB':
      return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
    n /= 1024
  return f'{n:.1f} TB'
