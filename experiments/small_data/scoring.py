"""Scoring a variant: its samples against the full data (classifier metrics, FID) and D's memorisation of its N images."""

from __future__ import annotations

import json
import os

import numpy as np

from experiments.small_data.settings import Settings
from experiments.small_data.variants import kept_checkpoints

SCORE_RECORD = 'small_data_score.json'   # per variant: its scores, reused by a rerun
SAMPLE_SEED = 0


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
  """P(score of a positive > score of a negative) + P(tie) / 2: the rank (Mann-Whitney) AUC."""
  positive, negative = np.ravel(positive), np.ravel(negative)
  _, inverse, counts = np.unique(np.concatenate([positive, negative]), return_inverse=True,
                                 return_counts=True)
  ranks = (np.cumsum(counts) - counts + (counts + 1) / 2)[inverse]   # ties: average rank
  n_pos, n_neg = len(positive), len(negative)
  return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def d_memorisation(setup, state, train_images: np.ndarray, heldout_images: np.ndarray,
                   train_labels: np.ndarray | None = None,
                   heldout_labels: np.ndarray | None = None, batch_size: int = 500) -> dict:
  """How much better D scores its training images than held-out real ones.

  D runs in inference mode (running BatchNorm statistics) on uint8 images;
  a conditional D gets the labels, an unconditional one zeros. Returns the
  mean sigmoid(D(x)) and mean logit on each set, d_gap = mean sigmoid on the
  training images - on the held-out ones, and the AUC of telling them apart by
  the logit (0.5: D treats them alike; 1: it knows its training images).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  from gan_jax.core import steps
  gan = setup.gan
  variables = state.d.variables

  @jax.jit
  def logits_of(v, images, labels):
    out = gan.discriminator.apply(v, steps.images_to_float(images), labels, train=False)
    return models.split_output(out)[0].reshape(-1)

  def run(images, labels):
    n = len(images)
    labels = (np.zeros(n, np.int32) if labels is None or not gan.num_classes
              else np.asarray(labels, np.int32))
    size = min(batch_size, n)
    out = []
    for i in range(0, n, size):   # the last batch padded: one compiled shape
      x, y = images[i:i + size], labels[i:i + size]
      pad = size - len(x)
      if pad:
        x = np.concatenate([x, np.repeat(x[:1], pad, 0)])
        y = np.concatenate([y, np.repeat(y[:1], pad, 0)])
      out.append(np.asarray(logits_of(variables, x, y))[:size - pad])
    return np.concatenate(out).astype(np.float64)

  train_logits = run(np.asarray(train_images), train_labels)
  heldout_logits = run(np.asarray(heldout_images), heldout_labels)
  sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
  d_train, d_heldout = float(sigmoid(train_logits).mean()), float(sigmoid(heldout_logits).mean())
  return {'num_train': len(train_logits), 'num_heldout': len(heldout_logits),
          'd_train': d_train, 'd_heldout': d_heldout, 'd_gap': d_train - d_heldout,
          'logit_train': float(train_logits.mean()),
          'logit_heldout': float(heldout_logits.mean()),
          'auc': auc(train_logits, heldout_logits)}


class FidReference:
  """The Inception extractor and the --fid_stats statistics, loaded on first use."""

  def __init__(self, path: str, log=print):
    self.path, self.log, self._loaded = path, log, None

  def score(self, images: np.ndarray, what: str) -> tuple[float, str]:
    from gan_jax.metrics import fid, frechet  # pylint: disable=g-import-not-at-top
    if self._loaded is None:
      sets = fid.FeatureSets(log=self.log)
      self._loaded = (sets, *sets.statistics(self.path))
    sets, reference, about = self._loaded
    stats = frechet.statistics(sets.features(images, what))
    protocol = (f'{len(images)} samples vs {about.get("num", "?")} images of {about["path"]} '
                f'({about.get("subset", "")}); {sets.protocol["weights"]}, '
                f'{sets.protocol["preprocessing"]}')
    return frechet.frechet_distance(stats, reference), protocol


def score_variant(s: Settings, workdir: str, data_config, split: dict, fid_reference,
                  log=print, step: int | None = None) -> dict:
  """A checkpoint's (default: the last) metrics against the full data, and D's memorisation.

  FID and D's memorisation are computed only without `step` (the last checkpoint).
  """
  from gan_jax.config import saved as saved_config
  from gan_jax.parallel import devices
  from gan_jax.training import setup as setup_lib
  from gan_jax.evaluation import evaluators  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top
  last = step is None
  fid_reference = fid_reference if last else None
  _, setup, state = setup_lib.restore_setup(workdir, step)
  step = int(state.step)
  out = {'step': step, 'metrics': {}, 'protocols': {}}
  config = saved_config.load_from_workdir(workdir)
  names = list(s.metrics) + (['cls_acc'] if s.metrics and config.model.conditional else [])
  if names or fid_reference:
    config.data.update(data_config.to_dict())   # the reference: the full data, not the N images
    config.eval.num, config.eval.num_reference = s.eval_num, s.num_reference
    config.eval.seed = SAMPLE_SEED
    evaluation = Evaluation(config, None, devices.make_mesh(), log=log)
    samples = evaluation.generator_samples(setup.gan, state, step)
    for name, metric in evaluators.run(evaluation, samples, names).items():
      out['metrics'][name] = metric.value
      out['protocols'][name] = metric.protocol
      if name == 'cls_classes':
        out['class_histogram'] = metric.extra['histogram']
    if fid_reference:
      value, protocol = fid_reference.score(samples.take(s.fid_num)[0], f'step {step}')
      out['metrics']['fid'], out['protocols']['fid'] = value, protocol
  if not last:
    return out
  num_heldout = min(len(split['train_images']), len(split['heldout_images']))
  out['d_memorisation'] = d_memorisation(
      setup, state, split['train_images'], split['heldout_images'][:num_heldout],
      split['train_labels'], split['heldout_labels'][:num_heldout])
  return out


def cached_scores(s: Settings, workdir: str, data_config, split: dict, fid_reference,
                  log=print) -> dict:
  """The last checkpoint's scores and the classifier metrics of the earlier ones (the curve).

  Kept in VARIANT/SCORE_RECORD with the settings they depend on, so a rerun
  (say, with more --variants) scores only what is new.
  """
  path = os.path.join(workdir, SCORE_RECORD)
  key = {k: getattr(s, k) for k in ('metrics', 'eval_num', 'num_reference', 'fid_stats',
                                    'fid_num')}
  key = _jsonable(key)
  record = {}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  steps = kept_checkpoints(workdir)
  if record.get('key') != key or record.get('last', {}).get('step') != steps[-1]:
    log(f'[{os.path.basename(workdir)}] scoring step {steps[-1]} against '
        f'{split["info"]["description"]}')
    record = {'key': key, 'last': score_variant(s, workdir, data_config, split,
                                                fid_reference, log), 'curve': {}}
    write_json(path, record)
  for step in steps[:-1]:
    if str(step) not in record['curve'] and s.metrics:
      record['curve'][str(step)] = score_variant(s, workdir, data_config, split, None, log,
                                                 step=step)['metrics']
      write_json(path, record)
  curve = [{'step': int(k), **v} for k, v in sorted(record['curve'].items(),
                                                    key=lambda kv: int(kv[0]))]
  last = record['last']
  return {**last, 'curve': curve + [{'step': last['step'], **last['metrics']}]}


def _jsonable(value):
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def write_json(path: str, value) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(_jsonable(value), f, indent=2)
    f.write('\n')
  os.replace(path + '.tmp', path)
