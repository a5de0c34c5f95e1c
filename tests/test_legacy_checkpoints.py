"""Checkpoints written before the package reorganisation restore, and resume to the old code's parameters.

tests/fixtures/legacy_runs/README.md says how the runs were made. Each run
is resumed for a few steps; the result must match the state an
uninterrupted run of the old code reached.
"""

import os
import shutil

import jax
import numpy as np
import pytest

from gan_jax.config import saved as saved_config
from gan_jax.training import setup as setup_lib
from gan_jax.training import trainers
from tests.conftest import REPO_ROOT

LEGACY = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'legacy_runs')


def _copy(name: str, tmp_path) -> str:
  workdir = str(tmp_path / name)
  shutil.copytree(os.path.join(LEGACY, name), workdir)
  return workdir


def _reference(name: str) -> list[np.ndarray]:
  with np.load(os.path.join(LEGACY, name), allow_pickle=False) as saved:
    return [saved[key] for key in sorted(saved.files)]


def _assert_state_matches(state, reference: list[np.ndarray]) -> None:
  leaves = jax.tree.leaves(jax.device_get(state))
  assert len(leaves) == len(reference)
  for leaf, expected in zip(leaves, reference):
    assert leaf.shape == expected.shape and leaf.dtype == expected.dtype
    np.testing.assert_allclose(leaf, expected, rtol=1e-5, atol=1e-6)


def test_an_image_run_restores_with_its_ema_and_aux_state(tmp_path):
  workdir = _copy('image', tmp_path)
  config, setup, state = setup_lib.restore_setup(workdir)
  assert int(state.step) == 3
  assert config.model.g_conditioning == 'cbn' and setup.gan.num_classes == 10
  assert state.ema and set(state.aux) == {'augment', 'reg'}


@pytest.mark.parametrize('name, steps, reference', [
    ('image', 4, 'image_step4.npz'),
    ('toy2d', 30, 'toy2d_step30.npz'),
])
def test_a_legacy_run_resumes_to_the_old_codes_parameters(tmp_path, name, steps, reference):
  workdir = _copy(name, tmp_path)
  config = saved_config.load_from_workdir(workdir)
  config.train.num_steps = steps
  state = trainers.train_and_evaluate(config, workdir)
  assert int(state.step) == steps
  _assert_state_matches(state, _reference(reference))
