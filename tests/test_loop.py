"""The shared step loop (training.loop.TrainingRun.train) with a fake trainer: which actions fire when, and why it stops.

The fake state is a step counter and a vector; `advance` adds k to both and
moves a fake clock one second per step, so rates, wall times and the time
budget are exact.
"""

from __future__ import annotations

import os
import signal
import types

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.data.source import DatasetInfo
from gan_jax.training import loop
from gan_jax.training import reporting
from tests.conftest import make_config


@flax.struct.dataclass
class FakeState:
  step: jax.Array
  w: jax.Array


class FakeTrainer:
  """Hooks that record every call; `advance` ticks `clock` once per step."""

  def __init__(self, clock, max_steps=1, eval_seconds=0.0, on_step=None):
    self.clock = clock
    self.eval_seconds = eval_seconds
    self.on_step = on_step or (lambda step: None)   # step -> 'finite' of that step
    self.max_steps = max_steps
    self.calls, self.logs, self.samples, self.evaluations = [], [], [], []
    self.prefetches = self.closes = 0

  def advance(self, state, k):
    first = int(state.step) + 1
    self.calls.append(k)
    self.clock.now += k
    finite = np.array([self.on_step(s) is not False for s in range(first, first + k)])
    metrics = {'finite': finite, 'loss': np.arange(first, first + k, dtype=np.float32)}
    return FakeState(state.step + k, state.w + k), metrics

  def prefetch(self):
    self.prefetches += 1

  def log(self, step, state, means):
    assert int(state.step) == step
    self.logs.append(step)
    return {'extra': 10.0 * means['loss']}

  def sample(self, step, state):
    assert int(state.step) == step
    self.samples.append(step)

  def evaluate(self, step, state):
    assert int(state.step) == step
    self.evaluations.append(step)
    self.clock.now += self.eval_seconds   # left out of steps/s

  def close(self):
    self.closes += 1

  def hooks(self):
    return loop.Hooks(advance=self.advance, max_steps=self.max_steps, prefetch=self.prefetch,
                      log=self.log, sample=self.sample, evaluate=self.evaluate,
                      close=self.close)


@pytest.fixture
def clock(monkeypatch):
  """A clock the fake steps move, seen by the loop as time.perf_counter."""
  fake = types.SimpleNamespace(now=0.0)
  monkeypatch.setattr(loop, 'time', types.SimpleNamespace(perf_counter=lambda: fake.now))
  return fake


def _config(**overrides):
  base = {'train.keep_checkpoints': 10, 'train.batch_size': 2, 'train.n_disc': 1,
          'train.log_every': 0, 'train.checkpoint_every': 0, 'train.sample_every': 0,
          'eval.every': 0}
  return make_config(**{**base, **overrides})


def _train(config, workdir, trainer):
  """(outcome, run) of one training run in `workdir` with `trainer`'s hooks."""
  info = DatasetInfo((3,), 0, (), 0, 'fake points')
  init = lambda: FakeState(jnp.zeros((), jnp.int32), jnp.zeros((3,), jnp.float32))
  device = jax.sharding.make_single_device_sharding(jax.devices()[0])
  with loop.TrainingRun(config, workdir, info, init, device) as run:
    assert not run.report_resume()
    outcome = run.train(trainer.hooks(), started=trainer.clock.now)
  return outcome, run


def _checkpoints(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def test_chunked_advances_end_where_actions_are_due_and_each_fires_there(tmp_path, clock):
  workdir = str(tmp_path / 'run')
  config = _config(**{'train.num_steps': 13, 'train.log_every': 4,
                      'train.checkpoint_every': 6, 'train.sample_every': 5, 'eval.every': 6})
  trainer = FakeTrainer(clock, max_steps=3, eval_seconds=100.0)
  outcome, _ = _train(config, workdir, trainer)

  assert (outcome.reason, outcome.step, int(outcome.state.step)) == (loop.DONE, 13, 13)
  np.testing.assert_array_equal(outcome.state.w, np.full(3, 13.0))
  # Calls end at multiples of 3 (max_steps) and wherever an action is due.
  assert trainer.calls == [3, 1, 1, 1, 2, 1, 1, 2, 1]
  assert trainer.logs == [4, 8, 12, 13]
  assert trainer.samples == [5, 10, 13]
  assert trainer.evaluations == [6, 12, 13]
  assert _checkpoints(workdir) == [6, 12, 13]
  assert trainer.prefetches == len(trainer.calls) - 1 and trainer.closes == 1
  records = reporting.read_metrics(workdir)
  assert [r['step'] for r in records] == [4, 8, 12, 13]
  # Means over the steps since the last log; the log hook's metrics join them.
  assert [r['loss'] for r in records] == [2.5, 6.5, 10.5, 13.0]
  assert [r['extra'] for r in records] == [25.0, 65.0, 105.0, 130.0]
  # One step per fake second; evaluation time is not training time.
  assert [r['steps_per_sec'] for r in records] == [1.0, 1.0, 1.0, 1.0]
  assert [r['images_per_sec'] for r in records] == [2.0, 2.0, 2.0, 2.0]
  assert [r['wall_s'] for r in records] == [4.0, 108.0, 112.0, 213.0]
  assert outcome.seconds['evaluate'] == 300.0


def test_the_time_budget_stops_at_the_first_step_past_it_and_a_rerun_finishes(tmp_path, clock):
  workdir = str(tmp_path / 'run')
  overrides = {'train.num_steps': 10, 'train.log_every': 5, 'train.sample_every': 4}
  trainer = FakeTrainer(clock)
  outcome, _ = _train(_config(**overrides, **{'train.max_minutes': 2.5 / 60}), workdir, trainer)
  # 2.5 s: step 3 ends at 3 s, the first step past it; it is logged, saved and sampled as the last.
  assert (outcome.reason, outcome.step, int(outcome.state.step)) == (loop.BUDGET, 3, 3)
  assert trainer.calls == [1, 1, 1] and trainer.prefetches == 2
  assert trainer.logs == [3] and trainer.samples == [3] and trainer.evaluations == [3]
  assert _checkpoints(workdir) == [3]
  assert loop.end_line(outcome, _config(**overrides, **{'train.max_minutes': 2.5 / 60}).train) == (
      'Stopped at the time budget (train.max_minutes=0.0416667) at step 3 of 10; rerun the '
      'same command to train on toward num_steps')

  again = FakeTrainer(clock)
  outcome, run = _train(_config(**overrides), workdir, again)
  assert run.start_step == 3 and run.restored
  assert (outcome.reason, int(outcome.state.step)) == (loop.DONE, 10)
  np.testing.assert_array_equal(outcome.state.w, np.full(3, 10.0))
  assert again.calls == [1] * 7 and again.samples == [4, 8, 10]
  assert [r['step'] for r in reporting.read_metrics(workdir)] == [3, 5, 10]
  assert loop.end_line(outcome, _config(**overrides).train) == 'Done: 10 steps'


def test_a_signal_logs_and_saves_that_step_then_reports_interrupted(tmp_path, clock):
  workdir = str(tmp_path / 'run')
  before = signal.getsignal(signal.SIGTERM)

  def on_step(step):
    if step == 4:
      # The loop's handler must be in place: the default one would end pytest.
      assert signal.getsignal(signal.SIGTERM) is not before
      signal.raise_signal(signal.SIGTERM)
  trainer = FakeTrainer(clock, on_step=on_step)
  config = _config(**{'train.num_steps': 100, 'train.log_every': 10, 'train.sample_every': 7})
  outcome, run = _train(config, workdir, trainer)

  assert (outcome.reason, outcome.step, outcome.signum) == (loop.SIGNAL, 4, signal.SIGTERM)
  assert signal.getsignal(signal.SIGTERM) is before  # handler restored
  assert trainer.calls == [1] * 4 and trainer.prefetches == 3 and trainer.closes == 1
  assert trainer.logs == [4] and _checkpoints(workdir) == [4]
  assert trainer.samples == [] and trainer.evaluations == []  # a stop is not the end
  with pytest.raises(errors.Interrupted, match=r'Stopped by SIGTERM at step 4 of 100; '
                     r'saved a checkpoint in .*checkpoints\. Rerun') as info:
    run.raise_if_signalled(outcome)
  assert info.value.exit_code == 128 + signal.SIGTERM


def test_a_non_finite_step_inside_a_chunk_is_named_before_its_state_is_saved(tmp_path, clock):
  workdir = str(tmp_path / 'run')
  trainer = FakeTrainer(clock, max_steps=8, on_step=lambda step: step != 5)
  config = _config(**{'train.num_steps': 8, 'train.log_every': 4,
                      'train.checkpoint_every': 3})
  with pytest.raises(errors.TrainingDiverged, match='diverged at step 5'):
    _train(config, workdir, trainer)
  assert trainer.calls == [3, 1, 2]      # the chunk 5..6 ends at the checkpoint
  assert _checkpoints(workdir) == [3] and trainer.closes == 1
  assert [r['step'] for r in reporting.read_metrics(workdir)] == [4]


def test_next_due():
  assert loop.next_due(0, 100, (10, 0, 3)) == 3
  assert loop.next_due(9, 100, (10, 0, 3)) == 10
  assert loop.next_due(98, 100, (1000,)) == 100
  assert loop.next_due(0, 100, (0,)) == 100
