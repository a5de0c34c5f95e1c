"""End-to-end: tiny runs of the real training loop, resume, divergence, and the generate command."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import errors
from gan_jax import generate
from gan_jax.training import image as image_trainer
from gan_jax.training import reporting
from gan_jax.training import setup as setup_lib
from tests.conftest import REPO_ROOT, load_config_file, tiny_config


def _leaves(state):
  return jax.tree.leaves(jax.device_get(state))


def test_tiny_run_on_tfds_mock_data_writes_every_artifact(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(**{'data.source': 'tfds', 'data.name': 'mnist',
                          'train.ema_decay': 0.9})
  with tfds.testing.mock_data(num_examples=32):
    state = image_trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 4
  assert sorted(os.listdir(os.path.join(workdir, 'samples'))) == [
      'step_0000002.png', 'step_0000004.png']
  assert os.path.exists(os.path.join(workdir, 'loss_curve.png'))
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  records = reporting.read_metrics(workdir)
  assert [r['step'] for r in records] == [2, 4]
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_acc_real', 'd_acc_fake',
              'd_real', 'd_fake', 'steps_per_sec', 'images_per_sec', 'wall_s'):
    assert all(np.isfinite(r[key]) for r in records), key
  assert 0 < records[0]['wall_s'] < records[1]['wall_s']
  with open(os.path.join(workdir, 'config.json')) as f:
    saved = json.load(f)
  assert saved['data']['name'] == 'mnist' and saved['train']['num_steps'] == 4
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit()) == [2, 4]


def test_dcgan_mnist_config_on_shared_mnist(tmp_path, shared_mnist):
  config = load_config_file(os.path.join(REPO_ROOT, 'configs', 'dcgan_mnist.py')).get_config()
  for key, value in tiny_config().train.items():
    config.train[key] = value
  config.data.source, config.data.path = 'idx', shared_mnist
  state = image_trainer.train_and_evaluate(config, str(tmp_path / 'mnist'))
  assert int(state.step) == 4


def test_resume_gives_the_same_parameters_as_a_straight_run(tmp_path, idx_dir):
  overrides = {'data.source': 'idx', 'data.path': idx_dir, 'train.checkpoint_every': 3,
               'train.num_steps': 6, 'train.log_every': 1}
  straight = image_trainer.train_and_evaluate(tiny_config(**overrides), str(tmp_path / 'a'))
  resumed_dir = str(tmp_path / 'b')
  image_trainer.train_and_evaluate(tiny_config(**{**overrides, 'train.num_steps': 3}), resumed_dir)
  resumed = image_trainer.train_and_evaluate(tiny_config(**overrides), resumed_dir)
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  # The metrics history has each step once, even across the restart.
  steps = [r['step'] for r in reporting.read_metrics(resumed_dir)]
  assert steps == [1, 2, 3, 4, 5, 6]


def test_time_budget_stops_with_a_checkpoint_and_a_rerun_finishes(tmp_path, idx_dir, capsys):
  overrides = {'data.source': 'idx', 'data.path': idx_dir, 'train.num_steps': 6,
               'train.checkpoint_every': 4, 'train.sample_every': 4}
  workdir = str(tmp_path / 'run')
  # A budget that is spent before the first step ends: the run stops after it.
  state = image_trainer.train_and_evaluate(tiny_config(**overrides, **{'train.max_minutes': 1e-6}),
                                   workdir)
  assert int(state.step) == 1
  assert 'Stopped at the time budget' in capsys.readouterr().out
  assert os.listdir(os.path.join(workdir, 'samples')) == ['step_0000001.png']
  assert [r['step'] for r in reporting.read_metrics(workdir)] == [1]
  state = image_trainer.train_and_evaluate(tiny_config(**overrides), workdir)
  assert int(state.step) == 6
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit()) == [1, 4, 6]


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, idx_dir):
  workdir = str(tmp_path / 'nan')
  overrides = {'data.source': 'idx', 'data.path': idx_dir, 'train.log_every': 1,
               'train.checkpoint_every': 1, 'optim.d.name': 'sgd', 'optim.d.lr': 0.01}
  image_trainer.train_and_evaluate(tiny_config(**overrides, **{'train.num_steps': 3}), workdir)
  # Resumed with an absurd learning rate, D's weights overflow at once.
  exploding = tiny_config(**{**overrides, 'optim.d.lr': 1e38, 'train.num_steps': 10})
  with pytest.raises(errors.TrainingDiverged, match='NaN or infinite') as info:
    image_trainer.train_and_evaluate(exploding, workdir, allow_config_change=True)
  message = str(info.value)
  assert 'diverged at step 4' in message
  assert 'last good checkpoint (step 3)' in message
  saved = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())
  assert max(saved) == 3
  _, _, state = setup_lib.restore_setup(workdir)
  assert int(state.step) == 3
  assert all(np.all(np.isfinite(x)) for x in _leaves(state.g.params) + _leaves(state.d.params))


def test_generate_conditional_images_and_labels(tmp_path, idx_dir):
  workdir = str(tmp_path / 'cond')
  image_trainer.train_and_evaluate(
      tiny_config(**{'data.source': 'idx', 'data.path': idx_dir, 'model.conditional': True,
                     'train.num_steps': 2}), workdir)
  images, labels, step = generate.generate(workdir, num=10, label=3, batch_size=4)
  assert images.dtype == np.uint8 and images.shape == (10, 28, 28, 1)
  assert labels.dtype == np.int32 and np.all(labels == 3) and step == 2
  _, mixed, _ = generate.generate(workdir, num=50)
  assert len(set(mixed.tolist())) > 1 and mixed.max() < 10
  with pytest.raises(errors.ConfigError, match='out of range'):
    generate.generate(workdir, num=2, label=10)
  # The grid of a conditional run has one row per class: 10 rows of 2.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  grid = Image.open(os.path.join(workdir, 'samples', 'step_0000002.png'))
  assert grid.size == (2 + 2 * 30, 2 + 10 * 30)


def test_generate_command_line(tmp_path, idx_dir):
  workdir = str(tmp_path / 'uncond')
  image_trainer.train_and_evaluate(
      tiny_config(**{'data.source': 'idx', 'data.path': idx_dir, 'train.num_steps': 2}),
      workdir)
  out, grid = str(tmp_path / 'out' / 'samples.npz'), str(tmp_path / 'grid.png')
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.generate', f'--workdir={workdir}', '--num=5',
       f'--out={out}', f'--grid={grid}'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  with np.load(out) as npz:
    assert set(npz.files) == {'images'}   # unconditional: no labels
    assert npz['images'].dtype == np.uint8 and npz['images'].shape == (5, 28, 28, 1)
  assert os.path.exists(grid)
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.generate', f'--workdir={workdir}', '--num=5',
       f'--out={out}', '--label=1'], cwd=REPO_ROOT, capture_output=True, text=True,
      timeout=300)
  assert result.returncode != 0 and 'needs a conditional model' in result.stderr


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_workdir_it_made(tmp_path):
  from gan_jax.training import trainers  # pylint: disable=g-import-not-at-top
  (tmp_path / 'empty' / 'cat').mkdir(parents=True)
  config = tiny_config(**{'data.source': 'folder', 'data.path': str(tmp_path / 'empty')})
  workdir = tmp_path / 'new_run'
  with pytest.raises(errors.DataNotFoundError, match='No images'):
    trainers.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()
  # A workdir that existed before the run is never removed, nor is what it holds.
  existing = tmp_path / 'existing'
  existing.mkdir()
  (existing / 'notes.txt').write_text('mine')
  with pytest.raises(errors.DataNotFoundError):
    trainers.train_and_evaluate(config, str(existing))
  assert (existing / 'notes.txt').read_text() == 'mine'
