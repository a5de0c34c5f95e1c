"""Reading the files that datasets' own sites distribute: CIFAR-10's binary tarball, MNIST-style IDX files, CelebA's zip.

`gan_jax.data.prepare` turns them into what the data sources read. Every
check here raises `errors.DataError` (or `DataNotFoundError`) naming the file
and what is wrong with it, because a damaged or wrong download is the usual
cause and the fix is to download it again.

  Cifar10Binary   cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin/):
                  fixed-size records, 1 label byte + 3,072 pixel bytes; no pickle
  find_idx_files  the four IDX files of MNIST or Fashion-MNIST in a directory
  read_idx_pair   one split's images and labels, checked against each other
  zip_images      the JPEG members of a zip such as img_align_celeba.zip
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile

import numpy as np

from gan_jax import errors
from gan_jax.data import idx

# --- CIFAR-10, binary version ------------------------------------------------------------

CIFAR10_SIDE = 32
CIFAR10_RECORD = 1 + 3 * CIFAR10_SIDE * CIFAR10_SIDE   # label byte, then 1024 R, 1024 G, 1024 B
CIFAR10_SPLITS = {'train': tuple(f'data_batch_{i}.bin' for i in range(1, 6)),
                  'test': ('test_batch.bin',)}
CIFAR10_META = 'batches.meta.txt'
CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
_SAFE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')


class Cifar10Binary:
  """The files of CIFAR-10's binary version, from the tarball or the folder it extracts to.

  Only the six batch files and batches.meta.txt are read. The Python version
  (cifar-10-python.tar.gz) is refused: its batches are pickles, which can run
  code when loaded.
  """

  def __init__(self, src: str):
    self.src = src
    self._tar = None
    if os.path.isdir(src):
      inner = os.path.join(src, 'cifar-10-batches-bin')
      folder = inner if os.path.isdir(inner) else src
      self._files = {name: os.path.join(folder, name) for name in os.listdir(folder)}
    elif os.path.isfile(src):
      try:
        self._tar = tarfile.open(src, 'r:*')
        members = self._tar.getmembers()
      except (tarfile.TarError, OSError, EOFError) as e:
        raise errors.DataError(f'{src} is not a readable tar archive ({e}): expected '
                               f'cifar-10-binary.tar.gz from {CIFAR10_URL}.') from e
      self._files = {os.path.basename(m.name): m for m in members if m.isfile()}
    else:
      raise errors.DataNotFoundError(f'--src={src!r} does not exist. Download '
                                     f'{CIFAR10_URL} (162 MB) and pass its path.')
    self._check_complete()

  def _check_complete(self) -> None:
    needed = [CIFAR10_META, *CIFAR10_SPLITS['train'], *CIFAR10_SPLITS['test']]
    missing = [name for name in needed if name not in self._files]
    if not missing:
      return
    if 'data_batch_1' in self._files or 'batches.meta' in self._files:
      raise errors.DataError(
          f'{self.src} is the Python version of CIFAR-10 (pickled batches), which gan_jax does '
          f'not read (unpickling can run code). Download the binary version: {CIFAR10_URL}.')
    raise errors.DataError(f'{self.src} lacks {", ".join(missing)}: it is not (all of) '
                           f'cifar-10-binary.tar.gz ({CIFAR10_URL}), or the download is incomplete.')

  def read(self, name: str) -> bytes:
    entry = self._files[name]
    try:
      if self._tar is None:
        with open(entry, 'rb') as f:
          return f.read()
      return self._tar.extractfile(entry).read()
    except (tarfile.TarError, OSError, EOFError) as e:
      raise errors.DataError(f'Cannot read {name} from {self.src} ({e}): the download is '
                             'damaged; download it again.') from e

  def num_records(self, name: str) -> int:
    """Whole records in the file `name`, from its size (a partial record is caught on reading)."""
    entry = self._files[name]
    size = os.path.getsize(entry) if self._tar is None else entry.size
    return size // CIFAR10_RECORD

  def order(self, names) -> list[str]:
    """`names` in the order they sit in the archive, so a .tar.gz is decompressed once."""
    if self._tar is None:
      return list(names)
    return sorted(names, key=lambda n: self._files[n].offset)

  def class_names(self) -> list[str]:
    """The class names of batches.meta.txt, one a line, in label order."""
    text = self.read(CIFAR10_META)
    try:
      names = [line.strip() for line in text.decode('ascii').splitlines() if line.strip()]
    except UnicodeDecodeError as e:
      raise errors.DataError(f'{CIFAR10_META} in {self.src} is not a text file of class '
                             'names.') from e
    bad = [n for n in names if not _SAFE_NAME.match(n)]
    if not names or bad:
      raise errors.DataError(f'{CIFAR10_META} in {self.src} should hold one class name a '
                             f'line (letters, digits, _.+-); found {names[:12]}.')
    return names

  def close(self) -> None:
    if self._tar is not None:
      self._tar.close()


def cifar10_records(data: bytes, name: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """(labels (N,), images (N, 32, 32, 3)) of one binary batch file, uint8."""
  if not data or len(data) % CIFAR10_RECORD:
    raise errors.DataError(
        f'{name} holds {len(data):,} bytes, not a whole number of {CIFAR10_RECORD:,}-byte '
        'records (1 label byte + 3,072 pixel bytes): it is truncated or not from the '
        'binary version of CIFAR-10; download it again.')
  records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD)
  labels = records[:, 0]
  if labels.max() >= num_classes:
    where = int(np.argmax(labels >= num_classes))
    raise errors.DataError(f'{name}, record {where}: label {labels[where]}, but '
                           f'{CIFAR10_META} names only {num_classes} classes.')
  side = CIFAR10_SIDE
  # Each record stores the red plane, then green, then blue, each row-major.
  images = records[:, 1:].reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
  return labels, images


# --- MNIST-style IDX files ---------------------------------------------------------------

IDX_PREFIXES = ('train', 't10k')
IDX_KINDS = ('images-idx3-ubyte', 'labels-idx1-ubyte')


def _idx_candidates(prefix: str, kind: str) -> list[str]:
  # Some mirrors write 'train-images.idx3-ubyte' (a dot for the second dash).
  dotted = kind.replace('-idx', '.idx')
  return [f'{prefix}-{kind}.gz', f'{prefix}-{kind}', f'{prefix}-{dotted}.gz',
          f'{prefix}-{dotted}']


def find_idx_files(src: str) -> dict[tuple[str, str], str]:
  """{(prefix, kind): path} for the four files of MNIST or Fashion-MNIST in `src`.

  `src` is their directory, or one of them (its directory is searched).
  """
  directory = src if os.path.isdir(src) else os.path.dirname(src) or '.'
  if not os.path.isdir(directory):
    raise errors.DataNotFoundError(f'--src={src!r} does not exist: pass the directory '
                                   'holding the four downloaded .gz files.')
  found, missing = {}, []
  for prefix in IDX_PREFIXES:
    for kind in IDX_KINDS:
      paths = [os.path.join(directory, n) for n in _idx_candidates(prefix, kind)]
      path = next((p for p in paths if os.path.isfile(p)), None)
      if path is None:
        missing.append(f'{prefix}-{kind}.gz')
      else:
        found[(prefix, kind)] = path
  if missing:
    holds = ', '.join(sorted(os.listdir(directory))[:12]) or 'nothing'
    raise errors.DataNotFoundError(f'{directory} lacks {", ".join(missing)} (it holds: '
                                   f'{holds}). Download all four files of the dataset.')
  return found


def read_idx_pair(images_path: str, labels_path: str, side: int,
                  num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """(images (N, side, side), labels (N,)) of one split, checked: magic numbers, sizes, counts."""
  images = idx.read_idx(images_path, idx.IMAGES_MAGIC)
  labels = idx.read_idx(labels_path, idx.LABELS_MAGIC)
  if images.ndim != 3 or images.shape[1:] != (side, side):
    raise errors.DataError(f'{images_path} holds images of shape {images.shape[1:]}, '
                           f'expected ({side}, {side}).')
  if labels.ndim != 1:
    raise errors.DataError(f'{labels_path} holds an array of shape {labels.shape}, '
                           'expected one label per image.')
  if len(images) != len(labels):
    raise errors.DataError(f'{images_path} has {len(images):,} images but {labels_path} '
                           f'has {len(labels):,} labels: the files do not belong together.')
  if len(labels) and labels.max() >= num_classes:
    raise errors.DataError(f'{labels_path} holds label {labels.max()}, expected 0..'
                           f'{num_classes - 1}.')
  return images, labels


# --- Zips of JPEGs (CelebA) --------------------------------------------------------------

JPEG_EXTENSIONS = ('.jpg', '.jpeg')


def open_zip(src: str, hint: str) -> zipfile.ZipFile:
  """The zip at `src`; DataNotFoundError or DataError (with `hint`: where to get it) otherwise."""
  if not os.path.isfile(src):
    raise errors.DataNotFoundError(f'--src={src!r} does not exist. {hint}')
  try:
    return zipfile.ZipFile(src)
  except (zipfile.BadZipFile, OSError) as e:
    raise errors.DataError(f'{src} is not a readable zip archive ({e}): a damaged or '
                           f'incomplete download? {hint}') from e


def zip_images(archive: zipfile.ZipFile, src: str) -> list[zipfile.ZipInfo]:
  """The JPEG members of `archive`, sorted by name (macOS's __MACOSX/ copies left out)."""
  members = sorted((m for m in archive.infolist()
                    if not m.is_dir() and m.filename.lower().endswith(JPEG_EXTENSIONS)
                    and not m.filename.startswith('__MACOSX/')
                    and not os.path.basename(m.filename).startswith('.')),
                   key=lambda m: m.filename)
  if not members:
    raise errors.DataError(f'{src} holds no JPEG files (.jpg): expected '
                           'img_align_celeba.zip, whose img_align_celeba/ holds 000001.jpg ...')
  names = [os.path.basename(m.filename) for m in members]
  if len(set(names)) != len(names):
    raise errors.DataError(f'{src} holds several JPEGs of the same name in different folders; '
                           'a flat output folder cannot keep them apart.')
  return members
