"""Configs: every config file loads, overrides apply, unknown keys and bad values are named."""

import ast
import glob
import math
import os
import subprocess
import sys

import pytest

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.config import files as config_files
from gan_jax.config import saved as saved_config
from tests.conftest import REPO_ROOT, make_config, repo_config

REQUIRED_KEYS = ('seed', 'train.num_steps', 'train.batch_size', 'train.log_every',
                 'train.sample_every', 'train.checkpoint_every', 'data.source',
                 'data.name', 'data.path', 'data.image_size', 'data.classes')


def _main(*args):
  return subprocess.run([sys.executable, '-m', 'gan_jax.main', *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=300)


CONFIG_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', '*.py')))
# Every preset of the config files that have them (a preset picks the variant
# of a recipe; configs/toy2d.py's compose: TARGET,MODIFIER).
PRESETS = ('cgan_cifar10.py:diffaugment', 'cvae.py:mnist', 'cvae.py:cifar10',
           'dcgan64_folder.py:ada', 'dcgan_cifar10_class.py:dog',
           'dcgan_cifar10_class.py:airplane', 'dcgan_mnist.py:diffaugment', 'dcgan_mnist.py:ada',
           'ddpm.py:mnist', 'ddpm.py:cifar10', 'toy2d.py:ring', 'toy2d.py:ring,report',
           'toy2d.py:grid', 'toy2d.py:grid,report', 'toy2d.py:sine', 'toy2d.py:circle',
           'toy2d.py:wing')


def _docstring(path):
  with open(path) as f:
    return ast.get_docstring(ast.parse(f.read()))


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_every_config_file_has_the_documented_keys(path):
  config = config_files.load_file(path)
  config_base.validate(config)
  for key in REQUIRED_KEYS:
    node = config
    for part in key.split('.'):
      node = node[part]
  doc = _docstring(path)
  assert doc and 'python -m gan_jax.main' in doc


@pytest.mark.parametrize('spec', PRESETS)
def test_every_preset_loads_and_is_documented(spec):
  config_base.validate(repo_config(spec))
  name, _, preset = spec.partition(':')
  for part in preset.split(','):
    assert part in _docstring(os.path.join(REPO_ROOT, 'configs', name)), part


def test_toy2d_presets_compose_a_target_and_modifiers():
  ring = repo_config('toy2d.py')
  assert ring == repo_config('toy2d.py:ring') and ring.data.name == 'ring'
  assert (ring.model.hidden, ring.train.batch_size, ring.optim.d.lr) == (64, 1000, 1e-4)
  report = repo_config('toy2d.py:ring,report')
  assert (report.model.hidden, report.train.batch_size, report.optim.d.lr,
          report.train.num_steps, report.toy2d.latent) == (32, 100, 1e-3, 30_000, 'normal')
  assert repo_config('toy2d.py:grid,report').optim.d.lr == 1e-3
  sine = repo_config('toy2d.py:sine')
  assert sine.toy2d.latent == 'uniform' and sine.toy2d.sine_frequency == pytest.approx(2 * math.pi)
  for bad, match in (('grid,repot', 'modifier .repot.*modifiers: report'),
                     ('report', 'one of ring, grid, sine, circle, wing'),
                     ('sine,report', 'ring and grid only')):
    with pytest.raises(errors.ConfigError, match=match):
      repo_config(f'toy2d.py:{bad}')
  with pytest.raises(errors.ConfigError, match='one of mnist, cifar10'):
    repo_config('cvae.py:svhn')
  with pytest.raises(errors.ConfigError, match='no modifiers'):
    repo_config('ddpm.py:mnist,report')


def test_json_round_trip_keeps_types():
  config = make_config(**{'data.classes': ('dog', 3), 'train.num_steps': 7})
  back = saved_config.from_json(saved_config.to_json(config))
  assert back.data.classes == ('dog', 3)
  assert back.train.num_steps == 7 and back == config


def test_validate_names_the_key():
  with pytest.raises(errors.ConfigError, match=r'config.train.n_disc=0 must be at least 1'):
    config_base.validate(make_config(**{'train.n_disc': 0}))
  with pytest.raises(errors.ConfigError, match='ema_decay'):
    config_base.validate(make_config(**{'train.ema_decay': 1.0}))


def test_command_line_overrides_and_errors(tmp_path):
  bad_key = _main(f'--workdir={tmp_path}', '--config.train.num_stepz=3')
  assert bad_key.returncode != 0
  assert "unknown config key 'num_stepz'" in bad_key.stderr
  assert "Did you mean 'num_steps'" in bad_key.stderr
  assert 'Traceback' not in bad_key.stderr

  bad_value = _main(f'--workdir={tmp_path}', '--config.train.batch_size=7',
                    '--config.train.num_steps=1', '--config.data.source=idx',
                    f'--config.data.path={tmp_path / "missing"}')
  assert bad_value.returncode != 0 and 'not a directory' in bad_value.stderr
  assert 'Traceback' not in bad_value.stderr

  workdir = tmp_path / 'ok'
  ok = _main(f'--workdir={workdir}', f'--config={REPO_ROOT}/configs/gan_mlp_mnist.py',
             '--config.data.source=digits', '--config.train.num_steps=2',
             '--config.train.batch_size=16', '--config.train.log_every=1')
  assert ok.returncode == 0, ok.stderr[-2000:]
  saved = saved_config.load_from_workdir(str(workdir))
  assert saved.model.name == 'mlp' and saved.train.num_steps == 2
  assert saved.train.batch_size == 16 and saved.data.source == 'digits'
  assert 'step 2/2' in ok.stdout


def test_the_quickstart_is_the_base_config_with_its_recipe():
  """main's default config is gan_jax/quickstart.py, which changes only the tuned keys of the base."""
  from gan_jax.config import quickstart  # pylint: disable=g-import-not-at-top
  # In a fresh process: importing gan_jax.main here would define its flags beside other commands'.
  default = subprocess.run(
      [sys.executable, '-c', 'from ml_collections import config_flags; from gan_jax import main; '
       "print(config_flags.get_config_filename(main.FLAGS['config']))"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert default.stdout.strip() == quickstart.QUICKSTART_CONFIG_PATH, default.stderr[-2000:]
  base = _flatten(config_base.get_config().to_dict())
  tuned = _flatten(quickstart.get_config().to_dict())
  assert {k for k in base if base[k] != tuned[k]} == {'model.width_scale', 'optim.g.lr',
                                                      'train.num_steps'}
  config_base.validate(quickstart.get_config())


def _flatten(tree, prefix=''):
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def test_load_file_takes_a_preset_as_the_command_line_does():
  path = os.path.join(REPO_ROOT, 'configs', 'dcgan_mnist.py')
  assert config_files.load_file(path).augment.transforms == ()
  assert config_files.load_file(f'{path}:ada').augment.transforms == ('ada',)
  assert config_files.load_file(f'{path}:diffaugment').augment.transforms == ('diffaugment',)
  folder = config_files.load_file(os.path.join(REPO_ROOT, 'configs', 'dcgan64_folder.py:ada'))
  assert folder.augment.transforms == ('ada',) and folder.augment.ada.target == 0.6
  with pytest.raises(errors.ConfigError, match='Unknown preset'):
    config_files.load_file(f'{path}:adaa')
  with pytest.raises(errors.ConfigError, match='does not exist'):
    config_files.load_file(os.path.join(REPO_ROOT, 'configs', 'no_such.py:ada'))
