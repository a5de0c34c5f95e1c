"""The random-access dataset interface every data source implements, and class subsets.

A source is a sequence of examples {'image': uint8 (H, W, C), 'label': int32}
already at the configured size and channel count, plus a `DatasetInfo`. The
batching pipeline (`gan_jax.data.pipeline`) only ever indexes into it, which
is what makes the data order a pure function of (seed, step).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from typing import Sequence

from absl import logging
import numpy as np

from gan_jax import errors


class BadExampleError(errors.DataError):
  """An example that cannot be decoded (a corrupt or truncated file)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  image_shape: tuple          # (H, W, C) of every example
  num_classes: int            # 0 for unlabelled data
  class_names: tuple          # one name per class, () when unlabelled
  num_examples: int
  description: str            # for logs: where the data came from

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> 'DatasetInfo':
    return cls(tuple(d['image_shape']), d['num_classes'],
               tuple(d['class_names']), d['num_examples'], d['description'])


class ArraySource:
  """A source held in memory: uint8 images (N, H, W, C) and int32 labels (N,)."""

  def __init__(self, images: np.ndarray, labels: np.ndarray | None,
               class_names: Sequence[str], description: str):
    if len(images) == 0:
      raise errors.DataError(f'{description}: the dataset has no images.')
    self.images = images
    self.labels = (np.zeros(len(images), np.int32) if labels is None
                   else labels.astype(np.int32))
    num_classes = len(class_names) if labels is not None else 0
    self.info = DatasetInfo(tuple(images.shape[1:]), num_classes,
                            tuple(class_names), len(images), description)

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> dict:
    return {'image': self.images[index], 'label': self.labels[index]}

  def get_batch(self, indices: np.ndarray) -> dict:
    return {'image': self.images[indices], 'label': self.labels[indices]}


class SubsetSource:
  """The examples of `source` at `keep`, relabelled with `labels`."""

  def __init__(self, source, keep: np.ndarray, labels: np.ndarray,
               class_names: Sequence[str], description: str):
    if len(keep) == 0:
      raise errors.DataError(f'{description}: no examples of the selected classes.')
    self._source = source
    self._keep = keep
    self.labels = labels.astype(np.int32)
    self.info = dataclasses.replace(
        source.info, num_classes=len(class_names),
        class_names=tuple(class_names), num_examples=len(keep),
        description=description)

  def __len__(self) -> int:
    return len(self._keep)

  def __getitem__(self, index: int) -> dict:
    example = dict(self._source[int(self._keep[index])])
    example['label'] = self.labels[index]
    return example


class MirroredSource:
  """`source` and its left-right mirror image: example i + N is example i flipped (`data.mirror`).

  StyleGAN's and R3GAN's `--mirror=1` (their dataset's xflip): the data twice
  as long, each image once as it is and once mirrored, labels kept.
  """

  def __init__(self, source):
    self._source = source
    self._n = len(source)
    self.labels = np.concatenate([source.labels, source.labels])
    self.info = dataclasses.replace(source.info, num_examples=2 * self._n,
                                    description=f'{source.info.description}, and mirrored')

  def __len__(self) -> int:
    return 2 * self._n

  def __getitem__(self, index: int) -> dict:
    example = dict(self._source[int(index) % self._n])
    if index >= self._n:
      example['image'] = np.ascontiguousarray(example['image'][:, ::-1])
    return example

  def get_batch(self, indices: np.ndarray) -> dict:
    indices = np.asarray(indices)
    if hasattr(self._source, 'get_batch'):
      batch = dict(self._source.get_batch(indices % self._n))
    else:
      flat = [self._source[int(i)] for i in (indices % self._n).reshape(-1)]
      batch = {key: np.stack([e[key] for e in flat]).reshape(
          indices.shape + np.shape(flat[0][key])) for key in flat[0]}
    flip = (indices >= self._n).reshape(indices.shape + (1, 1, 1))
    batch['image'] = np.where(flip, batch['image'][..., :, ::-1, :], batch['image'])
    return batch


def resolve_classes(requested: Sequence, class_names: Sequence[str],
                    config_key: str = 'config.data.classes') -> list[int]:
  """Turns class names or indices (or 'a,b' strings) into sorted class indices."""
  wanted = []
  for item in requested:
    if isinstance(item, str):
      wanted.extend(p.strip() for p in item.split(',') if p.strip())
    else:
      wanted.append(item)
  if wanted and not class_names:
    raise errors.ConfigError(f'{config_key}={tuple(requested)} selects classes, but '
                     'this dataset has no labels.')
  indices = set()
  for item in wanted:
    if isinstance(item, str) and item in class_names:
      indices.add(list(class_names).index(item))
    elif isinstance(item, (int, np.integer)) or (isinstance(item, str) and item.isdigit()):
      index = int(item)
      if not 0 <= index < len(class_names):
        raise errors.ConfigError(f'{config_key}: class index {index} is out of range '
                         f'0..{len(class_names) - 1}.')
      indices.add(index)
    else:
      raise errors.ConfigError(f'{config_key}: unknown class {item!r}. Classes are: '
                       f'{", ".join(class_names)}.')
  return sorted(indices)


def select_classes(labels: np.ndarray, class_names: Sequence[str],
                   requested: Sequence) -> tuple[np.ndarray, np.ndarray, tuple]:
  """Returns (kept example indices, their labels renumbered 0..k-1, kept names)."""
  indices = resolve_classes(requested, class_names)
  keep = np.flatnonzero(np.isin(labels, indices))
  remap = np.full(max(len(class_names), 1), -1, np.int32)
  remap[indices] = np.arange(len(indices), dtype=np.int32)
  return keep, remap[labels[keep]], tuple(class_names[i] for i in indices)


def materialize(source, skip_bad: bool) -> ArraySource:
  """Decodes every example of `source` once, in parallel, into an ArraySource.

  A BadExampleError is fatal unless `skip_bad`, in which case the example is
  dropped and the count logged.
  """
  n = len(source)
  start = time.time()
  logging.info('Decoding %d examples of %s into memory', n, source.info.description)

  def load(index):
    try:
      return source[index]
    except BadExampleError as e:
      if not skip_bad:
        raise BadExampleError(
            f'{e}. Fix or remove the file, or set --config.data.skip_bad_files=True '
            'to skip unreadable examples.') from e
      logging.warning('Skipping unreadable example: %s', e)
      return None

  examples = []
  with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
    for i, example in enumerate(pool.map(load, range(n), chunksize=256)):
      examples.append(example)
      if (i + 1) % max(1, n // 10) == 0 and time.time() - start > 5:
        logging.info('  decoded %d/%d', i + 1, n)
  good = [e for e in examples if e is not None]
  skipped = n - len(good)
  if not good:
    raise errors.DataError(f'None of the {n} examples of {source.info.description} '
                     'could be read.')
  info = source.info
  description = info.description + (f', {skipped} unreadable skipped' if skipped else '')
  if skipped:
    logging.warning('Skipped %d unreadable of %d examples', skipped, n)
  logging.info('Decoded %d examples in %.1fs', len(good), time.time() - start)
  return ArraySource(np.stack([e['image'] for e in good]),
                     np.asarray([e['label'] for e in good]) if info.num_classes else None,
                     info.class_names, description)
