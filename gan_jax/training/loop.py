"""The one training run both trainers share: resume, the step loop and every periodic action, clean exits.

`gan_jax.training.image` (images) and `gan_jax.toy2d.trainer` (the 2D lab)
differ only in how they advance the state and what they draw; the rest lives
here, once:

  with loop.TrainingRun(config, workdir, info, init_state, sharding) as run:
    if run.report_resume():                 # already at train.num_steps
      return run.state
    outcome = run.train(loop.Hooks(advance=..., sample=...), started)
  run.raise_if_signalled(outcome)           # errors.Interrupted, exit code 128 + N
  ... outcome.state, outcome.step, outcome.reason (DONE, BUDGET or SIGNAL)

`TrainingRun` checks that the workdir is writable and has room, refuses a
resume whose config changed (`resume.check_resume`), falls back past
unreadable checkpoints (moving them to `N.corrupt`), cuts the metrics log
back to the restored step, and on the way out, error or not, waits for the
save in flight and closes the checkpointer and the metric writers.

`TrainingRun.train` runs the steps from the restored one to
train.num_steps, calling `Hooks.advance` for as many steps as it may take
before the next due action, and then runs what is due: the log (the finite
check, means, steps/s, metrics.jsonl), the checkpoint, the sample and the
evaluation. It stops early at the time budget (train.max_minutes) or after
SIGTERM/SIGINT (`preemption.StopOnSignal`); either way that step is logged
and saved as if it were the last.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.config import saved as saved_config
from gan_jax.data.source import DatasetInfo
from gan_jax.parallel import devices
from gan_jax.training import checkpoint as checkpoint_lib
from gan_jax.training import preemption
from gan_jax.training import preflight
from gan_jax.training import reporting
from gan_jax.training import resume

# Why `TrainingRun.train` stopped (Outcome.reason).
DONE = 'done'        # at train.num_steps
BUDGET = 'budget'    # train.max_minutes ran out
SIGNAL = 'signal'    # SIGTERM or SIGINT; the caller raises errors.Interrupted
ACTIONS = ('log', 'checkpoint', 'sample', 'evaluate')


def due(step: int, every: int, last: bool) -> bool:
  return last or (every > 0 and step % every == 0)


def next_due(step: int, num_steps: int, periods) -> int:
  """The first step after `step` at which an event of period p (p > 0) is due, or the end."""
  stops = [(step // p + 1) * p for p in periods if p > 0]
  return min([num_steps] + stops)


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


@dataclasses.dataclass(frozen=True)
class Hooks:
  """What a trainer adds to the shared step loop (`TrainingRun.train`); only `advance` is required.

  Attributes:
    advance: (state, k) -> (state, metrics) runs the next k steps. `metrics`
      are device arrays, one value per step or stacked over the k steps, with
      a boolean 'finite' among them; they reach the host only at log steps.
    max_steps: the most steps one `advance` may take. A call also ends at
      every step where an action is due, so that k is the distance to the
      next one, capped by max_steps (a multiple of max_steps always ends one).
    prefetch: () -> None, called after `advance` when another call follows,
      before anything waits for the device: the input of the next call is
      read while the steps run.
    log: (step, state, means) -> metrics added to this log step's record.
    sample: (step, state), every train.sample_every steps and at the end.
    evaluate: (step, state), every config.eval.every steps and at the end;
      its time is left out of steps/s.
    close: () -> None, after the last save is complete, error or not.
    wall_time: whether the records carry wall_s, the seconds since `started`.
  """
  advance: Callable[[Any, int], tuple[Any, Any]]
  max_steps: int = 1
  prefetch: Callable[[], None] | None = None
  log: Callable[[int, Any, dict[str, float]], dict[str, float]] | None = None
  sample: Callable[[int, Any], None] | None = None
  evaluate: Callable[[int, Any], Any] | None = None
  close: Callable[[], None] | None = None
  wall_time: bool = True


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How `TrainingRun.train` ended: the final state, its step, why (DONE, BUDGET, SIGNAL), and the signal.

  `seconds`: the time spent in each of ACTIONS; the last save's wait counts
  as 'checkpoint'.
  """
  state: Any
  step: int
  reason: str
  signum: int | None = None
  seconds: dict[str, float] = dataclasses.field(default_factory=dict)


def end_line(outcome: Outcome, tc: ml_collections.ConfigDict) -> str:
  """How a run that was not interrupted ended, for its last message."""
  if outcome.reason == BUDGET:
    return (f'Stopped at the time budget (train.max_minutes={tc.max_minutes:g}) at step '
            f'{outcome.step} of {tc.num_steps}; rerun the same command to train on toward '
            'num_steps')
  return f'Done: {tc.num_steps} steps'


class TrainingRun:
  """A training run's checkpointer, metrics, resume and step loop, opened and closed safely (a context manager).

  Inside the `with`: `state` (restored or initialised; after `train`, the
  final one), `start_step`, `restored`, `reporter`, `say`, `ckpt` and `train`.
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

  def __enter__(self) -> TrainingRun:
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
      self.changes = resume.check_resume(self.config, self.info, self.workdir,
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
      write_json(os.path.join(self.workdir, resume.DATA_INFO_FILE), self.info.to_dict())
    # Cuts metrics.jsonl and TensorBoard back to the restored step; starts W&B when enabled.
    self.reporter = reporting.Reporter(self.workdir, self.start_step, tc.num_steps, self.is_main,
                                       config=self.config)
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

  def train(self, hooks: Hooks, started: float) -> Outcome:
    """Steps from `start_step` until train.num_steps, the time budget or a signal; see `Hooks`.

    `started`: perf_counter() when the run began (train.max_minutes and wall_s
    count from it). Returns after the last save is complete; on SIGNAL the
    caller raises errors.Interrupted (`raise_if_signalled`) once out of the `with`.
    """
    outcome = _StepLoop(self, hooks, started).run()
    self.state = outcome.state
    return outcome

  def raise_if_signalled(self, outcome: Outcome) -> None:
    """Raises errors.Interrupted (exit code 128 + N) when a signal stopped `outcome`'s run."""
    if outcome.reason != SIGNAL:
      return
    raise errors.Interrupted(
        f'Stopped by {signal.Signals(outcome.signum).name} at step {outcome.step} of '
        f'{self.config.train.num_steps}; saved a checkpoint in {self.ckpt.directory}. Rerun '
        'the same command to resume.', preemption.exit_code(outcome.signum))

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
        self.reporter.close(failed=failing is not None)


class _StepLoop:
  """One `TrainingRun.train` call: the steps, the actions due after each call of `advance`, the signals."""

  def __init__(self, run: TrainingRun, hooks: Hooks, started: float):
    self.training = run
    self.hooks = hooks
    self.started = started
    self.tc = run.config.train
    self.eval_every = run.config.eval.every if hooks.evaluate is not None else 0
    self.seconds = dict.fromkeys(ACTIONS, 0.0)
    self.pending: list = []      # device metrics since the last log
    self.interval_start, self.interval_steps = time.perf_counter(), 0

  def run(self) -> Outcome:
    signals = preemption.StopOnSignal().install()
    try:
      try:
        outcome = self._steps(signals)
        # The last save is complete, or its failure raises here.
        self._timed('checkpoint', self.training.ckpt.wait)
      finally:
        if self.hooks.close is not None:
          self.hooks.close()
    finally:  # after the last save: a signal during it must not kill the process
      signals.restore()
    return outcome

  def _steps(self, signals: preemption.StopOnSignal) -> Outcome:
    tc, hooks, run = self.tc, self.hooks, self.training
    periods = (tc.log_every, tc.checkpoint_every, self.eval_every, hooks.max_steps,
               tc.sample_every if hooks.sample is not None else 0)
    state, step = run.state, run.start_step
    while step < tc.num_steps:
      k = next_due(step, tc.num_steps, periods) - step
      state, metrics = hooks.advance(state, k)
      step += k
      self.pending.append(metrics)
      self.interval_steps += k
      spent = out_of_time(self.started, 60 * tc.max_minutes, step, tc.log_every)
      last = step == tc.num_steps or spent
      # After SIGTERM/SIGINT, this step is logged and saved as if it were the last.
      stop = not last and signals.should_stop(step)
      if not (last or stop) and hooks.prefetch is not None:
        hooks.prefetch()  # dispatch is asynchronous: this runs while the steps do
      run.reporter.advance(k)
      run.poll()  # a background save that failed stops the run here
      self._actions(step, state, last, stop)
      if stop:
        return Outcome(state, step, SIGNAL, signals.stop_signal(), self.seconds)
      if spent and step < tc.num_steps:
        return Outcome(state, step, BUDGET, None, self.seconds)
    return Outcome(state, step, DONE, None, self.seconds)

  def _actions(self, step: int, state, last: bool, stop: bool) -> None:
    tc, hooks = self.tc, self.hooks
    if due(step, tc.log_every, last or stop):
      self._timed('log', self._log, step, state)
    if due(step, tc.checkpoint_every, last or stop):
      self._check_pending(step)
      self._timed('checkpoint', self.training.save, step, state)
    if hooks.sample is not None and due(step, tc.sample_every, last):
      self._timed('sample', hooks.sample, step, state)  # all processes; process 0 writes
    if hooks.evaluate is not None and due(step, self.eval_every, last):
      self._check_pending(step)
      self.interval_start += self._timed('evaluate', hooks.evaluate, step, state)

  def _log(self, step: int, state) -> None:
    per_step = host_metrics(self.pending)
    check_finite(per_step, step, self.training.ckpt)
    means = {k: float(np.mean(v)) for k, v in per_step.items() if k != 'finite'}
    if self.hooks.log is not None:
      means = {**means, **self.hooks.log(step, state, means)}
    rate = self.interval_steps / (time.perf_counter() - self.interval_start)
    wall_s = time.perf_counter() - self.started if self.hooks.wall_time else None
    images_rate = rate * self.tc.batch_size * self.tc.n_disc
    self.training.reporter.write(step, means, rate, images_rate, wall_s=wall_s)
    self.pending, self.interval_start, self.interval_steps = [], time.perf_counter(), 0

  def _check_pending(self, step: int) -> None:
    """The steps not yet logged must be finite before their state is saved or evaluated."""
    if self.pending:
      check_finite(host_metrics(self.pending), step, self.training.ckpt)

  def _timed(self, action: str, fn: Callable, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    seconds = time.perf_counter() - start
    self.seconds[action] += seconds
    return seconds
