"""Surviving crashes and bad resumes: SIGKILL at any moment, SIGTERM/SIGINT, async saves, config conflicts.

The runs here train one tiny dcgan28 config (checkpointing after every step,
so that a save is nearly always in flight) and, however they are interrupted,
must end bitwise equal to one uninterrupted reference run: the same config
and seed give the same bits on CPU, across processes and across restarts.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.training import checkpoint as checkpoint_lib
from gan_jax.training import image as image_trainer
from gan_jax.training import reporting
from tests.conftest import REPO_ROOT, make_config, subprocess_env, write_idx

NUM_STEPS = 30
# Keys that leave the trajectory alone: the reference logs and saves rarely.
QUIET = {'train.log_every': 10, 'train.checkpoint_every': 0}
TMP_SUFFIX = '.orbax-checkpoint-tmp'


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  rng = np.random.default_rng(1)
  directory = str(tmp_path_factory.mktemp('idx'))
  write_idx(directory, 'train', rng.integers(0, 256, (64, 28, 28)).astype(np.uint8),
            np.arange(64) % 10)
  return directory


def _overrides(data_dir, **more):
  """Every key that differs from the base config, for make_config and the command line alike."""
  overrides = {'data.source': 'idx', 'data.path': data_dir, 'data.read_threads': 0,
               'train.batch_size': 8, 'train.num_steps': NUM_STEPS, 'train.log_every': 1,
               'train.checkpoint_every': 1, 'train.keep_checkpoints': 2,
               'train.sample_every': 0, 'sample.num': 4}
  overrides.update(more)
  return overrides


def _config(data_dir, **more):
  return make_config(**_overrides(data_dir, **more))


def _flags(overrides):
  return [f'--config.{key}={value}' for key, value in overrides.items()]


@pytest.fixture(scope='module')
def reference(data_dir, tmp_path_factory):
  """(workdir, final state) of the uninterrupted run."""
  workdir = str(tmp_path_factory.mktemp('reference') / 'run')
  state = image_trainer.train_and_evaluate(_config(data_dir, **QUIET), workdir)
  return workdir, jax.device_get(state)


def _assert_bitwise_equal(state, expected):
  leaves, want = jax.tree.leaves(jax.device_get(state)), jax.tree.leaves(expected)
  assert len(leaves) == len(want)
  for a, b in zip(leaves, want):
    np.testing.assert_array_equal(a, b)


def _complete_steps(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(directory) else []


def _partial_saves(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return [d for d in os.listdir(directory) if TMP_SUFFIX in d] if os.path.isdir(directory) else []


def _logged_steps(workdir):
  return [r['step'] for r in reporting.read_metrics(workdir)]


@pytest.fixture
def launch():
  """Starts `python -m gan_jax.main` logging to a file; kills what is left at the end of the test."""
  procs = []

  def start(workdir, overrides, log_path):
    with open(log_path, 'w') as log:
      procs.append(subprocess.Popen(
          [sys.executable, '-m', 'gan_jax.main', f'--workdir={workdir}',
           f'--config={config_base.BASE_CONFIG_PATH}', *_flags(overrides)],  # as make_config
          cwd=REPO_ROOT, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT))
    return procs[-1]
  yield start
  for proc in procs:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def _wait_for(condition, proc, what, timeout=300):
  start = time.time()
  while not condition():
    if proc is not None and proc.poll() is not None:
      raise AssertionError(f'the run exited ({proc.returncode}) before {what}')
    if time.time() - start > timeout:
      raise AssertionError(f'timed out waiting for {what}')
    time.sleep(0.002)


def _trained_past(log_path, step):
  """Whether the run logging to `log_path` printed a step after `step`."""
  def check():
    with open(log_path) as f:
      return any(int(s) > step for s in re.findall(r'^step +(\d+)/', f.read(), re.M))
  return check


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_params(
    tmp_path, data_dir, reference, capsys, launch):
  workdir = str(tmp_path / 'run')
  overrides = _overrides(data_dir)
  seed = random.randrange(2**32)
  rng = random.Random(seed)
  during_save = []
  for kill in range(3):
    start = max(_complete_steps(workdir), default=0)
    log_path = str(tmp_path / f'kill{kill}.log')
    proc = launch(workdir, overrides, log_path)
    # Each run first makes progress: a checkpoint past the one it resumed from.
    _wait_for(lambda: max(_complete_steps(workdir), default=0) > start, proc,
              f'a checkpoint before kill {kill} (seed {seed})')
    if kill == 1:  # the moment an asynchronous save is half written
      _wait_for(lambda: _partial_saves(workdir), proc, f'a save to kill (seed {seed})')
    else:  # a few steps on, at a random point of a step or save
      _wait_for(_trained_past(log_path, start + rng.randint(1, 4)), proc,
                f'kill {kill} (seed {seed})')
      time.sleep(rng.uniform(0, 0.05))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, f'the run ended before kill {kill} (seed {seed})'
    during_save.append(bool(_partial_saves(workdir)))
    with open(log_path) as f:
      log = f.read()
    if start:  # each restart resumes from the last complete checkpoint
      assert f'Resumed from the checkpoint at step {start} ' in log, log[-2000:]
  assert any(during_save), 'no kill interrupted a save'
  assert max(_complete_steps(workdir)) < NUM_STEPS

  # The last run (here, in this process) finishes from the last complete checkpoint.
  start = max(_complete_steps(workdir))
  state = image_trainer.train_and_evaluate(make_config(**overrides), workdir)
  assert f'Resumed from the checkpoint at step {start} ' in capsys.readouterr().out
  assert not _partial_saves(workdir)  # the killed saves' leftovers are cleaned up
  _assert_bitwise_equal(state, reference[1])
  assert _logged_steps(workdir) == list(range(1, NUM_STEPS + 1))


# ADA's p (moving every D update here) and LeCam's anchors live in state.aux.
ADA_LECAM = {'augment.transforms': 'ada', 'augment.ada.interval': 1,
             'augment.ada.kimg': 0.2, 'reg.lecam.weight': 0.3}


def test_sigkill_with_ada_and_lecam_then_resume_gives_the_uninterrupted_state(
    tmp_path, data_dir, launch):
  overrides = _overrides(data_dir, **{**ADA_LECAM, 'train.num_steps': 12})
  config = make_config(**{**overrides, 'augment.transforms': ('ada',)})
  expected = jax.device_get(image_trainer.train_and_evaluate(
      config.copy_and_resolve_references(), str(tmp_path / 'reference')))
  assert 0 < float(expected.aux['augment']['ada']['p']) < 1
  workdir = str(tmp_path / 'run')
  log_path = str(tmp_path / 'kill.log')
  proc = launch(workdir, overrides, log_path)
  _wait_for(_trained_past(log_path, random.randint(2, 6)), proc, 'the kill')
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL, 'the run ended before the kill'
  start = max(_complete_steps(workdir))
  assert start < 12
  state = image_trainer.train_and_evaluate(config, workdir)
  _assert_bitwise_equal(state, expected)   # aux (p, r_t sums, anchors) included
  _assert_bitwise_equal(state.aux, expected.aux)


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, data_dir, reference, launch):
  workdir = str(tmp_path / 'run')
  # No periodic checkpoints: the only one is the one SIGTERM makes.
  overrides = _overrides(data_dir, **{'train.checkpoint_every': 0})
  log_path = str(tmp_path / 'run.log')
  proc = launch(workdir, overrides, log_path)
  _wait_for(_trained_past(log_path, 2), proc, 'SIGTERM')
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=300) == 143
  with open(log_path) as f:
    log = f.read()
  stopped = int(log.split('Stopped by SIGTERM at step ')[1].split()[0])
  assert 2 < stopped < NUM_STEPS, log[-2000:]
  assert 'Rerun the same command to resume' in log and 'Traceback' not in log
  assert _complete_steps(workdir) == [stopped] and not _partial_saves(workdir)
  assert _logged_steps(workdir)[-1] == stopped
  # Resuming (here with periodic checkpoints: a key that may change) ends
  # exactly where the uninterrupted run did.
  state = image_trainer.train_and_evaluate(_config(data_dir), workdir)
  _assert_bitwise_equal(state, reference[1])


def test_sigint_saves_and_raises_interrupted_with_exit_code_130(tmp_path, data_dir):
  workdir = str(tmp_path / 'run')
  # Long enough that the signal always lands in training, not after it.
  config = _config(data_dir, **{'train.checkpoint_every': 0,
                                 'train.num_steps': 10_000})

  def interrupt():
    _wait_for(lambda: any(s > 1 for s in _logged_steps(workdir)), None, 'SIGINT')
    os.kill(os.getpid(), signal.SIGINT)
  # The handler in place before the run (SIG_IGN where the shell started the
  # tests in the background) is what the run must restore.
  before = signal.getsignal(signal.SIGINT)
  thread = threading.Thread(target=interrupt, daemon=True)
  thread.start()
  with pytest.raises(errors.Interrupted, match=r'Stopped by SIGINT at step \d+') as info:
    image_trainer.train_and_evaluate(config, workdir)
  thread.join()
  assert info.value.exit_code == 130
  stopped = int(str(info.value).split('at step ')[1].split()[0])
  assert _complete_steps(workdir) == [stopped]
  assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_same_config_and_seed_give_bitwise_identical_runs(tmp_path, data_dir, reference):
  workdir = str(tmp_path / 'again')
  state = image_trainer.train_and_evaluate(_config(data_dir, **QUIET), workdir)
  _assert_bitwise_equal(state, reference[1])
  timing = ('steps_per_sec', 'images_per_sec', 'wall_s')
  strip = lambda records: [{k: v for k, v in r.items() if k not in timing} for r in records]
  assert strip(reporting.read_metrics(workdir)) == strip(reporting.read_metrics(reference[0]))


def test_partial_checkpoint_is_ignored_on_resume_and_removed(tmp_path, data_dir, reference):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference[0], workdir)
  checkpoints = os.path.join(workdir, 'checkpoints')
  # What a save killed half-way leaves: a temporary directory with cut files.
  partial = os.path.join(checkpoints, f'{NUM_STEPS + 1}{TMP_SUFFIX}')
  shutil.copytree(os.path.join(checkpoints, str(NUM_STEPS)), partial)
  for root, _, files in os.walk(partial):
    for name in files:
      with open(os.path.join(root, name), 'r+b') as f:
        f.truncate(os.path.getsize(os.path.join(root, name)) // 2)
  state = image_trainer.train_and_evaluate(
      _config(data_dir, **{'train.num_steps': NUM_STEPS + 2}), workdir)
  assert int(state.step) == NUM_STEPS + 2
  assert _complete_steps(workdir) == [NUM_STEPS + 1, NUM_STEPS + 2]
  assert not _partial_saves(workdir)


def test_async_save_is_not_overwritten_by_the_donating_step(tmp_path):
  # A save returns before the write is done; the next step donates (reuses)
  # the state's buffers. The checkpoint must still hold the saved values.
  ckpt = checkpoint_lib.Checkpointer(str(tmp_path / 'ckpt'), keep=5)
  step = jax.jit(lambda s: jax.tree.map(lambda x: x * 0 - 1, s), donate_argnums=0)
  state = {'w': jnp.arange(4_000_000, dtype=jnp.float32), 'b': jnp.full((1000,), 7.0)}
  saved = jax.tree.map(np.array, state)
  ckpt.save(1, state)
  for _ in range(20):
    state = step(state)
  jax.block_until_ready(state)
  ckpt.wait()
  restored = ckpt.restore(jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), saved))
  ckpt.close()
  for key in saved:
    np.testing.assert_array_equal(restored[key], saved[key])
  assert float(state['w'][0]) == -1  # the steps did run


# ---------------------------------------------------------------- conflicting config

def test_resume_with_a_conflicting_config_is_refused_and_changes_nothing(
    tmp_path, data_dir, reference):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference[0], workdir)
  config_path = os.path.join(workdir, 'config.json')
  before = open(config_path).read(), _complete_steps(workdir)

  changed = _config(data_dir, **{'optim.d.lr': 0.1, 'train.batch_size': 16})
  with pytest.raises(errors.ConfigError) as info:
    image_trainer.train_and_evaluate(changed, workdir)
  message = str(info.value)
  assert 'optim.d.lr: 0.0002 -> 0.1' in message and 'train.batch_size: 8 -> 16' in message
  assert '--allow_config_change' in message and 'new --workdir' in message
  assert 'train.num_steps' not in message.split('Keys that may change')[0]
  assert (open(config_path).read(), _complete_steps(workdir)) == before

  # Different data behind the same config is refused too.
  other_data = str(tmp_path / 'other')
  write_idx(other_data, 'train', np.zeros((48, 28, 28), np.uint8), np.arange(48) % 10)
  with pytest.raises(errors.ConfigError, match='data num_examples: 64 -> 48'):
    image_trainer.train_and_evaluate(_config(other_data), workdir)

  # Reporting and run-length keys may change; --allow_config_change accepts the rest.
  allowed = _config(data_dir, **{'train.log_every': 5, 'sample.num': 9})
  assert int(image_trainer.train_and_evaluate(allowed, workdir).step) == NUM_STEPS
  state = image_trainer.train_and_evaluate(_config(data_dir, **{'optim.d.lr': 0.1}),
                                   workdir, allow_config_change=True)
  assert int(state.step) == NUM_STEPS
  with open(config_path) as f:
    assert json.load(f)['optim']['d']['lr'] == 0.1

  # A change that alters the state's shapes cannot resume, flag or not.
  with pytest.raises(errors.ConfigError, match='does not fit the model') as info:
    image_trainer.train_and_evaluate(_config(data_dir, **{'model.latent_dim': 50}),
                             workdir, allow_config_change=True)
  assert re.search(r'g\.params\.\w+\.kernel: saved \([\d, ]*100\), expected \([\d, ]*50\)',
                   str(info.value)), str(info.value)
  assert _complete_steps(workdir) == before[1]
