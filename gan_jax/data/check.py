"""Checking data before a run reads it: a folder of images surveyed, and a configured source probed.

  inspect_folder  every image of a folder opened and decoded: counts per class,
                  the most common sizes, PIL modes, and the unreadable files with
                  the reason (`python -m gan_jax.data.prepare folder` prints it)
  probe_source    the configured source built and one example read, without
                  decoding the whole dataset (`python -m gan_jax.doctor` uses it)
  guess_source    'idx' or 'folder' for a bare path (the doctor's --data_path)
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import glob
import os
import tarfile

import numpy as np
from PIL import Image
import tqdm

from gan_jax import errors
from gan_jax.data import folder, source as source_lib

TARBALL_EXTENSIONS = ('.tar.gz', '.tgz', '.tar')


@dataclasses.dataclass
class FolderReport:
  """What `inspect_folder` found; `counts` maps class name ('' for a flat folder) to readable images."""
  root: str
  class_names: list[str]
  counts: dict[str, int]
  sizes: collections.Counter            # (width, height) -> images
  modes: collections.Counter            # PIL mode -> images
  unreadable: list[tuple[str, str]]     # (path, reason)

  @property
  def num_readable(self) -> int:
    return sum(self.counts.values())

  def to_dict(self) -> dict:
    return {'root': self.root, 'class_names': self.class_names, 'counts': self.counts,
            'sizes': {f'{w}x{h}': n for (w, h), n in self.sizes.most_common()},
            'modes': dict(self.modes.most_common()),
            'unreadable': [{'path': p, 'reason': r} for p, r in self.unreadable]}


def _open(path: str) -> tuple[tuple[int, int] | None, str | None, str | None]:
  """(size, mode, None) of a readable image, else (None, None, why)."""
  try:
    with Image.open(path) as img:
      size, mode = img.size, img.mode
      img.load()  # decodes it all: a truncated file fails here, not in training
    return size, mode, None
  except Exception as e:  # pylint: disable=broad-except  (PIL raises many types for bad files)
    return None, None, f'{type(e).__name__}: {e}'


def inspect_folder(root: str, threads: int = 0, progress: bool = True) -> FolderReport:
  """Opens and decodes every image `folder.FolderSource` would read under `root`."""
  paths, labels, class_names = folder.list_images(root)
  names = class_names or ['']
  counts = {name: 0 for name in names}
  sizes, modes, unreadable = collections.Counter(), collections.Counter(), []
  workers = threads or min(16, os.cpu_count() or 1)
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # PIL decodes without the GIL
    results = pool.map(_open, paths, chunksize=64)
    bar = tqdm.tqdm(results, total=len(paths), unit='image', desc=f'Reading {root}',
                    disable=None if progress else True)
    for path, label, (size, mode, why) in zip(paths, labels, bar):
      if why:
        unreadable.append((path, why))
        continue
      counts[names[max(label, 0)]] += 1
      sizes[size] += 1
      modes[mode] += 1
  return FolderReport(root, class_names, counts, sizes, modes, unreadable)


def format_folder_report(report: FolderReport, top: int = 5) -> list[str]:
  """Human-readable lines: totals, counts per class, common sizes, modes, unreadable files."""
  total = report.num_readable + len(report.unreadable)
  kind = (f'{len(report.class_names)} classes' if report.class_names
          else 'a flat folder (unlabelled)')
  lines = [f'{report.root}: {total:,} image files, {report.num_readable:,} readable; {kind}']
  if report.class_names:
    lines.append('  per class: ' + ', '.join(f'{k} {v:,}' for k, v in report.counts.items()))
  common = report.sizes.most_common(top)
  rest = report.num_readable - sum(n for _, n in common)
  lines.append('  sizes (WxH): ' + ', '.join(f'{w}x{h} {n:,}' for (w, h), n in common)
               + (f', {len(report.sizes) - len(common)} other sizes {rest:,}' if rest else ''))
  lines.append('  modes: ' + ', '.join(f'{m} {n:,}' for m, n in report.modes.most_common()))
  if report.unreadable:
    lines.append(f'  unreadable: {len(report.unreadable):,} file(s):')
    lines.extend(f'    {path}: {why}' for path, why in report.unreadable)
  return lines


def guess_source(path: str) -> str:
  """'idx' for a directory of MNIST-style IDX files, else 'folder'."""
  if os.path.isdir(path) and glob.glob(os.path.join(path, '*-images[-.]idx3-ubyte*')):
    return 'idx'
  return 'folder'


def probe_source(data_config) -> dict:
  """Builds the configured source and reads its first example, without decoding all of it.

  Returns {'source', 'path', 'description', 'num_examples', 'num_classes',
  'example_shape'}; raises the source's own error (DataNotFoundError,
  DataError, ConfigError), whose message says what to fix.
  """
  from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top  (the registry)
  # The source alone, not build_source: that decodes a whole folder into memory
  # (minutes on CelebA), and a class subset of TFDS reads every label.
  built = data_lib.SOURCES.get(data_config.source)(data_config)
  info = built.info
  classes = info.num_classes
  if data_config.classes:  # unknown names fail here, with the list of classes
    classes = len(source_lib.resolve_classes(data_config.classes, info.class_names))
  if len(built) == 0:
    raise errors.DataError(f'{info.description}: no examples to read.')
  example = built[0]
  return {'source': data_config.source, 'path': data_config.path,
          'description': info.description, 'num_examples': len(built), 'num_classes': classes,
          'example_shape': list(np.shape(example['image']))}


def probe_tarball(path: str) -> dict:
  """For a .tar.gz that a caller extracts itself (the accelerator suite's --sprint_data)."""
  if not os.path.isfile(path):
    raise errors.DataNotFoundError(f'{path} does not exist.')
  try:
    with tarfile.open(path, 'r:*') as tar:
      first = tar.next()
  except (tarfile.TarError, OSError, EOFError) as e:
    raise errors.DataError(f'{path} is not a readable tar archive ({e}).') from e
  if first is None:
    raise errors.DataError(f'{path} is an empty tar archive.')
  return {'source': 'tarball', 'path': path, 'description': f'tar archive {path}',
          'num_examples': None, 'num_classes': None, 'example_shape': None}
