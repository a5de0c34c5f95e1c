"""Config files: `PATH` or `PATH:PRESET` loaded as `--config=PATH:PRESET` loads them.

A config file is a Python file with `get_config()` (or `get_config(preset)`)
returning a ConfigDict; this is the one loader that the command line's
helpers, the experiments and the benchmarks share. Files are loaded by path,
so configs/ stays a plain folder that works from any working directory.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from gan_jax import errors


def from_sibling(config_file: str, name: str, *args) -> ml_collections.ConfigDict:
  """`get_config(*args)` of the config file NAME in the directory of `config_file`.

  For a config built on another: pass your `__file__`. Loading by path keeps
  configs/ a plain folder that works from any working directory.
  """
  return _get_config(os.path.join(os.path.dirname(os.path.abspath(config_file)), name), *args)


def load_file(spec: str) -> ml_collections.ConfigDict:
  """The config of `PATH` or `PATH:PRESET`, as `--config=PATH:PRESET` gives it."""
  path, _, preset = spec.partition(':') if not os.path.exists(spec) else (spec, '', '')
  if not os.path.exists(path):
    raise errors.ConfigError(f'Config file {path!r} does not exist (give PATH or PATH:PRESET).')
  return _get_config(path, preset) if preset else _get_config(path)


def _get_config(path: str, *args) -> ml_collections.ConfigDict:
  name = os.path.basename(path)[:-3]
  spec = importlib.util.spec_from_file_location(f'gan_jax_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*args)
