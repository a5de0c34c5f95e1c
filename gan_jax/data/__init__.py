"""Data sources, registered by name (`config.data.source`), and the batching pipeline.

`build_source(config.data)` returns a random-access source of uint8 images at
the configured size, restricted to `config.data.classes` and decoded into
memory where that pays; `pipeline.batches` turns it into the globally
deterministic stream of training batches.
"""

from __future__ import annotations

from absl import logging
import ml_collections

from gan_jax import errors
from gan_jax.data import digits, folder, idx, stacked_mnist, tfds_source
from gan_jax.data.source import (ArraySource, BadExampleError, DatasetInfo,
                                 MirroredSource, SubsetSource, materialize, select_classes)
from gan_jax.registry import Registry

SOURCES = Registry('data source', 'config.data.source')
SOURCES.register('digits')(digits.load)
SOURCES.register('idx')(idx.load)
SOURCES.register('folder')(folder.FolderSource)
SOURCES.register('tfds')(tfds_source.TfdsSource)
SOURCES.register('stacked_mnist')(stacked_mnist.StackedMnistSource)



@SOURCES.register('toy2d')
def _toy2d(data_config):
  del data_config
  raise errors.ConfigError(
      "config.data.source='toy2d' is 2D points, trained by the 2D lab: set "
      "config.trainer='toy2d' (configs/toy2d.py does).")


# Sources decoded into memory once, instead of on every access.
_DECODE_ONCE = ('folder',)


def build_source(data_config: ml_collections.ConfigDict):
  """The configured dataset as a random-access source with an `info`."""
  if data_config.image_size <= 0:
    raise errors.ConfigError(f'config.data.image_size must be positive, got {data_config.image_size}.')
  if data_config.channels not in (0, 1, 3):
    raise errors.ConfigError(f'config.data.channels must be 0 (as stored), 1 or 3, '
                     f'got {data_config.channels}.')
  source = SOURCES.get(data_config.source)(data_config)
  if data_config.classes:
    keep, labels, names = select_classes(source.labels, source.info.class_names,
                                         data_config.classes)
    source = SubsetSource(source, keep, labels, names,
                          f'{source.info.description}, classes {", ".join(names)} '
                          f'({len(keep)} images)')
  if data_config.source in _DECODE_ONCE:
    source = materialize(source, data_config.skip_bad_files)
  if data_config.get('mirror', False):
    source = MirroredSource(source)
  logging.info('Data: %s', source.info.description)
  return source


__all__ = ['SOURCES', 'build_source', 'ArraySource', 'BadExampleError',
           'DatasetInfo', 'SubsetSource']
