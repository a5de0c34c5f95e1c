"""What a workdir remembers of its run, and the check that a resume does not silently change it.

A run writes its config (config.json, gan_jax.config.saved) and its dataset's
description (data_info.json, here) into the workdir. Resuming compares both
with the ones given (`check_resume`); generate, evaluate and analyze read the
dataset's description back (`load_data_info`) without opening the data.
"""

from __future__ import annotations

import json
import os

import ml_collections

from gan_jax import errors
from gan_jax.config import saved as saved_config
from gan_jax.data.source import DatasetInfo

DATA_INFO_FILE = 'data_info.json'


def load_data_info(workdir: str) -> DatasetInfo:
  with open(os.path.join(workdir, DATA_INFO_FILE)) as f:
    return DatasetInfo.from_dict(json.load(f))


def check_resume(config: ml_collections.ConfigDict, info: DatasetInfo, workdir: str,
                 allow_config_change: bool = False) -> list[str]:
  """Refuses to resume a checkpoint with a config or dataset that would silently change the run.

  Only keys in `config.RESUMABLE_KEYS` may differ from the workdir's
  config.json; `allow_config_change` accepts any other change (the run then
  continues with the new values, from the checkpoint's weights). Returns the
  accepted changes, one line each.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return []
  saved = saved_config.load_from_workdir(workdir)
  changes = [f'  {key}: {old!r} -> {new!r}'
             for key, old, new in saved_config.resume_conflicts(saved, config)]
  changes += _data_changes(info, workdir)
  if not changes or allow_config_change:
    return changes
  raise errors.ConfigError(
      f'{workdir} holds a checkpoint of a run with a different config or dataset '
      f'({path}); resuming it with this one would silently change the experiment:\n'
      + '\n'.join(changes) + '\n'
      'Use a new --workdir for a new experiment, or pass --allow_config_change '
      '(train_and_evaluate(..., allow_config_change=True)) to resume with the new '
      'values. The checkpoints and config.json were left as they are. Keys that may '
      'change on resume: '
      f'{", ".join(saved_config.RESUMABLE_KEYS)}.')


def _data_changes(info: DatasetInfo, workdir: str) -> list[str]:
  """How `info` differs from the workdir's data_info.json, one line per field (none without the file)."""
  if not os.path.exists(os.path.join(workdir, DATA_INFO_FILE)):
    return []
  old_info = load_data_info(workdir)
  changes = []
  for field in ('num_examples', 'image_shape', 'num_classes', 'class_names'):
    old, new = getattr(old_info, field), getattr(info, field)
    if old != new:
      changes.append(f'  data {field}: {old!r} -> {new!r} ({DATA_INFO_FILE})')
  return changes
