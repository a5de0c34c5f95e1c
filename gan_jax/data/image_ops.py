"""Decoding and normalising single images: any PIL mode to uint8 L or RGB, resize and centre-crop."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def to_mode(img: Image.Image, channels: int) -> Image.Image:
  """Converts any PIL image to 8-bit 'L' (channels=1) or 'RGB' (channels=3).

  16-bit and 32-bit integer images are rescaled, not clipped, and images with
  transparency (RGBA, LA, palette with a transparent colour) are composited
  onto white, so transparent pixels don't become arbitrary colours.
  """
  if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
    arr = np.asarray(img, dtype=np.int64)
    # 'I;16*' holds 16 bits; 'I' is what PIL makes of 16-bit PNGs too.
    peak = 65535 if img.mode.startswith('I;16') or arr.max(initial=0) > 255 else 255
    img = Image.fromarray((np.clip(arr, 0, peak) * (255 / peak)).round().astype(np.uint8))
  elif img.mode == 'F':
    arr = np.asarray(img, dtype=np.float32)
    img = Image.fromarray(np.clip(arr * (255 if arr.max(initial=0) <= 1 else 1), 0, 255).astype(np.uint8))
  if img.mode == 'P':
    img = img.convert('RGBA' if 'transparency' in img.info else 'RGB')
  if img.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
    rgba = img.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, rgba)
  return img.convert('L' if channels == 1 else 'RGB')


def fit(img: Image.Image, size: int) -> Image.Image:
  """Centre-crops to a square and resizes to size x size (antialiased bicubic)."""
  if img.size == (size, size):
    return img
  return ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC)


def to_array(img: Image.Image) -> np.ndarray:
  """PIL 'L' or 'RGB' image -> uint8 array of shape (H, W, C)."""
  arr = np.asarray(img, dtype=np.uint8)
  return arr[..., None] if arr.ndim == 2 else arr


def normalise(img: Image.Image, size: int, channels: int) -> np.ndarray:
  """Any PIL image -> uint8 (size, size, channels): what every image source and
  `gan_jax.data.prepare` do to an image, so that prepared and on-the-fly data agree."""
  return to_array(fit(to_mode(img, channels), size))


def normalise_array(image: np.ndarray, size: int, channels: int) -> np.ndarray:
  """uint8 (H, W) or (H, W, C) array -> uint8 (size, size, channels)."""
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  return normalise(Image.fromarray(image), size, channels)
