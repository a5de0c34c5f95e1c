"""A conditional VAE: a conv encoder q(z | x, y) and a deconv decoder p(x | z, y), for 28x28 and 32x32.

The VAE family reuses the GAN plumbing: the decoder is the "generator" (called
as `G(z, labels, train=...)`, images in [-1, 1], so sampling from the prior
per class, grids, `generate` and evaluation work unchanged) and the encoder
takes the discriminator's slot in the state. Its ELBO lives in `gan_jax.vae`.
The class enters as a one-hot: constant maps on the encoder's input,
concatenated to z at the decoder's input. No BatchNorm, so the state's
batch_stats are empty.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from gan_jax.models import layers


def _levels(size: int) -> int:
  """Stride-2 stages: 2 for 28x28 (-> 7x7), 3 for 32x32 (-> 4x4)."""
  return 3 if size % 8 == 0 else 2


class Encoder(nn.Module, kw_only=True):
  """x (+ class maps) -> stride-2 convs -> dense -> (mean, log-variance) of q(z | x, y)."""
  latent_dim: int
  num_classes: int = 0
  widths: Sequence[int] = (32, 64, 128)
  hidden: int = 256

  @nn.compact
  def __call__(self, images, labels=None, *, train: bool = False):
    del train  # no BatchNorm or dropout
    x = layers.concat_label_maps(images, labels, self.num_classes)
    for width in self.widths[:_levels(images.shape[1])]:
      x = nn.leaky_relu(nn.Conv(width, (4, 4), strides=(2, 2))(x), 0.2)
    x = nn.leaky_relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)), 0.2)
    return nn.Dense(self.latent_dim, name='mean')(x), nn.Dense(self.latent_dim,
                                                              name='logvar')(x)


class Decoder(nn.Module, kw_only=True):
  """(z, one-hot y) -> dense -> stride-2 transposed convs -> pixels.

  Returns images 2 * sigmoid(raw) - 1 in [-1, 1]: the mean of either
  likelihood of `gan_jax.vae`, which reads the raw output (`logits=True`).
  """
  image_shape: tuple
  num_classes: int = 0
  widths: Sequence[int] = (32, 64, 128)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = False, logits: bool = False):
    del train
    size, _, channels = self.image_shape
    levels = _levels(size)
    widths = list(self.widths[:levels])[::-1]
    base = size // 2 ** levels
    x = layers.concat_label(z, labels, self.num_classes)
    x = nn.relu(nn.Dense(base * base * widths[0])(x)).reshape(-1, base, base, widths[0])
    for width in widths[1:]:
      x = nn.relu(nn.ConvTranspose(width, (4, 4), strides=(2, 2))(x))
    raw = nn.ConvTranspose(channels, (4, 4), strides=(2, 2))(x)
    if logits:
      return raw
    return nn.sigmoid(raw) * 2.0 - 1.0
