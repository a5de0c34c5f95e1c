"""Sample grids: a batch of uint8 images tiled into one PNG."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def tile(images: np.ndarray, ncols: int, pad: int = 2, pad_value: int = 255) -> np.ndarray:
  """(N, H, W, C) uint8 -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) image."""
  n, h, w, c = images.shape
  ncols = max(1, min(ncols, n))
  nrows = -(-n // ncols)
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c),
                 pad_value, np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, ncols)
    top, left = pad + r * (h + pad), pad + col * (w + pad)
    grid[top:top + h, left:left + w] = image
  return grid


def save_grid(images: np.ndarray, path: str, ncols: int) -> str:
  """Writes `images` as a grid PNG at `path` (directories created) and returns the path."""
  grid = tile(images, ncols)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
  return path
