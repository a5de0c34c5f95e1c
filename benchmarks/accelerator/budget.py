"""The suite's clock: the time left, cost guesses from what ran so far, stopping on a signal."""

from __future__ import annotations

import signal
import time


class Stopped(Exception):
  """SIGTERM or SIGINT arrived: write what there is and exit 0."""


class StopRequest:
  """The signal that asked the suite to stop, if one did; `on_signal` is the handler to install."""

  def __init__(self):
    self.signal_name: str | None = None

  def on_signal(self, signum, frame) -> None:
    """The first signal is noted, and the suite stops at its next check (between
    chunks, measurements and sprint polls: an exception raised here could land in
    any callback, such as JAX's gc hook, and be lost); a second one stops at once."""
    del frame
    if self.signal_name is not None:
      raise Stopped(signal.Signals(signum).name)
    self.signal_name = signal.Signals(signum).name
    print(f'{self.signal_name}: stopping after the step in progress (again: at once).', flush=True)

  def check(self) -> None:
    """Raises Stopped if a signal arrived."""
    if self.signal_name is not None:
      raise Stopped(self.signal_name)


class Budget:
  """Seconds left until the deadline, and guesses of what the next step will cost."""

  def __init__(self, seconds: float, smoke: bool, sprint_reserve: float, stop: StopRequest):
    """`sprint_reserve`: the seconds the measurements leave to the quality sprint."""
    self.start = time.time()
    self.deadline = self.start + seconds
    self.sprint_reserve = sprint_reserve
    self.stop = stop
    self.write_margin = 3.0 if smoke else 10.0       # seconds kept to write the results
    self.kill_grace = 2.0 if smoke else 8.0          # the sprint's time to stop after SIGTERM
    self.default_compile = 10.0 if smoke else 40.0   # guesses before anything compiled
    # kind ('jax_compile', 'torch_setup', 'torch_compile') -> model -> seconds seen.
    self.history: dict[str, dict[str, list]] = {'jax_compile': {}, 'torch_setup': {},
                                                 'torch_compile': {}}

  def elapsed(self) -> float:
    return time.time() - self.start

  def remaining(self, reserve: float = 0.0) -> float:
    return self.deadline - self.write_margin - reserve - time.time()

  def check_stop(self) -> None:
    self.stop.check()

  def progress(self, text: str) -> None:
    print(f'[{self.elapsed():6.1f}s elapsed / {max(0.0, self.deadline - time.time()):6.1f}s '
          f'left] {text}', flush=True)

  def estimate(self, kind: str, model: str, default: float) -> float:
    """The longest `kind` seen for `model`, else for any model, else `default`."""
    seen = self.history[kind].get(model)
    if seen:
      return max(seen)
    everything = [v for values in self.history[kind].values() for v in values]
    return max(everything) if everything else default

  def note(self, kind: str, model: str, seconds: float) -> None:
    self.history[kind].setdefault(model, []).append(seconds)

  def estimate_compile(self, model: str) -> float:
    """Seconds to build and compile gan_jax's step for `model`."""
    return self.estimate('jax_compile', model, self.default_compile)

  def budget_reason(self, needed: float, reserve: float = 0.0) -> str | None:
    """Why `needed` seconds do not fit (the reason of a skipped entry), or None if they do."""
    if needed > self.remaining(reserve):
      return f'budget (needs ~{needed:.0f}s, {max(0, self.remaining(reserve)):.0f}s left)'
    return None
