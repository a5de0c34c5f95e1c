"""The training batch stream: a pure function of (seed, step), sharded across processes.

The dataset order is a fresh seeded permutation every epoch, concatenated into
one endless stream of positions. Global batch c holds stream positions
[c*B, (c+1)*B), and process p reads only its slice of each, so the global
batch is the same whatever the number of processes, and resuming at step k
needs nothing but k. grain's `MapDataset` runs the reads on background threads
and prefetches. (grain's own element-wise shuffle was measured at 3 ms per
128-image batch on the 2-core CPU; the vectorised permutation here costs tens
of microseconds.)
"""

from __future__ import annotations

import functools
import sys
from typing import Iterator

import grain
import numpy as np

from gan_jax import errors


class StreamOrder:
  """Maps stream positions to example indices: one permutation per epoch."""

  def __init__(self, num_examples: int, seed: int):
    self.num_examples = num_examples
    self.seed = seed

  @functools.lru_cache(maxsize=4)
  def permutation(self, epoch: int) -> np.ndarray:
    return np.random.default_rng((self.seed, epoch)).permutation(self.num_examples)

  def indices(self, start: int, count: int) -> np.ndarray:
    positions = np.arange(start, start + count)
    epochs, offsets = np.divmod(positions, self.num_examples)
    out = np.empty(count, np.int64)
    for epoch in np.unique(epochs):
      where = epochs == epoch
      out[where] = self.permutation(int(epoch))[offsets[where]]
    return out


def batches(source, *, global_batch: int, n_disc: int, seed: int,
            start_step: int = 0, process_index: int = 0, process_count: int = 1,
            read_threads: int = 1, prefetch: int = 4) -> Iterator[dict]:
  """Yields one step's data from `start_step` on, forever.

  Each item is {'image': uint8 (n_disc, B/P, H, W, C), 'label': int32
  (n_disc, B/P)}: one real batch for each of the step's D updates, this
  process's share of the global batch B over P processes.
  """
  if global_batch % process_count:
    raise errors.ConfigError(f'config.train.batch_size={global_batch} is not divisible '
                     f'by the {process_count} processes.')
  if len(source) < global_batch:
    raise errors.DataError(f'The dataset has {len(source)} examples, fewer than one '
                     f'batch (config.train.batch_size={global_batch}).')
  local_batch = global_batch // process_count
  order = StreamOrder(len(source), seed)

  def step_indices(step: int) -> np.ndarray:
    rows = [order.indices((step * n_disc + u) * global_batch + process_index * local_batch,
                          local_batch) for u in range(n_disc)]
    return np.stack(rows)

  ds = grain.MapDataset.range(start_step, sys.maxsize)
  ds = ds.map(lambda step: fetch(source, step_indices(step)))
  if read_threads <= 0:
    return iter(ds)
  options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch)
  return iter(ds.to_iter_dataset(options))


def fetch(source, indices: np.ndarray) -> dict:
  """The examples at `indices` (any shape) as stacked arrays of that leading shape."""
  if hasattr(source, 'get_batch'):
    return source.get_batch(indices)
  flat = [source[int(i)] for i in indices.reshape(-1)]
  return {key: np.stack([e[key] for e in flat]).reshape(indices.shape + np.shape(flat[0][key]))
          for key in flat[0]}


def read_all_images(source: str, path: str, image_size: int,
                    channels: int) -> tuple[np.ndarray, str]:
  """Every image of a dataset in memory: uint8 (N, size, size, channels), and its description.

  `source` and `path` are config.data.source and config.data.path (an image
  folder, IDX files, ...), read at `image_size` with `channels` and the base
  config's other data settings (every split, every class).
  """
  # pylint: disable=g-import-not-at-top  (the package imports its modules, not this one)
  from gan_jax import data
  from gan_jax.config import base as config_base
  data_config = config_base.get_config().data
  data_config.source, data_config.path, data_config.split = source, path, ''
  data_config.image_size, data_config.channels = image_size, channels
  dataset = data.build_source(data_config)
  images = np.asarray(fetch(dataset, np.arange(len(dataset)))['image'], np.uint8)
  return images, dataset.info.description
