"""The 30-minute CPU recipes (configs/gan_cifar10_cpu.py, cgan_cifar10_cpu.py, gan_cifar10_small.py) train, stop on time, and generate.

Tiny widths and four steps keep it short; the recipes' real time and quality
are measured by benchmarks.quality_per_time (experiments/RESULTS.md).
"""

import numpy as np
import pytest

from gan_jax import generate
from gan_jax.training import image as image_trainer
from tests.conftest import repo_config, tiny_config


def _recipe(name, folder):
  config = repo_config(name)
  assert config.train.max_minutes > 0, 'a CPU recipe keeps to its time budget'
  for key in ('batch_size', 'num_steps', 'log_every', 'sample_every', 'checkpoint_every'):
    config.train[key] = tiny_config().train[key]
  config.model.width_scale = 1 / 16
  config.sample.num, config.sample.per_class = 4, 1
  config.data.path = folder
  return config


@pytest.mark.parametrize('name', ['gan_cifar10_cpu.py', 'cgan_cifar10_cpu.py',
                                  'gan_cifar10_small.py'])
def test_cpu_recipe_trains_and_generates(tmp_path, rgb32_folder, name):
  config = _recipe(name, rgb32_folder)
  conditional = name.startswith('cgan')
  assert config.model.conditional == conditional
  workdir = str(tmp_path / 'run')
  state = image_trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 4 and state.ema
  images, labels, step = generate.generate(workdir, num=3, label=1 if conditional else None)
  assert step == 4 and images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
  assert (labels is not None and np.all(labels == 1)) if conditional else labels is None


def test_cgan_recipe_is_the_gan_recipe_made_conditional():
  plain = repo_config('gan_cifar10_cpu.py').to_dict()
  cond = repo_config('cgan_cifar10_cpu.py').to_dict()
  for section in ('loss', 'optim', 'train', 'augment', 'reg', 'data'):
    assert plain[section] == cond[section], section
  changed = {k for k, v in plain['model'].items() if v != cond['model'][k]}
  assert 'conditional' in changed
  assert changed <= {'conditional', 'g_conditioning', 'd_conditioning'}


def test_small_data_recipe_is_the_gan_recipe_with_diffaugment():
  plain = repo_config('gan_cifar10_cpu.py').to_dict()
  small = repo_config('gan_cifar10_small.py').to_dict()
  assert small['augment']['transforms'] == ('diffaugment',)
  for section in ('loss', 'optim', 'model', 'reg', 'data'):
    assert plain[section] == small[section], section
  assert {k for k, v in plain['train'].items() if v != small['train'][k]} == {'ema_start'}
