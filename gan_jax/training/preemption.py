"""Stopping cleanly on SIGTERM or SIGINT: finish the step, save a checkpoint, exit with 128 + the signal number.

Schedulers (SLURM, Kubernetes, Cloud TPU maintenance) send SIGTERM some
seconds before they kill a job; Ctrl-C sends SIGINT. Either one makes the
training loop stop after the step it is running, save a checkpoint and wait
for it, and exit with status 128 + the signal number (143 for SIGTERM, 130
for SIGINT: the shell's convention for "stopped by a signal", so restart-on-
failure policies restart the run, and rerunning the command resumes it).

With one process, a Python signal handler records the signal. With several,
a signal may reach one process only, or all of them at different steps, yet
all must save the same step together. JAX's preemption service, started by
`jax.distributed.initialize` and listening for SIGTERM, agrees on that step
(`multihost_utils.reached_preemption_sync_point`); SIGINT is passed on to it
as a SIGTERM. A second signal stops at once without saving, which is safe as
well: orbax makes a checkpoint visible only once it is complete.
"""

from __future__ import annotations

import signal
import sys
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(signum: int) -> int:
  return 128 + signum


class StopOnSignal:
  """Between `install()` and `restore()`, `should_stop(step)` turns True once SIGTERM or SIGINT arrived.

  Multi-process, it turns True at the same step on every process.
  """

  def __init__(self):
    self.signum: int | None = None          # the first signal this process received
    self._previous: dict[int, object] = {}
    self._service = (jax.distributed.is_initialized() and
                     jax.config.jax_enable_preemption_service)

  def install(self) -> 'StopOnSignal':
    if threading.current_thread() is not threading.main_thread():
      logging.warning('Training outside the main thread: SIGTERM and SIGINT '
                      'will not save a checkpoint before stopping.')
      return self
    if jax.process_count() > 1 and not self._service:
      logging.warning('JAX\'s preemption service is off (jax_enable_preemption_service): '
                      'SIGTERM and SIGINT will not save a checkpoint before stopping.')
      return self
    # With the service, SIGTERM stays with its handler (installed by JAX).
    for signum in (signal.SIGINT,) if self._service else SIGNALS:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def restore(self) -> None:
    """Puts back the signal handlers that `install` replaced."""
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()

  def _handle(self, signum: int, frame) -> None:
    del frame
    name = signal.Signals(signum).name
    if self.signum is not None:  # a second signal: stop now, without saving
      signal.signal(signum, self._previous.pop(signum))
      signal.raise_signal(signum)
      return
    self.signum = signum
    print(f'\nReceived {name}: stopping after this step and saving a checkpoint '
          f'(send {name} again to stop at once without saving).',
          file=sys.stderr, flush=True)
    if self._service:
      signal.raise_signal(signal.SIGTERM)  # tells JAX's preemption service

  def stop_signal(self) -> int:
    """The signal that stopped the run (SIGTERM when another process received it)."""
    return self.signum or signal.SIGTERM

  def should_stop(self, step: int) -> bool:
    """Whether to stop after `step`; call it after every step, on every process."""
    if self._service:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.signum is not None
