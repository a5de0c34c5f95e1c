"""A directory of images: class subfolders become labels, a flat folder is unlabelled.

Images are converted to L or RGB (`config.data.channels`, default RGB),
centre-cropped and resized to `config.data.image_size`. Listing is cheap, so a
class subset is chosen before anything is decoded.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from gan_jax import errors
from gan_jax.data import image_ops
from gan_jax.data.source import BadExampleError, DatasetInfo

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp', '.tif',
                    '.tiff', '.ppm', '.pgm')


def list_images(root: str) -> tuple[list[str], list[int], list[str]]:
  """Returns (paths, labels, class names); labels are -1 for a flat folder."""
  if not root or not os.path.isdir(root):
    raise errors.DataNotFoundError(
        f'config.data.path={root!r} is not a directory. Point it at a folder '
        'of images, or at a folder with one subfolder of images per class.')
  def images_under(directory):
    found = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
      dirnames.sort()
      found.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.'))
    return found

  subdirs = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))
  top_level = [os.path.join(root, f) for f in sorted(os.listdir(root))
               if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.')]
  paths, labels, class_names = [], [], []
  if subdirs and not top_level:
    for subdir in subdirs:
      files = images_under(os.path.join(root, subdir))
      if files:
        labels.extend([len(class_names)] * len(files))
        paths.extend(files)
        class_names.append(subdir)
  else:
    paths = images_under(root)
    labels = [-1] * len(paths)
  if not paths:
    raise errors.DataNotFoundError(
        f'No images in {root} (looked for {", ".join(IMAGE_EXTENSIONS)} files, '
        'in the folder itself or in one subfolder per class).')
  return paths, labels, class_names


def load_image(path: str, size: int, channels: int) -> np.ndarray:
  with Image.open(path) as img:
    img.load()  # decodes now, so a truncated file fails here, with its name
    return image_ops.normalise(img, size, channels)


class FolderSource:
  """Images decoded on access; `gan_jax.data.materialize` caches them in memory."""

  def __init__(self, data_config):
    self.paths, labels, class_names = list_images(data_config.path)
    self.size, self.channels = data_config.image_size, data_config.channels or 3
    labelled = bool(class_names)
    self.labels = np.asarray(labels if labelled else [0] * len(labels), np.int32)
    self.info = DatasetInfo(
        (self.size, self.size, self.channels), len(class_names),
        tuple(class_names), len(self.paths),
        f'folder {data_config.path} ({len(self.paths)} images'
        f'{f", {len(class_names)} classes" if labelled else ""})')

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict:
    path = self.paths[index]
    try:
      image = load_image(path, self.size, self.channels)
    except Exception as e:  # PIL raises many types for corrupt files
      raise BadExampleError(f'Cannot read image {path}: {e}') from e
    return {'image': image, 'label': self.labels[index]}
