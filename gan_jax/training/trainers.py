"""Trainers, registered by name (`config.trainer`), so main.py never chooses with `if`s.

  image  gan_jax.training.image: image GANs fed uint8 batches from a data source (the default)
  toy2d  gan_jax.toy2d.trainer: the 2D lab, data sampled on device, fused steps

An entry names the module whose `train_and_evaluate(config, workdir,
allow_config_change)` runs that trainer; it is imported when chosen, so this
registry sits below the applications it lists (the 2D lab builds on
gan_jax.training) without importing them.
"""

from __future__ import annotations

import importlib
import os
import shutil

import ml_collections

from gan_jax.registry import Registry

TRAINERS: Registry[str] = Registry('trainer', 'config.trainer')
TRAINERS.register('image')('gan_jax.training.image')
TRAINERS.register('toy2d')('gan_jax.toy2d.trainer')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False):
  """Runs the trainer named by `config.trainer`; returns its final state.

  `allow_config_change` lets a workdir resume with a config that differs from
  its config.json (see gan_jax.training.resume.check_resume). A workdir this call
  created is removed again if the run fails before its first checkpoint.
  """
  trainer = importlib.import_module(TRAINERS.get(config.trainer)).train_and_evaluate
  created = not os.path.exists(workdir)
  try:
    return trainer(config, workdir, allow_config_change=allow_config_change)
  except BaseException:
    if created and not _has_checkpoint(workdir):
      # A run that stops before its first checkpoint (bad data, bad config)
      # leaves nothing behind that it made; an existing workdir is never touched.
      shutil.rmtree(workdir, ignore_errors=True)
    raise


def _has_checkpoint(workdir: str) -> bool:
  directory = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))
