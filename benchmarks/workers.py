"""Benchmark workers: each framework in its own process, driven over a pipe, so that a crash is a result.

JAX and PyTorch in one process have aborted a benchmark with nothing
written (a heap corruption inside PyTorch's oneDNN kernels, BENCHMARKS.md).
So the timed code runs in worker processes, one per framework, and the
driver that alternates them and writes the report imports neither:

  worker = Worker('torch_eager', 'benchmarks.accelerator.worker', ['torch_eager'])
  info = worker.call('setup', timeout=120, spec={...})     # -> the op's JSON result
  seconds = worker.call('time_chunk', timeout=30, steps=10)
  worker.close()

The worker side is `serve(service)`: one JSON request per line on stdin,
`{"op": NAME, "kwargs": {...}}`, answered by `service.NAME(**kwargs)` as one
JSON line `{"ok": true, "result": ...}` or `{"ok": false, "error", "traceback"}`
on the process's original stdout. Everything else the worker prints, from
Python or from C (XLA, oneDNN, glibc), goes to its stderr, which the driver
keeps as a ring of the last `keep_lines` lines (and echoes with --verbose
style `echo=True`). A worker that dies (a signal, an abort, the kernel's OOM
killer) or does not answer within the request's timeout (then it is killed)
raises `WorkerDied(name, reason, last_lines)` in the driver; an exception
inside an op raises `WorkerError` and the worker lives on.

Workers are started with `python -m MODULE` (not fork: JAX and PyTorch hold
threads, and the driver should not carry their state) in a session of their
own, so Ctrl-C in a terminal reaches only the driver, which decides; a
worker's children (torch.compile's compile pool) are killed with it.

Test hook: $GAN_JAX_BENCH_FAULT, comma-separated `WORKER:MODEL[:DTYPE]`,
makes a worker that calls `inject_fault(WORKER, MODEL, DTYPE)` abort
(tests/test_bench_workers.py, tests/test_accelerator_suite.py).
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULT_ENV = 'GAN_JAX_BENCH_FAULT'
NAME_ENV = 'GAN_JAX_WORKER_NAME'
PARENT_ENV = 'GAN_JAX_WORKER_PARENT'
KEEP_LINES = 40


class WorkerDied(RuntimeError):
  """A worker process ended or hung; `last_lines`: the end of its output (stderr)."""

  def __init__(self, name: str, reason: str, last_lines: list[str]):
    super().__init__(f'{name} worker {reason}')
    self.name, self.reason, self.last_lines = name, reason, list(last_lines)

  def record(self) -> dict:
    """The failed entry of a report: status, reason and the last lines."""
    return {'status': 'failed', 'reason': f'{self.name} worker {self.reason}',
            'last_lines': self.last_lines}


class WorkerError(RuntimeError):
  """An op raised inside the worker (which lives on); `error` is its one line, `remote_traceback` its trace."""

  def __init__(self, name: str, op: str, error: str, remote_traceback: str):
    super().__init__(error)
    self.name, self.op, self.error, self.remote_traceback = name, op, error, remote_traceback

  def record(self) -> dict:
    return {'status': 'failed', 'reason': self.error[:400], 'traceback': self.remote_traceback}


# ------------------------------------------------------------------ the driver's side

class Worker:
  """One worker process: `call(op, timeout, **kwargs)`; started on the first call, or by `start`."""

  def __init__(self, name: str, module: str, args=(), *, env: dict | None = None,
               keep_lines: int = KEEP_LINES, echo: bool = False):
    """`env`: the worker's environment (default: this process's); `echo`: copy its stderr here."""
    self.name, self.module, self.args = name, module, list(args)
    self._env, self._echo = env, echo
    self._lines = collections.deque(maxlen=keep_lines)
    self._answers: queue.Queue = queue.Queue()
    self._threads: list[threading.Thread] = []
    self._killed = False
    self._busy = False   # a request is out without its answer (the driver was interrupted)
    self.proc: subprocess.Popen | None = None

  def start(self) -> None:
    env = dict(os.environ if self._env is None else self._env)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHONUNBUFFERED'] = '1'        # its prints reach the ring in order, before a crash
    env['LIBC_FATAL_STDERR_'] = '1'      # glibc's 'double free ...' to stderr, not /dev/tty
    env[NAME_ENV], env[PARENT_ENV] = self.name, str(os.getpid())
    self.proc = subprocess.Popen(
        [sys.executable, '-m', self.module, *self.args], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env,
        encoding='utf-8', errors='replace', start_new_session=True)
    self._killed = self._busy = False
    # Each reader holds this process's stream and queue: a restarted worker gets new ones.
    self._answers = queue.Queue()
    self._threads = [
        threading.Thread(target=self._read_answers, args=(self.proc.stdout, self._answers),
                         daemon=True),
        threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True)]
    for t in self._threads:
      t.start()

  @staticmethod
  def _read_answers(stream, answers: queue.Queue) -> None:
    for line in stream:
      answers.put(line)
    answers.put(None)   # end of stream: the worker exited

  def _read_stderr(self, stream) -> None:
    for line in stream:
      self._lines.append(line.rstrip('\n'))
      if self._echo:
        print(f'[{self.name}] {line}', end='', file=sys.stderr, flush=True)

  def alive(self) -> bool:
    return self.proc is not None and self.proc.poll() is None

  def usable(self) -> bool:
    """Alive and not owing the answer of an interrupted request."""
    return self.alive() and not self._busy

  def last_lines(self) -> list[str]:
    return list(self._lines)

  def call(self, op: str, timeout: float | None = None, **kwargs):
    """`op`'s result; raises WorkerDied (the worker is gone) or WorkerError (the op raised)."""
    if self.proc is None:
      self.start()
    if not self.alive():
      raise self._died(f'was dead before {op!r}')
    if self._busy:   # its next answer would be the interrupted request's: start afresh
      self.kill()
      raise self._died(f'was interrupted before {op!r}')
    try:
      self.proc.stdin.write(json.dumps({'op': op, 'kwargs': kwargs}) + '\n')
      self.proc.stdin.flush()
    except OSError:   # a broken pipe: it died since the last answer
      raise self._died(f'died before {op!r}') from None
    self._busy = True
    answer = self._answer(op, timeout)
    self._busy = False
    if not answer['ok']:
      raise WorkerError(self.name, op, answer.get('error', '?'), answer.get('traceback', ''))
    return answer.get('result')

  def _answer(self, op: str, timeout: float | None) -> dict:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
      left = None if deadline is None else max(0.0, deadline - time.monotonic())
      try:
        line = self._answers.get(timeout=left)
      except queue.Empty:
        self.kill()
        raise self._died(f'gave no answer to {op!r} within {timeout:.0f}s (killed)') from None
      if line is None:
        raise self._died(f'died during {op!r}')
      try:
        answer = json.loads(line)
      except ValueError:
        answer = None
      if isinstance(answer, dict) and 'ok' in answer:
        return answer
      self._lines.append(f'[stdout] {line.rstrip()}')   # stray output before `serve` took fd 1

  def _died(self, when: str) -> WorkerDied:
    """The exception for a worker that is gone: how it ended, with its last lines."""
    try:
      code = self.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:   # stdout closed but still running: make it gone
      self.kill()
      code = self.proc.returncode
    for t in self._threads[1:]:
      t.join(timeout=2)   # the rest of its stderr (a child holding the pipe: don't wait on it)
    return WorkerDied(self.name, f'{when}: {exit_reason(code, self._killed)}', self.last_lines())

  def kill(self) -> None:
    """SIGKILL to the worker's process group (it and its children)."""
    if self.proc is None:
      return
    self._killed = True
    try:
      os.killpg(self.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
      pass
    try:
      self.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      pass

  def close(self, timeout: float = 20.0) -> None:
    """Asks the worker to stop ('close', then the end of its stdin); kills it after `timeout`."""
    if self.proc is None:
      return
    if self.alive() and not self._busy:
      try:
        self.call('close', timeout=timeout)
      except (WorkerDied, WorkerError):
        pass
      try:
        self.proc.stdin.close()
        self.proc.wait(timeout=timeout)
      except (OSError, subprocess.TimeoutExpired):
        pass
    self.kill()   # also its children, e.g. a compile pool that outlived it


def exit_reason(code: int | None, killed_by_us: bool = False) -> str:
  """How a worker ended, in words: 'killed by SIGABRT (exit status -6)'."""
  if code is None:
    return 'still running'
  if code >= 0:
    return f'exited with status {code}'
  try:
    name = signal.Signals(-code).name
  except ValueError:
    name = f'signal {-code}'
  why = ''
  if name == 'SIGKILL' and not killed_by_us:
    why = ', out of memory or killed from outside'
  elif name in ('SIGABRT', 'SIGSEGV', 'SIGBUS'):
    why = ', a crash in native code'
  return f'killed by {name} (exit status {code}{why})'


# ------------------------------------------------------------------ the worker's side

def serve(service) -> None:
  """The worker's loop: answers requests with `service`'s public methods until 'close' or stdin ends."""
  import faulthandler  # pylint: disable=g-import-not-at-top
  faulthandler.enable()   # a crash prints the Python stack to stderr: the driver's last lines
  _die_with_parent()
  answers = _take_stdout()
  for line in sys.stdin:
    if not line.strip():
      continue
    request = json.loads(line)
    op, kwargs = request.get('op', ''), request.get('kwargs') or {}
    try:
      method = getattr(service, op, None) if not op.startswith('_') else None
      if op != 'close' and not callable(method):
        raise AttributeError(f'{type(service).__name__} has no op {op!r}')
      answer = {'ok': True, 'result': method(**kwargs) if callable(method) else None}
    except Exception as e:  # pylint: disable=broad-except  (the driver decides what it means)
      answer = {'ok': False, 'error': f'{type(e).__name__}: ' + ' '.join(str(e).split())[:600],
                'traceback': traceback.format_exc()[-3000:]}
    answers.write(json.dumps(answer, default=_json_default) + '\n')
    answers.flush()
    if op == 'close':
      break


def _take_stdout():
  """The answers' stream: the original stdout; fd 1 then points at stderr, so that whatever
  else is printed (Python, or C libraries writing to fd 1) cannot corrupt the answers."""
  sys.stdout.flush()
  answers = os.fdopen(os.dup(1), 'w', encoding='utf-8')
  os.dup2(2, 1)
  return answers


def _die_with_parent() -> None:
  """Linux: SIGKILL when the driver dies, so that a killed suite leaves no worker holding the GPU."""
  if not sys.platform.startswith('linux'):
    return
  try:
    import ctypes  # pylint: disable=g-import-not-at-top
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    return
  if os.environ.get(PARENT_ENV) and str(os.getppid()) != os.environ[PARENT_ENV]:
    os._exit(1)   # the driver died before prctl took effect


def _json_default(value):
  """numpy scalars and arrays as numbers and lists; anything else as its str()."""
  if hasattr(value, 'tolist'):
    return value.tolist()
  try:
    return float(value)
  except (TypeError, ValueError):
    return str(value)


def inject_fault(*keys: str) -> None:
  """Test hook: aborts this process when $GAN_JAX_BENCH_FAULT has an item that `keys` start with.

  Items are comma-separated `WORKER:MODEL[:DTYPE]`; keys are (worker, model, dtype).
  """
  spec = os.environ.get(FAULT_ENV, '')
  for item in filter(None, (s.strip() for s in spec.split(','))):
    parts = item.split(':')
    if list(keys[:len(parts)]) == parts:
      print(f'{FAULT_ENV}={spec}: aborting {":".join(keys)} on purpose', file=sys.stderr,
            flush=True)
      os.abort()
