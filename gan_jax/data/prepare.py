"""Preparing a dataset from the files its own site distributes: `python -m gan_jax.data.prepare DATASET --src=FILE --out=DIR`.

  cifar10        cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin/)
                 -> DIR/train/<class>/NNNNN.png and DIR/test/<class>/NNNNN.png,
                 the `folder` source's layout: --config.data.path=DIR/train
  mnist,         the four IDX .gz files (--src: their directory) -> checked (magic
  fashion_mnist  numbers, sizes, counts) and copied into DIR under the names the
                 `idx` source reads: --config.data.source=idx --config.data.path=DIR
  celeba         img_align_celeba.zip, read member by member without extracting
                 it -> DIR/NNNNNN.png, centre-cropped and resized to --size (64:
                 configs/dcgan_celeba.py) by `image_ops.normalise`, the function
                 the sources use, so the pixels are those on-the-fly reading gives;
                 PNG, lossless, for that reason. --limit=N for a quick try
  folder         any folder of images, every one decoded and reported (counts per
                 class, common sizes, modes, unreadable files with the reason);
                 with --out, a clean copy without the unreadable files (converted
                 to PNG at --size when given). Without --out, unreadable files
                 make the exit status 1.

Every preparation writes into DIR.partial and renames it to DIR at the end,
so DIR is complete or absent; a non-empty DIR is refused. DIR/prepare.json
records the source and the counts. Nothing is downloaded: docs/configs.md
says where each file comes from.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import io
import json
import os
import shutil
import sys
import zipfile
from typing import Callable, Iterable

import numpy as np
from PIL import Image
import tqdm

from gan_jax import cli, errors
from gan_jax.data import archives, check, folder, image_ops
from gan_jax.registry import Registry

MANIFEST = 'prepare.json'
CELEBA_SIZE = 64          # configs/dcgan_celeba.py's data.image_size
CELEBA_HINT = ('Download img_align_celeba.zip (1.4 GB) from the CelebA site '
               '(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, "Align&Cropped Images").')
FASHION_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                   'Sneaker', 'Bag', 'Ankle boot')
IDX_EXPECTED = {'train': 60_000, 't10k': 10_000}

DATASETS = Registry('dataset', 'DATASET (the first argument)')


@dataclasses.dataclass(frozen=True)
class Request:
  """One preparation's arguments, as the flags give them."""
  src: str
  out: str = ''
  limit: int = 0            # 0: everything
  size: int = 0             # 0: the dataset's default (celeba: 64; folder: keep sizes)
  channels: int = 0         # 0: the dataset's default (RGB)
  threads: int = 0          # 0: one per core, at most 16
  progress: bool = True
  log: Callable[[str], None] = print

  @property
  def workers(self) -> int:
    return self.threads or min(16, os.cpu_count() or 1)


def prepare(dataset: str, src: str, out: str = '', **options) -> dict:
  """Prepares `dataset` from `src` into `out` (see the module docstring); returns the manifest."""
  request = Request(src=os.path.abspath(os.path.expanduser(src)),
                    out=os.path.abspath(os.path.expanduser(out)) if out else '', **options)
  if dataset != 'folder' and not request.out:
    raise errors.ConfigError(f'{dataset} needs --out=DIR, the directory to write.')
  if request.out:
    refuse_nonempty(request.out)
  return DATASETS.get(dataset)(request)


# --- Output -------------------------------------------------------------------------------

def refuse_nonempty(out: str) -> None:
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise errors.ConfigError(f'--out={out} already exists and is not empty: choose a new '
                             'directory, or remove it to prepare again.')


@contextlib.contextmanager
def atomic_output(out: str, log: Callable[[str], None]):
  """Yields DIR.partial, renamed to `out` when the body succeeds and removed when it fails.

  A run stopped half-way leaves no `out` that looks complete; the next run
  removes its DIR.partial and starts again.
  """
  refuse_nonempty(out)
  partial = out + '.partial'
  if os.path.exists(partial):
    log(f'Removing {partial}, left by an unfinished preparation.')
    shutil.rmtree(partial)
  os.makedirs(partial)
  try:
    yield partial
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    raise
  if os.path.isdir(out):
    os.rmdir(out)   # empty: refuse_nonempty checked it
  os.rename(partial, out)


def write_manifest(directory: str, dataset: str, request: Request, **facts) -> dict:
  manifest = {'dataset': dataset, 'source': request.src,
              'source_bytes': _size_of(request.src),
              'written_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec='seconds'), **facts}
  with open(os.path.join(directory, MANIFEST), 'w') as f:
    json.dump(manifest, f, indent=2)
  return manifest


def _size_of(path: str) -> int | None:
  return os.path.getsize(path) if os.path.isfile(path) else None


def save_png(image: np.ndarray, path: str) -> None:
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def _bar(total: int, desc: str, request: Request) -> tqdm.tqdm:
  # disable=None: a bar on a terminal, nothing in a log file.
  return tqdm.tqdm(total=total, desc=desc, unit='image',
                   disable=None if request.progress else True)


def _count_lines(counts: dict[str, dict[str, int]]) -> list[str]:
  return [f'  {split}: {sum(c.values()):,} images; ' + ', '.join(f'{k} {v:,}' for k, v in
                                                              c.items())
          for split, c in counts.items()]


# --- CIFAR-10 ---------------------------------------------------------------------------

@DATASETS.register('cifar10')
def prepare_cifar10(request: Request) -> dict:
  archive = archives.Cifar10Binary(request.src)
  try:
    names = archive.class_names()
    with atomic_output(request.out, request.log) as tmp:
      counts = _write_cifar10(archive, names, tmp, request)
      manifest = write_manifest(tmp, 'cifar10', request, format='png', image_size=32,
                                class_names=names, counts=counts)
  finally:
    archive.close()
  request.log(f'Wrote CIFAR-10 to {request.out}:')
  for line in _count_lines(counts):
    request.log(line)
  request.log(f'Train with --config.data.source=folder '
              f'--config.data.path={os.path.join(request.out, "train")}')
  return manifest


def _write_cifar10(archive: archives.Cifar10Binary, names: list[str], out: str,
                   request: Request) -> dict:
  """Writes both splits; returns {split: {class: count}}.

  Files are numbered by their record's place in its split (data_batch_1
  first), whatever order the archive holds the batch files in.
  """
  split_of, first_index = {}, {}
  for split, files in archives.CIFAR10_SPLITS.items():
    index = 0
    for name in files:
      split_of[name], first_index[name] = split, index
      index += archive.num_records(name)
  limit = request.limit or None
  counts = {split: {n: 0 for n in names} for split in archives.CIFAR10_SPLITS}
  total = sum(min(n, limit or n) for n in
              (sum(archive.num_records(f) for f in files)
               for files in archives.CIFAR10_SPLITS.values()))
  with _bar(total, 'CIFAR-10', request) as bar:
    for name in archive.order(split_of):
      labels, images = archives.cifar10_records(archive.read(name), name, len(names))
      split = split_of[name]
      for i, (label, image) in enumerate(zip(labels, images)):
        if limit and sum(counts[split].values()) >= limit:
          break
        directory = os.path.join(out, split, names[label])
        os.makedirs(directory, exist_ok=True)
        save_png(image, os.path.join(directory, f'{first_index[name] + i:05d}.png'))
        counts[split][names[label]] += 1
        bar.update()
  return counts


# --- MNIST and Fashion-MNIST -------------------------------------------------------------

@DATASETS.register('mnist')
def prepare_mnist(request: Request) -> dict:
  return _prepare_idx('mnist', [str(i) for i in range(10)], request)


@DATASETS.register('fashion_mnist')
def prepare_fashion_mnist(request: Request) -> dict:
  return _prepare_idx('fashion_mnist', list(FASHION_CLASSES), request)


def _prepare_idx(dataset: str, class_names: list[str], request: Request) -> dict:
  """Checks the four IDX files, then copies them under the `idx` source's names."""
  if request.limit:
    raise errors.ConfigError(f'--limit does not apply to {dataset}: its files are copied whole.')
  files = archives.find_idx_files(request.src)
  counts = {}
  for prefix in archives.IDX_PREFIXES:
    images, labels = archives.read_idx_pair(files[(prefix, archives.IDX_KINDS[0])],
                                            files[(prefix, archives.IDX_KINDS[1])], 28,
                                            len(class_names))
    counts[prefix] = {name: int(n) for name, n in
                      zip(class_names, np.bincount(labels, minlength=len(class_names)))}
    if len(images) != IDX_EXPECTED[prefix]:
      request.log(f'Note: {prefix} holds {len(images):,} images; {dataset} has '
                  f'{IDX_EXPECTED[prefix]:,} (a subset, or another dataset?).')
  with atomic_output(request.out, request.log) as tmp:
    for (prefix, kind), path in sorted(files.items()):
      # The idx source reads PREFIX-KIND or PREFIX-KIND.gz, nothing else.
      shutil.copyfile(path, os.path.join(tmp, f'{prefix}-{kind}' +
                                         ('.gz' if path.endswith('.gz') else '')))
    manifest = write_manifest(tmp, dataset, request, format='idx', image_size=28,
                              class_names=class_names, counts=counts)
  request.log(f'Checked and copied {dataset} to {request.out}:')
  for line in _count_lines(counts):
    request.log(line)
  request.log(f'Train with --config.data.source=idx --config.data.path={request.out} '
              '(--config.data.split=train: the training images only)')
  return manifest


# --- CelebA ------------------------------------------------------------------------------

@DATASETS.register('celeba')
def prepare_celeba(request: Request) -> dict:
  size, channels = request.size or CELEBA_SIZE, request.channels or 3
  archive = archives.open_zip(request.src, CELEBA_HINT)
  with archive:
    members = archives.zip_images(archive, request.src)[:request.limit or None]

    def convert(member: zipfile.ZipInfo, out: str) -> tuple[int, int]:
      try:
        with Image.open(io.BytesIO(archive.read(member))) as img:  # read() checks the CRC
          original = img.size
          image = image_ops.normalise(img, size, channels)
      except Exception as e:  # pylint: disable=broad-except  (zip and PIL raise many types)
        raise errors.DataError(f'{request.src}: {member.filename} cannot be read '
                               f'({type(e).__name__}: {e}): the download is damaged; '
                               'download it again.') from e
      stem = os.path.splitext(os.path.basename(member.filename))[0]
      save_png(image, os.path.join(out, f'{stem}.png'))
      return original

    with atomic_output(request.out, request.log) as tmp:
      originals = _map(lambda m: convert(m, tmp), members, 'CelebA', request)
      sizes = _size_histogram(originals)
      manifest = write_manifest(tmp, 'celeba', request, format='png', image_size=size,
                                channels=channels, counts={'all': {'': len(members)}},
                                original_sizes=sizes)
  request.log(f'Wrote {len(members):,} CelebA images, {size}x{size} PNGs (centre-cropped and '
              f'resized as the sources do), to {request.out}; original sizes: '
              + ', '.join(f'{k} {v:,}' for k, v in sizes.items()))
  request.log(f'Train with --config.data.source=folder --config.data.path={request.out}')
  return manifest


def _map(fn: Callable, items: list, desc: str, request: Request) -> list:
  """`fn` over `items` on threads (PIL and zlib release the GIL), in order, with a progress bar."""
  results = []
  with concurrent.futures.ThreadPoolExecutor(request.workers) as pool, \
       _bar(len(items), desc, request) as bar:
    for start in range(0, len(items), 1024):  # in chunks: a bounded number of futures
      for result in pool.map(fn, items[start:start + 1024]):
        results.append(result)
        bar.update()
  return results


def _size_histogram(sizes: Iterable[tuple[int, int]], top: int = 5) -> dict[str, int]:
  counts: dict[tuple[int, int], int] = {}
  for s in sizes:
    counts[s] = counts.get(s, 0) + 1
  common = sorted(counts.items(), key=lambda kv: -kv[1])
  out = {f'{w}x{h}': n for (w, h), n in common[:top]}
  if len(common) > top:
    out['other'] = sum(n for _, n in common[top:])
  return out


# --- Any folder ----------------------------------------------------------------------------

@DATASETS.register('folder')
def prepare_folder(request: Request) -> dict:
  if not os.path.isdir(request.src):
    raise errors.DataNotFoundError(f'--src={request.src} is not a directory: give a folder of '
                                   'images, or one with a subfolder of images per class.')
  report = check.inspect_folder(request.src, request.threads, request.progress)
  for line in check.format_folder_report(report):
    request.log(line)
  if not request.out:
    if report.unreadable:
      raise errors.DataError(
          f'{len(report.unreadable)} unreadable image file(s) under {request.src} (listed '
          'above): remove or replace them, train with --config.data.skip_bad_files=True, or '
          'write a clean copy with --out=DIR.')
    return report.to_dict()
  bad = {path for path, _ in report.unreadable}
  paths = [p for p in folder.list_images(request.src)[0] if p not in bad][:request.limit or None]
  with atomic_output(request.out, request.log) as tmp:
    _map(lambda p: _copy_image(p, request.src, tmp, request), paths, 'Copying', request)
    manifest = write_manifest(
        tmp, 'folder', request, counts={'all': report.counts}, copied=len(paths),
        left_out=[p for p, _ in report.unreadable], image_size=request.size or None)
  how = f'as {request.size}x{request.size} PNGs' if request.size else 'unchanged'
  request.log(f'Copied {len(paths):,} readable images {how} to {request.out}'
              + (f', leaving out {len(bad)} unreadable' if bad else '') + '.')
  return manifest


def _copy_image(path: str, root: str, out: str, request: Request) -> None:
  target = os.path.join(out, os.path.relpath(path, root))
  os.makedirs(os.path.dirname(target), exist_ok=True)
  if not request.size:
    shutil.copyfile(path, target)
    return
  with Image.open(path) as img:
    image = image_ops.normalise(img, request.size, request.channels or 3)
  save_png(image, os.path.splitext(target)[0] + '.png')


# --- Command line --------------------------------------------------------------------------

def _define_flags():
  """Flags exist only when this module runs as a command, so importing it is side-effect free."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('src', None, 'The downloaded file (cifar10: cifar-10-binary.tar.gz; '
                      'celeba: img_align_celeba.zip) or directory (mnist, fashion_mnist: the '
                      'four .gz files; folder: the images).')
  flags.DEFINE_string('out', '', 'Directory to write (must not exist, or be empty); optional '
                      'for folder (report only).')
  flags.DEFINE_integer('limit', 0, 'Prepare only the first N images (per split); 0: all.')
  flags.DEFINE_integer('size', 0, 'Side of the square output images (celeba: default 64; '
                       'folder: default unchanged).')
  flags.DEFINE_integer('channels', 0, 'With --size: 1 (grayscale) or 3 (RGB, the default).')
  flags.DEFINE_integer('threads', 0, 'Decoding threads (0: one per core, at most 16).')
  flags.mark_flags_as_required(['src'])


def main(argv):
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  if len(argv) != 2:
    raise app.UsageError(f'Give one DATASET: {", ".join(DATASETS.names())} (got '
                         f'{" ".join(argv[1:]) or "none"}).')
  cli.start(argv[:1])
  fl = flags.FLAGS
  prepare(argv[1], fl.src, fl.out, limit=fl.limit, size=fl.size, channels=fl.channels,
          threads=fl.threads)


if __name__ == '__main__':
  _define_flags()
  cli.run(main, sys.argv)
