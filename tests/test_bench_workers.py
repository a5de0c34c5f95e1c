"""benchmarks/workers.py: a worker process's answers, errors, crashes and hangs, as the driver sees them.

The workers here serve a tiny service written to tmp_path (no JAX, no
PyTorch), so each starts in a fraction of a second; the last test runs
benchmarks.compare_torch with its PyTorch worker made to abort.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from benchmarks import workers
from tests.conftest import REPO_ROOT, subprocess_env

SERVICE = textwrap.dedent('''
    """A test service: each op is one way a benchmark worker can behave."""
    import os, sys, time
    from benchmarks import workers

    class Service:
      def echo(self, value):
        return {'value': value, 'pid': os.getpid()}

      def fail(self):
        raise ValueError('no such model')

      def chatty(self):
        print('printed by Python')            # to stdout: must not break the answers
        os.write(1, b'written by C to fd 1\\n')
        return 'still fine'

      def crash(self):
        print('about to abort', file=sys.stderr, flush=True)
        os.abort()

      def hang(self, seconds):
        time.sleep(seconds)

      def time_chunk(self, model, dtype):
        workers.inject_fault('fake', model, dtype)
        return 1.5

    if __name__ == '__main__':
      workers.serve(Service())
''')


@pytest.fixture
def make_worker(tmp_path):
  (tmp_path / 'fake_bench_service.py').write_text(SERVICE)
  started = []

  def make(**env_extra) -> workers.Worker:
    env = {k: v for k, v in os.environ.items() if k != workers.FAULT_ENV}   # only ours
    env.update(PYTHONPATH=str(tmp_path), **env_extra)
    w = workers.Worker('fake', 'fake_bench_service', env=env)
    started.append(w)
    return w

  yield make
  for w in started:
    w.close(timeout=5)


def test_answers_and_errors_keep_the_worker(make_worker):
  w = make_worker()
  first = w.call('echo', timeout=60, value=[1, 'a'])
  assert first['value'] == [1, 'a'] and first['pid'] != os.getpid()
  with pytest.raises(workers.WorkerError, match='ValueError: no such model') as e:
    w.call('fail', timeout=30)
  assert 'no such model' in e.value.remote_traceback and e.value.record()['status'] == 'failed'
  assert w.call('chatty', timeout=30) == 'still fine'
  assert w.call('echo', timeout=30, value=2)['pid'] == first['pid']   # the same process
  # Its stderr comes over another pipe than the answers: allow it a moment under load.
  deadline = time.monotonic() + 10
  while 'written by C to fd 1' not in w.last_lines() and time.monotonic() < deadline:
    time.sleep(0.05)
  assert 'printed by Python' in w.last_lines() and 'written by C to fd 1' in w.last_lines()
  with pytest.raises(workers.WorkerError, match='no op'):
    w.call('_private', timeout=30)


def test_a_crash_is_an_exception_with_the_last_lines(make_worker):
  w = make_worker()
  with pytest.raises(workers.WorkerDied) as e:
    w.call('crash', timeout=60)
  died = e.value
  assert "died during 'crash'" in died.reason and 'SIGABRT' in died.reason
  assert 'about to abort' in died.last_lines
  assert any('Fatal Python error: Aborted' in line for line in died.last_lines)   # faulthandler
  assert not w.alive()
  record = died.record()
  assert record['status'] == 'failed' and record['last_lines'] == died.last_lines
  with pytest.raises(workers.WorkerDied, match='was dead before'):
    w.call('echo', timeout=5, value=1)


def test_a_hang_is_killed_at_the_timeout(make_worker):
  w = make_worker()
  w.call('echo', timeout=60, value=0)   # started, so the timeout measures the op alone
  with pytest.raises(workers.WorkerDied) as e:
    w.call('hang', timeout=1, seconds=60)
  assert "no answer to 'hang' within 1s (killed)" in e.value.reason
  assert 'SIGKILL' in e.value.reason and 'out of memory' not in e.value.reason
  assert not w.alive()


def test_injected_fault(make_worker):
  w = make_worker(**{workers.FAULT_ENV: 'other:dcgan32,fake:dcgan32:bfloat16'})
  assert w.call('time_chunk', timeout=60, model='dcgan32', dtype='float32') == 1.5
  with pytest.raises(workers.WorkerDied) as e:
    w.call('time_chunk', timeout=60, model='dcgan32', dtype='bfloat16')
  assert any('aborting fake:dcgan32:bfloat16 on purpose' in line for line in e.value.last_lines)


def test_exit_reasons():
  assert workers.exit_reason(3) == 'exited with status 3'
  assert workers.exit_reason(-6) == 'killed by SIGABRT (exit status -6, a crash in native code)'
  assert 'out of memory' in workers.exit_reason(-9)
  assert workers.exit_reason(-9, killed_by_us=True) == 'killed by SIGKILL (exit status -9)'


def test_compare_torch_reports_a_dead_worker_and_goes_on(tmp_path):
  """compare_torch with its PyTorch worker aborting: gan_jax's rates stay, the failure is recorded."""
  pytest.importorskip('torch')
  out = tmp_path / 'compare.json'
  env = dict(subprocess_env(), **{workers.FAULT_ENV: 'torch:dcgan28'})
  proc = subprocess.run(
      [sys.executable, '-m', 'benchmarks.compare_torch', '--models=dcgan28', '--repeats=2',
       '--steps=1', '--threads=1', '--batch_size=4', '--nopipeline', f'--json_out={out}'],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  result = json.loads(out.read_text())['results'][0]
  assert len(result['steps_per_s']['gan_jax']) == 2 and 'ratios' not in result
  failed = result['failed']['torch']
  assert "torch worker died during 'time_chunk'" in failed['reason'] and 'SIGABRT' in failed['reason']
  assert any('aborting torch:dcgan28 on purpose' in line for line in failed['last_lines'])
  assert 'torch FAILED: torch worker died' in proc.stdout
