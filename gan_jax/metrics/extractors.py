"""Feature extractors for evaluation: the FID Inception and the domain classifier, batched over every device.

An extractor maps uint8 NHWC images to a dict of per-image arrays. It has a
`fingerprint` (what determines its outputs), which keys the reference
statistics cache, and a `description` for the protocol written next to each
number. Both load lazily, so a run that only asks for classifier metrics
never needs the Inception weights.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh

from gan_jax import errors
from gan_jax.metrics import batching
from gan_jax.parallel import devices


@dataclasses.dataclass
class Extractor:
  name: str
  description: str
  fingerprint: dict
  apply: Callable            # (variables, uint8 images) -> dict of arrays, traceable
  variables: dict
  image_shape: tuple | None  # required input shape (H, W, C), None = any
  batch_size: int
  mesh: Mesh
  meta: dict = dataclasses.field(default_factory=dict)
  _jitted: Callable | None = None

  def __call__(self, images: np.ndarray) -> dict:
    if self.image_shape is not None and tuple(images.shape[1:]) != tuple(self.image_shape):
      raise errors.ConfigError(
          f'The {self.name} ({self.description}) takes {tuple(self.image_shape)} images, '
          f'but these are {tuple(images.shape[1:])}. Train a classifier on this '
          'data (python -m gan_jax.metrics.classifier) and pass it as '
          'config.eval.classifier.')
    if self._jitted is None:
      self._jitted = batching.jit_batched(lambda x, v: self.apply(v, x), self.mesh, 1)
    variables = jax.device_put(self.variables, devices.replicated(self.mesh))
    return batching.map_batched(self._jitted, images, self.batch_size, self.mesh, variables)


def inception(weights_path: str, mesh: Mesh, batch_size: int, scaling: str = '',
              log=print, auto_convert: bool = False) -> Extractor:
  """The FID Inception; its description names the weights (file, SHA-1) and the preprocessing.

  `auto_convert`: see `inception_weights.load`.
  """
  from gan_jax.metrics import inception as inception_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception_weights  # pylint: disable=g-import-not-at-top
  scaling = scaling or inception_lib.DEFAULT_SCALING
  variables, meta = inception_weights.load(weights_path, log, auto_convert)
  digest = (f'sha1 {meta["source_sha1"]}' if meta.get('source_sha1')
            else f'sha256 {meta.get("source_sha256", "?")}')
  return Extractor(
      'inception',
      f'FID Inception-v3 ({meta.get("source", "?")}, {digest}; '
      f'{inception_lib.describe_preprocessing(scaling)})',
      {'net': 'fid_inception_v3', 'sha256': meta.get('source_sha256', ''),
       'scaling': scaling},
      functools.partial(inception_lib.apply, scaling=scaling), variables, None, batch_size,
      mesh, meta)


def classifier(path: str, mesh: Mesh, batch_size: int) -> Extractor:
  from gan_jax.metrics import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  model = classifier_lib.load(path)
  meta = model.meta
  return Extractor(
      'domain classifier',
      f'domain classifier {meta["path"]} (held-out accuracy {meta["heldout_accuracy"]:.4f} '
      f'on {meta["num_heldout"]} images)',
      {'net': 'domain_classifier', 'path': meta['path'], 'created': meta.get('created'),
       'heldout_accuracy': meta['heldout_accuracy']},
      model.apply, model.variables, model.image_shape, batch_size, mesh, meta)
