"""The variants of a study (VARIANTS: the baseline and its augmentations) as configs, and their training."""

from __future__ import annotations

import ast
import json
import os
import time
from typing import Callable

from experiments.small_data.settings import Settings
from gan_jax import errors

TRAIN_RECORD = 'small_data_train.json'   # per variant: wall seconds and load of its training

# variant -> function of the Settings giving its config overrides {dotted key: value}.
VARIANTS: dict[str, Callable[[Settings], dict]] = {
    'baseline': lambda s: {},
    'diffaugment': lambda s: {'augment.transforms': ('diffaugment',)},
    'ada': lambda s: {'augment.transforms': ('ada',), 'augment.ada.target': s.ada_target,
                      'augment.ada.kimg': s.ada_kimg},
    'ada_lecam': lambda s: {**VARIANTS['ada'](s), 'reg.lecam.weight': s.lecam_weight},
}


def parse_override(item: str) -> tuple[str, object]:
  key, sep, text = item.partition('=')
  if not sep or not key:
    raise errors.ConfigError(f'--override={item!r} must be KEY=VALUE, e.g. '
                             'model.width_scale=0.125.')
  try:
    return key.strip(), ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return key.strip(), text


def set_dotted(config, key: str, value) -> None:
  """config.KEY = value, with a message naming the key when it does not exist or does not fit."""
  node, parts = config, key.split('.')
  for i, part in enumerate(parts):
    if not hasattr(node, 'keys') or part not in node:
      raise errors.ConfigError(
          f'The config has no key {key!r} ({".".join(parts[:i + 1])} is missing). For the '
          'ada/ada_lecam variants, gan_jax needs ADA (config.augment.ada) and LeCam '
          '(config.reg.lecam); otherwise check the spelling of --override.')
    if i < len(parts) - 1:
      node = node[part]
  old = node[parts[-1]]
  if isinstance(old, tuple) and isinstance(value, (list, str)):
    value = tuple(value) if isinstance(value, list) else (value,)
  if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float):
    if not value.is_integer():
      raise errors.ConfigError(f'config.{key} is an integer; {value!r} is not.')
    value = int(value)
  try:
    node[parts[-1]] = value
  except TypeError as e:
    raise errors.ConfigError(f'config.{key}={value!r}: {e}') from None


def variant_config(s: Settings, variant: str, train_dir: str):
  """The --config file's config, trained on `train_dir` with the study's budget and the variant's overrides."""
  from gan_jax.config import files as config_files  # pylint: disable=g-import-not-at-top
  if variant not in VARIANTS:
    raise errors.ConfigError(f'Unknown variant {variant!r}: --variants takes some of '
                             f'{", ".join(VARIANTS)}.')
  config = config_files.load_file(s.config)
  config.seed = s.seed
  d = config.data
  d.source, d.path, d.split, d.classes = 'folder', train_dir, '', ()
  d.image_size, d.channels = s.image_size, s.channels
  tc = config.train
  tc.num_steps, tc.batch_size, tc.max_minutes = s.steps, s.batch_size, 0.0
  tc.checkpoint_every = tc.sample_every = max(1, s.steps // max(1, s.checkpoints))
  tc.keep_checkpoints = max(1, s.checkpoints) + 1   # the last step may fall between them
  tc.log_every = max(1, s.steps // 50)
  config.eval.every = 0
  for key, value in [*VARIANTS[variant](s).items(), *map(parse_override, s.overrides)]:
    set_dotted(config, key, value)
  return config


def kept_checkpoints(workdir: str) -> list[int]:
  """The steps of the run's checkpoints, ascending; [] before the first."""
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def train_variant(config, workdir: str, log=print) -> dict:
  """Trains (or resumes) one variant; skips a finished one. Returns wall seconds and load."""
  from gan_jax.training import image as image_trainer  # pylint: disable=g-import-not-at-top
  record_path = os.path.join(workdir, TRAIN_RECORD)
  steps = config.train.num_steps
  done = (kept_checkpoints(workdir) or [None])[-1]
  if done is not None and done >= steps:
    from gan_jax.config import saved as saved_config
    conflicts = saved_config.resume_conflicts(saved_config.load_from_workdir(workdir), config)
    if conflicts:
      raise errors.ConfigError(
          f'{workdir} holds a finished run of another config ('
          + ', '.join(f'{k}: {old!r} -> {new!r}' for k, old, new in conflicts[:5])
          + '); use a new --workdir, or remove that variant\'s directory to retrain it.')
    record = {}
    if os.path.exists(record_path):
      with open(record_path) as f:
        record = json.load(f)
    return {**record, 'skipped': True}
  load_before = os.getloadavg()
  start = time.perf_counter()
  image_trainer.train_and_evaluate(config, workdir)
  record = {'wall_s': time.perf_counter() - start, 'load_before': list(load_before),
            'load_after': list(os.getloadavg()), 'resumed_from': done or 0}
  with open(record_path, 'w') as f:
    json.dump(record, f, indent=2)
  return {**record, 'skipped': False}
