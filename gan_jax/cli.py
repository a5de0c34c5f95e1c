"""Running a command-line entry point: absl's `app.run`, with one-line errors and `--help` exiting 0.

Every gan_jax command starts through `run`, which:
  * exits 0 for `--help` (absl prints the usage and exits 1, which scripts
    and shells read as a failure);
  * prints an error as one line, `error: ...`, with exit status 1, not a
    traceback: a gan_jax error (errors.GanJaxError) says what is wrong and how
    to fix it, an OS error (a full disk, a read-only directory) names the
    file, and anything else is reported as a likely bug with where it
    happened. `--verbose` (or GAN_JAX_VERBOSE=1) shows the full traceback;
  * exits 128 + N after signal N stopped a run that saved a checkpoint
    (errors.Interrupted);
  * drops orbax's leftover 'Event loop is closed' tracebacks
    (install_noise_filter), which would bury the message.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from typing import Any

from absl import app
from absl import flags

from gan_jax import errors

HELP_FLAGS = ('--help', '-help', '-h', '-?', '--helpshort', '-helpshort', '--helpfull',
              '-helpfull', '--helpxml', '-helpxml')
VERBOSE_ENV = 'GAN_JAX_VERBOSE'

flags.DEFINE_bool('verbose', False, 'On an error, print the full traceback, not one line '
                  f'(also: {VERBOSE_ENV}=1).')


def verbose() -> bool:
  parsed = flags.FLAGS.is_parsed() and flags.FLAGS.verbose
  return parsed or os.environ.get(VERBOSE_ENV, '') not in ('', '0')


def error_message(e: BaseException) -> str:
  """The one line printed for `e`."""
  if isinstance(e, errors.GanJaxError):
    return f'error: {e}'
  if isinstance(e, OSError):
    return f'error: {e}' + ('' if verbose() else f' (--verbose or {VERBOSE_ENV}=1: traceback)')
  frames = [f for f in traceback.extract_tb(e.__traceback__) if 'gan_jax' in f.filename]
  where = (f' in {os.path.relpath(frames[-1].filename)}:{frames[-1].lineno} '
           f'({frames[-1].name})' if frames else '')
  text = ' '.join(str(e).split())[:500]
  return (f'error: unexpected {type(e).__name__}{where}: {text}\nThis is likely a bug in '
          f'gan_jax: rerun with --verbose (or {VERBOSE_ENV}=1) for the full traceback, '
          'and report it with the command.')


def start(argv) -> None:
  """A command's first line: refuses stray arguments, and quiets library INFO logs (orbax's
  would drown the progress lines) unless --verbosity was given."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    absl_logging.set_verbosity(absl_logging.WARNING)


def _guarded(main):
  def wrapped(argv):
    try:
      return main(argv)
    except errors.Interrupted as e:
      print(e, file=sys.stderr, flush=True)
      sys.exit(e.exit_code)
    except (SystemExit, app.UsageError):
      raise
    except KeyboardInterrupt:
      if verbose():
        raise
      sys.exit('error: interrupted.')
    except Exception as e:  # pylint: disable=broad-except  (the last stop before a traceback)
      if verbose():
        raise
      sys.exit(error_message(e))
  return wrapped


def run(main, argv=None, **kwargs) -> None:
  """`app.run(main, argv, **kwargs)` with one-line errors; a help request exits with status 0."""
  install_noise_filter()
  argv = list(sys.argv if argv is None else argv)
  try:
    app.run(_guarded(main), argv=argv, **kwargs)
  except SystemExit as e:
    if e.code == 1 and any(arg.split('=', 1)[0] in HELP_FLAGS for arg in argv[1:]):
      sys.exit(0)
    raise


def install_noise_filter() -> None:
  """Drops orbax's tracebacks from stderr, for the command-line entry points (not with --verbose).

  A failed save or restore is raised in the main thread, where gan_jax turns
  it into one message. Orbax also logs it, with its traceback, from each of
  its threads (a full disk gave 1,686 lines), and when one array of a restore
  fails, or a process exits with a save or read abandoned, the pending
  callbacks later report into a closed event loop, which Python prints as
  'unraisable' exceptions. The real message scrolls away, and the noise says
  nothing more.
  """
  if not getattr(sys.unraisablehook, 'gan_jax_filter', False):
    sys.unraisablehook = filter_unraisable(sys.unraisablehook)
  if not verbose():  # an abandoned save's coroutine, reported at interpreter exit
    warnings.filterwarnings('ignore', message=r"coroutine '.*' was never awaited",
                            category=RuntimeWarning)
  for name in ('absl', 'asyncio'):
    logger = logging.getLogger(name)
    if not any(isinstance(f, _OrbaxErrorFilter) for f in logger.filters):
      logger.addFilter(_OrbaxErrorFilter())


class _OrbaxErrorFilter(logging.Filter):
  """Drops ERROR records logged from orbax's code, or by asyncio about its tasks."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno < logging.ERROR or verbose():
      return True
    text = f'{record.pathname} {record.getMessage()[:2000]}'
    return 'orbax' not in text


def filter_unraisable(fallback):
  def hook(unraisable):
    if not is_async_noise(unraisable.exc_value, unraisable.object):
      fallback(unraisable)
  hook.gan_jax_filter = True
  return hook


def is_async_noise(exc: BaseException | None, obj: Any = None) -> bool:
  """Orbax's leftover asyncio errors: a closed loop, or an abandoned read's coroutine."""
  if isinstance(exc, RuntimeError) and 'Event loop is closed' in str(exc):
    return True
  code = getattr(obj, 'cr_code', None) or getattr(obj, '__code__', None)
  return 'orbax' in getattr(code, 'co_filename', '') or 'orbax' in repr(obj)
