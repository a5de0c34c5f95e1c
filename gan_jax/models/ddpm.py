"""A small class-conditional U-Net that predicts the noise of a DDPM (Ho et al. 2020).

Two stride-2 levels (28 -> 14 -> 7, or 32 -> 16 -> 8), two residual blocks
per level with GroupNorm and SiLU, no attention: a few hundred thousand
parameters at width 32, small enough to train on a CPU. The timestep enters
as a sinusoidal embedding through an MLP; the class as a learned embedding
added to it, with one extra "null" class for classifier-free guidance.

Called as `UNet(x, labels, train=..., t=...)`. `x` may also be the flat
(B, H*W*C) noise vector the GAN plumbing passes at initialisation; `t`
defaults to 0 there. The diffusion itself (schedules, loss, samplers) is in
`gan_jax.diffusion`.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def timestep_embedding(t, dim: int):
  """Sinusoidal embedding of integer timesteps (B,) -> (B, dim)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class ResBlock(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x, emb):
    h = nn.Conv(self.width, (3, 3))(nn.silu(nn.GroupNorm(min(8, x.shape[-1]))(x)))
    h = h + nn.Dense(self.width)(nn.silu(emb))[:, None, None, :]
    h = nn.Conv(self.width, (3, 3))(nn.silu(nn.GroupNorm(min(8, self.width))(h)))
    if x.shape[-1] != self.width:
      x = nn.Conv(self.width, (1, 1))(x)
    return x + h


class UNet(nn.Module, kw_only=True):
  image_shape: tuple
  num_classes: int = 0
  widths: Sequence[int] = (32, 64, 64)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = False, t=None):
    del train
    if x.ndim == 2:
      x = x.reshape((x.shape[0], *self.image_shape))
    batch = x.shape[0]
    t = jnp.zeros((batch,), jnp.int32) if t is None else t
    emb_dim = 4 * self.widths[0]
    # Computed in float32 (its phases need the precision), used in x's dtype.
    emb = timestep_embedding(t, self.widths[0]).astype(x.dtype)
    emb = nn.Dense(emb_dim)(nn.silu(nn.Dense(emb_dim)(emb)))
    if self.num_classes:
      labels = jnp.zeros((batch,), jnp.int32) if labels is None else labels
      emb = emb + nn.Embed(self.num_classes + 1, emb_dim)(labels)   # + the null class
    h = nn.Conv(self.widths[0], (3, 3))(x)
    skips = []
    for level, width in enumerate(self.widths):
      h = ResBlock(width)(h, emb)
      h = ResBlock(width)(h, emb)
      skips.append(h)
      if level < len(self.widths) - 1:
        h = nn.Conv(width, (3, 3), strides=(2, 2))(h)
    for level, width in reversed(list(enumerate(self.widths))):
      h = ResBlock(width)(jnp.concatenate([h, skips[level]], -1), emb)
      if level > 0:
        h = jnp.repeat(jnp.repeat(h, 2, 1), 2, 2)   # nearest-neighbour upsampling
        h = nn.Conv(self.widths[level - 1], (3, 3))(h)
    h = nn.silu(nn.GroupNorm(min(8, h.shape[-1]))(h))
    return nn.Conv(self.image_shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)


class NoDiscriminator(nn.Module):
  """Fills the discriminator slot of the state for families without one (one unused scalar)."""

  @nn.compact
  def __call__(self, images, labels=None, *, train: bool = False):
    del labels, train
    return jnp.zeros((images.shape[0],)) * self.param('unused', nn.initializers.zeros, ())
