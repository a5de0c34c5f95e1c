"""Command line for training: `python -m gan_jax.main --config=configs/NAME.py --workdir=DIR`.

`config.trainer` picks the training loop (gan_jax.training.trainers.TRAINERS).

Without --config, the embedded quickstart (gan_jax/quickstart.py: a small DCGAN
on scikit-learn's bundled digits) runs. `--config.KEY=VALUE` overrides any key;
an unknown key is an error. Re-running the same command resumes.

Exit status: 0 when training finished, 1 on an error (printed in one line;
--verbose or GAN_JAX_VERBOSE=1 adds the traceback), 128 + the signal number
after SIGTERM (143) or SIGINT (130) stopped the run and saved a checkpoint.
"""

from __future__ import annotations

import re
import sys

from absl import flags
from ml_collections import config_flags

from gan_jax import cli
from gan_jax.config import quickstart

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, samples and logs.')
flags.DEFINE_bool('allow_config_change', False,
                  'Resume a workdir although its config.json differs from this '
                  'config in keys that change the experiment (see '
                  'gan_jax/config.py RESUMABLE_KEYS).')
flags.mark_flags_as_required(['workdir'])


def config_error_message(e: Exception) -> str:
  """One readable line for ml_collections' errors about unknown or mistyped keys."""
  text = str(e)
  locked = re.search(r'Key "([^"]+)" does not exist', text)
  if locked:
    return (f'unknown config key {locked.group(1)!r}, set in the config file. '
            'Only keys of the base config (gan_jax/config.py) exist.')
  if isinstance(e, (AttributeError, KeyError)):
    key = re.search(r"'([^'\\]+)\\?'", text)
    hint = re.search(r'Did you mean "([^"]+)"', text)
    return (f'unknown config key {key.group(1) if key else text!r} in a '
            '--config.KEY=VALUE override.'
            + (f' Did you mean {hint.group(1)!r}?' if hint else ''))
  return f'bad config value: {text}'


def _define_config_flag():
  # config_flags parses the --config.KEY overrides as soon as the flag is
  # defined, so their errors surface here, at import.
  try:
    return config_flags.DEFINE_config_file(
        'config', quickstart.QUICKSTART_CONFIG_PATH,
        'Experiment config file (a Python file with get_config()); defaults '
        'to the embedded quickstart.', lock_config=True)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(f'error: {config_error_message(e)}')


_define_config_flag()


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with config errors reported in one line, not a traceback."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'error: {e}\nRun with --helpfull for the flags.')
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(f'error: {config_error_message(e)}')


def main(argv):
  cli.start(argv)
  from gan_jax.training import trainers  # pylint: disable=g-import-not-at-top  (slow: JAX)
  try:
    config = FLAGS.config
    config.get('seed')  # a file that failed to load raises on first use
  except OSError as e:  # config_flags defers a file that failed to load to here
    sys.exit(f'error: cannot load --config: {e}'.rstrip())
  # Errors are printed in one line by cli.run (--verbose: the traceback).
  trainers.train_and_evaluate(config, FLAGS.workdir,
                              allow_config_change=FLAGS.allow_config_change)


if __name__ == '__main__':
  cli.run(main, flags_parser=parse_flags)
