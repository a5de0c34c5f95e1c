"""Config files: `PATH` or `PATH:PRESET` loaded as `--config=PATH:PRESET` loads them.

A config file is a Python file with `get_config()` (or `get_config(preset)`)
returning a ConfigDict; this is the one loader that the command line's
helpers, the experiments and the benchmarks share. Files are loaded by path,
so configs/ stays a plain folder that works from any working directory.
`split_preset` reads presets that compose, `TARGET[,MODIFIER...]`
(configs/toy2d.py:grid,report).
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


def preset_parts(preset: str, config_file: str, presets) -> tuple[str, ...]:
  """The comma-separated parts of a preset whose parts all compose, e.g. 'conditional,cpu'.

  For config files without a target: '' is the file's own setting, and each
  part must be one of `presets` (else a ConfigError naming `config_file`).
  """
  parts = tuple(p.strip() for p in preset.split(',') if p.strip())
  unknown = [p for p in parts if p not in presets]
  if unknown:
    raise errors.ConfigError(
        f'Unknown preset {unknown[0]!r} for {config_file}; presets are {", ".join(presets)}, '
        f'composable with a comma (--config={config_file}:{",".join(presets)}).')
  return parts


def split_preset(preset: str, config_file: str, targets, modifiers=()) -> tuple[str, tuple[str, ...]]:
  """(target, modifiers) of a preset `TARGET[,MODIFIER...]`, e.g. 'grid,report'.

  For config files whose presets compose: the first part picks one of
  `targets`, the rest are some of `modifiers`. Anything else is a ConfigError
  that names `config_file` and lists the choices.
  """
  target, *rest = preset.split(',')
  usage = f'--config={config_file}:' + ('TARGET,MODIFIER...' if modifiers else 'PRESET')
  if target not in targets:
    where = 'the first part of the preset is' if modifiers else 'the preset is'
    raise errors.ConfigError(f'Unknown preset {target!r} for {config_file}; {where} one of '
                             f'{", ".join(targets)} ({usage}).')
  unknown = [m for m in rest if m not in modifiers]
  if unknown:
    choices = f'modifiers: {", ".join(modifiers)}' if modifiers else 'it takes no modifiers'
    raise errors.ConfigError(f'Unknown preset modifier {unknown[0]!r} in {preset!r} for '
                             f'{config_file}; {choices} ({usage}).')
  return target, tuple(rest)
