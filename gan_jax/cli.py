"""Running a command-line entry point: absl's `app.run`, with `--help` exiting 0.

absl prints the usage for `--help` (and its variants) and then exits with
status 1, which scripts and shells read as a failure. Asking for help is not
an error, so every gan_jax command starts through `run`.
"""

from __future__ import annotations

import sys

from absl import app

HELP_FLAGS = ('--help', '-help', '-h', '-?', '--helpshort', '-helpshort', '--helpfull',
              '-helpfull', '--helpxml', '-helpxml')


def run(main, argv=None, **kwargs) -> None:
  """`app.run(main, argv, **kwargs)`; a help request exits with status 0."""
  argv = list(sys.argv if argv is None else argv)
  try:
    app.run(main, argv=argv, **kwargs)
  except SystemExit as e:
    if e.code == 1 and any(arg.split('=', 1)[0] in HELP_FLAGS for arg in argv[1:]):
      sys.exit(0)
    raise
