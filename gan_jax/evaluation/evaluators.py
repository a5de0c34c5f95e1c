"""The evaluators, registered by name (`config.eval.metrics`, `gan_jax.evaluate --metrics`), and running them.

Inception (needs the converted FID weights): fid, kid, pr, and is (only with weights that
have the logits: pytorch-fid's file).
Domain classifier (offline; needs `config.eval.classifier`): cls_fd, cls_pr,
cls_acc (conditional models), cls_cov, cls_dups, stacked_modes.
Discriminator: probe.

Each returns {metric name: Metric}; every Metric carries its protocol.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from gan_jax import errors
from gan_jax.evaluation.context import Evaluation, SampleSet
from gan_jax.metrics import frechet, inception_score, kid, modes, precision_recall
from gan_jax.registry import Registry

@dataclasses.dataclass(frozen=True)
class Metric:
  value: float
  protocol: str
  higher_is_better: bool
  extra: dict = dataclasses.field(default_factory=dict)   # e.g. std, counts

  def to_dict(self) -> dict:
    return {'value': self.value, **self.extra, 'protocol': self.protocol,
            'higher_is_better': self.higher_is_better}


@dataclasses.dataclass(frozen=True)
class Evaluator:
  fn: Callable                 # (Evaluation, SampleSet) -> {name: Metric}
  description: str
  needs: tuple[str, ...] = ()  # feature extractors it reads: 'inception', 'classifier'


EVALUATORS: Registry[Evaluator] = Registry('evaluator', 'config.eval.metrics')


def register(name: str, description: str, needs: tuple[str, ...] = ()):
  def decorator(fn):
    EVALUATORS.register(name)(Evaluator(fn, description, needs))
    return fn
  return decorator


def prepare(ev: Evaluation, names) -> None:
  """Loads the extractors and reference features that the evaluators `names` need.

  Called before training starts, so that missing weights, a missing
  classifier or unreadable reference data fail then, not at the first
  evaluation hours later. Nothing is computed twice: the features are
  cached for the evaluations that follow.
  """
  for name in dict.fromkeys(n for metric in names for n in EVALUATORS.get(metric).needs):
    ev.reference_features(name)


def run(ev: Evaluation, samples: SampleSet, names) -> dict:
  """{metric name: Metric} of every evaluator in `names`, in order."""
  results = {}
  for name in names:
    start = time.perf_counter()
    results.update(EVALUATORS.get(name).fn(ev, samples))
    ev.log(f'  {name}: {time.perf_counter() - start:.1f}s')
  return results


def _vs_reference(ev: Evaluation, samples: SampleSet, n: int, space: str) -> str:
  return (f'{n} samples of {samples.description} vs {ev.reference_description}; '
          f'{space}')


# --- Inception metrics ------------------------------------------------------------------

def _frechet(ev: Evaluation, samples: SampleSet, extractor_name: str, key: str, name: str,
             space: str) -> dict:
  ext = ev.extractor(extractor_name)
  n = ev.ec.num
  stats = frechet.statistics(samples.features(ext, n)[key])
  value = frechet.frechet_distance(stats, ev.reference_stats(extractor_name, key))
  return {name: Metric(value, _vs_reference(ev, samples, n, f'{ext.description}, {space}'),
                       False)}


@register('fid', 'Fréchet Inception distance (pool3, 2048-d)', needs=('inception',))
def _fid(ev: Evaluation, samples: SampleSet) -> dict:
  return _frechet(ev, samples, 'inception', 'pool3', 'fid', 'pool3')


@register('is', 'Inception score (10 splits)', needs=('inception',))
def _is(ev: Evaluation, samples: SampleSet) -> dict:
  ext = ev.extractor('inception')
  if not ext.meta.get('logits', True):
    raise errors.ConfigError(
        f'The Inception Score needs the network\'s 1008 logits, which {ext.meta["source"]} '
        'does not have (it is the feature extractor only). FID, KID and pr work with these '
        'weights. For IS, convert pytorch-fid\'s file, which has them: python -m '
        'gan_jax.metrics.inception_weights --pth=pt_inception-2015-12-05-6726825d.pth '
        '--out=DIR, and pass --inception_weights=DIR.')
  n = ev.ec.num
  mean, std = inception_score.inception_score(samples.features(ext, n)['logits'], 10)
  return {'is': Metric(mean, f'{n} samples of {samples.description}; 10 splits; '
                             f'{ext.description} softmax over 1008 logits', True,
                       {'std': std})}


@register('kid', 'Kernel Inception distance (cubic polynomial kernel MMD^2)',
          needs=('inception',))
def _kid(ev: Evaluation, samples: SampleSet) -> dict:
  ext = ev.extractor('inception')
  n = ev.ec.num
  mean, std, m = kid.kernel_inception_distance(
      samples.features(ext, n)['pool3'], ev.reference_features('inception')['pool3'],
      ev.mesh, ev.ec.kid_subsets, ev.ec.kid_subset_size, ev.ec.seed)
  return {'kid': Metric(mean, _vs_reference(ev, samples, n, f'{ext.description} pool3; '
                                            f'{ev.ec.kid_subsets} subsets of {m}'),
                        False, {'std': std})}


def _precision_recall(ev, samples, extractor_name, key, prefix, space):
  ext = ev.extractor(extractor_name)
  n = ev.ec.num
  precision, recall = precision_recall.precision_recall(
      samples.features(ext, n)[key], ev.reference_features(extractor_name)[key],
      ev.ec.pr_k, ev.mesh)
  protocol = _vs_reference(ev, samples, n, f'{space}; k={ev.ec.pr_k}')
  return {f'{prefix}precision': Metric(precision, protocol, True),
          f'{prefix}recall': Metric(recall, protocol, True)}


@register('pr', 'precision and recall (Kynkäänniemi et al. 2019) in Inception space',
          needs=('inception',))
def _pr(ev: Evaluation, samples: SampleSet) -> dict:
  return _precision_recall(ev, samples, 'inception', 'pool3', '',
                           f'{ev.extractor("inception").description} pool3')


# --- Domain-classifier metrics ----------------------------------------------------------

@register('cls_fd', 'Fréchet distance in the domain classifier\'s feature space',
          needs=('classifier',))
def _cls_fd(ev: Evaluation, samples: SampleSet) -> dict:
  return _frechet(ev, samples, 'classifier', 'features', 'cls_fd', 'features')


@register('cls_pr', 'precision and recall in the domain classifier\'s feature space',
          needs=('classifier',))
def _cls_pr(ev: Evaluation, samples: SampleSet) -> dict:
  return _precision_recall(ev, samples, 'classifier', 'features', 'cls_',
                           f'{ev.extractor("classifier").description}, features')


def _predictions(ev: Evaluation, samples: SampleSet, n: int) -> np.ndarray:
  return samples.features(ev.extractor('classifier'), n)['logits'].argmax(-1)


@register('cls_acc', 'class-conditional accuracy: samples for class k classified as k',
          needs=('classifier',))
def _cls_acc(ev: Evaluation, samples: SampleSet) -> dict:
  ext = ev.extractor('classifier')
  n = ev.ec.num
  _, labels = samples.take(n)
  if labels is None:  # skipped, not an error: a metrics list can serve every model
    ev.log('  cls_acc skipped: the model is unconditional (it measures whether samples '
           'drawn for class k are classified as k)')
    return {}
  accuracy = float(np.mean(_predictions(ev, samples, n) == labels))
  what = 'with their true labels' if samples.is_real else 'for uniformly drawn classes'
  return {'cls_acc': Metric(accuracy, f'{n} samples of {samples.description} {what}; '
                                      f'{ext.description}', True)}


@register('cls_cov', 'class coverage: classes present, KL(class histogram || uniform), '
          'the rarest class\'s share', needs=('classifier',))
def _cls_cov(ev: Evaluation, samples: SampleSet) -> dict:
  ext = ev.extractor('classifier')
  n = ev.ec.num
  num_classes = ext.meta['num_classes']
  present, kl, counts = modes.class_coverage(_predictions(ev, samples, n), num_classes)
  protocol = f'{n} samples of {samples.description}; {ext.description}'
  return {'cls_classes': Metric(present, protocol + f'; of {num_classes} classes', True,
                                {'histogram': counts.tolist()}),
          'cls_kl': Metric(kl, protocol + '; nats', False),
          # The rarest class's share shows a starved class that KL averages away.
          'cls_min_class': Metric(float(counts.min() / max(1, counts.sum())),
                                  protocol + f'; share of the rarest of {num_classes} classes',
                                  True)}


@register('cls_dups', 'near-duplicate pairs among config.eval.dup_num samples',
          needs=('classifier',))
def _cls_dups(ev: Evaluation, samples: SampleSet) -> dict:
  ext = ev.extractor('classifier')
  n = min(ev.ec.dup_num, len(ev.reference_indices))
  reference = ev.reference_features('classifier')['features'][:n]
  if ev.ec.dup_threshold > 0:
    threshold, how = ev.ec.dup_threshold, f'distance <= {ev.ec.dup_threshold:g}'
  else:
    threshold = modes.pair_distance_quantile(reference, ev.ec.dup_quantile)
    how = (f'distance <= {threshold:.4g}, the {ev.ec.dup_quantile:g} quantile of pair '
           f'distances among {n} reference images')
  fake = samples.features(ext, max(n, ev.ec.num))['features'][:n]
  pairs = modes.near_duplicate_pairs(fake, threshold, ev.mesh)
  real_pairs = modes.near_duplicate_pairs(reference, threshold, ev.mesh)
  protocol = (f'pairs among the first {n} samples of {samples.description} with {how} '
              f'in the {ext.description} feature space')
  return {'cls_dups': Metric(pairs, protocol, False,
                             {'reference_pairs': real_pairs, 'threshold': threshold})}


@register('stacked_modes', 'Stacked MNIST: modes covered of 1000, and KL (PacGAN/VEEGAN)',
          needs=('classifier',))
def _stacked_modes(ev: Evaluation, samples: SampleSet) -> dict:
  from gan_jax.data import stacked_mnist  # pylint: disable=g-import-not-at-top
  ext = ev.extractor('classifier')
  if tuple(ext.image_shape or ()) != (28, 28, 1):
    raise errors.ConfigError(
        'stacked_modes classifies each channel with an MNIST classifier (28x28x1, '
        f'10 classes); config.eval.classifier takes {ext.image_shape}. Train one on '
        'MNIST (python -m gan_jax.metrics.classifier --config=configs/dcgan_mnist.py ...).')
  n = ev.ec.modes_num
  images, _ = samples.take(n)
  if images.shape[1:] != (28, 28, 3):
    raise errors.ConfigError(f'stacked_modes needs 28x28x3 samples, got {images.shape[1:]}.')
  channels = np.moveaxis(images, -1, 1).reshape(-1, 28, 28, 1)   # (N*3, 28, 28, 1)
  digits = ext(channels)['logits'].argmax(-1).reshape(-1, 3)
  present, kl, _ = modes.class_coverage(stacked_mnist.modes_of(digits),
                                        stacked_mnist.NUM_MODES)
  protocol = (f'{n} samples of {samples.description}; each channel classified by '
              f'{ext.description}; KL(sample modes || uniform over 1000) in nats '
              '(PacGAN/VEEGAN protocol: 26,000 samples)')
  return {'stacked_modes': Metric(present, protocol, True),
          'stacked_kl': Metric(kl, protocol, False)}


# --- Discriminator ------------------------------------------------------------------------

@register('probe', 'linear probe on frozen D features (vs a random-weight D)')
def _probe(ev: Evaluation, samples: SampleSet) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import batching, classifier, probe  # pylint: disable=g-import-not-at-top
  if samples.state is None:
    raise errors.ConfigError('probe scores a trained discriminator; it has no meaning '
                             'for real images (--real).')
  if ev.info.num_classes < 2:
    raise errors.ConfigError(f'probe needs labelled data; {ev.info.description} has none.')
  pack = getattr(samples.gan, 'pack', 1)
  if pack > 1:
    raise errors.ConfigError(f'probe reads D\'s features of single images, but this D judges '
                             f'packs of {pack} (config.model.pack).')
  n = min(ev.ec.probe_num, len(ev.source))
  order = np.random.default_rng(ev.ec.seed).permutation(len(ev.source))[:n]
  images, labels = ev.reference_images(np.sort(order))
  train_idx, test_idx = classifier.holdout_split(n, 0.2, ev.ec.seed)
  disc = samples.gan.discriminator
  features_of = probe.feature_fn(disc)
  random_vars = disc.init(jax.random.PRNGKey(ev.ec.seed + 1), images[:1].astype(np.float32),
                          labels[:1], train=False)
  accuracy = {}
  for name, variables in (('trained', samples.state.d.variables), ('random', random_vars)):
    feats = batching.map_batched(
        batching.jit_batched(lambda x, v: features_of(v, x), ev.mesh, 1), images,
        ev.ec.batch_size, ev.mesh, variables)
    accuracy[name] = probe.linear_probe_accuracy(
        feats[train_idx], labels[train_idx], feats[test_idx], labels[test_idx], ev.ec.seed)
  protocol = (f'logistic regression on D\'s pooled conv features of {len(train_idx)} '
              f'labelled images of {ev.info.description}, accuracy on {len(test_idx)} '
              f'held-out (seeded split); D of {samples.description}')
  return {'probe_acc': Metric(accuracy['trained'], protocol, True,
                              {'random_d_accuracy': accuracy['random']})}
