"""MNIST-style IDX files (`*-images-idx3-ubyte[.gz]` with `*-labels-idx1-ubyte[.gz]`) in a directory.

`config.data.split` picks the file prefix ('train', 't10k'; 'test' means
't10k'); empty loads every images/labels pair in the directory.
"""

from __future__ import annotations

import glob
import gzip
import os
import zlib

import numpy as np

from gan_jax import errors
from gan_jax.data import image_ops
from gan_jax.data.source import ArraySource

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049   # the first 4 bytes of each kind of file


def read_idx(path: str, expected_magic: int) -> np.ndarray:
  opener = gzip.open if path.endswith('.gz') else open
  try:
    with opener(path, 'rb') as f:
      data = f.read()
  except (OSError, EOFError, zlib.error) as e:  # zlib.error: a damaged .gz
    raise errors.DataError(f'Cannot read IDX file {path}: {e}') from e
  magic = int.from_bytes(data[:4], 'big')
  if magic != expected_magic:
    raise errors.DataError(f'{path} is not an IDX file of the expected kind '
                     f'(magic number {magic}, expected {expected_magic}).')
  ndim = data[3]
  if len(data) < 4 + 4 * ndim:
    raise errors.DataError(f'{path} is truncated: {len(data)} bytes, shorter than its header.')
  shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(ndim))
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(shape)):
    raise errors.DataError(f'{path} is truncated: header says {shape}, '
                     f'found {body.size} bytes of data.')
  return body.reshape(shape)


def _find(directory: str, prefix: str, kind: str) -> str | None:
  for name in (f'{prefix}-{kind}', f'{prefix}-{kind}.gz'):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  return None


def load(data_config) -> ArraySource:
  directory = data_config.path
  if not directory or not os.path.isdir(directory):
    raise errors.DataNotFoundError(
        f'config.data.path={directory!r} is not a directory. The idx source '
        'reads MNIST-style files such as train-images-idx3-ubyte.gz and '
        'train-labels-idx1-ubyte.gz from it.')
  split = {'test': 't10k'}.get(data_config.split, data_config.split)
  if split:
    prefixes = [split]
  else:
    found = glob.glob(os.path.join(directory, '*-images-idx3-ubyte*'))
    prefixes = sorted({os.path.basename(p).split('-images-')[0] for p in found})
  images, labels = [], []
  for prefix in prefixes:
    image_path = _find(directory, prefix, 'images-idx3-ubyte')
    label_path = _find(directory, prefix, 'labels-idx1-ubyte')
    if image_path is None or label_path is None:
      raise errors.DataNotFoundError(
          f'No {prefix}-images-idx3-ubyte[.gz] / {prefix}-labels-idx1-ubyte[.gz] '
          f'pair in {directory} (it holds: {", ".join(sorted(os.listdir(directory))) or "nothing"}).'
          ' Set --config.data.split to one of the prefixes present, or leave it empty.')
    imgs, labs = read_idx(image_path, IMAGES_MAGIC), read_idx(label_path, LABELS_MAGIC)
    if len(imgs) != len(labs):
      raise errors.DataError(f'{image_path} has {len(imgs)} images but {label_path} '
                       f'has {len(labs)} labels.')
    images.append(imgs)
    labels.append(labs)
  if not images:
    raise errors.DataNotFoundError(f'No *-images-idx3-ubyte[.gz] files in {directory}.')
  images, labels = np.concatenate(images), np.concatenate(labels)
  size, channels = data_config.image_size, data_config.channels or 1
  if images.shape[1:] != (size, size) or channels != 1:
    images = np.stack([image_ops.normalise_array(im, size, channels) for im in images])
  else:
    images = images[..., None]
  return ArraySource(images, labels, [str(i) for i in range(max(10, int(labels.max()) + 1))],
                     f'IDX {directory} [{"+".join(prefixes)}] ({len(images)} images)')
