"""benchmarks.quality_per_time's machinery: wall times of checkpoints, the PyTorch baseline's snapshots, the table."""

import json
import os

import numpy as np
import pytest

from benchmarks.quality import baseline, scoring, summary
from gan_jax import errors
from gan_jax.training import image as image_trainer
from tests.conftest import tiny_config


def test_timeline_reads_the_wall_time_logged_at_each_checkpoint(tmp_path, idx_dir):
  workdir = str(tmp_path / 'run')
  image_trainer.train_and_evaluate(tiny_config(**{'data.source': 'idx', 'data.path': idx_dir}),
                           workdir)
  points = baseline.gan_jax_timeline(workdir)
  assert [p['step'] for p in points] == [2, 4]
  assert 0 < points[0]['wall_s'] < points[1]['wall_s']


def test_timeline_refuses_checkpoints_without_a_wall_time(tmp_path, idx_dir):
  workdir = str(tmp_path / 'run')
  image_trainer.train_and_evaluate(tiny_config(**{'data.source': 'idx', 'data.path': idx_dir,
                                          'train.log_every': 4}), workdir)
  with pytest.raises(errors.ConfigError, match=r'step\(s\) \[2\]'):
    baseline.gan_jax_timeline(workdir)


def test_torch_baseline_snapshots_at_its_points_and_draws_uint8(tmp_path, rgb32_folder):
  pytest.importorskip('torch')
  out = str(tmp_path / 'torch')
  record = baseline.train(out, rgb32_folder, minutes=0.02, every=0.01, batch_size=8)
  points = record['points']
  assert len(points) == 2 and points[0]['step'] < points[1]['step']
  for point in points:
    assert point['wall_s'] >= point['target_s']
    assert os.path.exists(os.path.join(out, point['file']))
  assert record['data_path'] == os.path.abspath(rgb32_folder)
  eval_g = baseline.generator(out, points[-1]['file'], 'eval')
  images = baseline.draw(eval_g, 5, seed=0, batch=2)
  assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, baseline.draw(eval_g, 5, seed=0))
  batch_g = baseline.generator(out, points[-1]['file'], 'batch')
  assert not np.array_equal(images, baseline.draw(batch_g, 5, seed=0))


def _quality(run, kind, rows, trained):
  os.makedirs(run)
  with open(os.path.join(run, scoring.QUALITY), 'w') as f:
    json.dump({'kind': kind, 'points': rows, 'protocols': {'fid': '10 samples vs x'}}, f)
  with open(os.path.join(run, trained[0]), 'w') as f:
    json.dump(trained[1], f)


def test_table_and_figure_from_scored_runs(tmp_path):
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  _quality(a, 'gan_jax dcgan32', [
      {'step': 100, 'minutes': 1.0, 'cls_fd': 9.0},
      {'step': 300, 'minutes': 2.5, 'cls_fd': 4.0, 'fid': 80.0, 'cls_classes': 10,
       'cls_min_class': 0.05}],
           ('benchmark.json', {'load_before': [1.0, 1, 1], 'load_after': [1.5, 1, 1]}))
  _quality(b, 'PyTorch', [{'step': 200, 'minutes': 2.5, 'cls_fd': 7.0, 'fid': 120.0}],
           (baseline.TIMELINE, {'steps_per_sec': 1.25}))
  text = summary.table([a, b])
  rows = [line for line in text.splitlines() if line.startswith('| ') and '---' not in line]
  assert '| 2.5 | 300 | 2.00 | 80.0 | 4.00 | 10 (0.050) | – | 1.00 → 1.50 |' in rows[1]
  assert '| 2.5 | 200 | 1.25 | 120.0 | 7.00 | – | – | – |' in rows[2]
  assert '- fid: 10 samples vs x' in text
  path = str(tmp_path / 'fig.png')
  summary.figure([a, b], path)
  assert os.path.getsize(path) > 1000
