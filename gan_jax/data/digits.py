"""The embedded default data: scikit-learn's 1,797 bundled 8x8 handwritten digits.

They ship inside scikit-learn, so a first run needs no download. The 17 grey
levels are stretched to 0..255 and the digits upscaled to `image_size`.
"""

from __future__ import annotations

import numpy as np

from gan_jax.data import image_ops
from gan_jax.data.source import ArraySource


def load(data_config) -> ArraySource:
  from sklearn.datasets import load_digits  # imported here: only this source needs it
  digits = load_digits()
  raw = np.round(digits.images * (255 / 16)).astype(np.uint8)
  channels = data_config.channels or 1
  images = np.stack([image_ops.normalise_array(im, data_config.image_size, channels)
                     for im in raw])
  return ArraySource(images, digits.target, [str(i) for i in range(10)],
                     f'scikit-learn digits ({len(images)} images, 8x8 -> '
                     f'{data_config.image_size}x{data_config.image_size})')
