"""Faults that long runs meet: corrupt checkpoints, a full disk, an unwritable workdir, missing evaluation files.

Each fault is injected into a small dcgan28 run (or the 2D lab's), and each
must give one clear message and either recover, ending bitwise equal to an
uninterrupted run, or say why it cannot, without losing a complete
checkpoint. The full disk and the read-only workdir need a filesystem that
fails: a tmpfs mounted in a user namespace (`unshare -rm`), or, for a user
other than root, a directory without write permission; where neither is
possible those tests skip, and the full disk is still tested through an
injected write failure.
"""

import errno
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.training import checkpoint as checkpoint_lib
from gan_jax.training import image as image_trainer
from gan_jax.training import integrity
from gan_jax.training import reporting
from gan_jax.training import setup as setup_lib
from gan_jax.training import trainers
from tests.conftest import REPO_ROOT, make_config, subprocess_env, write_idx
from tests.test_toy2d import tiny_lab_config

# A restore that fails half-way leaves orbax's abandoned reads to be reported
# when collected: noise by design here (the command line filters it).
pytestmark = pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')

NUM_STEPS = 20
RESUME_AT = 15          # the base run stops here, with checkpoints at 5, 10 and 15
HEX_NAME = re.compile(r'^[0-9a-f]{32}$')


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  rng = np.random.default_rng(3)
  directory = str(tmp_path_factory.mktemp('idx'))
  write_idx(directory, 'train', rng.integers(0, 256, (48, 28, 28)).astype(np.uint8),
            np.arange(48) % 10)
  return directory


def _overrides(data_dir, **more):
  overrides = {'data.source': 'idx', 'data.path': data_dir, 'data.read_threads': 0,
               'train.batch_size': 8, 'train.num_steps': NUM_STEPS, 'train.log_every': 5,
               'train.checkpoint_every': 5, 'train.keep_checkpoints': 3,
               'train.sample_every': 0, 'sample.num': 4}
  overrides.update(more)
  return overrides


def _flags(overrides):
  return [f'--config.{key}={value}' for key, value in overrides.items()]


def _command(workdir, overrides, *extra):
  return [sys.executable, '-m', 'gan_jax.main', f'--workdir={workdir}',
          f'--config={config_base.BASE_CONFIG_PATH}', *_flags(overrides), *extra]


@pytest.fixture(scope='module')
def reference(data_dir, tmp_path_factory):
  """The final state of an uninterrupted run."""
  workdir = str(tmp_path_factory.mktemp('reference') / 'run')
  return jax.device_get(image_trainer.train_and_evaluate(make_config(**_overrides(data_dir)), workdir))


@pytest.fixture(scope='module')
def stopped_run(data_dir, tmp_path_factory):
  """A workdir trained to RESUME_AT steps, to be copied and damaged."""
  workdir = str(tmp_path_factory.mktemp('base') / 'run')
  image_trainer.train_and_evaluate(make_config(**_overrides(data_dir, **{'train.num_steps': RESUME_AT})),
                           workdir)
  return workdir


def _copy(stopped_run, tmp_path, name='run'):
  workdir = str(tmp_path / name)
  shutil.copytree(stopped_run, workdir)
  return workdir


def _assert_bitwise_equal(state, expected):
  leaves, want = jax.tree.leaves(jax.device_get(state)), jax.tree.leaves(expected)
  assert len(leaves) == len(want)
  for a, b in zip(leaves, want):
    np.testing.assert_array_equal(a, b)


def _checkpoint_dirs(workdir):
  return sorted(os.listdir(os.path.join(workdir, 'checkpoints')))


def _file_kinds(step_dir):
  """{kind: the largest file of that kind} in one checkpoint; hashed file names become '*'."""
  kinds = {}
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      kind = os.path.relpath(os.path.join(root, '*' if HEX_NAME.match(name) else name), step_dir)
      if kind not in kinds or os.path.getsize(path) > os.path.getsize(kinds[kind]):
        kinds[kind] = path
  return kinds


def _flip_bytes(path, count=8):
  data = bytearray(open(path, 'rb').read())
  middle = len(data) // 2
  for i in range(middle, min(len(data), middle + count)):
    data[i] ^= 0xFF
  with open(path, 'wb') as f:
    f.write(data)


# Files whose damage must be detected (the others, such as commit markers,
# are not read on restore: damage there leaves the weights intact).
MUST_DETECT = ('default/_METADATA', 'default/manifest.ocdbt', 'default/ocdbt.process_0/d/*',
               'digest/metadata')


@pytest.mark.slow
def test_flipped_bytes_in_every_kind_of_checkpoint_file_fall_back_and_end_bitwise_equal(
    tmp_path, data_dir, stopped_run, reference, capsys):
  kinds = _file_kinds(os.path.join(stopped_run, 'checkpoints', str(RESUME_AT)))
  assert set(MUST_DETECT) <= set(kinds), sorted(kinds)
  config = make_config(**_overrides(data_dir))
  fell_back = {}
  for kind in sorted(kinds):
    workdir = _copy(stopped_run, tmp_path, kind.replace('/', '_').replace('*', 'data'))
    _flip_bytes(os.path.join(workdir, 'checkpoints', str(RESUME_AT),
                             os.path.relpath(kinds[kind], os.path.join(stopped_run, 'checkpoints',
                                                                       str(RESUME_AT)))))
    state = image_trainer.train_and_evaluate(config, workdir)
    out = capsys.readouterr().out
    _assert_bitwise_equal(state, reference)
    fell_back[kind] = f'{RESUME_AT}.corrupt' in _checkpoint_dirs(workdir)
    if fell_back[kind]:
      assert re.search(rf'Warning: the checkpoint at step {RESUME_AT} cannot be read: .*Moved it '
                       rf'to .*{RESUME_AT}\.corrupt; resuming from the newest readable checkpoint '
                       r'\(step 10\)', out), out
      assert 'Resumed from the checkpoint at step 10 ' in out
      # the metrics log was cut back to step 10, then continued: no step twice
      assert [r['step'] for r in reporting.read_metrics(workdir)] == [5, 10, 15, 20]
    else:
      assert f'Resumed from the checkpoint at step {RESUME_AT} ' in out
  missed = [kind for kind in MUST_DETECT if not fell_back[kind]]
  assert not missed, fell_back


@pytest.mark.parametrize('damage', ['truncate', 'delete'])
def test_a_truncated_or_missing_data_file_falls_back(tmp_path, data_dir, stopped_run, reference,
                                                     damage):
  workdir = _copy(stopped_run, tmp_path)
  path = _file_kinds(os.path.join(workdir, 'checkpoints', str(RESUME_AT)))[
      'default/ocdbt.process_0/d/*']
  if damage == 'truncate':
    os.truncate(path, os.path.getsize(path) // 2)
  else:
    os.remove(path)
  state = image_trainer.train_and_evaluate(make_config(**_overrides(data_dir)), workdir)
  _assert_bitwise_equal(state, reference)
  assert f'{RESUME_AT}.corrupt' in _checkpoint_dirs(workdir)


def test_no_readable_checkpoint_is_an_error_and_nothing_is_moved(tmp_path, data_dir, stopped_run):
  workdir = _copy(stopped_run, tmp_path)
  for step in (5, 10, 15):
    _flip_bytes(os.path.join(workdir, 'checkpoints', str(step), 'default', '_METADATA'))
  before = _checkpoint_dirs(workdir)
  with pytest.raises(checkpoint_lib.CheckpointUnreadable,
                     match=r'no checkpoint in it can be read: step 15: .*step 10: .*step 5: '
                           r'.*Nothing was moved or deleted'):
    image_trainer.train_and_evaluate(make_config(**_overrides(data_dir)), workdir)
  assert _checkpoint_dirs(workdir) == before


def test_a_checkpoint_that_does_not_fit_the_config_keeps_the_mismatch_message(
    tmp_path, data_dir, stopped_run):
  workdir = _copy(stopped_run, tmp_path)
  config = make_config(**_overrides(data_dir, **{'model.width_scale': 2.0}))
  with pytest.raises(errors.ConfigError, match='does not fit the model and optimizers'):
    image_trainer.train_and_evaluate(config, workdir, allow_config_change=True)
  assert not any(d.endswith('.corrupt') for d in _checkpoint_dirs(workdir))


@pytest.mark.slow
def test_the_2d_lab_falls_back_past_a_corrupt_checkpoint_too(tmp_path):
  reference = trainers.train_and_evaluate(tiny_lab_config(**{'train.num_steps': 9}),
                                          str(tmp_path / 'reference'))
  workdir = str(tmp_path / 'run')
  trainers.train_and_evaluate(tiny_lab_config(), workdir)   # 6 steps: checkpoints 3 and 6
  _flip_bytes(_file_kinds(os.path.join(workdir, 'checkpoints', '6'))['default/_METADATA'])
  state = trainers.train_and_evaluate(tiny_lab_config(**{'train.num_steps': 9}), workdir)
  assert '6.corrupt' in _checkpoint_dirs(workdir)
  _assert_bitwise_equal(state, jax.device_get(reference))


def test_digest_changes_with_any_single_flipped_bit():
  state = {'w': jnp.linspace(-1, 1, 1000, dtype=jnp.float32), 'step': jnp.int32(7),
           'key': jax.random.key(0), 'mask': jnp.array([True, False]),
           'h': jnp.ones(5, jnp.bfloat16)}
  saved = integrity.digest(state)
  assert set(saved) == {'w', 'step', 'key', 'mask', 'h'}
  assert not integrity.mismatches(state, saved)
  rng = np.random.default_rng(0)
  for _ in range(20):
    words = np.asarray(state['w']).view(np.uint32).copy()
    words[rng.integers(1000)] ^= np.uint32(1) << np.uint32(rng.integers(32))
    damaged = dict(state, w=jnp.asarray(words.view(np.float32)))
    assert [m.split(':')[0] for m in integrity.mismatches(damaged, saved)] == ['w']


# --- saving -----------------------------------------------------------------------------

def test_a_failed_save_stops_the_run_with_one_message_and_keeps_the_last_checkpoint(
    tmp_path, data_dir, reference, monkeypatch):
  workdir = str(tmp_path / 'run')
  real_save = ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step == 15:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(workdir, 'x'))
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, 'save', save)
  with pytest.raises(checkpoint_lib.CheckpointSaveFailed) as failed:
    image_trainer.train_and_evaluate(make_config(**_overrides(data_dir)), workdir)
  message = str(failed.value)
  assert 'checkpoint at step 15' in message and 'No space left on device (errno ENOSPC)' in message
  assert 'Free space there: ' in message and 'one checkpoint takes ' in message
  assert 'The last complete checkpoint (step 10) is kept' in message
  assert _checkpoint_dirs(workdir) == ['10', '5']
  assert max(r['step'] for r in reporting.read_metrics(workdir)) == 15  # no training past it

  monkeypatch.setattr(ocp.CheckpointManager, 'save', real_save)
  _assert_bitwise_equal(image_trainer.train_and_evaluate(make_config(**_overrides(data_dir)), workdir),
                        reference)


def _can_mount_tmpfs(tmp_path) -> bool:
  if shutil.which('unshare') is None:
    return False
  target = tmp_path / 'probe'
  target.mkdir()
  probe = subprocess.run(['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs -o size=1m tmpfs {target}'],
                         capture_output=True)
  return probe.returncode == 0


def _in_tmpfs(tmp_path, size, script):
  """Runs the shell `script` in a `size` tmpfs private to it (its working directory); returns the result."""
  mount = tmp_path / 'fs'
  mount.mkdir(exist_ok=True)
  return subprocess.run(
      ['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs -o size={size} tmpfs {mount} && cd {mount} '
       f'&& {script}'],
      env=subprocess_env(), capture_output=True, text=True, timeout=600)


def _quote(args):
  return ' '.join("'" + a.replace("'", "'\\''") + "'" for a in args)


@pytest.mark.slow
def test_a_full_disk_during_an_async_save_gives_one_message_then_resumes_exactly(
    tmp_path, data_dir, reference):
  if not _can_mount_tmpfs(tmp_path):
    pytest.skip('cannot mount a tmpfs here (unshare -rm); the injected failure test covers saves')
  # A checkpoint takes 1.3 MB: 3 MB holds two, and the third save fails half written.
  command = _quote(_command('run', _overrides(data_dir, **{
      'train.checkpoint_every': 1, 'train.keep_checkpoints': 2, 'train.log_every': 1})))
  script = (f'{command} > {tmp_path}/full.log 2>&1; echo "exit $?" >> {tmp_path}/full.log; '
            f'ls run/checkpoints > {tmp_path}/kept.txt; '
            f'mount -o remount,size=64m . && {command} > {tmp_path}/resumed.log 2>&1; '
            f'cp -r run {tmp_path}/run')
  result = _in_tmpfs(tmp_path, '3m', script)
  assert result.returncode == 0, result.stderr
  log = (tmp_path / 'full.log').read_text()
  lines = log.strip().splitlines()
  assert lines[-1] == 'exit 1', log[-3000:]
  kept = (tmp_path / 'kept.txt').read_text().split()
  assert kept and all(name.isdigit() for name in kept), kept   # no partial save left behind
  assert re.fullmatch(
      r'error: Saving the checkpoint at step \d+ in \S+ failed: No space left on device\. Free '
      r'space there: [\d.]+ [KM]?B; one checkpoint takes 1\.\d MB; the partial save was removed\. '
      rf'The last complete checkpoint \(step {kept[-1]}\) is kept: free some space \(or lower '
      r'train\.keep_checkpoints\) and rerun the command to resume from it\.', lines[-2]), log
  assert 'Traceback' not in log and 'Event loop is closed' not in log
  assert len(lines) < 12 + int(kept[-1]), log     # the progress lines, and the one error
  resumed = (tmp_path / 'resumed.log').read_text()
  assert f'Resumed from the checkpoint at step {kept[-1]} ' in resumed, resumed[-3000:]
  _assert_bitwise_equal(setup_lib.restore_setup(str(tmp_path / 'run'))[2], reference)


def test_a_read_only_workdir_is_refused_before_anything_runs(tmp_path, data_dir):
  command = _command('run', _overrides(data_dir))
  if os.geteuid() != 0:
    (tmp_path / 'locked').mkdir()
    (tmp_path / 'locked').chmod(0o555)
    result = subprocess.run(command, cwd=tmp_path / 'locked', env=subprocess_env(),
                            capture_output=True, text=True, timeout=600)
  elif _can_mount_tmpfs(tmp_path):
    result = _in_tmpfs(tmp_path, '1m', f'mount -o remount,ro . && {_quote(command)}')
  else:
    pytest.skip('root ignores permissions, and no read-only tmpfs can be mounted here')
  out = result.stdout + result.stderr
  assert result.returncode == 1, out
  assert re.fullmatch(r'error: The workdir run cannot be written \((Read-only file system|'
                      r'Permission denied)\)\. Choose a --workdir on a writable disk, or fix its '
                      r'permissions\.\n', out), out


# --- before the first step ------------------------------------------------------------------

@pytest.mark.parametrize('metric,key,expected', [
    ('fid', 'eval.inception_weights', 'The FID Inception weights are not at'),
    ('cls_fd', 'eval.classifier', 'No domain classifier at'),
])
def test_a_missing_evaluation_file_stops_the_run_before_its_first_step(
    tmp_path, data_dir, metric, key, expected):
  workdir = str(tmp_path / 'run')
  config = make_config(**_overrides(data_dir, **{
      'eval.every': 5, 'eval.metrics': (metric,), key: str(tmp_path / 'missing')}))
  with pytest.raises(errors.GanJaxError, match=expected):
    trainers.train_and_evaluate(config, workdir)
  assert not os.path.exists(workdir)  # the run made it, and it never stepped


@pytest.mark.slow
def test_verbose_shows_the_traceback_that_one_line_errors_hide(tmp_path, data_dir):
  overrides = _overrides(data_dir, **{'eval.every': 5, 'eval.metrics': ('cls_fd',),
                                      'eval.classifier': str(tmp_path / 'missing')})
  command = _command(str(tmp_path / 'run'), overrides)
  quiet = subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
                         text=True, timeout=600)
  loud = subprocess.run(command + ['--verbose'], cwd=REPO_ROOT, env=subprocess_env(),
                        capture_output=True, text=True, timeout=600)
  assert quiet.returncode == loud.returncode == 1
  assert 'error: No domain classifier at' in quiet.stderr and 'Traceback' not in quiet.stderr
  assert 'Traceback' in loud.stderr and 'No domain classifier at' in loud.stderr


# --- SIGKILL during the fallback ------------------------------------------------------------

def test_sigkill_during_the_fallback_then_resume_gives_the_uninterrupted_params(
    tmp_path, data_dir, stopped_run, reference):
  workdir = _copy(stopped_run, tmp_path)
  _flip_bytes(_file_kinds(os.path.join(workdir, 'checkpoints', str(RESUME_AT)))[
      'default/ocdbt.process_0/d/*'])
  seed = random.randrange(2**32)
  rng = random.Random(seed)
  command = _command(workdir, _overrides(data_dir, **{'train.num_steps': 10_000}))
  for kill in range(3):
    log_path = tmp_path / f'kill{kill}.log'
    with open(log_path, 'w') as log:
      proc = subprocess.Popen(command, cwd=REPO_ROOT, env=subprocess_env(), stdout=log,
                              stderr=subprocess.STDOUT)
    # Kill while it opens the checkpoints: before, during or just after the move.
    start = time.time()
    while proc.poll() is None and time.time() - start < 120:
      text = log_path.read_text()
      if 'gan_jax:' in text or 'Warning:' in text or time.time() - start > rng.uniform(1, 6):
        break
      time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  state = image_trainer.train_and_evaluate(make_config(**_overrides(data_dir)), workdir)
  _assert_bitwise_equal(state, reference)
  assert [d for d in _checkpoint_dirs(workdir) if 'corrupt' in d] == [f'{RESUME_AT}.corrupt'], seed
