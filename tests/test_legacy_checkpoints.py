"""Checkpoints written before the package reorganisation restore, and resume to the old code's state.

tests/fixtures/legacy_runs/README.md says how the runs were made and why a
different JAX release is held to a looser bound than the one that wrote them.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from gan_jax.config import saved as saved_config
from gan_jax.training import reporting
from gan_jax.training import setup as setup_lib
from gan_jax.training import trainers
from tests.conftest import REPO_ROOT

LEGACY = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'legacy_runs')
WRITTEN_BY_JAX = '0.10.2'


def _copy(name: str, tmp_path) -> str:
  workdir = str(tmp_path / name)
  shutil.copytree(os.path.join(LEGACY, name), workdir)
  return workdir


def _reference(name: str) -> tuple[list[np.ndarray], dict]:
  with np.load(os.path.join(LEGACY, f'{name}.npz'), allow_pickle=False) as saved:
    leaves = [saved[key] for key in sorted(saved.files)]
  with open(os.path.join(LEGACY, f'{name}_metrics.json')) as f:
    return leaves, json.load(f)


def test_an_image_run_restores_with_its_ema_and_aux_state(tmp_path):
  workdir = _copy('image', tmp_path)
  config, setup, state = setup_lib.restore_setup(workdir)
  assert int(state.step) == 3
  assert config.model.g_conditioning == 'cbn' and setup.gan.num_classes == 10
  assert state.ema and set(state.aux) == {'augment', 'reg'}


@pytest.mark.parametrize('name, steps', [('image', 4), ('toy2d', 30)])
def test_a_legacy_run_resumes_to_the_old_codes_state(tmp_path, name, steps):
  workdir = _copy(name, tmp_path)
  config = saved_config.load_from_workdir(workdir)
  config.train.num_steps = steps
  start = reporting.read_metrics(workdir)[-1]['step']
  state = trainers.train_and_evaluate(config, workdir)
  assert int(state.step) == steps
  leaves, metrics = _reference(f'{name}_step{steps}')
  logged = reporting.read_metrics(workdir)[-1]
  for key, value in metrics.items():
    assert logged[key] == pytest.approx(value, rel=1e-3, abs=1e-6), key
  new = jax.tree.leaves(jax.device_get(state))
  assert [(x.shape, x.dtype) for x in new] == [(x.shape, x.dtype) for x in leaves]
  lr = max(config.optim.g.lr, config.optim.d.lr)
  atol = 1e-6 if jax.__version__ == WRITTEN_BY_JAX else 3 * lr * (steps - start)
  for got, expected in zip(new, leaves):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=atol)
