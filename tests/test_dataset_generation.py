"""Dataset generation: PNG folders with a manifest, read back through the `folder` source."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import data as data_lib
from gan_jax import errors
from gan_jax import generate
from gan_jax.data import folder
from gan_jax.generation import export
from gan_jax.training import image as image_trainer
from gan_jax.training import setup as setup_lib
from tests.conftest import REPO_ROOT, make_config, tiny_config


@pytest.fixture(scope='module')
def conditional_run(tmp_path_factory):
  from tests.conftest import write_idx  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('gen')
  labels = np.arange(40) % 4
  images = np.random.default_rng(0).integers(0, 255, (40, 28, 28)).astype(np.uint8)
  write_idx(str(root / 'idx'), 'train', images, labels)
  workdir = str(root / 'run')
  image_trainer.train_and_evaluate(
      tiny_config(**{'data.source': 'idx', 'data.path': str(root / 'idx'),
                     'model.conditional': True, 'train.num_steps': 2}), workdir)
  return workdir


def _folder_source(path):
  return data_lib.build_source(make_config(**{
      'data.source': 'folder', 'data.path': path, 'data.channels': 1}).data)


def test_per_class_folder_round_trips_through_the_folder_source(tmp_path, conditional_run):
  out = str(tmp_path / 'synthetic')
  manifest = generate.write_folder(conditional_run, out, num=3, seed=5, batch_size=4,
                                   per_class=True)
  source = _folder_source(out)
  assert len(source) == 30 and source.info.num_classes == 10
  assert list(source.info.class_names) == manifest['folders']
  np.testing.assert_array_equal(np.bincount(source.labels), [3] * 10)
  # Pixel-exact (PNG is lossless), with each image under its own class.
  _, setup, state = setup_lib.restore_setup(conditional_run)
  drawn = list(export.generate_batches(setup, state, 3, seed=5, batch_size=4,
                                         per_class=True))
  expected_images = np.concatenate([b[0] for b in drawn])
  expected_labels = np.concatenate([b[1] for b in drawn])
  paths, _, _ = folder.list_images(out)   # the source's order
  for i, path in enumerate(paths):
    example = source[i]
    j = int(os.path.basename(path)[:-4])
    np.testing.assert_array_equal(example['image'], expected_images[j])
    assert example['label'] == expected_labels[j]
  with open(os.path.join(out, 'manifest.json')) as f:
    saved = json.load(f)
  assert saved['checkpoint_step'] == 2 and saved['seed'] == 5 and saved['num_images'] == 30
  assert saved['config']['model']['conditional'] is True
  with pytest.raises(errors.ConfigError, match='not empty'):
    generate.write_folder(conditional_run, out, num=1)


def test_folder_names_keep_label_order():
  assert export.class_folder_names(('a', 'b'), 2) == ['a', 'b']
  # Sorted by name, 'zebra' would come first and take label 0.
  assert export.class_folder_names(('zebra', 'ant'), 2) == ['0_zebra', '1_ant']
  assert export.class_folder_names((), 12)[:2] == ['00', '01']


def test_generate_command_line_writes_a_folder(tmp_path, conditional_run):
  out = str(tmp_path / 'cli') + '/'
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.generate', f'--workdir={conditional_run}', '--num=7',
       f'--out={out}', '--batch_size=3'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  source = _folder_source(out)
  assert len(source) == 7   # --num is the total without --per_class
  with open(os.path.join(out, 'manifest.json')) as f:
    assert sum(json.load(f)['counts'].values()) == 7
