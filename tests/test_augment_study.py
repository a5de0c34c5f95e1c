"""The generative-augmentation study: its pieces, and a tiny end-to-end run on the shared MNIST."""

import json
import os

import numpy as np
import pytest

from experiments import augment
from gan_jax.config import base as config_base
from tests.conftest import REPO_ROOT, SHARED_MNIST


def test_classic_augment_shifts_and_keeps_labels():
  images = np.zeros((3, 8, 8, 1), np.uint8)
  for i in range(3):
    images[i, 3:5, 3:5] = 50 * (i + 1)   # the brightness names the image
  labels = np.array([7, 8, 9])
  out, out_labels = augment.classic_augment(images, labels, 40, np.random.default_rng(0),
                                            shift=2, flip=False)
  assert out.shape == (40, 8, 8, 1)
  np.testing.assert_array_equal(out.max(axis=(1, 2, 3)) // 50 + 6, out_labels)
  assert len({tuple(np.argwhere(o[..., 0])[0]) for o in out}) > 1   # positions vary


def test_split_keeps_the_test_set_fixed_and_disjoint():
  labels = np.arange(200) % 4
  test0, train0, _ = augment.split(labels, 3, 50, seed=0)
  test1, train1, _ = augment.split(labels, 3, 50, seed=1)
  np.testing.assert_array_equal(test0, test1)
  assert not set(train0) & set(test0) and not np.array_equal(train0, train1)
  np.testing.assert_array_equal(np.bincount(labels[train0]), [3] * 4)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason='needs ../shared/data/mnist')
def test_tiny_study_end_to_end(tmp_path):
  data = config_base.get_config().data
  data.source, data.path, data.channels, data.read_threads = 'idx', SHARED_MNIST, 1, 0
  workdir = str(tmp_path / 'study')
  results = augment.run_study(
      workdir=workdir, data_config=data, per_class=2, synthetic_per_class=3, num_test=200,
      generators=[('cgan', os.path.join(REPO_ROOT, 'configs', 'dcgan_mnist.py')),
                  ('cvae', os.path.join(REPO_ROOT, 'configs', 'cvae.py:mnist'))],
      gen_steps={'cgan': 2, 'cvae': 2}, gen_batch=8, seeds=[0, 1], cls_steps=3,
      cls_batch=8, judge_steps=3, flip=False, shift=2, log=lambda *_: None)
  assert [r['seed'] for r in results['per_seed']] == [0, 1]
  for record in results['per_seed']:
    assert set(record['accuracy']) == {'real only', 'real + classic aug', 'real + cgan',
                                       'real + cvae'}
    assert all(0.0 <= a <= 1.0 for a in record['accuracy'].values())
    for quality in record['generators'].values():
      assert 0.0 <= quality['cls_acc'] <= 1.0 and quality['cls_fd'] >= 0.0
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f)['per_class'] == 2
  assert os.path.exists(os.path.join(workdir, 'accuracy.png'))
  assert os.path.exists(os.path.join(workdir, 'samples_cvae.png'))
  table = augment.markdown_table(results)
  assert '| real + cgan |' in table and '±' in table
  # 20 real images per seed, 2 per class, as a class folder.
  assert len(os.listdir(os.path.join(workdir, 'seed_1', 'real', '03'))) == 2
