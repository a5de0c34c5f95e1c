"""What one evaluation loads once: the feature extractors, the reference data and its features, and sample sets.

An `Evaluation` is built once per run (it holds the loaded feature extractors
and the reference data) and scores any number of `SampleSet`s: the generator
at some step, or real images (the floor). The evaluators that score them
are registered by name in `gan_jax.evaluation.evaluators`, which runs them on
an `Evaluation` (`evaluators.run`).
"""

from __future__ import annotations

import os
import shutil
from typing import Callable

import jax
import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.data import pipeline
from gan_jax.metrics import cache, extractors, weights_dir
from gan_jax.parallel import devices


def reference_data_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config.data`, with `config.eval.reference_split` as its split when set."""
  if not config.eval.reference_split:
    return config.data
  data_config = config.data.copy_and_resolve_references()
  with data_config.unlocked():
    data_config.split = config.eval.reference_split
  return data_config


class SampleSet:
  """Images to score, drawn on demand: `take(n)` is always the first n of one fixed stream."""

  def __init__(self, draw: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
               description: str, gan=None, state=None, is_real: bool = False):
    self._draw = draw
    self.description = description
    self.gan = gan              # GANModels, for evaluators that look inside G or D
    self.state = state          # the GANState scored (None for real data)
    self.is_real = is_real
    self._images = np.zeros((0,), np.uint8)
    self._labels = None
    self._features: dict = {}

  def take(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    if len(self._images) < n:
      self._images, self._labels = self._draw(n)
      self._features = {}
    return self._images[:n], (None if self._labels is None else self._labels[:n])

  def features(self, extractor: extractors.Extractor, n: int) -> dict:
    key = (extractor.name, n)
    if key not in self._features:
      self._features[key] = extractor(self.take(n)[0])
    return self._features[key]


class Evaluation:
  """Everything evaluation loads once per run: extractors and the reference data."""

  def __init__(self, config: ml_collections.ConfigDict, source=None, mesh=None,
               inception_weights: str = '', log=print):
    self.config = config
    self.ec = config.eval
    self.data_config = reference_data_config(config)
    if source is None or self.data_config is not config.data:
      from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
      source = data_lib.build_source(self.data_config)
    self.source = source
    self.info = source.info
    self.mesh = mesh or devices.make_mesh()
    self.log = log
    self._inception_weights = inception_weights
    self._classifier_path = self.ec.classifier
    self._extractors: dict = {}
    self._reference_features: dict = {}
    self._sampler = None
    self._choose_reference(self.ec.num_reference)

  def _choose_reference(self, num_reference: int):
    # All the data when it has fewer images than asked; the protocol says how many.
    size = len(self.source)
    num_ref = min(num_reference or size, size)
    order = np.random.default_rng(self.ec.seed).permutation(size)
    self.reference_indices = np.sort(order[:num_ref])
    self.unused_indices = order[num_ref:]   # for scoring real data disjoint from the reference
    self.reference_description = (
        f'{num_ref} reference images of {self.info.description}'
        + ('' if num_ref == size else f' (seeded subset, seed {self.ec.seed})'))

  def split_small_dataset(self, *, fixed_num: bool = False,
                          fixed_reference: bool = False) -> str | None:
    """Fits config.eval.num + num_reference to a dataset smaller than both; returns a line saying so.

    Real images are scored against a reference disjoint from them, so on a
    small dataset (the 1,797 bundled digits) the default counts cannot both
    hold. The count not fixed by the caller gives way; with neither fixed the
    data is halved. None when nothing changed (or both are fixed, which
    `real_samples` then reports).
    """
    size = len(self.source)
    num, ref = self.ec.num, self.ec.num_reference or size
    if num + ref <= size or (fixed_num and fixed_reference):
      return None
    if fixed_num:
      ref = size - num
    elif fixed_reference:
      num = size - ref
    else:
      num, ref = size // 2, size - size // 2
    if num < 1 or ref < 1:
      return None
    asked = (self.ec.num, self.ec.num_reference)
    self.ec.num, self.ec.num_reference = num, ref
    self._choose_reference(ref)
    return (f'{self.info.description} has {size} images, fewer than {asked[0]} samples + '
            f'{asked[1] or size} reference images: scoring {num} samples against {ref} '
            'reference images (the counts --real uses on this data, so the two compare; '
            '--num and --num_reference choose others).')

  # --- feature extractors -----------------------------------------------------------
  def extractor(self, name: str) -> extractors.Extractor:
    if name not in self._extractors:
      from gan_jax.metrics import inception_weights  # pylint: disable=g-import-not-at-top
      if name == 'inception':
        path = inception_weights.resolve_path(self._inception_weights,
                                              self.ec.inception_weights, self.ec.cache_dir)
        self._extractors[name] = extractors.inception(
            path, self.mesh, self.ec.inception_batch_size, log=self.log,
            auto_convert=path == inception_weights.default_path(self.ec.cache_dir))
      elif name == 'classifier':
        if not self._classifier_path:
          self._classifier_path = self._cached_classifier()
        self._extractors[name] = extractors.classifier(self._classifier_path, self.mesh,
                                                       self.ec.batch_size)
      else:
        raise KeyError(name)
    return self._extractors[name]

  def _cached_classifier(self) -> str:
    """A domain classifier of the reference data, trained on first use and cached, when none is set."""
    from gan_jax.metrics import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
    data = {k: v for k, v in self.data_config.to_dict().items()
            if k not in ('read_threads', 'prefetch')}
    data['path'] = os.path.abspath(os.path.expanduser(data['path'])) if data['path'] else ''
    path = os.path.join(cache.cache_dir(self.ec.cache_dir), 'classifiers', cache.fingerprint(data))
    if weights_dir.exists(path, classifier_lib.META_FILE):
      return path
    how = ('train one with python -m gan_jax.metrics.classifier --config=... --out=DIR and '
           'pass --config.eval.classifier=DIR (gan_jax.evaluate: --classifier=DIR)')
    if self.info.num_classes < 2:
      raise errors.ConfigError(f'The cls_* metrics need a domain classifier, and '
                               f'{self.info.description} has no class labels to train one on '
                               f'here: {how}, on labelled data of the same domain.')
    if jax.process_count() > 1:  # one writer per cache entry
      raise errors.ConfigError(f'The cls_* metrics need a domain classifier: {how}.')
    self.log(f'No domain classifier given (config.eval.classifier): training one on '
             f'{self.info.description}, cached in {path} for later runs on this data.')
    # Trained beside the entry and renamed into place: a run that dies half-way
    # leaves no entry, and two runs filling it at once do not mix their files.
    partial = f'{path}.{os.getpid()}.partial'
    shutil.rmtree(partial, ignore_errors=True)
    classifier_lib.train_and_save(self.data_config, partial, source=self.source, log=self.log)
    try:
      os.rename(partial, path)
    except OSError:  # another run finished first (or left a dead attempt): keep one
      if weights_dir.exists(path, classifier_lib.META_FILE):
        shutil.rmtree(partial, ignore_errors=True)
      else:
        shutil.rmtree(path, ignore_errors=True)
        os.rename(partial, path)
    self.log(f'Cached the domain classifier in {path}')
    return path

  # --- reference data ---------------------------------------------------------------
  def reference_images(self, indices=None) -> tuple[np.ndarray, np.ndarray]:
    batch = pipeline.fetch(self.source, self.reference_indices if indices is None else indices)
    return np.asarray(batch['image'], np.uint8), np.asarray(batch['label'], np.int32)

  def reference_features(self, extractor_name: str) -> dict:
    """Features of the reference images, computed once per (extractor, data, subset) and cached."""
    if extractor_name not in self._reference_features:
      ext = self.extractor(extractor_name)
      description = {
          'extractor': ext.fingerprint, 'data': self.info.description,
          'data_config': self.data_config.to_dict(), 'num': len(self.reference_indices),
          'seed': self.ec.seed, 'kind': 'reference_features'}
      directory = os.path.join(cache.cache_dir(self.ec.cache_dir), 'reference')
      arrays, path = cache.cached_arrays(
          directory, extractor_name, description,
          lambda: ext(self.reference_images()[0]))
      self.log(f'Reference features ({extractor_name}): {path}')
      self._reference_features[extractor_name] = arrays
    return self._reference_features[extractor_name]

  def reference_stats(self, extractor_name: str, key: str) -> dict:
    from gan_jax.metrics import frechet  # pylint: disable=g-import-not-at-top
    cache_key = (extractor_name, key, 'stats')
    if cache_key not in self._reference_features:
      self._reference_features[cache_key] = frechet.statistics(
          self.reference_features(extractor_name)[key])
    return self._reference_features[cache_key]

  # --- sample sets ------------------------------------------------------------------
  def generator_samples(self, gan, state, step: int) -> SampleSet:
    """G's samples (EMA weights with standing statistics when kept; inference mode), seeded by config.eval.seed."""
    from gan_jax.generation import sampling  # pylint: disable=g-import-not-at-top
    from gan_jax.generation import standing  # pylint: disable=g-import-not-at-top
    from gan_jax.metrics import batching  # pylint: disable=g-import-not-at-top
    # The EMA G with standing BatchNorm statistics, computed once per evaluation.
    variables = standing.sampling_variables(gan, state,
                                            standing.StandingStats.from_config(self.config))
    variables = jax.device_put(variables, devices.replicated(self.mesh))
    if self._sampler is None or self._sampler[0] is not gan:  # compiled once per run
      self._sampler = (gan, batching.jit_batched(
          lambda zl, v: sampling.to_uint8(sampling.draw(gan, v, zl[0], zl[1])),
          self.mesh, 1))
    fn = self._sampler[1]
    key = jax.random.PRNGKey(self.ec.seed)

    def draw(n):
      z, labels = sampling.latents(key, gan, n)
      images = batching.map_batched(fn, (np.asarray(z), np.asarray(labels)),
                                    self.ec.batch_size, self.mesh, variables)
      return images, (np.asarray(labels) if gan.num_classes else None)

    ema = ' (EMA weights)' if state.ema else ''
    return SampleSet(draw, f'G at step {step}{ema}', gan=gan, state=state)

  def real_samples(self) -> SampleSet:
    """Real images disjoint from the reference subset, scored like G's samples: the floor."""
    def draw(n):
      if n > len(self.unused_indices):
        raise errors.ConfigError(
            f'Scoring {n} real images needs {n} images outside the '
            f'{len(self.reference_indices)}-image reference subset, but only '
            f'{len(self.unused_indices)} remain of {len(self.source)}. Lower --num or '
            'config.eval.num_reference so that they add up to at most the dataset size.')
      images, labels = self.reference_images(self.unused_indices[:n])
      return images, (labels if self.info.num_classes else None)
    return SampleSet(draw, f'real images of {self.info.description} outside the reference',
                     is_real=True)
