"""Stacked MNIST: three MNIST digits on the R, G and B channels, 1,000 modes (VEEGAN, PacGAN).

Built from MNIST IDX files in `config.data.path` (`config.data.split` as for
the idx source). Example i stacks digits a_i, b_i, c_i drawn uniformly with
replacement by a fixed generator (not `config.seed`), so the dataset is the
same for every run; its label is the mode 100 * label(a_i) + 10 * label(b_i)
+ label(c_i). It has `STACKS_PER_DIGIT` times as many examples as the files
hold digits (60,000 from the 10,000-digit test set), enough to score 26,000
real images outside a reference subset for the floor.
"""

from __future__ import annotations

import numpy as np

from gan_jax import errors
from gan_jax.data import idx
from gan_jax.data.source import DatasetInfo

NUM_MODES = 1000
_SEED = 20170601   # fixed: the stacked dataset must not change between runs
STACKS_PER_DIGIT = 6


class StackedMnistSource:
  """Random access to stacked digits, assembled on access from the 28x28 MNIST arrays."""

  def __init__(self, data_config):
    if data_config.image_size != 28:
      raise errors.ConfigError(
          f'stacked_mnist makes 28x28 images; got config.data.image_size='
          f'{data_config.image_size}. Use --config.data.image_size=28.')
    if data_config.channels not in (0, 3):
      raise errors.ConfigError('stacked_mnist images have 3 channels; set '
                               '--config.data.channels=3 (or 0).')
    mnist_config = data_config.copy_and_resolve_references()
    with mnist_config.unlocked():
      mnist_config.channels = 1
    mnist = idx.load(mnist_config)
    self._digits = mnist.images[..., 0]
    self._digit_labels = mnist.labels
    n = len(self._digits)
    self._triples = np.random.default_rng(_SEED).integers(0, n, (STACKS_PER_DIGIT * n, 3))
    self.labels = (self._digit_labels[self._triples] * np.array([100, 10, 1])).sum(-1)
    self.labels = self.labels.astype(np.int32)
    self.info = DatasetInfo((28, 28, 3), NUM_MODES,
                            tuple(f'{m:03d}' for m in range(NUM_MODES)), len(self._triples),
                            f'Stacked MNIST from {mnist.info.description} '
                            f'({len(self._triples)} images, 1000 modes)')

  def __len__(self) -> int:
    return len(self._triples)

  def get_batch(self, indices: np.ndarray) -> dict:
    triples = self._triples[indices]                 # (..., 3)
    images = np.moveaxis(self._digits[triples], -3, -1)  # (..., 28, 28, 3)
    return {'image': images, 'label': self.labels[indices]}

  def __getitem__(self, index: int) -> dict:
    return {k: v for k, v in self.get_batch(np.asarray(index)).items()}


def modes_of(digit_predictions: np.ndarray) -> np.ndarray:
  """(N, 3) predicted digits of the R, G, B channels -> (N,) mode in 0..999."""
  return (np.asarray(digit_predictions) * np.array([100, 10, 1])).sum(-1)
