"""Layers of the model zoo: PyTorch-shaped convs, spectral norm, conditioning, minibatch features.

The reference experiments are PyTorch code, so convolutions here take PyTorch's
(kernel, stride, padding) arguments and produce exactly PyTorch's output
shapes; a weight ported from a reference model lines up without guesswork.

Conditioning is chosen separately for G (`G_CONDITIONINGS`) and D
(`D_CONDITIONINGS`); every model calls the same three hooks, so each option
works in every architecture:
  G input   `concat_label` (concat)           D input   `concat_label_maps` (concat)
  G norms   `generator_norm` (cbn)            D output  `discriminator_output`
                                                        (projection, acgan)

Labels are int class ids (N,). G's hooks (and D's input hooks) also take
class weights (N, C), floats, in their place: a blend of classes, used where
the one-hot or the class's embedding row would be (a class morph,
`gan_jax.analysis.latent`). `discriminator_output` takes class ids only.

D's minibatch layers (`config.model.d_minibatch`, `Minibatch`), which the D
models that support them insert before their last layer through
`minibatch_features`: `minibatch_stddev` (ProGAN/StyleGAN) and
`MinibatchDiscrimination` (Salimans et al. 2016).
"""

from __future__ import annotations

import dataclasses
import functools

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import errors

# PyTorch initialises conv and dense layers with kaiming_uniform(a=sqrt(5)),
# i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) = variance_scaling(1/3, fan_in, uniform).
torch_kernel_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')


# Glorot (Xavier) uniform with gain sqrt(2), the SNGAN ResNets' residual-branch init.
glorot_relu_init = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')
glorot_init = nn.initializers.xavier_uniform()


def conv(features: int, kernel: int, stride: int = 1, padding: int = 0,
         use_bias: bool = True, name: str | None = None,
         kernel_init=torch_kernel_init) -> nn.Conv:
  """`torch.nn.Conv2d(in, features, kernel, stride, padding)` in NHWC."""
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((padding, padding), (padding, padding)),
                 use_bias=use_bias, kernel_init=kernel_init, name=name)


CONV_TRANSPOSE_IMPLS = ('subpixel', 'xla')


def conv_transpose(features: int, kernel: int, stride: int = 1,
                   padding: int = 0, use_bias: bool = True,
                   name: str | None = None, impl: str = 'subpixel') -> nn.Module:
  """`torch.nn.ConvTranspose2d(in, features, kernel, stride, padding)` in NHWC.

  Output size is (in - 1) * stride - 2 * padding + kernel, as in PyTorch.
  `impl` picks how it is computed, never what: 'subpixel' (see
  `ConvTranspose`) or 'xla', Flax's `nn.ConvTranspose`. Both have the same
  parameters, so either loads the other's checkpoints.
  """
  if impl == 'xla' or kernel < stride:   # kernel < stride leaves phases without taps
    # Pads the stride-dilated input by kernel - 1 - padding on each side and
    # applies the flipped kernel.
    pad = kernel - 1 - padding
    return nn.ConvTranspose(features, (kernel, kernel), strides=(stride, stride),
                            padding=((pad, pad), (pad, pad)),
                            transpose_kernel=True, use_bias=use_bias,
                            kernel_init=torch_kernel_init, name=name)
  if impl != 'subpixel':
    raise ValueError(f'impl={impl!r} is not one of {CONV_TRANSPOSE_IMPLS}.')
  return ConvTranspose(features, kernel, stride, padding, use_bias, name=name)


def _subpixel_taps(kernel: int, stride: int, padding: int):
  """Kernel tap for each (input offset d, output phase r) of a transposed conv, -1 if none.

  Output pixel stride * m + r sums input pixel m + d times tap
  r + padding - stride * d, for the d whose tap lies in [0, kernel).
  """
  offsets = sorted({(r + padding - t) // stride for r in range(stride)
                    for t in range(kernel) if (r + padding - t) % stride == 0})
  taps = np.full((len(offsets), stride), -1)
  for i, d in enumerate(offsets):
    for r in range(stride):
      t = r + padding - stride * d
      if 0 <= t < kernel:
        taps[i, r] = t
  return offsets, taps


def subpixel_conv_transpose(x: jnp.ndarray, kernel: jnp.ndarray, stride: int,
                            padding: int) -> jnp.ndarray:
  """PyTorch's ConvTranspose2d as stride**2 small stride-1 convs, interleaved by depth-to-space.

  `kernel` is `nn.ConvTranspose`'s with transpose_kernel=True, (k, k, out, in).
  Output phase (r_h, r_w), the pixels (stride * m + r_h, stride * n + r_w),
  is a plain convolution of the input with the taps that reach it (2x2 of a
  4x4 kernel at stride 2). This does the transposed convolution's arithmetic
  and no more, without the zeros of a stride-dilated input: XLA's CPU backend
  runs input-dilated convolutions, and above all their kernel gradients,
  slowly (docs/design.md). One 3x3 convolution to all phases at once, with
  zeros for the missing taps, measured slower than this. `python -m
  benchmarks.conv_transpose_probe` times every route (BENCHMARKS.md,
  "Transposed convolutions: the sub-pixel layer").
  """
  k, s, p = kernel.shape[0], stride, padding
  batch, height, width, _ = x.shape
  features = kernel.shape[2]
  offsets, taps = _subpixel_taps(k, s, p)
  out_h, out_w = (height - 1) * s - 2 * p + k, (width - 1) * s - 2 * p + k
  rows, cols = -(-out_h // s), -(-out_w // s)   # outputs per phase, rounded up
  # Padded so that row i of x holds input pixel m + offsets[i - m] for output row m.
  pad = ((0, 0, 0), (-offsets[0], rows - 1 + offsets[-1] - (height - 1), 0),
         (-offsets[0], cols - 1 + offsets[-1] - (width - 1), 0), (0, 0, 0))
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), pad)
  phase_rows = []
  for r_h in range(s):
    used_h = np.flatnonzero(taps[:, r_h] >= 0)   # a contiguous run of offsets
    phase_row = []
    for r_w in range(s):
      used_w = np.flatnonzero(taps[:, r_w] >= 0)
      w = kernel[taps[used_h, r_h][:, None], taps[used_w, r_w][None, :]]
      window = x[:, used_h[0]:used_h[-1] + rows, used_w[0]:used_w[-1] + cols]
      phase_row.append(jax.lax.conv_general_dilated(
          window, w.transpose(0, 1, 3, 2).astype(x.dtype), (1, 1), 'VALID',
          dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
    phase_rows.append(jnp.stack(phase_row, axis=3))   # (B, rows, cols, r_w, out)
  y = jnp.stack(phase_rows, axis=2)                    # (B, rows, r_h, cols, r_w, out)
  return y.reshape(batch, rows * s, cols * s, features)[:, :out_h, :out_w]


class ConvTranspose(nn.Module):
  """`torch.nn.ConvTranspose2d` computed by `subpixel_conv_transpose`.

  Its parameters are exactly those of the `nn.ConvTranspose` that
  `conv_transpose(impl='xla')` builds (same names, shapes, layout and
  initial values, and the same auto-name `ConvTranspose_N`), so checkpoints
  of either load in the other.
  """
  features: int
  kernel: int
  stride: int = 1
  padding: int = 0
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', torch_kernel_init,
                        (self.kernel, self.kernel, self.features, x.shape[-1]))
    y = subpixel_conv_transpose(x, kernel, self.stride, self.padding)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,))
    return y


def dense(features: int, use_bias: bool = True, name: str | None = None,
          kernel_init=torch_kernel_init) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, kernel_init=kernel_init,
                  name=name)


class SpectralNorm(nn.SpectralNorm):
  """Flax's `nn.SpectralNorm`, whose normalised weight keeps the weight's own dtype.

  Flax returns it in the promotion of the weight and the float32 vector `u`,
  so under mixed precision (bfloat16 parameters, `gan_jax.precision`) the
  wrapped layer would run in float32. Same class name, so the same
  auto-names and checkpoints.
  """

  def _spectral_normalize(self, path, vs, update_stats):
    normalised = super()._spectral_normalize(path, vs, update_stats)
    return normalised.astype(jnp.asarray(vs).dtype)


def spectral(layer: nn.Module, enabled: bool, train: bool, epsilon: float = 1e-12) -> Callable:
  """`layer`, spectrally normalised when `enabled` (Miyato et al. 2018).

  Uses flax's `nn.SpectralNorm` (through `SpectralNorm`): each call divides
  every weight matrix (a conv kernel reshaped to (kh*kw*in, out)) by its
  largest singular value, estimated by one power iteration from the vector
  `u` kept in the 'batch_stats' collection. In training (`train=True`, with 'batch_stats'
  mutable) the iterated `u` is stored, so the estimate sharpens step by step;
  in inference `u` is read, never written. `u` is model state like
  BatchNorm's statistics: it is checkpointed with them, and the parameter
  names of the wrapped layer do not change. `epsilon` guards the power
  iteration's normalisations (BigGAN's SN_eps; `gan_jax.models.biggan`).
  """
  if not enabled:
    return layer
  normalised = SpectralNorm(layer, n_steps=1, epsilon=epsilon)
  return lambda *args, **kwargs: normalised(*args, update_stats=train, **kwargs)


def batch_norm(train: bool, momentum: float, name: str | None = None):
  """BatchNorm with PyTorch's epsilon; `momentum` is Flax's (1 - PyTorch's)."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum,
                      epsilon=1e-5, name=name)


leaky_relu = functools.partial(nn.leaky_relu, negative_slope=0.2)

G_CONDITIONINGS = ('none', 'concat', 'cbn', 'embed')
D_CONDITIONINGS = ('none', 'concat', 'projection', 'acgan', 'embed')
# 'embed' (the CIFAR-10 A8 report's cGAN): a dense layer lifts the one-hot
# class; G concatenates the result to z (`embed_label`), D reshapes it to one
# extra input channel (`embed_label_map`). Only the models whose entry in
# `gan_jax.models.MODELS` lists 'embed' call these hooks.


def concat_classes(num_classes: int, conditioning: str) -> int:
  """The class count to concatenate at the input: `num_classes` for 'concat', else 0."""
  return num_classes if conditioning == 'concat' else 0


def class_weights(labels, num_classes: int, dtype) -> jnp.ndarray:
  """(N, C) weights of the classes: one_hot of int ids (N,), or class weights (N, C) as given."""
  if jnp.ndim(labels) == 2:
    if labels.shape[-1] != num_classes:
      raise ValueError(f'Class weights of shape {labels.shape} for {num_classes} classes: '
                       f'expected (N, {num_classes}).')
    return jnp.asarray(labels, dtype)
  return nn.one_hot(labels, num_classes, dtype=dtype)


def concat_label(z: jnp.ndarray, labels, num_classes: int) -> jnp.ndarray:
  """Appends the one-hot class (or class weights) to a vector input (concat conditioning)."""
  if not num_classes:
    return z
  return jnp.concatenate([z, class_weights(labels, num_classes, z.dtype)], axis=-1)


def concat_label_maps(x: jnp.ndarray, labels, num_classes: int) -> jnp.ndarray:
  """Appends the one-hot class (or class weights) as constant feature maps to an NHWC input."""
  if not num_classes:
    return x
  onehot = class_weights(labels, num_classes, x.dtype)
  maps = jnp.broadcast_to(onehot[:, None, None, :],
                          x.shape[:3] + (num_classes,))
  return jnp.concatenate([x, maps], axis=-1)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose scale and shift are looked up per class (de Vries et al. 2017; SNGAN's G).

  Normalisation and running statistics are shared; gamma starts at 1 and
  beta at 0 for every class, so at initialisation it equals plain BatchNorm.
  Class weights (N, C) in place of ids mix the classes' rows of both tables.
  """
  num_classes: int
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x, labels, *, train: bool):
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=1e-5, use_scale=False, use_bias=False)(x)
    features = x.shape[-1]
    gamma = lookup(nn.Embed(self.num_classes, features, name='scale',
                             embedding_init=nn.initializers.ones), labels)
    beta = lookup(nn.Embed(self.num_classes, features, name='shift',
                            embedding_init=nn.initializers.zeros), labels)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    return x * gamma.reshape(shape) + beta.reshape(shape)


def lookup(embed: nn.Embed, labels) -> jnp.ndarray:
  """`embed`'s rows of int ids (N,), or their mixture weights @ table for class weights (N, C)."""
  if jnp.ndim(labels) != 2:
    return embed(labels)
  table = embed.embedding
  # HIGHEST: a one-hot row must give back its class's row exactly, also where
  # the default matmul precision rounds to bfloat16 (TPU).
  return jnp.dot(class_weights(labels, embed.num_embeddings, table.dtype), table,
                 precision=jax.lax.Precision.HIGHEST)


def generator_norm(train: bool, momentum: float, labels, num_classes: int,
                   conditioning: str) -> Callable:
  """G's BatchNorm: class-conditional under 'cbn', plain otherwise."""
  if conditioning == 'cbn' and num_classes:
    return lambda x: ConditionalBatchNorm(num_classes, momentum)(x, labels, train=train)
  return batch_norm(train, momentum)


def discriminator_output(logits: jnp.ndarray, features: jnp.ndarray, labels,
                         num_classes: int, conditioning: str,
                         spectral_norm: bool = False, train: bool = False):
  """D's output from its unconditional logits (B,) and the features (B, F) they are linear in.

  projection (Miyato & Koyama 2018): logits + <embed(y), features>.
  acgan (Odena et al. 2017): {'logits': logits, 'class_logits': dense(features)},
  a classifier head on the same features. Otherwise the logits unchanged.
  """
  if not num_classes:
    return logits
  if conditioning == 'projection':
    embed = spectral(nn.Embed(num_classes, features.shape[-1], name='class_embed',
                              embedding_init=glorot_init), spectral_norm, train)
    return logits + jnp.sum(embed(labels) * features, axis=-1)
  if conditioning == 'acgan':
    head = spectral(dense(num_classes, name='class_head', kernel_init=glorot_init),
                    spectral_norm, train)
    return {'logits': logits, 'class_logits': head(features)}
  return logits


def embed_label(z: jnp.ndarray, labels, num_classes: int, features: int) -> jnp.ndarray:
  """Appends dense(one_hot(labels)) of `features` units to a vector input ('embed').

  Class weights (N, C) take the one-hot's place: dense is affine, so weights
  that sum to 1 mix the classes' embeddings.
  """
  if not num_classes:
    return z
  onehot = class_weights(labels, num_classes, z.dtype)
  return jnp.concatenate([z, dense(features, name='label_embed')(onehot)], axis=-1)


def embed_label_map(x: jnp.ndarray, labels, num_classes: int) -> jnp.ndarray:
  """Appends dense(one_hot(labels)), reshaped to one H x W map, as an input channel ('embed').

  Class weights (N, C) may take the one-hot's place, as in `embed_label`.
  """
  if not num_classes:
    return x
  onehot = class_weights(labels, num_classes, x.dtype)
  height, width = x.shape[1:3]
  label_map = dense(height * width, name='label_embed')(onehot)
  return jnp.concatenate([x, label_map.reshape(-1, height, width, 1)], axis=-1)


def condition_vector(z: jnp.ndarray, labels, num_classes: int,
                     conditioning: str) -> jnp.ndarray:
  """G's input under 'concat' or 'embed' (the embedding as wide as z); `z` otherwise."""
  if conditioning == 'embed':
    return embed_label(z, labels, num_classes, z.shape[-1])
  return concat_label(z, labels, concat_classes(num_classes, conditioning))


def condition_maps(x: jnp.ndarray, labels, num_classes: int, conditioning: str) -> jnp.ndarray:
  """D's input under 'concat' or 'embed'; `x` otherwise."""
  if conditioning == 'embed':
    return embed_label_map(x, labels, num_classes)
  return concat_label_maps(x, labels, concat_classes(num_classes, conditioning))


# ---------------------------------------------------------------- minibatch features

D_MINIBATCH = ('none', 'stddev', 'discrimination')
# Salimans et al.'s code (openai/improved-gan, nn.MinibatchLayer): 100 kernels
# of 5 dimensions in their CIFAR-10 D.
MINIBATCH_KERNELS, MINIBATCH_DIMS = 100, 5
MINIBATCH_GROUP = 4            # ProGAN's and StyleGAN's group size


@dataclasses.dataclass(frozen=True)
class Minibatch:
  """The minibatch layer a D inserts before its last layer (`config.model.d_minibatch`).

  kind 'none' adds nothing (and no parameter); 'stddev' appends
  `minibatch_stddev` over groups of `group`; 'discrimination' appends
  `MinibatchDiscrimination` with `kernels` kernels of `dims` dimensions.
  Frozen, so a module can hold it as a field.
  """
  kind: str = 'none'
  group: int = MINIBATCH_GROUP
  kernels: int = MINIBATCH_KERNELS
  dims: int = MINIBATCH_DIMS


NO_MINIBATCH = Minibatch()


def minibatch_stddev(x: jnp.ndarray, group: int) -> jnp.ndarray:
  """x with one more feature: the std over groups of samples, averaged over features.

  ProGAN (Karras et al. 2018) and StyleGAN's minibatch standard deviation
  with one statistic: samples are split into groups of g = min(group, N);
  within a group each feature's (and position's) std over the g samples,
  sqrt(mean((x - mean)^2) + 1e-8), is averaged over features and positions,
  and the one number is appended to each member of the group, as a constant
  feature map for (N, H, W, C) maps and as one feature for (N, F) vectors.
  Groups are consecutive samples (0..g-1, g..2g-1, ...), not StyleGAN's
  strided ones (n, n + N/g, ...), so that they stay inside one device's
  contiguous share of the batch; the batch order is random either way.
  """
  n = x.shape[0]
  g = min(group, n)
  if n % g:
    raise errors.ConfigError(
        f'config.model.minibatch_group={group}: D was given {n} inputs, which groups of '
        f'{g} do not divide. Pick a group size that divides D\'s batch (train.batch_size '
        '/ model.pack).')
  # float32 statistics, as StyleGAN computes them, whatever the compute dtype.
  y = x.astype(jnp.float32).reshape(n // g, g, *x.shape[1:])
  y = y - jnp.mean(y, axis=1, keepdims=True)
  std = jnp.sqrt(jnp.mean(jnp.square(y), axis=1) + 1e-8)          # (n/g, ...)
  stat = jnp.mean(std, axis=tuple(range(1, std.ndim)))           # (n/g,)
  stat = jnp.repeat(stat, g).astype(x.dtype)                     # member i of group j: stat[j]
  extra = jnp.broadcast_to(stat.reshape((n,) + (1,) * (x.ndim - 1)), x.shape[:-1] + (1,))
  return jnp.concatenate([x, extra], axis=-1)


class MinibatchDiscrimination(nn.Module):
  """Salimans et al. 2016's minibatch discrimination, appended to the features.

  With f(x_i) the flattened input of sample i (A features) and T a learned
  tensor (A, B, C): M_i = f(x_i) T, (B, C);
  c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_L1); o(x_i)_b = sum_j c_b(x_i, x_j),
  the sum over all N samples of the call, j = i included, as the paper
  writes it (the authors' code leaves j = i out: a constant 1 per feature,
  which D's next layer absorbs). The B features o(x_i) are appended: as
  constant feature maps to (N, H, W, C) maps, as features to (N, F) vectors.
  T starts from the zoo's PyTorch-style U(+-1/sqrt(A)), so that the L1
  distances start near B's few units rather than saturating exp(-d) at 0.
  The distances cost O(N^2 B C) memory.
  """
  kernels: int = MINIBATCH_KERNELS
  dims: int = MINIBATCH_DIMS

  @nn.compact
  def __call__(self, x):
    n = x.shape[0]
    flat = x.reshape(n, -1)
    t = self.param('T', torch_kernel_init, (flat.shape[-1], self.kernels * self.dims))
    m = jnp.dot(flat, t.astype(flat.dtype)).reshape(n, self.kernels, self.dims)
    m = m.astype(jnp.float32)   # distances in float32 under bfloat16 compute
    l1 = jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)       # (N, N, B)
    o = jnp.sum(jnp.exp(-l1), axis=1).astype(x.dtype)             # (N, B)
    extra = jnp.broadcast_to(o.reshape((n,) + (1,) * (x.ndim - 2) + (self.kernels,)),
                             x.shape[:-1] + (self.kernels,))
    return jnp.concatenate([x, extra], axis=-1)


def minibatch_features(x: jnp.ndarray, minibatch: Minibatch) -> jnp.ndarray:
  """x with `minibatch`'s features appended; x itself for 'none' (no layer, no parameter).

  Call it inside a compact `__call__`, before D's last layer.
  """
  if minibatch.kind == 'none':
    return x
  if minibatch.kind == 'stddev':
    return minibatch_stddev(x, minibatch.group)
  if minibatch.kind == 'discrimination':
    return MinibatchDiscrimination(minibatch.kernels, minibatch.dims)(x)
  raise ValueError(f'Minibatch kind {minibatch.kind!r} is not one of {D_MINIBATCH}.')
