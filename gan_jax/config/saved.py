"""A run's saved config: WORKDIR/config.json written and read back, and which keys may change on resume.

`from_json` rebuilds a saved config on top of today's defaults, so a workdir
written before a key existed still loads. `resume_conflicts` lists the
changes that would silently alter an experiment that resumes.
"""

from __future__ import annotations

import json
import os

import ml_collections

from gan_jax import errors
from gan_jax.config import base

# Keys that may differ between a workdir's config.json and the config that
# resumes it: how long to run, how often to report, what to evaluate, where the
# data and the processes are, the compute dtype (checkpoints are float32
# either way), how an EMA G's standing statistics are drawn (derived at
# sampling time, never stored), and where metrics are also sent (logging.*: W&B on or off
# changes no number of the run). Any other change would silently alter the
# experiment (the data order, the model, the optimisation) and needs
# --allow_config_change.
RESUMABLE_KEYS = ('train.num_steps', 'train.max_minutes', 'train.log_every',
                  'train.sample_every', 'train.checkpoint_every', 'train.keep_checkpoints',
                  'train.compute_dtype', 'data.path',
                  'data.read_threads', 'data.prefetch', 'sample.num',
                  'sample.per_class', 'sample.standing_stats_batches', 'eval.*',
                  'distributed.*', 'logging.*')


def _flatten(values: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in values.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = tuple(value) if isinstance(value, list) else value
  return flat


def _resumable(key: str) -> bool:
  return any(key == k or (k.endswith('.*') and key.startswith(k[:-1]))
             for k in RESUMABLE_KEYS)


def resume_conflicts(saved: ml_collections.ConfigDict,
                     new: ml_collections.ConfigDict) -> list[tuple[str, object, object]]:
  """(key, saved value, new value) for every key outside RESUMABLE_KEYS that differs."""
  old, cur = _flatten(saved.to_dict()), _flatten(new.to_dict())
  return [(key, old.get(key), cur.get(key)) for key in sorted(set(old) | set(cur))
          if old.get(key) != cur.get(key) and not _resumable(key)]


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True)


def from_json(text: str) -> ml_collections.ConfigDict:
  """Rebuilds a config written by `to_json`, on top of the current defaults.

  Keys added to the base since the run was written get their defaults; tuples
  (which JSON stores as lists) come back as tuples.
  """
  config = base.get_config()
  with config.unlocked():
    _update(config, json.loads(text))
  return config


def _update(config: ml_collections.ConfigDict, values: dict) -> None:
  for key, value in values.items():
    if isinstance(value, dict) and key in config and isinstance(
        config[key], ml_collections.ConfigDict):
      _update(config[key], value)
    elif key in config and isinstance(config[key], tuple):
      config[key] = tuple(value)
    else:
      config[key] = value


def load_from_workdir(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise errors.ConfigError(
        f'{path} does not exist: {workdir!r} is not a gan_jax workdir. Pass '
        'the --workdir of a training run (python -m gan_jax.main ...).')
  with open(path) as f:
    return from_json(f.read())


def save_to_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  path = os.path.join(workdir, 'config.json')
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write(to_json(config) + '\n')
  os.replace(tmp, path)

