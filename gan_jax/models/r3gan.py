"""R3GAN's G and D (Huang et al., "The GAN is dead; long live the GAN! A Modern GAN Baseline", NeurIPS 2024).

A port of the authors' networks (github.com/brownvc/R3GAN: R3GAN/Networks.py,
FusedOperators.py, Resamplers.py, and training/networks.py, which wraps them),
in NHWC:

  ResidualBlock   x + conv1x1(act(conv_kxk_grouped(act(conv1x1(x))))): widen by
                  the expansion factor, a k x k convolution in `cardinality`
                  groups, back to the width; no normalisation layers.
  act             BiasedActivation: LeakyReLU(0.2) of x plus a per-channel bias
                  (zero at start); the convolutions have no bias.
  init            MSR: weights ~ N(0, (gain / sqrt(fan_in))^2); in a block the
                  first two convolutions take gain = sqrt(2 / (1 + 0.2^2)) x
                  L^(-1/4) (L = the number of blocks in the network: variance
                  scaling for 3-layer branches, L^(-1/(2 x 3 - 2))), the last one
                  starts at zero, so every block starts as the identity.
  resampling      their Interpolative{Up,Down}sampler with the filter [1, 2, 1]:
                  [1, 2, 1] * [1, 1] = [1, 3, 3, 1], outer product, normalised;
                  2x up as a transposed convolution with 4x that kernel (stride 2,
                  padding 1), 2x down as a convolution with it (stride 2, padding
                  1): bilinear, zero outside the image. Computed here one axis at a
                  time with slices: the same sums. A 1x1 convolution changes the
                  width where two stages differ (before G's upsampling, after D's
                  downsampling).
  G               z (with the class embedding) -> generative basis: a learned
                  4x4 x width map (N(0, 1) at start) times a linear map of z, per
                  channel -> stages of blocks, upsampling between stages -> 1x1
                  conv to RGB. No tanh: like the authors' G, the output is not
                  squashed (pixels are clipped when images are written).
  D               1x1 conv from RGB -> stages of blocks, downsampling after each
                  but the last -> discriminative basis: a depthwise 4x4 conv
                  (valid) to a vector, then a linear map to the logit, or, for a
                  class-conditional D, to an embedding-sized vector whose dot
                  product with the class embedding is the logit (a projection).
  conditional     G: linear (no bias, MSR gain 1) of the one-hot class, as wide as
                  z, concatenated to z (`g_conditioning='embed'`). D: linear (no
                  bias, gain 1/sqrt(dim)) of the one-hot class, dim = the width of
                  D's last stage, dotted with D's basis output
                  (`d_conditioning='projection'`). Also 'concat' (one-hot to z;
                  one-hot maps on D's input) and 'none'.

Architectures (`ARCHITECTURES`, G's stages from 4x4 up; D runs them in
reverse) are the presets of the authors' train.py: 32 is 'CIFAR10' (4 stages
of width 3 x 1024 / 4 = 768, cardinality 96, 2 blocks each, expansion 2), 64
is 'FFHQ-64' (widths 768 x 4 and 384, cardinalities 96 x 4 and 48). The
noise is 64-dimensional in every preset (`model.latent_dim` = 64 in
configs/r3gan_cifar10.py). `model.width_scale` scales the cardinalities and
keeps the width of a group (768 / 96 = 8), so widths stay divisible.

Where the code and the paper differ, this follows the code. Departures from
the code: the authors run G's three highest-resolution stages and D's three
first stages in bfloat16 (their FP16Stages); here one `train.compute_dtype`
holds for the whole network (float32 by default).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers

# BiasedActivation.Gain: LeakyReLU(0.2)'s gain.
ACTIVATION_GAIN = math.sqrt(2 / (1 + 0.2 ** 2))
LINEAR_LAYERS_PER_BLOCK = 3
EXPANSION = 2
KERNEL = 3


@dataclasses.dataclass(frozen=True)
class Architecture:
  """G's stages from 4x4 up (D's are these in reverse): width, cardinality, blocks."""
  widths: tuple[int, ...]
  cardinalities: tuple[int, ...]
  blocks: tuple[int, ...]

  def scaled(self, scale: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(widths, cardinalities) at `scale`: cardinality scaled, the width of a group kept."""
    cards = tuple(max(1, int(round(c * scale))) for c in self.cardinalities)
    return tuple(c * (w // c0) for c, w, c0 in zip(cards, self.widths, self.cardinalities)), cards


ARCHITECTURES = {
    # train.py --preset=CIFAR10: WidthPerStage [3 * 1024 // 4] * 4, CardinalityPerStage
    # [3 * 32] * 4, BlocksPerStage [2] * 4.
    32: Architecture((768,) * 4, (96,) * 4, (2,) * 4),
    # train.py --preset=FFHQ-64: widths 3 * [1024] * 4 + [512] // 4, cardinalities
    # 3 * [32] * 4 + [16].
    64: Architecture((768,) * 4 + (384,), (96,) * 4 + (48,), (2,) * 5),
}


def msr_init(gain: float):
  """Their MSRInitializer: N(0, (gain / sqrt(fan_in))^2); a gain of 0 gives zeros."""
  if gain == 0:
    return nn.initializers.zeros_init()
  return nn.initializers.variance_scaling(gain ** 2, 'fan_in', 'normal')


def block_diagonal_conv(lhs, rhs, *args, feature_group_count: int = 1, **kwargs):
  """`lax.conv_general_dilated` (NHWC, HWIO), a grouped one computed as one dense conv on CPU.

  XLA's CPU backward pass of a grouped convolution is about ten times slower
  than that of the dense convolution with the block-diagonal kernel (measured
  at R3GAN's `:cpu` width, cardinality 8), though the dense one does
  `feature_group_count` times the arithmetic. The kernel parameter keeps its
  grouped shape (kh, kw, in / groups, out), so the variables, their
  initialisation and the results are the same either way; other backends
  run the grouped convolution itself.
  """
  groups = feature_group_count
  if groups == 1 or jax.default_backend() != 'cpu':
    return jax.lax.conv_general_dilated(lhs, rhs, *args, feature_group_count=groups, **kwargs)
  kh, kw, group_in, out = rhs.shape
  blocks = rhs.reshape(kh, kw, group_in, groups, out // groups)
  # full[h, w, (G, i), (g, o)] = blocks[h, w, i, g, o] if G == g else 0.
  full = jnp.einsum('hwigo,Gg->hwGigo', blocks, jnp.eye(groups, dtype=rhs.dtype))
  return jax.lax.conv_general_dilated(lhs, full.reshape(kh, kw, group_in * groups, out), *args,
                                      **kwargs)


def conv(features: int, kernel: int, gain: float, groups: int = 1,
         name: str | None = None) -> nn.Conv:
  """Their Convolution: no bias, 'same' padding for odd kernels, MSR init."""
  pad = (kernel - 1) // 2
  return nn.Conv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)),
                 feature_group_count=groups, use_bias=False, kernel_init=msr_init(gain),
                 conv_general_dilated=block_diagonal_conv, name=name)


class BiasedActivation(nn.Module):
  """LeakyReLU(0.2) of x + bias, the bias per channel and zero at start."""

  @nn.compact
  def __call__(self, x):
    bias = self.param('bias', nn.initializers.zeros_init(), (x.shape[-1],))
    return nn.leaky_relu(x + bias.astype(x.dtype), negative_slope=0.2)


class ResidualBlock(nn.Module):
  """x + 1x1(act(kxk grouped(act(1x1(x))))), widened by `expansion` inside; starts as the identity."""
  cardinality: int
  num_blocks: int       # in the whole network: the variance-scaling parameter L
  expansion: int = EXPANSION
  kernel: int = KERNEL

  @nn.compact
  def __call__(self, x):
    width = x.shape[-1]
    expanded = width * self.expansion
    gain = ACTIVATION_GAIN * self.num_blocks ** (-1 / (2 * LINEAR_LAYERS_PER_BLOCK - 2))
    y = conv(expanded, 1, gain, name='expand')(x)
    y = conv(expanded, self.kernel, gain, self.cardinality,
             name='grouped')(BiasedActivation(name='act1')(y))
    y = conv(width, 1, 0.0, name='project')(BiasedActivation(name='act2')(y))
    return x + y


def _shifted(x, axis: int, by: int):
  """x moved by `by` (+1: x[m - 1] at m; -1: x[m + 1]) along `axis`, zeros shifted in."""
  size = x.shape[axis]
  zero = jnp.zeros_like(jax.lax.slice_in_dim(x, 0, 1, axis=axis))
  if by > 0:
    return jnp.concatenate([zero, jax.lax.slice_in_dim(x, 0, size - 1, axis=axis)], axis)
  return jnp.concatenate([jax.lax.slice_in_dim(x, 1, size, axis=axis), zero], axis)


def _upsample_axis(x, axis: int):
  """2x along `axis`: out[2m] = (x[m-1] + 3 x[m]) / 4, out[2m+1] = (3 x[m] + x[m+1]) / 4."""
  even = 0.75 * x + 0.25 * _shifted(x, axis, 1)
  odd = 0.75 * x + 0.25 * _shifted(x, axis, -1)
  out = jnp.stack([even, odd], axis=axis + 1)
  shape = list(x.shape)
  shape[axis] *= 2
  return out.reshape(shape)


def _downsample_axis(x, axis: int):
  """1/2 along `axis`: out[m] = (x[2m-1] + 3 x[2m] + 3 x[2m+1] + x[2m+2]) / 8, zero outside."""
  size = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (1, 1)
  padded = jnp.pad(x, pad)    # padded[j] = x[j - 1]

  def taps(first: int):
    return jax.lax.slice_in_dim(padded, first, first + size - 1, stride=2, axis=axis)
  return (taps(0) + 3.0 * taps(1) + 3.0 * taps(2) + taps(3)) * 0.125


def upsample(x):
  """Their InterpolativeUpsampler([1, 2, 1]) in NHWC: bilinear 2x, zero outside the image."""
  return _upsample_axis(_upsample_axis(x, 1), 2)


def downsample(x):
  """Their InterpolativeDownsampler([1, 2, 1]) in NHWC: [1, 3, 3, 1] / 8 per axis, stride 2."""
  return _downsample_axis(_downsample_axis(x, 1), 2)


class GenerativeBasis(nn.Module):
  """G's first layer: a learned 4x4 x `features` map, scaled per channel by a linear map of z."""
  features: int

  @nn.compact
  def __call__(self, z):
    basis = self.param('basis', nn.initializers.normal(1.0), (4, 4, self.features))
    scale = nn.Dense(self.features, use_bias=False, kernel_init=msr_init(1.0),
                     name='linear')(z)
    return basis[None].astype(scale.dtype) * scale[:, None, None, :]


class DiscriminativeBasis(nn.Module):
  """D's last layer: a depthwise 4x4 valid conv to one vector, then linear to `features`."""
  features: int

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    x = nn.Conv(channels, (4, 4), padding='VALID', feature_group_count=channels,
                use_bias=False, kernel_init=msr_init(1.0), name='basis')(x)
    return nn.Dense(self.features, use_bias=False, kernel_init=msr_init(1.0),
                    name='linear')(x.reshape(x.shape[0], -1))


class R3GANGenerator(nn.Module, kw_only=True):
  """R3GAN's G: z (and the class) -> 4x4 basis -> stages of residual blocks, 2x up between -> RGB."""
  channels: int = 3
  num_classes: int = 0
  conditioning: str = 'embed'   # none | concat | embed (theirs)
  widths: tuple[int, ...]
  cardinalities: tuple[int, ...]
  blocks: tuple[int, ...]

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    del train   # nothing differs in training
    x = self._condition(z, labels)
    for i, (width, cardinality, count) in enumerate(
        zip(self.widths, self.cardinalities, self.blocks)):
      if i == 0:
        x = GenerativeBasis(width, name='basis')(x)
      else:
        if x.shape[-1] != width:
          x = conv(width, 1, 1.0, name=f'stage{i}_widen')(x)
        x = upsample(x)
      for j in range(count):
        x = ResidualBlock(cardinality, sum(self.blocks), name=f'stage{i}_block{j}')(x)
    return conv(self.channels, 1, 1.0, name='aggregate')(x)

  def _condition(self, z, labels):
    if not self.num_classes or self.conditioning == 'none':
      return z
    if self.conditioning == 'concat':
      return layers.concat_label(z, labels, self.num_classes)
    onehot = layers.class_weights(labels, self.num_classes, z.dtype)
    embedded = nn.Dense(z.shape[-1], use_bias=False, kernel_init=msr_init(1.0),
                        name='class_embed')(onehot)
    return jnp.concatenate([z, embedded], axis=-1)


class R3GANDiscriminator(nn.Module, kw_only=True):
  """R3GAN's D: RGB -> 1x1 conv -> stages of residual blocks, 2x down between -> basis -> logit."""
  num_classes: int = 0
  conditioning: str = 'projection'   # none | concat | projection (theirs)
  widths: tuple[int, ...]            # G's order (from 4x4 up); D runs them in reverse
  cardinalities: tuple[int, ...]
  blocks: tuple[int, ...]

  @nn.compact
  def __call__(self, images, labels=None, *, train: bool):
    del train
    widths, cards, counts = (t[::-1] for t in (self.widths, self.cardinalities, self.blocks))
    x = images
    if self.num_classes and self.conditioning == 'concat':
      x = layers.concat_label_maps(x, labels, self.num_classes)
    x = conv(widths[0], 1, 1.0, name='extract')(x)
    for i, (width, cardinality, count) in enumerate(zip(widths, cards, counts)):
      for j in range(count):
        x = ResidualBlock(cardinality, sum(counts), name=f'stage{i}_block{j}')(x)
      if i + 1 < len(widths):
        x = downsample(x)
        if width != widths[i + 1]:
          x = conv(widths[i + 1], 1, 1.0, name=f'stage{i}_narrow')(x)
    projection = bool(self.num_classes) and self.conditioning == 'projection'
    # The embedding is as wide as G's first stage (their ConditionEmbeddingDimension
    # = WidthPerStage[0]), which is D's last.
    out = DiscriminativeBasis(widths[-1] if projection else 1, name='basis')(x)
    if not projection:
      return out[:, 0]
    onehot = layers.class_weights(labels, self.num_classes, out.dtype)
    embedded = nn.Dense(out.shape[-1], use_bias=False,
                        kernel_init=msr_init(1 / math.sqrt(out.shape[-1])),
                        name='class_embed')(onehot)
    return jnp.sum(out * embedded, axis=-1)


def builder(size: int):
  """The `models.MODELS` builder of `r3gan{size}`: keyword-only, as `models.build` calls it."""
  arch = ARCHITECTURES[size]

  def build_r3gan(*, image_shape, num_classes, width_scale, g_conditioning, d_conditioning,
                  **_):
    widths, cards = arch.scaled(width_scale)
    return (R3GANGenerator(channels=image_shape[2], num_classes=num_classes,
                           conditioning=g_conditioning, widths=widths, cardinalities=cards,
                           blocks=arch.blocks),
            R3GANDiscriminator(num_classes=num_classes, conditioning=d_conditioning,
                               widths=widths, cardinalities=cards, blocks=arch.blocks))
  return build_r3gan
