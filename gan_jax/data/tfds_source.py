"""TFDS datasets through `tfds.data_source`: random access to a prepared dataset, no TensorFlow.

The dataset must already be prepared in `array_record` format under
`config.data.path` (or TFDS's default data_dir); nothing is downloaded here.
Examples are converted, centre-cropped and resized like folder images.
"""

from __future__ import annotations

import functools

import numpy as np

from gan_jax import errors
from gan_jax.data import image_ops
from gan_jax.data.source import DatasetInfo


def _not_prepared_error(name: str, data_dir: str | None) -> Exception:
  where = data_dir or 'the default TFDS data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)'
  return errors.DataNotFoundError(
      f'TFDS dataset {name!r} is not prepared in {where}, and gan_jax does '
      'not download data. It needs a one-time download: on a machine with '
      f'internet access run  tfds build {name} --file_format=array_record '
      '--data_dir=DIR  (this step needs tensorflow), copy DIR here, and pass '
      '--config.data.path=DIR. For MNIST, the raw IDX files also work: '
      '--config.data.source=idx --config.data.path=DIR_WITH_IDX_FILES.')


class TfdsSource:
  """Random access to a prepared TFDS split, images normalised per example."""

  def __init__(self, data_config):
    import tensorflow_datasets as tfds  # slow import: only this source needs it

    name = data_config.name
    if not name:
      raise errors.ConfigError('config.data.source=tfds needs a dataset name: '
                       '--config.data.name=mnist (or cifar10, celeb_a, ...).')
    split = data_config.split or 'train'
    data_dir = data_config.path or None
    try:
      builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
      raise errors.ConfigError(f'config.data.name={name!r} is not a TFDS dataset.') from e
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir,
                                      download=False)
    except Exception as e:  # TFDS raises several types for "not there"
      if not builder.is_prepared():
        raise _not_prepared_error(name, data_dir) from e
      raise
    features = builder.info.features
    self._image_key = 'image'
    if 'image' not in features:
      raise errors.ConfigError(f'TFDS dataset {name!r} has no "image" feature '
                       f'(features: {", ".join(features)}).')
    self._label_key = 'label' if 'label' in features else None
    class_names = (tuple(features['label'].names) if self._label_key else ())
    self.size = data_config.image_size
    stored_channels = features['image'].shape[-1] or 3
    self.channels = data_config.channels or stored_channels
    self.info = DatasetInfo((self.size, self.size, self.channels),
                            len(class_names), class_names, len(self._source),
                            f'TFDS {name}:{split} ({len(self._source)} images)')

  @functools.cached_property
  def labels(self) -> np.ndarray:
    """Every example's label; reads the whole split, so only class subsets ask."""
    if self._label_key is None:
      return np.zeros(len(self._source), np.int32)
    return np.asarray([self._source[i][self._label_key]
                       for i in range(len(self._source))], np.int32)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    example = self._source[int(index)]
    image = np.asarray(example[self._image_key])
    if image.shape != (self.size, self.size, self.channels):
      image = image_ops.normalise_array(image, self.size, self.channels)
    label = example[self._label_key] if self._label_key else 0
    return {'image': image, 'label': np.int32(label)}
