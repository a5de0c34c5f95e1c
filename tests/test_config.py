"""Configs: every config file loads, overrides apply, unknown keys and bad values are named."""

import glob
import os
import subprocess
import sys

import pytest

from gan_jax.config import base as config_base
from gan_jax.config import files as config_files
from gan_jax.config import saved as saved_config
from gan_jax import errors
from tests.conftest import REPO_ROOT, load_config_file, make_config

REQUIRED_KEYS = ('seed', 'train.num_steps', 'train.batch_size', 'train.log_every',
                 'train.sample_every', 'train.checkpoint_every', 'data.source',
                 'data.name', 'data.path', 'data.image_size', 'data.classes')


def _main(*args):
  return subprocess.run([sys.executable, '-m', 'gan_jax.main', *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', '*.py'))))
def test_every_config_file_has_the_documented_keys(path):
  module = load_config_file(path)
  config = module.get_config()
  config_base.validate(config)
  for key in REQUIRED_KEYS:
    node = config
    for part in key.split('.'):
      node = node[part]
  assert module.__doc__ and 'python -m gan_jax.main' in module.__doc__


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
