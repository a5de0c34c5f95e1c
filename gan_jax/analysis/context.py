"""What every analysis works from: a restored run, its generator and discriminator, data, features, and output files.

`Context.load(workdir)` restores the newest readable checkpoint (or `step`).
G is used through `variables`: the EMA weights when the run keeps them,
BatchNorm in inference mode with standing statistics for an EMA G
(gan_jax.generation.standing). All randomness comes from `seed`, folded
with the name of what is drawn, so every analysis is reproducible and two
analyses never share noise by accident.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax import families
from gan_jax.generation import sampling
from gan_jax.generation import standing
from gan_jax.models import split_output
from gan_jax.parallel import devices
from gan_jax.viz import grids

OUT_SUBDIR = 'analysis'


@dataclasses.dataclass
class Context:
  workdir: str
  config: ml_collections.ConfigDict
  setup: Any                     # gan_jax.train.Setup
  state: Any                     # gan_jax.state.GANState
  seed: int = 0
  num: int = 1000                # samples for analyses that need a population
  heldout_split: str = ''        # a data split G never saw (for D's memorisation)
  classifier: str = ''           # domain classifier dir; '' = the evaluation cache's
  out_dir: str = ''
  log: Callable[[str], None] = print
  batch_size: int = 250

  @classmethod
  def load(cls, workdir: str, step: int | None = None, **kwargs) -> 'Context':
    from gan_jax.training import setup as setup_lib
    config, setup, state = setup_lib.restore_setup(workdir, step)
    if len(setup.gan.image_shape) != 3:
      raise errors.ConfigError(f'{workdir} is a 2D-lab run; the analyses work on image runs '
                               '(its snapshots already show G and D: gan_jax/toy2d).')
    ctx = cls(workdir, config, setup, state, **kwargs)
    ctx.out_dir = ctx.out_dir or os.path.join(workdir, OUT_SUBDIR)
    os.makedirs(ctx.out_dir, exist_ok=True)
    return ctx

  # --- the run ----------------------------------------------------------------------
  @property
  def gan(self):
    return self.setup.gan

  @property
  def step(self) -> int:
    return int(self.state.step)

  @functools.cached_property
  def variables(self) -> dict:
    """G's variables for sampling: the EMA when the run keeps one, with standing statistics.

    Computed once per session (gan_jax.generation.standing).
    """
    return standing.sampling_variables(self.gan, self.state,
                                       getattr(self.setup, 'standing_stats', None))

  @property
  def uses_ema(self) -> bool:
    return bool(self.state.ema)

  @property
  def family(self) -> str:
    return self.config.model.family

  @property
  def class_names(self) -> list[str]:
    from gan_jax.training import resume  # pylint: disable=g-import-not-at-top
    names = list(resume.load_data_info(self.workdir).class_names)
    return names or [str(i) for i in range(self.gan.num_classes)]

  def key(self, name: str) -> jax.Array:
    """The PRNG key of one named draw: `seed` folded with a hash of `name`."""
    return jax.random.fold_in(jax.random.PRNGKey(self.seed), zlib.crc32(name.encode()))

  def latents(self, n: int, name: str, label: int | None = None):
    """(z float32 (n, latent_dim), labels int32 (n,)) as numpy, seeded by `name`."""
    z, labels = sampling.latents(self.key(name), self.gan, n, label)
    return np.asarray(z), np.asarray(labels)

  # --- G ----------------------------------------------------------------------------
  def batched(self, fn: Callable) -> Callable:
    """`fn((z, labels), variables)`, jitted with the batch sharded over every device.

    Returns `run(z, labels, variables=None)` -> numpy, over batches of
    `batch_size` (G's sampling variables by default). `labels` are class ids
    (N,) or, for a G that blends classes, class weights (N, C). Each call makes
    a fresh jit, traced at its first run.
    """
    from gan_jax.metrics import batching  # pylint: disable=g-import-not-at-top
    mesh = devices.make_mesh()
    jitted = batching.jit_batched(fn, mesh, 1)
    replicated = devices.replicated(mesh)

    def run(z, labels=None, variables: dict | None = None):
      z = np.asarray(z, np.float32)
      labels = np.zeros(len(z), np.int32) if labels is None else np.asarray(labels)
      labels = labels.astype(np.int32 if labels.ndim == 1 else np.float32)
      variables = jax.device_put(self.variables if variables is None else variables, replicated)
      return batching.map_batched(jitted, (z, labels), self.batch_size, mesh, variables)
    return run

  def generate(self, z, labels=None, variables: dict | None = None) -> np.ndarray:
    """G's images in [-1, 1] (float32 numpy, N x H x W x C) for noise `z` and `labels` (see `batched`)."""
    if not hasattr(self, '_draw'):
      gan = self.gan
      self._draw = self.batched(lambda zl, v: sampling.draw(gan, v, zl[0], zl[1]))
    return self._draw(z, labels, variables)

  def g_apply(self, z, labels, **kwargs):
    """G's module applied to (z, labels) in inference mode, with extra apply kwargs (traceable)."""
    return self.gan.generator.apply(self.variables, z, labels, train=False, **kwargs)

  # --- D ----------------------------------------------------------------------------
  def d_logits(self, images, labels=None) -> np.ndarray:
    """D's real/fake logits (N,) for images in [-1, 1], in inference mode, batched."""
    images = np.asarray(images, np.float32)
    labels = np.zeros(len(images), np.int32) if labels is None else np.asarray(labels, np.int32)
    if not hasattr(self, '_d'):
      d, variables = self.gan.discriminator, self.state.d.variables
      self._d = jax.jit(lambda x, y: split_output(d.apply(variables, x, y, train=False))[0])
    return np.concatenate([np.asarray(self._d(images[i:i + self.batch_size],
                                              labels[i:i + self.batch_size])).reshape(-1)
                           for i in range(0, len(images), self.batch_size)])

  def d_apply(self, images, labels, **kwargs):
    """D's module applied in inference mode, with extra apply kwargs (traceable)."""
    return self.gan.discriminator.apply(self.state.d.variables, images, labels, train=False,
                                        **kwargs)

  @property
  def has_discriminator(self) -> bool:
    return families.FAMILIES.get(self.family).has_discriminator

  # --- data -------------------------------------------------------------------------
  def _source(self, split: str = ''):
    cache = self.__dict__.setdefault('_sources', {})
    if split not in cache:
      from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
      data_config = self.config.data.copy_and_resolve_references()
      if split:
        with data_config.unlocked():
          data_config.split = split
      cache[split] = data_lib.build_source(data_config)
    return cache[split]

  def real_images(self, n: int, split: str = '', name: str = 'real'):
    """(uint8 images, int32 labels) of a seeded subset of the run's data (or of `split`)."""
    from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    source = self._source(split)
    n = min(n, len(source))
    order = np.random.default_rng(zlib.crc32(f'{self.seed}/{name}/{split}'.encode()))
    indices = np.sort(order.permutation(len(source))[:n])
    batch = pipeline.fetch(source, indices)
    return np.asarray(batch['image'], np.uint8), np.asarray(batch['label'], np.int32)

  # --- features ---------------------------------------------------------------------
  def classifier_features(self, images: np.ndarray) -> dict:
    """The domain classifier's {'features', 'logits'} for uint8 images (trained and cached on first use)."""
    if not hasattr(self, '_classifier'):
      from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top
      config = self.config.copy_and_resolve_references()
      with config.unlocked():
        if self.classifier:
          config.eval.classifier = self.classifier
      self._classifier = Evaluation(config, log=self.log).extractor('classifier')
    return self._classifier(np.asarray(images, np.uint8))

  # --- output -----------------------------------------------------------------------
  def path(self, name: str) -> str:
    return os.path.join(self.out_dir, name)

  def save_grid(self, name: str, images: np.ndarray, ncols: int) -> str:
    """Images (uint8, or floats in [-1, 1]) tiled into WORKDIR/analysis/NAME."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
      images = to_uint8(images)
    return grids.save_grid(images, self.path(name), ncols)

  def save_figure(self, name: str, figure) -> str:
    """A matplotlib figure saved to WORKDIR/analysis/NAME and closed."""
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    figure.savefig(self.path(name), dpi=110, bbox_inches='tight')
    plt.close(figure)
    return self.path(name)

  def save_json(self, name: str, value: dict) -> str:
    with open(self.path(name), 'w') as f:
      json.dump(value, f, indent=2, default=_jsonable)
      f.write('\n')
    return self.path(name)


def to_uint8(images) -> np.ndarray:
  """Floats in [-1, 1] -> uint8 pixels (as sampling.to_uint8)."""
  return np.asarray(sampling.to_uint8(jnp.asarray(images)))


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 pixels -> floats in [-1, 1], as D sees real images."""
  return np.asarray(images, np.float32) / 127.5 - 1.0


def _jsonable(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return str(value)
