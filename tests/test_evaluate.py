"""Evaluation end to end: the domain classifier, Stacked MNIST, periodic evaluation with the best
checkpoint, and the gan_jax.evaluate command, on small synthetic data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import data as data_lib
from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.config import saved as saved_config
from gan_jax.evaluation import evaluators
from gan_jax.evaluation import report
from gan_jax.metrics import classifier
from gan_jax.training import image as image_trainer
from gan_jax.training import reporting
from gan_jax.training import setup as setup_lib
from tests.conftest import REPO_ROOT, tiny_config, write_idx

NUM = 120


@pytest.fixture(scope='module')
def squares(tmp_path_factory):
  """120 28x28 'digits': a bright bar whose row is the class (0-3), on noise, in IDX files."""
  root = tmp_path_factory.mktemp('squares')
  rng = np.random.default_rng(0)
  labels = np.arange(NUM) % 4
  images = rng.integers(0, 60, (NUM, 28, 28)).astype(np.uint8)
  for i, label in enumerate(labels):
    col = rng.integers(2, 10)
    images[i, 3 + 6 * label: 8 + 6 * label, col:col + 14] = 255
  write_idx(str(root / 'idx'), 'train', images, labels)
  return str(root / 'idx')


@pytest.fixture(scope='module')
def trained_classifier(squares, tmp_path_factory):
  out = str(tmp_path_factory.mktemp('cls') / 'classifier')
  data = tiny_config(**{'data.source': 'idx', 'data.path': squares}).data
  meta = classifier.train_and_save(data, out, steps=40, batch_size=32, lr=3e-3,
                                   holdout=0.25, seed=0, log=lambda *_: None)
  return out, meta


def test_classifier_trains_saves_and_reloads(trained_classifier, squares):
  out, meta = trained_classifier
  assert meta['num_train'] == 90 and meta['num_heldout'] == 30
  assert meta['heldout_accuracy'] == 1.0        # the bars are trivially separable
  model = classifier.load(out)
  assert model.image_shape == (28, 28, 1) and model.num_classes == 10
  source = data_lib.build_source(tiny_config(**{'data.source': 'idx', 'data.path': squares}).data)
  images, labels = classifier.all_examples(source)
  train_idx, held_idx = classifier.holdout_split(NUM, 0.25, 0)
  assert sorted(np.concatenate([train_idx, held_idx]).tolist()) == list(range(NUM))
  out_pred = classifier.predict(model.module, model.variables, images[held_idx])
  assert np.mean(out_pred['logits'].argmax(-1) == labels[held_idx]) == 1.0
  assert out_pred['features'].shape == (30, classifier.FEATURE_DIM)
  with pytest.raises(errors.DataNotFoundError, match='python -m gan_jax.metrics.classifier'):
    classifier.load(os.path.join(out, 'missing'))


def test_stacked_mnist_source(squares):
  data = tiny_config(**{'data.source': 'stacked_mnist', 'data.path': squares}).data
  source = data_lib.build_source(data)
  assert source.info.image_shape == (28, 28, 3) and source.info.num_classes == 1000
  assert len(source) == 6 * NUM
  mnist = data_lib.build_source(tiny_config(**{'data.source': 'idx', 'data.path': squares}).data)
  digits, digit_labels = classifier.all_examples(mnist)
  batch = source.get_batch(np.array([[0, 5], [7, 9]]))
  assert batch['image'].shape == (2, 2, 28, 28, 3)
  # Each channel is one of the digits, and the label is their 3-digit mode.
  for channel in range(3):
    image = batch['image'][1, 0, ..., channel]
    match = np.flatnonzero((digits[..., 0] == image).all(axis=(1, 2)))
    assert len(match) >= 1
    assert digit_labels[match[0]] == (batch['label'][1, 0] // 10 ** (2 - channel)) % 10
  again = data_lib.build_source(data)
  np.testing.assert_array_equal(again.labels, source.labels)   # fixed, seed-independent
  assert len(set(source.labels.tolist())) > 30


def _train_with_eval(workdir, squares, classifier_dir, **overrides):
  config = tiny_config(**{
      'data.source': 'idx', 'data.path': squares, 'train.num_steps': 4,
      'eval.every': 2, 'eval.metrics': ('cls_fd', 'cls_cov', 'cls_dups'),
      'eval.best_metric': 'cls_fd', 'eval.classifier': classifier_dir, 'eval.num': 64,
      'eval.num_reference': 60, 'eval.dup_num': 50, 'eval.batch_size': 32,
      'eval.cache_dir': os.path.join(workdir, 'cache'), **overrides})
  image_trainer.train_and_evaluate(config, workdir)


def test_periodic_evaluation_logs_results_and_keeps_the_best_checkpoint(
    tmp_path, squares, trained_classifier):
  workdir = str(tmp_path / 'run')
  _train_with_eval(workdir, squares, trained_classifier[0])
  records = {}
  for step in (2, 4):
    with open(os.path.join(workdir, 'eval', f'step_{step}.json')) as f:
      records[step] = json.load(f)
    metric = records[step]['metrics']['cls_fd']
    assert metric['value'] > 0 and '64 samples of G at step' in metric['protocol']
    assert '60 reference images' in metric['protocol']
    assert records[step]['metrics']['cls_classes']['value'] <= 10
  logged = [r for r in reporting.read_metrics(workdir) if 'eval/cls_fd' in r]
  assert [r['step'] for r in logged] == [2, 4]
  assert logged[1]['eval/cls_fd'] == pytest.approx(records[4]['metrics']['cls_fd']['value'])
  best = min((2, 4), key=lambda s: records[s]['metrics']['cls_fd']['value'])
  best_dir = os.path.join(workdir, report.BEST_SUBDIR)
  assert [int(s) for s in os.listdir(best_dir) if s.isdigit()] == [best]
  # The last-K checkpoints that resuming needs are untouched.
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit()) == [2, 4]
  # Evaluating the best checkpoint again reproduces its number (same noise, same reference).
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  again = evaluate.evaluate(workdir, 'cls_fd', best=True, log=lambda *_: None)
  assert again['step'] == best
  assert again['metrics']['cls_fd']['value'] == pytest.approx(
      records[best]['metrics']['cls_fd']['value'], rel=1e-5)
  # A later evaluation of other metrics adds to the step's file instead of replacing it.
  evaluate.evaluate(workdir, 'cls_cov', step=4, log=lambda *_: None)
  with open(os.path.join(workdir, 'eval', 'step_4.json')) as f:
    assert {'cls_fd', 'cls_dups', 'cls_kl'} <= set(json.load(f)['metrics'])


def test_evaluate_command_line_conditional_and_real_floor(tmp_path, squares, trained_classifier,
                                                         monkeypatch):
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'cond')
  image_trainer.train_and_evaluate(tiny_config(**{
      'data.source': 'idx', 'data.path': squares, 'model.conditional': True,
      'train.num_steps': 2, 'eval.num_reference': 60}), workdir)
  monkeypatch.setenv('GAN_JAX_CACHE_DIR', str(tmp_path / 'cache'))
  common = [sys.executable, '-m', 'gan_jax.evaluate', f'--workdir={workdir}',
            f'--classifier={trained_classifier[0]}', '--num=60']
  run = lambda *args: subprocess.run(common + list(args), cwd=REPO_ROOT, capture_output=True,
                                     text=True, timeout=300)
  result = run('--metrics=cls_fd,cls_acc,cls_cov,cls_pr')
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ('cls_fd', 'cls_acc', 'cls_classes', 'cls_kl', 'cls_precision', 'cls_recall'):
    assert f'  {name}' in result.stdout, name
  with open(os.path.join(workdir, 'eval', 'step_2.json')) as f:
    fake = json.load(f)['metrics']
  assert 0 <= fake['cls_acc']['value'] <= 1
  assert 'for uniformly drawn classes' in fake['cls_acc']['protocol']
  # Real images outside the reference, scored the same way: the floor.
  kwargs = dict(classifier=trained_classifier[0], num=60, log=lambda *_: None)
  real = evaluate.evaluate(workdir, 'cls_fd,cls_acc,cls_cov', real=True, **kwargs)['metrics']
  assert os.path.exists(os.path.join(workdir, 'eval', 'real.json'))
  assert real['cls_acc']['value'] > 0.9 and real['cls_classes']['value'] == 4
  assert real['cls_fd']['value'] < fake['cls_fd']['value']
  # Errors the user can act on.
  with pytest.raises(errors.ConfigError, match='outside the 60-image reference subset'):
    evaluate.evaluate(workdir, 'cls_fd', real=True, num_reference=60,
                      **{**kwargs, 'num': 100})
  monkeypatch.setenv('GAN_JAX_INCEPTION_WEIGHTS', str(tmp_path / 'no_weights'))
  with pytest.raises(errors.DataNotFoundError, match='pt_inception-2015-12-05-6726825d.pth'):
    evaluate.evaluate(workdir, 'fid', **kwargs)
  result = run('--metrics=cls_fdd')
  assert result.returncode != 0 and "Did you mean 'cls_fd'?" in result.stderr
  assert 'Traceback' not in result.stderr


@pytest.mark.slow
def test_evaluate_defaults_on_a_small_dataset(tmp_path, squares, monkeypatch):
  """No classifier and counts larger than the data: one is trained and cached, the data is halved."""
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  image_trainer.train_and_evaluate(tiny_config(**{
      'data.source': 'idx', 'data.path': squares, 'train.num_steps': 2}), workdir)
  monkeypatch.setenv('GAN_JAX_CACHE_DIR', str(tmp_path / 'cache'))
  lines = []
  real = evaluate.evaluate(workdir, real=True, log=lines.append)
  assert sum('training one on' in line for line in lines) == 1
  assert any('scoring 60 samples against 60 reference images' in line for line in lines)
  assert real['eval_config']['num'] == 60 and real['eval_config']['num_reference'] == 60
  metrics = real['metrics']
  assert metrics['cls_classes']['value'] == 4          # the real bars: every class present
  # ... of the IDX source's ten: the six absent ones make the rarest share 0.
  assert metrics['cls_min_class']['value'] == 0.0
  assert sorted(metrics['cls_classes']['histogram'])[-4] >= 10
  lines.clear()
  fake = evaluate.evaluate(workdir, log=lines.append)  # the same counts, the cached classifier
  assert not any('training one on' in line for line in lines)
  assert fake['eval_config']['num'] == 60 and fake['metrics']['cls_fd']['value'] > 0
  assert real['metrics']['cls_fd']['value'] < fake['metrics']['cls_fd']['value']
  # Given counts win over the split: 100 samples leave 20 reference images for --real.
  lines.clear()
  evaluate.evaluate(workdir, real=True, num=100, log=lines.append)
  assert any('scoring 100 samples against 20 reference images' in line for line in lines)


def test_stacked_modes_and_probe(tmp_path, squares, trained_classifier):
  from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top
  config = tiny_config(**{'data.source': 'stacked_mnist', 'data.path': squares,
                          'eval.classifier': trained_classifier[0], 'eval.num_reference': 40,
                          'eval.modes_num': 80, 'eval.cache_dir': str(tmp_path)})
  evaluation = Evaluation(config, log=lambda *_: None)
  samples = evaluation.real_samples()
  results = evaluators.run(evaluation, samples, ['stacked_modes'])
  _, true_modes = samples.take(80)
  # The classifier reads every bar right, so the modes found are the true ones.
  assert results['stacked_modes'].value == len(set(true_modes.tolist()))
  counts = np.bincount(true_modes, minlength=1000) / 80
  expected_kl = np.sum(counts[counts > 0] * np.log(counts[counts > 0] * 1000))
  assert results['stacked_kl'].value == pytest.approx(expected_kl)
  with pytest.raises(errors.ConfigError, match='no meaning for real images'):
    evaluators.run(evaluation, samples, ['probe'])

  workdir = str(tmp_path / 'probe_run')
  image_trainer.train_and_evaluate(tiny_config(**{'data.source': 'idx', 'data.path': squares,
                                          'train.num_steps': 2}), workdir)
  _, setup, state = setup_lib.restore_setup(workdir)
  probe_config = saved_config.load_from_workdir(workdir)
  probe_config.eval.probe_num = 120
  evaluation = Evaluation(probe_config, log=lambda *_: None)
  result = evaluators.run(evaluation, evaluation.generator_samples(setup.gan, state, 2), ['probe'])
  # Bars are linearly separable even in random conv features; both probes find them.
  assert result['probe_acc'].value > 0.8
  assert result['probe_acc'].extra['random_d_accuracy'] > 0.8
  assert '96 labelled images' in result['probe_acc'].protocol


def test_inception_evaluators_wiring_and_reference_cache(tmp_path, squares, monkeypatch):
  """fid, is, kid and pr end to end, with a cheap stand-in for the Inception network.

  The network itself is verified against pytorch-fid in test_inception.py; here a
  fixed random projection plays its part so the wiring runs in seconds.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import extractors  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top
  projection = np.random.default_rng(0).normal(size=(28 * 28, 24)).astype(np.float32) / 28
  loads = []

  def fake_inception(path, mesh, batch_size, scaling='', log=print, auto_convert=False):
    loads.append(path)
    apply = lambda v, x: {'pool3': x.reshape(x.shape[0], -1).astype(jnp.float32) @ v['w'],
                          'logits': x.reshape(x.shape[0], -1)[:, :30].astype(jnp.float32)}
    return extractors.Extractor('inception', 'stand-in', {'net': 'stand-in'}, apply,
                                {'w': projection}, None, batch_size, mesh)
  monkeypatch.setattr(extractors, 'inception', fake_inception)
  config = tiny_config(**{'data.source': 'idx', 'data.path': squares, 'eval.num': 50,
                          'eval.num_reference': 60, 'eval.kid_subsets': 5,
                          'eval.kid_subset_size': 40, 'eval.cache_dir': str(tmp_path),
                          'eval.inception_weights': 'configured/path'})
  evaluation = Evaluation(config, log=lambda *_: None)
  results = evaluators.run(evaluation, evaluation.real_samples(), ['fid', 'is', 'kid', 'pr'])
  assert loads == ['configured/path']             # loaded once, from the config
  assert set(results) == {'fid', 'is', 'kid', 'precision', 'recall'}
  assert results['fid'].value > 0 and not results['fid'].higher_is_better
  assert results['is'].value >= 1 and results['is'].higher_is_better and 'std' in results['is'].extra
  assert '5 subsets of 40' in results['kid'].protocol
  assert 0 < results['precision'].value <= 1 and 0 < results['recall'].value <= 1
  assert '50 samples of real images' in results['fid'].protocol
  # Reference features were cached on disk; a new evaluation reuses them.
  cached = [f for f in os.listdir(os.path.join(tmp_path, 'reference')) if f.endswith('.npz')]
  assert len(cached) == 1
  again = Evaluation(config, log=lambda *_: None)
  assert evaluators.run(again, again.real_samples(), ['fid'])['fid'].value == pytest.approx(
      results['fid'].value, rel=1e-6)
  assert len(os.listdir(os.path.join(tmp_path, 'reference'))) == 2   # .npz and its .json


def test_eval_config_and_metric_names_are_checked():
  from tests.conftest import make_config  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.ConfigError, match='eval.metrics'):
    config_base.validate(make_config(**{'eval.every': 5}))
  with pytest.raises(errors.ConfigError, match='eval.best_metric'):
    config_base.validate(make_config(**{'eval.best_metric': 'cls_fd'}))
  config_base.validate(make_config(**{'eval.every': 5, 'eval.metrics': ('cls_fd',),
                                     'eval.best_metric': 'cls_fd'}))
  assert report.metric_names('cls_fd, cls_cov') == ['cls_fd', 'cls_cov']
  assert report.metric_names(('fid', 'is,kid')) == ['fid', 'is', 'kid']
  with pytest.raises(errors.ConfigError, match="Did you mean 'stacked_modes'"):
    report.metric_names('stacked_mode')


def test_stacked_mnist_from_the_shared_mnist_covers_every_mode(shared_mnist):
  data = tiny_config(**{'data.source': 'stacked_mnist', 'data.path': shared_mnist}).data
  source = data_lib.build_source(data)
  assert len(source) == 6 * 10_000 and source.info.image_shape == (28, 28, 3)
  counts = np.bincount(source.labels, minlength=1000)
  assert counts.min() > 20 and counts.max() < 120   # ~60 per mode: uniform over 1,000
