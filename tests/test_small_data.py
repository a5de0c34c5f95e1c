"""The small-data study (experiments/small_data/): split, configs, D's memorisation, report, a tiny run."""

import json
import os
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import small_data
from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.config import saved as saved_config
from tests.conftest import REPO_ROOT

MNIST_CONFIG = os.path.join(REPO_ROOT, 'configs', 'dcgan_mnist.py')
CIFAR_CONFIG = os.path.join(REPO_ROOT, 'configs', 'gan_cifar10_cpu.py')


# --- the split ------------------------------------------------------------------------------

def test_balanced_split_counts_disjoint_and_seeded():
  labels = np.arange(400) % 4
  train0, held0 = small_data.balanced_split(labels, 40, 100, seed=0)
  train0b, held0b = small_data.balanced_split(labels, 40, 100, seed=0)
  train1, held1 = small_data.balanced_split(labels, 40, 100, seed=1)
  np.testing.assert_array_equal(np.bincount(labels[train0], minlength=4), [10] * 4)
  assert len(held0) == 100 and len(set(held0)) == 100
  assert not set(train0) & set(held0) and not set(train1) & set(held1)
  np.testing.assert_array_equal(train0, train0b)          # deterministic per seed
  np.testing.assert_array_equal(held0, held0b)
  assert not np.array_equal(train0, train1)               # another seed, another subset ...
  np.testing.assert_array_equal(held0, held1)             # ... and the same held-out set
  # The held-out set does not depend on N either.
  np.testing.assert_array_equal(small_data.balanced_split(labels, 8, 100, 0)[1], held0)


def test_balanced_split_errors():
  labels = np.concatenate([np.zeros(50, int), np.ones(50, int), np.full(6, 2)])
  with pytest.raises(errors.DataError, match='num_train'):      # class 2 is too small
    small_data.balanced_split(labels, 30, 10, seed=0)
  with pytest.raises(errors.ConfigError, match='multiple'):
    small_data.balanced_split(labels, 10, 10, seed=0)
  with pytest.raises(errors.ConfigError, match='num_heldout'):
    small_data.balanced_split(labels, 3, 200, seed=0)
  with pytest.raises(errors.DataError, match='labelled'):
    small_data.balanced_split(np.zeros(20, int), 2, 5, seed=0)


def test_prepare_split_writes_the_folder_and_reloads_it(idx_dir, tmp_path):
  settings = small_data.Settings(str(tmp_path / 'w'), MNIST_CONFIG, 'idx', idx_dir,
                                 num_train=8, num_heldout=16)
  data = small_data.full_data_config(settings)
  split = small_data.prepare_split(settings, data, log=lambda *_: None)
  assert sorted(os.listdir(split['train_dir'])) == ['0', '1', '2', '3']
  assert all(len(os.listdir(os.path.join(split['train_dir'], c))) == 2 for c in '0123')
  assert split['train_images'].shape == (8, 28, 28, 1)
  assert split['heldout_images'].shape == (16, 28, 28, 1)
  assert not set(split['train_idx']) & set(split['heldout_idx'])
  again = small_data.prepare_split(settings, data, log=lambda *_: None)   # from disk
  for key in ('train_idx', 'train_images', 'heldout_labels'):
    np.testing.assert_array_equal(again[key], split[key])
  with pytest.raises(errors.ConfigError, match='another study'):
    small_data.prepare_split(small_data.Settings(settings.workdir, MNIST_CONFIG, 'idx', idx_dir,
                                                 num_train=12, num_heldout=16),
                             data, log=lambda *_: None)


# --- variant configs -------------------------------------------------------------------------

def test_variant_configs(tmp_path):
  settings = small_data.Settings(str(tmp_path), CIFAR_CONFIG, 'folder', '/x', 32, 3, steps=1000,
                                 batch_size=16, checkpoints=4, seed=3,
                                 overrides=('model.width_scale=0.25', 'loss.name=hinge'))
  base = small_data.variant_config(settings, 'baseline', '/data/train')
  assert (base.data.source, base.data.path, base.seed) == ('folder', '/data/train', 3)
  assert (base.train.num_steps, base.train.batch_size, base.train.max_minutes) == (1000, 16, 0)
  assert base.train.checkpoint_every == 250 and base.train.keep_checkpoints >= 5
  assert base.eval.every == 0 and base.augment.transforms == ()
  assert (base.model.width_scale, base.loss.name) == (0.25, 'hinge')
  diff = small_data.variant_config(settings, 'diffaugment', '/data/train')
  assert diff.augment.transforms == ('diffaugment',)
  assert saved_config.resume_conflicts(base, diff)            # they differ only there
  assert {k for k, _, _ in saved_config.resume_conflicts(base, diff)} == {'augment.transforms'}
  if 'ada' in config_base.get_config().augment:               # once gan_jax has ADA and LeCam
    ada = small_data.variant_config(settings, 'ada_lecam', '/data/train')
    assert ada.augment.transforms == ('ada',) and ada.augment.ada.target == 0.6
    assert ada.augment.ada.kimg == 100 and ada.reg.lecam.weight == 0.3
  else:
    with pytest.raises(errors.ConfigError, match='augment.ada'):
      small_data.variant_config(settings, 'ada', '/data/train')
  with pytest.raises(errors.ConfigError, match='model.widht_scale'):
    small_data.variant_config(
        small_data.Settings(str(tmp_path), CIFAR_CONFIG, 'folder', '/x',
                            overrides=('model.widht_scale=0.5',)), 'baseline', '/d')
  with pytest.raises(errors.ConfigError, match='Unknown variant'):
    small_data.variant_config(settings, 'stylegan9', '/d')


# --- D's memorisation ---------------------------------------------------------------------

def test_auc_is_the_rank_statistic():
  assert small_data.auc(np.array([3., 4.]), np.array([1., 2.])) == 1.0
  assert small_data.auc(np.array([1., 2.]), np.array([3., 4.])) == 0.0
  assert small_data.auc(np.ones(5), np.ones(7)) == 0.5
  rng = np.random.default_rng(0)
  pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 20).astype(float)
  brute = np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))
  assert small_data.auc(pos, neg) == pytest.approx(brute)


def _tiny_dcgan32(num_classes=0):
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  model = config_base.get_config().model
  model.name, model.width_scale, model.conditional = 'dcgan32', 0.125, bool(num_classes)
  gan = models.build(model, (32, 32, 3), num_classes)
  variables = gan.discriminator.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)),
                                     jnp.zeros((1,), jnp.int32), train=False)
  return (types.SimpleNamespace(gan=gan),
          types.SimpleNamespace(d=types.SimpleNamespace(variables=variables)))


def test_d_memorisation_on_identical_sets_is_zero():
  setup, state = _tiny_dcgan32()
  images = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
  out = small_data.d_memorisation(setup, state, images, images, batch_size=3)
  assert out['d_gap'] == 0.0 and out['auc'] == 0.5
  assert out['num_train'] == out['num_heldout'] == 7
  assert 0.0 < out['d_train'] < 1.0 and np.isfinite(out['logit_train'])
  # The padded last batch (7 = 3 + 3 + 1) gives what one batch of all of them gives.
  whole = small_data.d_memorisation(setup, state, images, images[:2], batch_size=500)
  assert whole['logit_train'] == pytest.approx(out['logit_train'], abs=1e-5)


class _BrightnessD(nn.Module):
  """A 'discriminator' whose logit is 4 * mean pixel + the label: known answers."""

  @nn.compact
  def __call__(self, x, labels, train=False):
    scale = self.param('scale', nn.initializers.ones, ())
    return scale * (4.0 * x.mean(axis=(1, 2, 3)) + labels)


def _brightness_setup(num_classes):
  d = _BrightnessD()
  variables = d.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)), jnp.zeros((1,)))
  return (types.SimpleNamespace(gan=types.SimpleNamespace(discriminator=d,
                                                          num_classes=num_classes)),
          types.SimpleNamespace(d=types.SimpleNamespace(variables=variables)))


def test_d_memorisation_direction_and_labels():
  bright = np.full((5, 4, 4, 1), 255, np.uint8)    # 1.0 in [-1, 1]: logit 4
  dark = np.zeros((6, 4, 4, 1), np.uint8)          # -1.0: logit -4
  out = small_data.d_memorisation(*_brightness_setup(0), bright, dark)
  assert out['logit_train'] == pytest.approx(4.0) and out['logit_heldout'] == pytest.approx(-4.0)
  assert out['d_train'] == pytest.approx(1 / (1 + np.exp(-4.0)), rel=1e-6)
  assert out['d_gap'] == pytest.approx(out['d_train'] - out['d_heldout']) and out['d_gap'] > 0.9
  assert out['auc'] == 1.0
  # A conditional D gets the labels, an unconditional one zeros.
  labels = np.arange(5)
  cond = small_data.d_memorisation(*_brightness_setup(5), bright, bright, labels, labels * 0)
  assert cond['logit_train'] == pytest.approx(4.0 + 2.0) and cond['auc'] > 0.5
  uncond = small_data.d_memorisation(*_brightness_setup(0), bright, bright, labels, labels * 0)
  assert uncond['logit_train'] == pytest.approx(4.0) and uncond['d_gap'] == 0.0


# --- the report ----------------------------------------------------------------------------

def _fake_results():
  def variant(fid, p):
    return {'step': 800, 'metrics': {'fid': fid, 'cls_fd': 12.5, 'cls_classes': 10,
                                     'cls_min_class': 0.043},
            'd_memorisation': {'d_train': 0.81, 'd_heldout': 0.42, 'd_gap': 0.39, 'auc': 0.93,
                               'num_heldout': 1000},
            'ada_p': p, 'train': {'wall_s': 321.4, 'load_before': [1.1, 1, 1],
                                  'load_after': [1.8, 1, 1]},
            'grid': None}
  return {'settings': {'config': 'configs/x.py', 'steps': 800, 'batch_size': 64, 'seed': 0,
                       'ada_target': 0.6},
          'data': {'description': 'folder cifar'}, 'num_train': 1000,
          'variants': {'baseline': variant(None, None),
                       'ada': {**variant(88.25, 0.314),
                               'curve': [{'step': 400, 'cls_fd': 30.4}, {'step': 800}]}},
          'command': 'python -m experiments.small_data --x'}


def test_markdown_table_and_report():
  results = _fake_results()
  table = small_data.markdown_table(results)
  lines = table.strip().split('\n')
  assert lines[0] == small_data.TABLE_HEADER
  assert lines[1].count('---') == lines[0].count(' | ') + 1
  assert len(lines) == 2 + 2 and lines[2].startswith('| baseline |')
  ada = [c.strip() for c in lines[3].strip('|').split('|')]
  assert ada == ['ada', '800', '88.2', '12.50', '30', '10 (4.3%)', '0.810', '0.420',
                 '+0.390', '0.930', '0.314', '321', '1.10 → 1.80']
  assert [c.strip() for c in lines[2].strip('|').split('|')][2] == '–'   # no FID, no p
  report = small_data.markdown_report(results)
  assert table in report and '--x' in report and 'ada_p.png' not in report


def test_ada_curves_and_figure(tmp_path):
  for variant, extra in (('baseline', {}), ('ada', {'ada_p': 0.0, 'ada_rt': 0.9})):
    os.makedirs(tmp_path / variant)
    with open(tmp_path / variant / 'metrics.jsonl', 'w') as f:
      for step in (10, 20, 30):
        record = {'step': step, 'wall_s': step / 10, 'd_loss_real': 0.5, **extra}
        if extra:
          record['ada_p'], record['ada_rt'] = step / 100, 0.9 - step / 100
        f.write(json.dumps(record) + '\n')
  curves = small_data.ada_curves(str(tmp_path), ['baseline', 'ada', 'missing'])
  assert list(curves) == ['ada'] and [r['ada_p'] for r in curves['ada']] == [0.1, 0.2, 0.3]
  path = small_data.write_ada_figure(curves, 0.6, str(tmp_path / 'ada_p.png'))
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert small_data.write_ada_figure({}, 0.6, str(tmp_path / 'none.png')) is None
  assert not os.path.exists(tmp_path / 'none.png')


# --- a tiny study, end to end -------------------------------------------------------------

def test_tiny_study_end_to_end_and_resume(rgb32_folder, tmp_path):
  settings = small_data.Settings(
      str(tmp_path / 'study'), CIFAR_CONFIG, 'folder', rgb32_folder, 32, 3, num_train=12,
      num_heldout=16, steps=2, batch_size=8, variants=('baseline',), checkpoints=2,
      metrics=(), overrides=('model.width_scale=0.125', 'sample.num=4'))
  results = small_data.run_study(settings, 'cmd', log=lambda *_: None)
  record = results['variants']['baseline']
  assert record['step'] == 2 and not record['train']['skipped']
  assert record['train']['wall_s'] > 0 and len(record['train']['load_before']) == 3
  mem = record['d_memorisation']
  assert mem['num_train'] == 12 and mem['num_heldout'] == 12
  assert 0 <= mem['d_train'] <= 1 and 0 <= mem['auc'] <= 1
  assert record['ada_p'] is None and results['ada_figure'] is None
  assert os.path.exists(os.path.join(settings.workdir, record['grid']))
  assert sorted(os.listdir(os.path.join(settings.workdir, 'baseline', 'checkpoints'))) == ['1', '2']
  with open(os.path.join(settings.workdir, 'results.json')) as f:
    saved = json.load(f)
  assert saved['variants']['baseline']['d_memorisation'] == mem and saved['command'] == 'cmd'
  assert saved['reference']['path'] == rgb32_folder   # scored against the full data
  with open(os.path.join(settings.workdir, 'RESULTS.md')) as f:
    assert '| baseline | 2 |' in f.read()
  # Re-running does not retrain a finished variant, and keeps its training record.
  metrics = os.path.join(settings.workdir, 'baseline', 'metrics.jsonl')
  scores = os.path.join(settings.workdir, 'baseline', small_data.SCORE_RECORD)
  before = os.path.getmtime(metrics), os.path.getmtime(scores)
  again = small_data.run_study(settings, 'cmd', log=lambda *_: None)
  assert again['variants']['baseline']['train']['skipped']
  assert again['variants']['baseline']['train']['wall_s'] == record['train']['wall_s']
  assert (os.path.getmtime(metrics), os.path.getmtime(scores)) == before   # nor rescored
  assert again['variants']['baseline']['d_memorisation'] == mem
  # ... but refuses one trained with another config.
  with pytest.raises(errors.ConfigError, match='another config'):
    small_data.run_study(small_data.Settings(**{**settings.__dict__, 'lecam_weight': 0.3,
                                                'overrides': ('model.width_scale=0.25',
                                                              'sample.num=4')}),
                         log=lambda *_: None)
