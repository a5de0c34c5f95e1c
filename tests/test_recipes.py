"""The recommended recipes (configs/gan_cifar10.py, configs/cgan_cifar10.py) train on mock and real CIFAR-10.

Each recipe runs end to end (data, train step, EMA, samples, checkpoints,
`generate`) as configured, except for what keeps the test short: tiny widths
(model.width_scale), batch 8, four steps, and n_disc=1. On this 2-core CPU
XLA compiles the five unrolled D updates of n_disc=5 for over two minutes;
that the step makes n_disc updates is tested in test_steps.py, and the full
recipes' step times are in the recipe docstrings. The conditional recipe runs
with its DiffAugment preset (a superset of the plain recipe's code paths), on
mock CIFAR-10 and on the shared JPEGs, so the second run reuses the first's
compiled programs (the persistent cache of conftest.py).
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import errors
from gan_jax import generate
from gan_jax.training import image as image_trainer
from gan_jax.training import reporting
from tests.conftest import repo_config, tiny_config

RECIPES = ['gan_cifar10.py', 'cgan_cifar10.py:diffaugment']


def _recipe(name, **data):
  config = repo_config(name)
  assert config.train.n_disc == 5 and config.loss.name == 'hinge'
  assert config.train.ema_decay > 0 and config.model.name == 'sngan32'
  for key in ('batch_size', 'num_steps', 'log_every', 'sample_every', 'checkpoint_every'):
    config.train[key] = tiny_config().train[key]
  config.train.n_disc = 1
  config.train.ema_start = 1
  config.model.width_scale = 1 / 16
  config.sample.num, config.sample.per_class = 4, 1
  for key, value in data.items():
    config.data[key] = value
  return config


def _check_run(workdir, conditional):
  records = reporting.read_metrics(workdir)
  assert [r['step'] for r in records] == [2, 4]
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_grad_norm', 'g_grad_norm'):
    assert all(np.isfinite(r[key]) for r in records), key
  # As many images as the run's sample grid, so the sampler compiled for it is reused.
  num = 10 if conditional else 4
  images, labels, step = generate.generate(workdir, num=num, label=2 if conditional else None)
  assert step == 4 and images.shape == (num, 32, 32, 3) and images.dtype == np.uint8
  assert (labels is not None and np.all(labels == 2)) if conditional else labels is None


@pytest.mark.parametrize('name', RECIPES)
def test_recipe_trains_on_mock_cifar10(tmp_path, name):
  config = _recipe(name)
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=64):
    state = image_trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 4
  assert state.ema, 'the recipes sample from the EMA generator'
  _check_run(workdir, config.model.conditional)


def test_conditional_recipe_on_the_shared_cifar10_folder(tmp_path, shared_cifar10_folder):
  config = _recipe('cgan_cifar10.py:diffaugment', source='folder',
                   path=shared_cifar10_folder)
  workdir = str(tmp_path / 'folder')
  image_trainer.train_and_evaluate(config, workdir)
  _check_run(workdir, conditional=True)


def test_recipes_are_the_published_settings():
  plain = repo_config('gan_cifar10.py')
  for config in (plain, repo_config('cgan_cifar10.py'),
                 repo_config('cgan_cifar10.py:diffaugment')):
    assert (config.model.name, config.loss.name, config.train.n_disc) == ('sngan32', 'hinge', 5)
    for opt in (config.optim.g, config.optim.d):
      assert (opt.name, opt.lr, opt.b1, opt.b2) == ('adam', 2e-4, 0.0, 0.9)
    assert config.train.ema_decay > 0
  assert not plain.model.conditional and plain.augment.transforms == ()
  cond = repo_config('cgan_cifar10.py')
  assert cond.model.conditional
  assert (cond.model.g_conditioning, cond.model.d_conditioning) == ('cbn', 'projection')
  assert cond.augment.transforms == ()
  assert repo_config('cgan_cifar10.py:diffaugment').augment.transforms == ('diffaugment',)
  with pytest.raises(errors.ConfigError, match='diffaugment'):
    repo_config('cgan_cifar10.py:diffaugmnet')
