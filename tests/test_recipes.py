"""The recommended recipes (configs/gan_cifar10.py, configs/cgan_cifar10.py) train on mock and real CIFAR-10.

Tiny widths (model.width_scale) keep the SNGAN compile short; everything
else, n_disc=5 included, is the recipe's. The conditional recipe runs on mock
data with its DiffAugment preset (a superset of the plain recipe's code
paths) and plainly on the shared CIFAR-10 JPEGs, to spend one compile each.
"""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import generate, reporting, train
from tests.conftest import REPO_ROOT, load_config_file, tiny_config

RECIPES = ['gan_cifar10.py', 'cgan_cifar10.py:diffaugment']


def _recipe(name, **data):
  path, _, preset = name.partition(':')
  module = load_config_file(os.path.join(REPO_ROOT, 'configs', path))
  config = module.get_config(preset) if preset else module.get_config()
  for key, value in tiny_config().train.items():
    if key != 'n_disc':
      config.train[key] = value
  config.train.ema_start = 1
  config.model.width_scale = 1 / 16
  config.sample.per_class = 1
  for key, value in data.items():
    config.data[key] = value
  return config


def _check_run(workdir, conditional):
  records = reporting.read_metrics(workdir)
  assert [r['step'] for r in records] == [2, 4]
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_grad_norm', 'g_grad_norm'):
    assert all(np.isfinite(r[key]) for r in records), key
  images, labels, step = generate.generate(workdir, num=3, label=2 if conditional else None)
  assert step == 4 and images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
  assert (labels is not None and np.all(labels == 2)) if conditional else labels is None


@pytest.mark.parametrize('name', RECIPES)
def test_recipe_trains_on_mock_cifar10(tmp_path, name):
  config = _recipe(name)
  assert config.train.n_disc == 5 and config.loss.name == 'hinge'
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=64):
    state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 4
  assert state.ema, 'the recipes sample from the EMA generator'
  _check_run(workdir, config.model.conditional)


def test_conditional_recipe_on_the_shared_cifar10_folder(tmp_path, shared_cifar10_folder):
  config = _recipe('cgan_cifar10.py', source='folder', path=shared_cifar10_folder)
  workdir = str(tmp_path / 'folder')
  train.train_and_evaluate(config, workdir)
  _check_run(workdir, conditional=True)
