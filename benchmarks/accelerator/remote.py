"""The driver's side of the suite's workers: one process per framework, restarted after one died.

`WorkerPool.get('gan_jax' | 'torch_eager' | 'torch_compile')` is that
worker, started on first use and again after it died (the next row gets a
fresh one). `RemoteRunner` is a runner in a worker, with the in-process
runners' `per_step_s` and `run(steps) -> seconds`, so the alternation of
`measure.Measurer._timed_rounds` is the same code as before the split.
"""

from __future__ import annotations

from benchmarks.workers import Worker, WorkerDied, WorkerError

WORKER_MODULE = 'benchmarks.accelerator.worker'
NAMES = ('gan_jax', 'torch_eager', 'torch_compile')
# The shortest wait on a worker's answer (seconds): a first setup may import a framework and
# start CUDA, a chunk may be slow under load. Otherwise 5x what is expected, within the budget.
MIN_SETUP_TIMEOUT = 120.0
MIN_CHUNK_TIMEOUT = 30.0


class WorkerPool:
  """The suite's workers by name."""

  def __init__(self, echo: bool = False):
    self.echo = echo
    self._workers: dict[str, Worker] = {}
    self.starts: dict[str, int] = {}   # how many processes each name has had (in the report)

  def get(self, name: str) -> Worker:
    worker = self._workers.get(name)
    if worker is None or not worker.usable():
      if worker is not None:
        worker.close(timeout=5)   # reaps it and whatever children it left
      worker = Worker(name, WORKER_MODULE, [name], echo=self.echo)
      worker.start()
      self._workers[name] = worker
      self.starts[name] = self.starts.get(name, 0) + 1
    return worker

  def close_all(self) -> None:
    """Stops every worker (before the sprint, which needs the device, and at the end)."""
    for worker in list(self._workers.values()):
      worker.close(timeout=10)
    self._workers.clear()

  def kill_all(self) -> None:
    """SIGKILL to every worker and its children: no waiting, for an interrupted suite."""
    for worker in list(self._workers.values()):
      worker.kill()
    self._workers.clear()


class RemoteRunner:
  """A runner in a worker process: setup(spec) once, then run(steps) per timed chunk."""

  def __init__(self, worker: Worker, remaining):
    """`remaining()`: the budget's seconds left, the ceiling of every wait on the worker."""
    self.worker = worker
    self.remaining = remaining
    self.per_step_s = 1.0
    self.info: dict = {}

  def timeout(self, expected: float, minimum: float) -> float:
    """5x what is expected, at least `minimum`, at most the budget left: a worker that hangs
    (as oneDNN's corrupted heap can make it) is killed, and the suite goes on."""
    return max(5.0, min(max(minimum, 5 * expected), self.remaining()))

  def setup(self, spec: dict, expected_s: float) -> dict:
    self.info = self.worker.call('setup', timeout=self.timeout(expected_s, MIN_SETUP_TIMEOUT),
                                 spec=spec)
    self.per_step_s = self.info.get('per_step_s') or self.per_step_s
    return self.info

  def run(self, steps: int) -> float:
    expected = steps * self.per_step_s
    return self.worker.call('time_chunk', timeout=self.timeout(expected, MIN_CHUNK_TIMEOUT),
                            steps=steps)

  def close(self) -> None:
    """Frees the step in the worker; a dead worker has nothing left to free."""
    try:
      self.worker.call('release', timeout=60)
    except (WorkerDied, WorkerError):
      pass


def failure(e: BaseException) -> dict:
  """A report entry's failed fields for a worker's death or error."""
  if isinstance(e, (WorkerDied, WorkerError)):
    return e.record()
  from benchmarks.accelerator.report import error_line  # pylint: disable=g-import-not-at-top
  return {'status': 'failed', 'reason': error_line(e)}
