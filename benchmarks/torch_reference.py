"""Eager PyTorch twins of gan_jax's models and train step: the baseline of `compare_torch`.

`MODELS` maps a gan_jax model-zoo name to (G class, D class, image shape):

  dcgan28       the MNIST report's DCGAN (gan_jax/models/dcgan.py)
  dcgan32       the standard 32x32 DCGAN (gan_jax/models/dcgan.py)
  dcgan64       Radford et al.'s DCGAN-64 (gan_jax/models/dcgan64.py Generator64/Discriminator64)
  dcgan64_wide  the cats/anime report's wider 64x64 model (WideGenerator64/WideDiscriminator64)
  sngan32       the SNGAN ResNets for 32x32 (gan_jax/models/resnet.py), spectral norm on
                every D layer as gan_jax's default for it
  resnet18d     the CIFAR-10 A8 report's ResNet-18 D and AvgPool G (gan_jax/models/cifar_resnet.py)

Each is gan_jax's unconditional network layer for layer: the same widths
(scaled by `width_scale` exactly as gan_jax's builder does), kernels, strides,
padding (TF 'SAME' padding, asymmetric, by an explicit pad), biases on or off,
BatchNorm (eps 1e-5, PyTorch momentum 0.1 = gan_jax's bn_momentum 0.9; the
wide G's first BatchNorm normalises the dense layer's units, before the
reshape, as gan_jax's does), activations and initialisers (PyTorch's default
where gan_jax uses `torch_kernel_init`, Glorot where it uses Glorot, zero
biases as Flax's). The parameter tensors have the same sizes
(`tests/test_torch_twins.py` checks it against the zoo). What differs is
layout only: PyTorch is NCHW, so a flatten before a dense layer, or a reshape
after one, orders units differently (a fixed permutation of that dense
layer's weights); and a transposed convolution's kernel is stored flipped
relative to Flax's 'SAME' `nn.ConvTranspose` (dcgan64_wide). Spectral norm
is `SpectralNorm` below, a `torch.nn.utils.parametrize` parametrization doing
gan_jax's computation (one power iteration per call from the stored u), not
`torch.nn.utils.parametrizations.spectral_norm`: PyTorch's writes its u and v
in place, which under `torch.compile` fails the backward of a D called twice
(real, then generated batch) before it (torch 2.14).

`TrainStep` is `gan_jax.steps.make_train_step` for unconditional models
without augmentation or penalties: `n_disc` D updates, each on the real batch
and a batch made by G in train mode and detached (two separate D calls, so
BatchNorm normalises each on its own; G's running statistics are left alone
by that call, as in gan_jax), then `n_gen` G updates on fresh noise; D's
running statistics and spectral-norm vectors are updated by every D call.
Losses: 'bce' (gan_jax's 'nonsaturating') or 'hinge'. Real batches arrive as
uint8 NHWC and are scaled to [-1, 1] inside the step, as in gan_jax.
`TrainStep(model)` with no other argument is gan_jax's default config: one D
and one G update, BCE, Adam(2e-4, 0.5, 0.999) for both.

On a CPU where oneDNN runs its AVX2 kernels (no AVX-512, or
ONEDNN_MAX_CPU_ISA=AVX2), the real batch is made contiguous NCHW before D sees
it (`onednn_avx2_only`: oneDNN's AVX2 1x1 stride-2 weight gradient corrupts
the heap on channels-last input); `TrainStep.input_layout` says which layout ran.

PyTorch is an optional dependency: `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import platform
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils import parametrize


def _scaled(widths: Sequence[int], scale: float) -> tuple[int, ...]:
  """gan_jax.models._scaled: every width times `scale`, rounded, at least 1."""
  return tuple(max(1, int(round(w * scale))) for w in widths)


def _bn(features: int) -> nn.BatchNorm2d:
  return nn.BatchNorm2d(features, eps=1e-5, momentum=0.1)


def _lrelu() -> nn.LeakyReLU:
  return nn.LeakyReLU(0.2)


def _zero_biases(module: nn.Module) -> None:
  """Flax initialises every bias to zero; PyTorch draws conv and dense biases uniformly."""
  for m in module.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
      nn.init.zeros_(m.bias)


def _glorot(layer: nn.Module, gain: float = 1.0) -> nn.Module:
  """gan_jax's `layers.glorot_init` (gain 1) or `glorot_relu_init` (gain sqrt(2))."""
  nn.init.xavier_uniform_(layer.weight, gain=gain)
  return layer


class _TFSamePad(nn.Module):
  """Zero padding of TF's padding='SAME' for a stride-`stride` conv on even sizes: less before than after."""

  def __init__(self, kernel: int, stride: int):
    super().__init__()
    total = kernel - stride       # (out - 1) * stride + kernel - in, with out = in / stride
    self.pad = (total // 2, total - total // 2) * 2

  def forward(self, x):
    return F.pad(x, self.pad)


def _tf_conv(in_ch: int, features: int, kernel: int, stride: int) -> nn.Module:
  """nn.Conv(padding='SAME') of Flax/TF: symmetric padding when it is, else an explicit pad."""
  total = kernel - stride
  if total % 2 == 0:
    return _glorot(nn.Conv2d(in_ch, features, kernel, stride, total // 2))
  return nn.Sequential(_TFSamePad(kernel, stride),
                       _glorot(nn.Conv2d(in_ch, features, kernel, stride, 0)))


# ------------------------------------------------------------------ dcgan28

class Generator28(nn.Module):
  """gan_jax.models.dcgan.Generator28: z(1x1) -> 3 -> 7 -> 14 -> 28 by transposed convs."""
  widths = (64, 32, 16)

  def __init__(self, latent_dim: int = 100, channels: int = 1, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    blocks, in_ch = [], latent_dim
    for features, (kernel, stride, padding) in zip(widths, ((3, 1, 0), (3, 2, 0), (4, 2, 1))):
      blocks += [nn.ConvTranspose2d(in_ch, features, kernel, stride, padding),
                 _bn(features), nn.ReLU()]
      in_ch = features
    blocks += [nn.ConvTranspose2d(in_ch, channels, 4, 2, 1), nn.Tanh()]
    self.net = nn.Sequential(*blocks)
    _zero_biases(self)

  def forward(self, z):
    return self.net(z[:, :, None, None])


class Discriminator28(nn.Module):
  """gan_jax.models.dcgan.Discriminator28: 28 -> 14 -> 7 -> 3 -> 1 logit."""
  widths = (16, 32, 64)

  def __init__(self, channels: int = 1, width_scale: float = 1.0):
    super().__init__()
    w = _scaled(self.widths, width_scale)
    self.net = nn.Sequential(
        nn.Conv2d(channels, w[0], 4, 2, 1), _lrelu(),
        nn.Conv2d(w[0], w[1], 4, 2, 1), _bn(w[1]), _lrelu(),
        nn.Conv2d(w[1], w[2], 3, 2, 0), _bn(w[2]), _lrelu(),
        nn.Conv2d(w[2], 1, 3, 1, 0))
    _zero_biases(self)

  def forward(self, x):
    return self.net(x).reshape(x.shape[0])


# ------------------------------------------------------------------ dcgan32

class Generator32(nn.Module):
  """gan_jax.models.dcgan.Generator32: dense to 4x4xw0, three stride-2 up-convs, 3x3 conv, tanh."""
  widths = (512, 256, 128, 64)

  def __init__(self, latent_dim: int = 100, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    self.w0 = widths[0]
    self.dense = nn.Linear(latent_dim, 4 * 4 * widths[0])
    self.bn0 = _bn(widths[0])
    blocks = []
    for in_ch, features in zip(widths[:-1], widths[1:]):
      blocks += [nn.ConvTranspose2d(in_ch, features, 4, 2, 1), _bn(features), nn.ReLU()]
    blocks += [nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh()]
    self.net = nn.Sequential(*blocks)
    _zero_biases(self)

  def forward(self, z):
    x = self.dense(z).reshape(-1, self.w0, 4, 4)
    return self.net(F.relu(self.bn0(x)))


class Discriminator32(nn.Module):
  """gan_jax.models.dcgan.Discriminator32: convs with LeakyReLU (BatchNorm from the second), dense logit."""
  widths = (64, 128, 256, 512)

  def __init__(self, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    w = _scaled(self.widths, width_scale)
    self.net = nn.Sequential(
        nn.Conv2d(channels, w[0], 4, 2, 1), _lrelu(),
        nn.Conv2d(w[0], w[1], 4, 2, 1), _bn(w[1]), _lrelu(),
        nn.Conv2d(w[1], w[2], 4, 2, 1), _bn(w[2]), _lrelu(),
        nn.Conv2d(w[2], w[3], 3, 1, 1), _bn(w[3]), _lrelu())
    self.dense = nn.Linear(4 * 4 * w[3], 1)
    _zero_biases(self)

  def forward(self, x):
    return self.dense(self.net(x).flatten(1)).reshape(x.shape[0])


# ------------------------------------------------------------------ dcgan64 (Radford)

class Generator64(nn.Module):
  """gan_jax.models.dcgan64.Generator64: z(1x1) -> ConvT 4x4 -> 8 -> 16 -> 32 -> 64, no biases."""
  widths = (512, 256, 128, 64)

  def __init__(self, latent_dim: int = 100, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    blocks = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),
              _bn(widths[0]), nn.ReLU()]
    for in_ch, features in zip(widths[:-1], widths[1:]):
      blocks += [nn.ConvTranspose2d(in_ch, features, 4, 2, 1, bias=False),
                 _bn(features), nn.ReLU()]
    blocks += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
    self.net = nn.Sequential(*blocks)

  def forward(self, z):
    return self.net(z[:, :, None, None])


class Discriminator64(nn.Module):
  """gan_jax.models.dcgan64.Discriminator64: k4 s2 convs (BatchNorm from the second), k4 conv logit."""
  widths = (64, 128, 256, 512)

  def __init__(self, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    blocks = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False), _lrelu()]
    for in_ch, features in zip(widths[:-1], widths[1:]):
      blocks += [nn.Conv2d(in_ch, features, 4, 2, 1, bias=False), _bn(features), _lrelu()]
    blocks += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
    self.net = nn.Sequential(*blocks)

  def forward(self, x):
    return self.net(x).reshape(x.shape[0])


# ------------------------------------------------------------------ dcgan64_wide

class WideGenerator64(nn.Module):
  """gan_jax.models.dcgan64.WideGenerator64: dense (BatchNorm over its units) to 8x8xw0, ConvT x3, k4 'SAME' conv."""
  widths = (1024, 512, 256, 128)

  def __init__(self, latent_dim: int = 100, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    self.w0 = widths[0]
    self.dense = _glorot(nn.Linear(latent_dim, 8 * 8 * widths[0]))
    # gan_jax normalises the dense output (B, 64 * w0) before the reshape.
    self.bn0 = nn.BatchNorm1d(8 * 8 * widths[0], eps=1e-5, momentum=0.1)
    blocks = []
    for in_ch, features in zip(widths[:-1], widths[1:]):
      # Flax's ConvTranspose(k4, s2, 'SAME') = PyTorch's (k4, s2, p1) with the kernel flipped.
      blocks += [_glorot(nn.ConvTranspose2d(in_ch, features, 4, 2, 1)), _bn(features), _lrelu()]
    blocks += [_tf_conv(widths[-1], channels, 4, 1), nn.Tanh()]
    self.net = nn.Sequential(*blocks)
    _zero_biases(self)

  def forward(self, z):
    x = F.relu(self.bn0(self.dense(z))).reshape(-1, self.w0, 8, 8)
    return self.net(x)


class WideDiscriminator64(nn.Module):
  """gan_jax.models.dcgan64.WideDiscriminator64: 5x5 'SAME' convs at strides 1, 2, 2, 2, dense logit."""
  widths = (128, 256, 512, 1024)

  def __init__(self, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    blocks, in_ch = [], channels
    for features, stride in zip(widths, (1, 2, 2, 2)):
      blocks += [_tf_conv(in_ch, features, 5, stride), _bn(features), _lrelu()]
      in_ch = features
    self.net = nn.Sequential(*blocks)
    self.dense = _glorot(nn.Linear(8 * 8 * widths[-1], 1))
    _zero_biases(self)

  def forward(self, x):
    return self.dense(self.net(x).flatten(1)).reshape(x.shape[0])


# ------------------------------------------------------------------ sngan32

_SQRT2 = math.sqrt(2.0)


def _upsample(x):
  return F.interpolate(x, scale_factor=2, mode='nearest')


def _downsample(x):
  return F.avg_pool2d(x, 2)


class _SNGANGeneratorBlock(nn.Module):
  """gan_jax.models.resnet.GeneratorBlock: BN, ReLU, up, conv3, BN, ReLU, conv3; conv1 shortcut of up(x)."""

  def __init__(self, in_ch: int, features: int):
    super().__init__()
    self.bn1 = _bn(in_ch)
    self.conv1 = _glorot(nn.Conv2d(in_ch, features, 3, 1, 1), _SQRT2)
    self.bn2 = _bn(features)
    self.conv2 = _glorot(nn.Conv2d(features, features, 3, 1, 1), _SQRT2)
    self.shortcut = _glorot(nn.Conv2d(in_ch, features, 1, 1, 0))

  def forward(self, x):
    h = self.conv1(_upsample(F.relu(self.bn1(x))))
    h = self.conv2(F.relu(self.bn2(h)))
    return h + self.shortcut(_upsample(x))


class _SNGANDiscriminatorBlock(nn.Module):
  """gan_jax.models.resnet.DiscriminatorBlock (the first one is SNGAN's "optimized" block)."""

  def __init__(self, in_ch: int, features: int, downsample: bool, first: bool):
    super().__init__()
    self.downsample, self.first = downsample, first
    self.conv1 = _glorot(nn.Conv2d(in_ch, features, 3, 1, 1), _SQRT2)
    self.conv2 = _glorot(nn.Conv2d(features, features, 3, 1, 1), _SQRT2)
    self.shortcut = None
    if first or downsample or in_ch != features:
      self.shortcut = _glorot(nn.Conv2d(in_ch, features, 1, 1, 0))

  def forward(self, x):
    h = x if self.first else F.relu(x)
    h = self.conv2(F.relu(self.conv1(h)))
    if self.first:
      shortcut = self.shortcut(_downsample(x))
    else:
      shortcut = x if self.shortcut is None else self.shortcut(x)
    if self.downsample:
      h = _downsample(h)
      if not self.first:
        shortcut = _downsample(shortcut)
    return h + shortcut


class SNGANGenerator32(nn.Module):
  """gan_jax.models.resnet.ResNetGenerator at resnet.ARCHITECTURES[32]: dense to 4x4xw0, 3 up-blocks."""
  bottom = 4
  widths = (256, 256, 256, 256)

  def __init__(self, latent_dim: int = 100, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    self.w0 = widths[0]
    self.dense = _glorot(nn.Linear(latent_dim, self.bottom ** 2 * widths[0]))
    self.blocks = nn.Sequential(*[_SNGANGeneratorBlock(i, o)
                                  for i, o in zip(widths[:-1], widths[1:])])
    self.bn = _bn(widths[-1])
    self.out = _glorot(nn.Conv2d(widths[-1], channels, 3, 1, 1))
    _zero_biases(self)

  def forward(self, z):
    x = self.dense(z).reshape(-1, self.w0, self.bottom, self.bottom)
    x = F.relu(self.bn(self.blocks(x)))
    return torch.tanh(self.out(x))


class SNGANDiscriminator32(nn.Module):
  """gan_jax.models.resnet.ResNetDiscriminator at ARCHITECTURES[32]; spectral norm on every layer."""
  widths = (128, 128, 128, 128)
  downsample = (True, True, False, False)

  def __init__(self, channels: int = 3, width_scale: float = 1.0, spectral_norm: bool = True):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    blocks, in_ch = [], channels
    for i, (features, down) in enumerate(zip(widths, self.downsample)):
      blocks.append(_SNGANDiscriminatorBlock(in_ch, features, down, first=i == 0))
      in_ch = features
    self.blocks = nn.Sequential(*blocks)
    self.dense = _glorot(nn.Linear(widths[-1], 1, bias=False))
    _zero_biases(self)
    if spectral_norm:
      _spectrally_normalise(self)

  def forward(self, x):
    features = F.relu(self.blocks(x)).sum(dim=(2, 3))   # global sum pooling
    return self.dense(features).reshape(x.shape[0])


class SpectralNorm(nn.Module):
  """Spectral norm as a parametrization, computed as gan_jax's (flax's `nn.SpectralNorm`, n_steps=1).

  Every call does one power iteration from the stored `_u`, v = W^T u / |.|,
  u = W v / |.|, and divides the weight by sigma = u . W v (u and v without
  gradient); in training it stores the new u. W is the weight as an
  (out, rest) matrix. Like `torch.nn.utils.parametrizations.spectral_norm`,
  but it never writes in place to a tensor autograd has saved (it saves the
  fresh u and v, not the buffer), so it also runs under `torch.compile`, where
  PyTorch's breaks a D called twice before one backward (real and generated
  batch). `_u` starts as a random unit vector, without PyTorch's 15 warm-up
  iterations, as in gan_jax.
  """

  def __init__(self, weight: torch.Tensor, eps: float = 1e-12):
    super().__init__()
    self.eps = eps
    u = torch.randn(weight.shape[0], dtype=weight.dtype, device=weight.device)
    self.register_buffer('_u', F.normalize(u, dim=0, eps=eps))

  def forward(self, weight: torch.Tensor) -> torch.Tensor:
    matrix = weight.flatten(1)
    with torch.no_grad():
      v = F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=self.eps)
      u = F.normalize(torch.mv(matrix, v), dim=0, eps=self.eps)
      if self.training:
        self._u = u   # a new tensor, not an in-place write: autograd may have saved the old one
    sigma = torch.dot(u, torch.mv(matrix, v))
    return weight / torch.where(sigma != 0, sigma, torch.ones_like(sigma))


def _spectrally_normalise(module: nn.Module) -> None:
  """`SpectralNorm` on the weight of every conv and dense layer of `module`."""
  layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
  for layer in layers:
    parametrize.register_parametrization(layer, 'weight', SpectralNorm(layer.weight))


# ------------------------------------------------------------------ resnet18d

class _BasicBlock(nn.Module):
  """gan_jax.models.cifar_resnet.BasicBlock: two 3x3 convs with BatchNorm, 1x1 projection when the shape changes."""

  def __init__(self, in_ch: int, features: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_ch, features, 3, stride, 1, bias=False)
    self.bn1 = _bn(features)
    self.conv2 = nn.Conv2d(features, features, 3, 1, 1, bias=False)
    self.bn2 = _bn(features)
    self.shortcut = None
    if stride != 1 or in_ch != features:
      self.shortcut = nn.Sequential(nn.Conv2d(in_ch, features, 1, stride, 0, bias=False),
                                    _bn(features))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    if self.shortcut is not None:
      x = self.shortcut(x)
    return F.relu(x + y)


class ResNet18Discriminator(nn.Module):
  """gan_jax.models.cifar_resnet.ResNet18Discriminator: CIFAR ResNet-18, global average pooling, dense logit."""
  widths = (64, 128, 256, 512)

  def __init__(self, channels: int = 3, width_scale: float = 1.0):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    self.stem = nn.Sequential(nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False),
                              _bn(widths[0]), nn.ReLU())
    blocks, in_ch = [], widths[0]
    for stage, features in enumerate(widths):
      for block in range(2):
        blocks.append(_BasicBlock(in_ch, features, 2 if stage > 0 and block == 0 else 1))
        in_ch = features
    self.blocks = nn.Sequential(*blocks)
    self.dense = nn.Linear(widths[-1], 1)
    _zero_biases(self)

  def forward(self, x):
    features = self.blocks(self.stem(x)).mean(dim=(2, 3))
    return self.dense(features).reshape(x.shape[0])


class AvgPoolGenerator(nn.Module):
  """gan_jax.models.cifar_resnet.AvgPoolGenerator: ConvT blocks to 32x32, average pooling to 4x4, dense, tanh."""
  widths = (512, 256, 128, 64)
  pooled_size = 4

  def __init__(self, latent_dim: int = 100, channels: int = 3, width_scale: float = 1.0,
               image_size: int = 32):
    super().__init__()
    widths = _scaled(self.widths, width_scale)
    self.image_shape = (channels, image_size, image_size)
    blocks = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0), _bn(widths[0]), nn.ReLU()]
    size = 4
    for in_ch, features in zip(widths[:-1], widths[1:]):
      blocks += [nn.ConvTranspose2d(in_ch, features, 4, 2, 1), _bn(features), nn.ReLU()]
      size *= 2
    self.net = nn.Sequential(*blocks)
    self.window = size // self.pooled_size
    pooled = size // self.window
    self.dense = nn.Linear(pooled * pooled * widths[-1], channels * image_size * image_size)
    _zero_biases(self)

  def forward(self, z):
    x = self.net(z[:, :, None, None])
    x = F.avg_pool2d(x, self.window)
    return torch.tanh(self.dense(x.flatten(1))).reshape(-1, *self.image_shape)


# ------------------------------------------------------------------ oneDNN guard

_ONEDNN_AVX512_ISAS = ('AVX512', 'AVX10', 'AMX', 'ALL', 'DEFAULT')


@functools.lru_cache(maxsize=None)
def onednn_avx2_only() -> bool:
  """Whether oneDNN runs its AVX2 (or older) x86 kernels here: a CPU without AVX-512, or
  $ONEDNN_MAX_CPU_ISA capping it below AVX-512.

  There, oneDNN's 1x1 convolution weight gradient (jit_avx2_1x1_convolution_bwd_weights)
  on a channels-last float32 input with stride 2 writes out of bounds: 'double free or
  corruption', a segfault or a hang (oneDNN 3.12 in torch 2.14.1; BENCHMARKS.md has the
  reproduction). `TrainStep` then gives D a contiguous NCHW batch, which avoids that kernel.
  """
  if platform.machine().lower() not in ('x86_64', 'amd64', 'i386', 'i686', 'x86'):
    return False
  isa = os.environ.get('ONEDNN_MAX_CPU_ISA', os.environ.get('DNNL_MAX_CPU_ISA', '')).upper()
  if isa:
    return not isa.startswith(_ONEDNN_AVX512_ISAS)
  try:
    with open('/proc/cpuinfo') as f:
      return ' avx512f' not in f.read()
  except OSError:   # not Linux: ask ATen, which dispatches by the same CPU flags
    return not torch.backends.cpu.get_cpu_capability().startswith('AVX512')


# ------------------------------------------------------------------ registry

MODELS = {
    'dcgan28': (Generator28, Discriminator28, (28, 28, 1)),
    'dcgan32': (Generator32, Discriminator32, (32, 32, 3)),
    'dcgan64': (Generator64, Discriminator64, (64, 64, 3)),
    'dcgan64_wide': (WideGenerator64, WideDiscriminator64, (64, 64, 3)),
    'sngan32': (SNGANGenerator32, SNGANDiscriminator32, (32, 32, 3)),
    'resnet18d': (AvgPoolGenerator, ResNet18Discriminator, (32, 32, 3)),
}
TWINS = tuple(MODELS)

# config.model.spectral_norm values each twin implements: 'default' and the
# architecture's own choice (gan_jax.models: sngan* 'd', the others 'none').
_SPECTRAL_NORM = {name: 'd' if name.startswith('sngan') else 'none' for name in MODELS}

LOSSES = ('bce', 'hinge')
_CONFIG_LOSSES = {'nonsaturating': 'bce', 'hinge': 'hinge'}
OPTIMIZERS = ('adam', 'adamw', 'sgd')
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16}


def count_parameters(module: nn.Module) -> int:
  """Trainable parameters of `module` (spectral norm's u is a buffer, not counted)."""
  return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _unknown_model(name) -> ValueError:
  return ValueError(f'No PyTorch twin for model {name!r}; the twins are: {", ".join(TWINS)}.')


def _optimizer(params, spec: dict | None, lr: float, betas) -> torch.optim.Optimizer:
  """gan_jax.optim's optimizer from a dict of config.optim.{g,d}'s keys; missing keys: lr, betas, eps 1e-8, no decay."""
  spec = dict(spec or {})
  name = spec.pop('name', 'adam')
  lr = spec.pop('lr', lr)
  b1, b2 = spec.pop('b1', betas[0]), spec.pop('b2', betas[1])
  eps, weight_decay = spec.pop('eps', 1e-8), spec.pop('weight_decay', 0.0)
  if spec:
    raise ValueError(f'Unknown optimizer keys {sorted(spec)}; known: name, lr, b1, b2, eps, '
                     'weight_decay.')
  if name == 'adam':      # weight_decay: an L2 term added to the gradient, as gan_jax's
    return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
  if name == 'adamw':     # decoupled, as optax.adamw
    return torch.optim.AdamW(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
  if name == 'sgd':       # b1 is the momentum, as in gan_jax
    return torch.optim.SGD(params, lr=lr, momentum=b1, weight_decay=weight_decay)
  raise ValueError(f'Optimizer {name!r} is not one of {", ".join(OPTIMIZERS)}.')


@contextlib.contextmanager
def _running_stats_frozen(norms):
  """BatchNorms normalise by the batch (train mode) without updating their running statistics."""
  for m in norms:
    m.track_running_stats = False
  try:
    yield
  finally:
    for m in norms:
      m.track_running_stats = True


class TrainStep:
  """`step(real_uint8_nhwc) -> {'d_loss', 'g_loss'}`: one gan_jax train step in eager PyTorch.

  `n_disc` D updates, each on the real batch and a batch G makes in train mode
  (detached, G's running statistics untouched), D called on each separately;
  then `n_gen` G updates on fresh noise. The real batch is uint8 (B, H, W, C),
  reused by every D update, or (n_disc, B, H, W, C), one per update as in
  gan_jax's batches. The losses returned are the means over the updates,
  tensors on `device` (not read back: `.item()` would add a sync per step).

  `loss`: 'bce' (non-saturating) or 'hinge'. `g_opt` / `d_opt`: dicts with any
  of name ('adam' | 'adamw' | 'sgd'), lr, b1, b2, eps, weight_decay, over
  `lr` and `betas`. `ema_decay` > 0 keeps `self.ema`, an EMA of G's
  parameters and buffers updated after every step (a plain copy before step
  `ema_start`, as gan_jax's). `dtype='bfloat16'`: G's and D's forward passes
  run under `torch.autocast(device_type, torch.bfloat16)`; parameters,
  optimizer states, generated images fed to D, logits and losses stay float32.
  `compile=True` wraps G and D in `torch.compile` (`self.G`, `self.D` stay the
  plain modules).
  """

  def __init__(self, model: str, latent_dim: int = 100, lr: float = 2e-4,
               betas=(0.5, 0.999), seed: int = 0, *, width_scale: float = 1.0,
               loss: str = 'bce', n_disc: int = 1, n_gen: int = 1,
               g_opt: dict | None = None, d_opt: dict | None = None,
               ema_decay: float = 0.0, ema_start: int = 0, device='cpu',
               dtype: str = 'float32', compile: bool = False):
    if model not in MODELS:
      raise _unknown_model(model)
    if loss not in LOSSES:
      raise ValueError(f'loss={loss!r} is not one of {", ".join(LOSSES)}.')
    if dtype not in DTYPES:
      raise ValueError(f'dtype={dtype!r} is not one of {", ".join(DTYPES)}.')
    if n_disc < 1 or n_gen < 1:
      raise ValueError(f'n_disc={n_disc} and n_gen={n_gen} must be at least 1.')
    if not 0.0 <= ema_decay < 1.0:
      raise ValueError(f'ema_decay={ema_decay} must be in [0, 1).')
    torch.manual_seed(seed)
    g_cls, d_cls, shape = MODELS[model]
    self.model, self.image_shape, self.latent_dim = model, shape, latent_dim
    self.loss, self.n_disc, self.n_gen = loss, n_disc, n_gen
    self.device = torch.device(device)
    self.dtype = dtype
    self.G = g_cls(latent_dim=latent_dim, channels=shape[2], width_scale=width_scale)
    self.D = d_cls(channels=shape[2], width_scale=width_scale)
    self.G.to(self.device).train()
    self.D.to(self.device).train()
    self.g_opt = _optimizer(self.G.parameters(), g_opt, lr, betas)
    self.d_opt = _optimizer(self.D.parameters(), d_opt, lr, betas)
    self._g_norms = [m for m in self.G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    self.ema_decay, self.ema_start, self.steps = ema_decay, ema_start, 0
    self.ema = None
    if ema_decay > 0:
      self.ema = copy.deepcopy(self.G).eval()
      for p in self.ema.parameters():
        p.requires_grad_(False)
      pairs = list(zip(list(self.ema.parameters()) + list(self.ema.buffers()),
                       list(self.G.parameters()) + list(self.G.buffers())))
      self._ema_float = [(e, g) for e, g in pairs if e.is_floating_point()]
      self._ema_other = [(e, g) for e, g in pairs if not e.is_floating_point()]
    self._G = torch.compile(self.G) if compile else self.G
    self._D = torch.compile(self.D) if compile else self.D
    self._autocast_dtype = DTYPES[dtype] if dtype != 'float32' else None
    # The real batch is NHWC permuted to NCHW: channels-last memory, which oneDNN's
    # AVX2 kernels mishandle (onednn_avx2_only); elsewhere it stays as measured before.
    self._contiguous_real = self.device.type == 'cpu' and onednn_avx2_only()
    self.input_layout = 'nchw (oneDNN AVX2 guard)' if self._contiguous_real else 'channels_last'

  @classmethod
  def from_config(cls, config, *, device='cpu', dtype: str = 'float32',
                  compile: bool = False, seed: int = 0) -> 'TrainStep':
    """The twin of a gan_jax config (`ml_collections`) for an unconditional model.

    Reads config.model.{name, latent_dim, width_scale}, loss.name
    ('nonsaturating' -> 'bce', 'hinge'), optim.g / optim.d (name, lr, b1, b2,
    eps, weight_decay) and train.{n_disc, n_gen, ema_decay, ema_start}.
    Ignored: optim.*.lr_schedule (a 'linear' decay is not applied: the lr
    stays at `lr`), train.compute_dtype (use `dtype`) and train.batch_size
    (the batch is what `step` is given). Raises ValueError for a model with no
    twin, another loss, a conditional model, spectral norm other than the
    model's default, and label smoothing, the similarity term, penalties or
    D-input transforms, which the twin does not mirror.
    """
    model, train = config.model, config.train
    name = model.name
    if name not in MODELS:
      raise _unknown_model(name)
    if config.loss.name not in _CONFIG_LOSSES:
      raise ValueError(f'config.loss.name={config.loss.name!r} has no twin: the PyTorch step '
                       f'implements {", ".join(_CONFIG_LOSSES)}.')
    unsupported = []
    if model.get('conditional', False):
      unsupported.append('model.conditional=True (the twins are unconditional)')
    if model.get('spectral_norm', 'default') not in ('default', _SPECTRAL_NORM[name]):
      unsupported.append(f'model.spectral_norm={model.spectral_norm!r} (the {name} twin has '
                         f"'{_SPECTRAL_NORM[name]}')")
    for key in ('label_smoothing', 'similarity_weight'):
      if config.loss.get(key, 0.0):
        unsupported.append(f'loss.{key}={config.loss[key]}')
    for key, reg in (config.get('reg') or {}).items():
      if reg.get('weight', 0.0):
        unsupported.append(f'reg.{key}.weight={reg["weight"]}')
    augment = config.get('augment')
    if augment is not None and augment.get('transforms', ()):
      unsupported.append(f'augment.transforms={tuple(augment.transforms)}')
    if unsupported:
      raise ValueError(f'The PyTorch twin does not mirror: {"; ".join(unsupported)}.')

    def opt(c) -> dict:
      return dict(name=c.name, lr=c.lr, b1=c.b1, b2=c.b2, eps=c.eps,
                  weight_decay=c.weight_decay)

    return cls(name, latent_dim=model.latent_dim, seed=seed, width_scale=model.width_scale,
               loss=_CONFIG_LOSSES[config.loss.name], n_disc=train.n_disc, n_gen=train.n_gen,
               g_opt=opt(config.optim.g), d_opt=opt(config.optim.d),
               ema_decay=train.ema_decay, ema_start=train.get('ema_start', 0),
               device=device, dtype=dtype, compile=compile)

  def _autocast(self):
    if self._autocast_dtype is None:
      return contextlib.nullcontext()
    return torch.autocast(self.device.type, dtype=self._autocast_dtype)

  def _noise(self, batch: int) -> torch.Tensor:
    return torch.randn(batch, self.latent_dim, device=self.device)

  def _d_loss(self, real_logits, fake_logits):
    if self.loss == 'hinge':
      return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    # BCE with target 1 is softplus(-l), with target 0 softplus(l).
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

  def _g_loss(self, fake_logits):
    if self.loss == 'hinge':
      return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()

  def __call__(self, real_uint8: torch.Tensor) -> dict:
    real_uint8 = real_uint8.to(self.device, non_blocking=True)
    per_update = real_uint8.dim() == 5
    if per_update and real_uint8.shape[0] != self.n_disc:
      raise ValueError(f'A batch of shape {tuple(real_uint8.shape)} has '
                       f'{real_uint8.shape[0]} real batches for n_disc={self.n_disc}.')
    batch = real_uint8.shape[-4]
    real = None
    d_losses, g_losses = [], []
    for i in range(self.n_disc):
      if real is None or per_update:
        images = real_uint8[i] if per_update else real_uint8
        real = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if self._contiguous_real:
          real = real.contiguous()
      # The generated batch: G in train mode, detached, its running statistics left alone.
      with torch.no_grad(), _running_stats_frozen(self._g_norms), self._autocast():
        fake = self._G(self._noise(batch))
      fake = fake.float()
      with self._autocast():
        real_logits = self._D(real)
        fake_logits = self._D(fake)
      d_loss = self._d_loss(real_logits.float(), fake_logits.float())
      self.d_opt.zero_grad(set_to_none=True)
      d_loss.backward()
      self.d_opt.step()
      d_losses.append(d_loss.detach())

    for _ in range(self.n_gen):
      with self._autocast():
        fake = self._G(self._noise(batch))
      with self._autocast():
        fake_logits = self._D(fake.float())
      g_loss = self._g_loss(fake_logits.float())
      self.g_opt.zero_grad(set_to_none=True)
      g_loss.backward()
      self.g_opt.step()
      g_losses.append(g_loss.detach())

    if self.ema is not None:
      self._update_ema()
    self.steps += 1
    return {'d_loss': sum(d_losses) / len(d_losses), 'g_loss': sum(g_losses) / len(g_losses)}

  @torch.no_grad()
  def _update_ema(self) -> None:
    """ema <- decay * ema + (1 - decay) * G (parameters and buffers); a copy before ema_start."""
    weight = 1.0 - self.ema_decay if self.steps >= self.ema_start else 1.0
    ema, g = zip(*self._ema_float)
    torch._foreach_lerp_(list(ema), list(g), weight)
    for e, v in self._ema_other:
      e.copy_(v)
