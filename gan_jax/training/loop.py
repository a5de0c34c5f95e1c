"""The skeleton both trainers share: pre-flight checks, resume, the finite check, checkpointing, clean exits.

`gan_jax.train` (images) and `gan_jax.toy2d.trainer` (the 2D lab) differ in
how they step and what they draw; everything that keeps a run safe lives
here, once:

  with loop.TrainingRun(config, workdir, info, init_state, sharding) as run:
    state = run.state                       # restored or initialised
    for step in ...:
      ...
      run.poll()                            # a failed background save stops the run
      if loop.due(step, tc.checkpoint_every, last):
        run.save(step, state)

`TrainingRun` checks that the workdir is writable and has room, refuses a
resume whose config changed (`check_resume`), falls back past unreadable
checkpoints (moving them to `N.corrupt`), cuts the metrics log back to the
restored step, and on the way out, error or not, waits for the save in
flight and closes the checkpointer and the metric writers.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

import jax
import ml_collections
import numpy as np

from gan_jax.training import checkpoint as checkpoint_lib
from gan_jax.config import saved as saved_config
from gan_jax import errors
from gan_jax.parallel import devices
from gan_jax.training import preflight
from gan_jax.training import reporting
from gan_jax.data.source import DatasetInfo

DATA_INFO_FILE = 'data_info.json'


def due(step: int, every: int, last: bool) -> bool:
  return last or (every > 0 and step % every == 0)


def out_of_time(started: float, budget_s: float, step: int, sync_every: int) -> bool:
  """Whether train.max_minutes (`budget_s`, 0 = none) has run out since `started`.

  One process reads its clock after every step. Several processes must stop
  at the same step, so they read process 0's clock, and only every
  `sync_every` steps, as the agreement is a collective.
  """
  if not budget_s:
    return False
  if jax.process_count() == 1:
    return time.perf_counter() - started > budget_s
  if step % max(sync_every, 1):
    return False
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  spent = np.asarray(time.perf_counter() - started > budget_s)
  return bool(multihost_utils.broadcast_one_to_all(spent))


def write_json(path: str, value) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, indent=2)
    f.write('\n')
  os.replace(path + '.tmp', path)


def num_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def load_data_info(workdir: str) -> DatasetInfo:
  with open(os.path.join(workdir, DATA_INFO_FILE)) as f:
    return DatasetInfo.from_dict(json.load(f))


def host_metrics(pending: list[dict]) -> dict[str, np.ndarray]:
  """Device metrics of single steps or scanned chunks -> one host array per metric, in step order."""
  host = jax.device_get(pending)
  return {k: np.concatenate([np.atleast_1d(m[k]) for m in host]) for k in host[0]}


def check_finite(per_step: dict[str, np.ndarray], last_step: int,
                 ckpt: checkpoint_lib.Checkpointer) -> None:
  """Raises TrainingDiverged naming the first step whose loss or gradient was not finite.

  `per_step` holds the metrics of the steps up to `last_step` (host_metrics).
  """
  finite = per_step['finite']
  if finite.all():
    return
  bad = int(np.argmin(finite))
  step = last_step - len(finite) + bad + 1
  shown = ', '.join(f'{k}={float(v[bad]):.4g}' for k, v in sorted(per_step.items())
                    if k != 'finite')
  last = ckpt.latest_step()
  kept = (f'The last good checkpoint (step {last}) in {ckpt.directory} is kept; '
          'rerunning the command resumes from it' if last is not None else
          'No checkpoint had been saved yet')
  raise errors.TrainingDiverged(
      f'Training diverged at step {step}: a loss or gradient is NaN or infinite '
      f'({shown}). {kept}. Lower the learning rates (config.optim.g.lr, '
      'config.optim.d.lr) and resume with --allow_config_change, or change the '
      'loss or model in a new workdir.')


def check_resume(config: ml_collections.ConfigDict, info: DatasetInfo, workdir: str,
                 allow_config_change: bool = False) -> list[str]:
  """Refuses to resume a checkpoint with a config or dataset that would silently change the run.

  Only keys in `config.RESUMABLE_KEYS` may differ from the workdir's
  config.json; `allow_config_change` accepts any other change (the run then
  continues with the new values, from the checkpoint's weights). Returns the
  accepted changes, one line each.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return []
  saved = saved_config.load_from_workdir(workdir)
  changes = [f'  {key}: {old!r} -> {new!r}'
             for key, old, new in saved_config.resume_conflicts(saved, config)]
  data_path = os.path.join(workdir, DATA_INFO_FILE)
  if os.path.exists(data_path):
    old_info = load_data_info(workdir)
    for field in ('num_examples', 'image_shape', 'num_classes', 'class_names'):
      old, new = getattr(old_info, field), getattr(info, field)
      if old != new:
        changes.append(f'  data {field}: {old!r} -> {new!r} ({DATA_INFO_FILE})')
  if not changes or allow_config_change:
    return changes
  raise errors.ConfigError(
      f'{workdir} holds a checkpoint of a run with a different config or dataset '
      f'({path}); resuming it with this one would silently change the experiment:\n'
      + '\n'.join(changes) + '\n'
      'Use a new --workdir for a new experiment, or pass --allow_config_change '
      '(train_and_evaluate(..., allow_config_change=True)) to resume with the new '
      'values. The checkpoints and config.json were left as they are. Keys that may '
      'change on resume: '
      f'{", ".join(saved_config.RESUMABLE_KEYS)}.')


class TrainingRun:
  """A training run's checkpointer, metrics and resume, opened and closed safely (a context manager).

  Inside the `with`: `state` (restored or initialised), `start_step`,
  `restored`, `reporter`, `say` and `ckpt`.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, info: DatasetInfo,
               init_state: Callable, sharding: jax.sharding.Sharding, *,
               allow_config_change: bool = False, is_main: bool = True):
    self.config = config
    self.workdir = workdir
    self.info = info
    self._init_state = init_state
    self._sharding = sharding
    self._allow_config_change = allow_config_change
    self.is_main = is_main
    self.ckpt: checkpoint_lib.Checkpointer | None = None
    self.reporter: reporting.Reporter | None = None
    self.state = None
    self.start_step = 0
    self.restored = False
    self.changes: list[str] = []

  def __enter__(self) -> 'TrainingRun':
    tc = self.config.train
    preflight.check_writable(self.workdir)
    self.ckpt = checkpoint_lib.Checkpointer(os.path.join(self.workdir, 'checkpoints'),
                                            tc.keep_checkpoints, remove_partial_saves=True)
    try:
      self._open()
    except BaseException as e:
      self._close(failing=e)
      raise
    return self

  def _open(self) -> None:
    tc = self.config.train
    resuming = self.ckpt.latest_step() is not None
    if resuming:
      self.changes = check_resume(self.config, self.info, self.workdir,
                                  self._allow_config_change)
    notes: list[str] = []
    try:
      self.state, self.restored = self.ckpt.restore_or_init(
          self._init_state, self._sharding, say=notes.append)
    except (ValueError, KeyError, TypeError) as e:  # names or shapes differ from the config's
      if not resuming:
        raise
      raise errors.ConfigError(
          f'The checkpoint in {self.ckpt.directory} does not fit the model and optimizers '
          f'of this config ({type(e).__name__}: {str(e)[:500]}). A changed model, '
          'optimizer or EMA setting cannot resume: use a new --workdir.') from e
    self.start_step = int(self.state.step)
    devices.sync_processes('workdir checked')  # every process read config.json
    if self.is_main:
      saved_config.save_to_workdir(self.config, self.workdir)
      write_json(os.path.join(self.workdir, DATA_INFO_FILE), self.info.to_dict())
    # Cuts metrics.jsonl and TensorBoard back to the restored step.
    self.reporter = reporting.Reporter(self.workdir, self.start_step, tc.num_steps, self.is_main)
    for note in notes:
      self.say(note)
    warning = preflight.space_warning(
        self.workdir, self.ckpt.checkpoint_bytes() or preflight.state_bytes(self.state),
        tc.keep_checkpoints)
    if warning:
      self.say(warning)

  def say(self, text: str) -> None:
    self.reporter.message(text)

  def report_resume(self) -> bool:
    """Says what resuming found (checkpoint, accepted config changes); True when the run is already done."""
    if self.restored:
      self.say(f'Resumed from the checkpoint at step {self.start_step} in {self.ckpt.directory}')
    if self.changes:
      self.say('Resuming with a changed config (--allow_config_change):\n'
               + '\n'.join(self.changes))
    num_steps = self.config.train.num_steps
    if self.start_step >= num_steps:
      self.say(f'Nothing to do: the run is already at step {self.start_step} of {num_steps}.')
      return True
    return False

  def poll(self) -> None:
    """Raises CheckpointSaveFailed as soon as a background save is known to have failed."""
    self.ckpt.poll()

  def save(self, step: int, state) -> None:
    self.ckpt.save(step, state)

  def __exit__(self, exc_type, exc, tb) -> bool:
    self._close(failing=exc)
    return False

  def _close(self, failing: BaseException | None) -> None:
    """Waits for the save in flight and closes everything; a close error never hides the first error."""
    try:
      self.ckpt.close()
    except Exception:  # pylint: disable=broad-except
      if failing is None:
        raise
    finally:
      if self.reporter is not None:
        self.reporter.close()
