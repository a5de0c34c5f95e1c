"""Data parallelism: 4 (simulated CPU) devices equal 1 device, and 2 processes x 2 devices equal both.

BatchNorm inside the step normalises over the global batch only if the
statistics are synchronised across devices; per-device statistics would make
the runs differ. Runs in subprocesses because the device count is fixed when
JAX starts. The two processes talk through `jax.distributed` on 127.0.0.1,
with gloo collectives (JAX's default for CPU).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.parallel import hosts
from gan_jax.training import image as image_trainer
from gan_jax.training import setup as setup_lib
from tests.conftest import REPO_ROOT, make_config, run_on_simulated_devices, subprocess_env

SCRIPT = textwrap.dedent('''
    import jax, numpy as np
    from gan_jax.parallel import devices as devices_lib
    from gan_jax.training import image as image_trainer
    from gan_jax.training import setup as setup_lib
    from gan_jax.data.source import DatasetInfo
    from tests.conftest import make_config

    assert jax.device_count() == 4, jax.devices()
    # SGD keeps the update linear in the gradient; Adam would turn float
    # reassociation noise in near-zero gradients into lr-sized differences.
    config = make_config(**{'train.batch_size': 8, 'optim.g.name': 'sgd', 'optim.g.lr': 0.1,
                            'optim.d.name': 'sgd', 'optim.d.lr': 0.1})
    setup = setup_lib.build_setup(config, DatasetInfo((28, 28, 1), 10, tuple('0123456789'), 64, 't'))
    rng = np.random.default_rng(0)
    batches = [{'image': rng.integers(0, 256, (1, 8, 28, 28, 1), dtype=np.uint8),
                'label': rng.integers(0, 10, (1, 8)).astype(np.int32)} for _ in range(3)]

    def run(devices):
      mesh = devices_lib.make_mesh(devices)
      rep = devices_lib.replicated(mesh)
      step = jax.jit(setup.train_step(config.train, mesh),
                     in_shardings=(rep, devices_lib.batch_sharded(mesh, 1)),
                     out_shardings=(rep, rep))
      state = jax.jit(setup.init_state, out_shardings=rep)()
      compiled = None
      for b in batches:
        gb = devices_lib.global_batch(b, mesh)
        assert len(gb['image'].sharding.device_set) == len(devices)
        compiled = compiled or step.lower(state, gb).compile()
        state, metrics = step(state, gb)
      cost = compiled.cost_analysis()
      cost = cost[0] if isinstance(cost, list) else cost
      return jax.device_get(state), compiled.as_text(), cost['flops']

    one, hlo1, flops1 = run(jax.devices()[:1])
    four, hlo4, flops4 = run(jax.devices())
    assert 'all-reduce' in hlo4 and 'all-reduce' not in hlo1
    # Each device does a quarter of the work (XLA's cost of its program),
    # G's noise included: unconstrained, it was replicated (0.9 of it each).
    assert flops4 < 0.3 * flops1, (flops4, flops1)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print('OK')
''')


@pytest.mark.slow
def test_four_devices_equal_one_device():
  result = run_on_simulated_devices(SCRIPT, 4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout


# ---------------------------------------------------------------- the whole training loop

# Few steps: float noise is 1e-7 here, but GAN training amplifies it once a
# ReLU input near zero flips sign (measured: after ~10 steps at lr 0.02).
NUM_STEPS = 6


def _run_overrides(data_dir):
  # SGD, for the reason given in SCRIPT; batch 8 is 2 images per device.
  return {'data.source': 'idx', 'data.path': data_dir, 'data.read_threads': 0,
          'train.batch_size': 8, 'train.num_steps': NUM_STEPS, 'train.log_every': 1,
          'train.checkpoint_every': 0, 'train.sample_every': 0, 'sample.num': 4,
          'optim.g.name': 'sgd', 'optim.g.lr': 0.01, 'optim.d.name': 'sgd', 'optim.d.lr': 0.01}


def _main(workdir, overrides, devices, *extra, log=None):
  """Starts `python -m gan_jax.main` on `devices` CPU devices, its output piped or in file `log`."""
  # The base config, as the in-process runs this is compared with (not the quickstart).
  args = [sys.executable, '-m', 'gan_jax.main', f'--workdir={workdir}',
          f'--config={config_base.BASE_CONFIG_PATH}', *extra,
          *[f'--config.{k}={v}' for k, v in overrides.items()]]
  if log is None:
    return subprocess.Popen(args, cwd=REPO_ROOT, env=subprocess_env(devices=devices),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  with open(log, 'w') as out:
    return subprocess.Popen(args, cwd=REPO_ROOT, env=subprocess_env(devices=devices),
                            stdout=out, stderr=subprocess.STDOUT)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture
def two_processes(tmp_path):
  """start(workdir, overrides, tag) runs 2 processes x 2 CPU devices joined on 127.0.0.1.

  Returns the processes and their log files; whatever still runs when the test
  ends is killed.
  """
  started = []

  def start(workdir, overrides, tag):
    port = _free_port()
    logs = [str(tmp_path / f'{tag}.p{i}.log') for i in range(2)]
    started.extend(
        _main(workdir, overrides, 2, f'--config.distributed.coordinator_address=127.0.0.1:{port}',
              '--config.distributed.num_processes=2', f'--config.distributed.process_id={i}',
              log=logs[i]) for i in range(2))
    return started[-2:], logs
  yield start
  for proc in started:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def _read(path):
  with open(path) as f:
    return f.read()


def _wait(procs, logs, timeout=600):
  """The exit codes; kills both when one hangs."""
  codes = []
  for proc in procs:
    try:
      codes.append(proc.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
      for p in procs:
        p.kill()
      raise AssertionError('timed out:\n' + '\n'.join(_read(log)[-3000:] for log in logs))
  return codes


def _params(workdir, step):
  state = setup_lib.restore_setup(workdir, step)[2]
  assert int(state.step) == step
  return jax.tree.leaves(jax.device_get((state.g, state.d)))


@pytest.mark.slow
def test_training_on_one_device_four_devices_and_two_processes_agrees(
    tmp_path, idx_dir, two_processes):
  overrides = _run_overrides(idx_dir)
  one = image_trainer.train_and_evaluate(make_config(**overrides), str(tmp_path / 'one'))
  one = jax.tree.leaves(jax.device_get((one.g, one.d)))

  four = _main(str(tmp_path / 'four'), overrides, 4)
  out, _ = four.communicate(timeout=600)
  assert four.returncode == 0, out[-3000:]
  assert '4 cpu device(s), 1 process(es)' in out

  workdir = str(tmp_path / 'two')
  procs, logs = two_processes(workdir, overrides, 'first')
  assert _wait(procs, logs) == [0, 0], _read(logs[0])[-3000:] + _read(logs[1])[-3000:]
  assert '4 cpu device(s), 2 process(es)' in _read(logs[0]) and 'Done:' in _read(logs[0])
  assert os.path.exists(os.path.join(workdir, 'samples', f'step_{NUM_STEPS:07d}.png'))
  assert not re.search(r'^(step|gan_jax:|Done:)', _read(logs[1]), re.M)  # only process 0 reports

  for a, b, c in zip(one, _params(str(tmp_path / 'four'), NUM_STEPS),
                     _params(workdir, NUM_STEPS)):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(c, b, rtol=1e-4, atol=1e-6)

  # Resumed on 2 processes, run long; SIGTERM reaches process 1 only, yet both
  # stop at the same step, save it together and exit 143.
  longer = dict(overrides, **{'train.num_steps': 100_000})
  procs, logs = two_processes(workdir, longer, 'second')
  start = time.time()
  while not re.search(rf'^step +{NUM_STEPS + 2}/', _read(logs[0]), re.M):
    assert procs[0].poll() is None and time.time() - start < 600, _read(logs[0])[-3000:]
    time.sleep(0.01)
  procs[1].send_signal(signal.SIGTERM)
  assert _wait(procs, logs) == [143, 143], _read(logs[0])[-3000:] + _read(logs[1])[-3000:]
  assert f'Resumed from the checkpoint at step {NUM_STEPS}' in _read(logs[0])
  stopped = [int(re.search(r'Stopped by SIGTERM at step (\d+)', _read(log)).group(1))
             for log in logs]
  assert stopped[0] == stopped[1] > NUM_STEPS + 2
  assert max(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints'))
             if d.isdigit()) == stopped[0]


def test_batch_size_not_divisible_by_the_devices_is_refused_before_anything_is_written(tmp_path):
  workdir = tmp_path / 'run'
  proc = _main(str(workdir), {'train.batch_size': 6}, 4)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 1
  assert 'config.train.batch_size=6 does not divide evenly over the 4 devices' in out
  assert 'Use a multiple of 4, e.g. --config.train.batch_size=4' in out
  assert 'Traceback' not in out and not workdir.exists()


def test_multi_process_settings_once_jax_is_running_are_an_error_naming_the_fix():
  jax.devices()  # this process has started JAX
  with pytest.raises(errors.ConfigError, match='before JAX uses any device.*fresh process'):
    hosts.initialize(make_config(**{
        'distributed.coordinator_address': '127.0.0.1:1', 'distributed.num_processes': 2,
        'distributed.process_id': 0}).distributed)
  hosts.initialize(make_config().distributed)  # nothing asked for: one process
  assert not jax.distributed.is_initialized() and jax.process_count() == 1


@pytest.mark.slow
def test_periodic_evaluation_on_two_processes_gives_the_one_process_numbers(
    tmp_path, idx_dir, two_processes):
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  classifier_dir = str(tmp_path / 'classifier')
  data = make_config(**_run_overrides(idx_dir)).data
  classifier.train_and_save(data, classifier_dir, steps=20, batch_size=32, lr=3e-3,
                            log=lambda *_: None)
  # 30 samples and a 40-image reference: neither divides by the 4 devices evenly.
  overrides = dict(_run_overrides(idx_dir), **{
      'eval.every': NUM_STEPS // 2, 'eval.metrics': ('cls_fd', 'cls_cov'), 'eval.num': 30,
      'eval.num_reference': 40, 'eval.batch_size': 16, 'eval.classifier': classifier_dir,
      'eval.cache_dir': str(tmp_path / 'cache')})
  one = str(tmp_path / 'one')
  image_trainer.train_and_evaluate(make_config(**overrides), one)
  two = str(tmp_path / 'two')
  procs, logs = two_processes(two, overrides, 'eval')
  assert _wait(procs, logs) == [0, 0], _read(logs[0])[-3000:] + _read(logs[1])[-3000:]
  for step in (NUM_STEPS // 2, NUM_STEPS):
    records = [json.loads(_read(os.path.join(w, 'eval', f'step_{step}.json'))) for w in (one, two)]
    values = [{k: v['value'] for k, v in r['metrics'].items()} for r in records]
    assert set(values[0]) >= {'cls_fd', 'cls_classes'} and values[0].keys() == values[1].keys()
    for name in values[0]:
      np.testing.assert_allclose(values[1][name], values[0][name], rtol=1e-3, atol=1e-4,
                                 err_msg=f'{name} at step {step}')
