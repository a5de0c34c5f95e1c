"""Errors caused by the user's input, whose message says what is wrong and how to fix it.

The command-line entry points print these without a traceback; anything else
is a bug and keeps its traceback.
"""


class GanJaxError(Exception):
  """Base class: the message is meant for the user."""


class ConfigError(GanJaxError, ValueError):
  """A config value that cannot work (unknown name, wrong size, bad number)."""


class DataError(GanJaxError, ValueError):
  """Data that exists but cannot be used (corrupt, empty, inconsistent)."""


class DataNotFoundError(GanJaxError, FileNotFoundError):
  """Data that is not where the config says."""


class TrainingDiverged(GanJaxError, RuntimeError):
  """A loss or gradient became NaN or infinite."""


class Interrupted(GanJaxError):
  """Training stopped on SIGTERM or SIGINT after saving a checkpoint; rerunning resumes it.

  `exit_code` is what the command line exits with: 128 + the signal number.
  """

  def __init__(self, message: str, exit_code: int):
    super().__init__(message)
    self.exit_code = exit_code


class NotReady(GanJaxError, RuntimeError):
  """The machine lacks something a run needs (a device, bfloat16, data, weights); says what and how to fix it."""
