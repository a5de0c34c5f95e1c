"""BigGAN (Brock, Donahue & Simonyan, ICLR 2019) as the authors' code builds it: `biggan32`, `biggan64`, `biggan128`.

Written from ajbrock/BigGAN-PyTorch: BigGAN.py (G_arch, D_arch, Generator,
Discriminator), layers.py (GBlock, DBlock, ccbn, bn, SN, Attention) and the
defaults of utils.py's parser, which scripts/launch_cifar_ema.sh (CIFAR-10)
leaves alone except where configs/biggan_cifar10.py says. Facts carried
over; the code is this project's.

G: z -> SN linear -> 4 x 4 x (ch * g_in[0]) (the linear's units read
channel-first, as PyTorch's `.view` reads them) -> one residual up-block per
stage: ccbn, ReLU, nearest 2x upsampling, SN conv3x3, ccbn, ReLU, SN conv3x3;
the shortcut upsamples and applies an SN conv1x1 (every G block upsamples,
so its shortcut is always learnable). Optional self-attention after the block
whose output resolution is `attention`. Then BatchNorm (with its own gain and
bias), ReLU, SN conv3x3 to the image channels, tanh.

ccbn (class-conditional BatchNorm): BatchNorm without affine parameters, then
x * (1 + gain(y)) + bias(y). Without a shared embedding (BigGAN's CIFAR-10
setting) gain and bias are per-class embedding tables (G's embeddings never
take spectral norm in the authors' code); with one (`shared_dim` > 0,
`G_shared`) they are SN linear maps without bias of shared(y), or of
[shared(y), z chunk] with a hierarchical z (`hier`), where z is cut into
len(blocks) + 1 equal chunks: the first feeds the linear layer, one goes to
each block.

D: residual down-blocks, `wide` (hidden width = output width, BigGAN's and
SA-GAN's pattern): the first block convolves the image directly and its
shortcut downsamples then applies an SN conv1x1; the others start with a
ReLU and their shortcut convolves then downsamples (an identity when the
width stays and there is no downsampling). Optional self-attention after the
blocks whose D_arch resolution is `attention`. Then ReLU, global sum pooling,
SN linear to one logit, plus the projection <SN embed(y), h>.

Numbers from the code: N(0, 0.02) for every conv, linear and embedding
weight ('N02' at CIFAR-10); biases keep PyTorch's default U(+-1/sqrt(fan_in))
because BigGAN's `init_weights` re-initialises `.weight` only; BatchNorm eps
1e-5 and PyTorch momentum 0.1 (Flax's 0.9, `model.bn_momentum`); spectral
norm with one power iteration and eps 1e-8 in G and D (utils.py's SN_eps,
which train.py passes to both; the classes' own default 1e-12 is overridden).

Departures, none of which changes a parameter count: Flax's spectral norm
keeps u beside the weight's output side, as BigGAN's does, except for D's
class embedding, where BigGAN keeps it on the class side (the same singular
value); Flax's running variance is the biased batch variance, PyTorch's the
unbiased one (n = batch x H x W, so they differ by under 0.1% at batch 50).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import errors
from gan_jax.models import blocks, layers

N02 = nn.initializers.normal(0.02)  # G_init = D_init = 'N02' at CIFAR-10
BN_EPS = 1e-5                       # utils.py's BN_eps
SN_EPS = 1e-8                       # utils.py's SN_eps


@dataclasses.dataclass(frozen=True)
class Arch:
  """One resolution's G_arch / D_arch entry, widths in units of `ch`."""
  g_in: tuple[int, ...]            # G block input widths
  g_out: tuple[int, ...]           # G block output widths
  d_out: tuple[int, ...]           # D block output widths; the inputs are 3, then the previous
  d_down: tuple[bool, ...]         # D blocks that halve the resolution
  # D_arch's 'resolution' entries, which place D's attention. At 32 the code
  # lists 16 for all four blocks, though blocks 2-4 run at 8x8: kept as written.
  d_resolution: tuple[int, ...]

  def g_resolution(self, bottom: int) -> tuple[int, ...]:
    return tuple(bottom * 2 ** (i + 1) for i in range(len(self.g_out)))


ARCHITECTURES = {
    32: Arch((4, 4, 4), (4, 4, 4), (4, 4, 4, 4), (True, True, False, False), (16, 16, 16, 16)),
    64: Arch((16, 16, 8, 4), (16, 8, 4, 2), (1, 2, 4, 8, 16), (True,) * 4 + (False,),
             (32, 16, 8, 4, 4)),
    128: Arch((16, 16, 8, 4, 2), (16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,),
              (64, 32, 16, 8, 4, 4)),
}
BOTTOM = 4          # bottom_width: G starts at 4x4 at every resolution
BASE_CH = 64        # G_ch = D_ch = 64 at CIFAR-10 (utils.py's default)


def torch_bias_init(fan_in: int) -> Callable:
  """PyTorch's default bias init for a layer with `fan_in` inputs: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def _conv(features: int, kernel: int, fan_in: int, name: str, use_bias: bool = True) -> nn.Conv:
  """A 'same' conv (3x3 pad 1, or 1x1) with BigGAN's weight init and PyTorch's bias init."""
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)), use_bias=use_bias,
                 kernel_init=N02, bias_init=torch_bias_init(fan_in * kernel * kernel), name=name)


def _dense(features: int, fan_in: int, name: str, use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, kernel_init=N02,
                  bias_init=torch_bias_init(fan_in), name=name)


def _spectral(enabled: bool, train: bool) -> Callable:
  return functools.partial(layers.spectral, enabled=enabled, train=train, epsilon=SN_EPS)


def _upsample(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)   # F.interpolate(scale_factor=2)


def _downsample(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))             # nn.AvgPool2d(2)


class ClassConditionalBatchNorm(nn.Module, kw_only=True):
  """BigGAN's ccbn: BatchNorm without affine, then x * (1 + gain(c)) + bias(c).

  `num_classes` > 0: `cond` is class ids (or class weights (N, C), which mix
  the tables' rows) and gain, bias are embedding tables. 0: `cond` is a
  vector (the shared embedding, with a z chunk under `hier`) and gain, bias
  are linear maps without bias, spectrally normalised with G.
  """
  num_classes: int = 0
  spectral_norm: bool = True
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x, cond, *, train: bool):
    features = x.shape[-1]
    h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=BN_EPS,
                     use_scale=False, use_bias=False, name='norm')(x)
    if self.num_classes:
      gain = layers.lookup(nn.Embed(self.num_classes, features, embedding_init=N02,
                                    name='gain'), cond)
      bias = layers.lookup(nn.Embed(self.num_classes, features, embedding_init=N02,
                                    name='bias'), cond)
    else:
      sn = _spectral(self.spectral_norm, train)
      gain = sn(_dense(features, cond.shape[-1], 'gain', use_bias=False))(cond)
      bias = sn(_dense(features, cond.shape[-1], 'bias', use_bias=False))(cond)
    shape = (x.shape[0], 1, 1, features)
    return h * (1 + gain).reshape(shape) + bias.reshape(shape)


def _g_norm(name: str, mode: str, num_classes: int, spectral_norm: bool, momentum: float,
            x, cond, train: bool):
  """G block's norm: ccbn on class ids ('classes') or a vector ('vector'), else BatchNorm ('none')."""
  if mode == 'none':   # BigGAN's `bn`: its own gain (ones) and bias (zeros)
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=BN_EPS,
                        name=name)(x)
  return ClassConditionalBatchNorm(num_classes=num_classes if mode == 'classes' else 0,
                                   spectral_norm=spectral_norm, momentum=momentum,
                                   name=name)(x, cond, train=train)


class GBlock(nn.Module, kw_only=True):
  """BigGAN's GBlock: norm, ReLU, upsample, conv3x3, norm, ReLU, conv3x3; shortcut upsample, conv1x1."""
  features: int
  norm_mode: str = 'classes'     # 'classes', 'vector' or 'none' (see `_g_norm`)
  num_classes: int = 0
  bn_momentum: float = 0.9
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, cond, *, train: bool):
    sn = _spectral(self.spectral_norm, train)
    norm = functools.partial(_g_norm, mode=self.norm_mode, num_classes=self.num_classes,
                             spectral_norm=self.spectral_norm, momentum=self.bn_momentum,
                             cond=cond, train=train)
    in_ch = x.shape[-1]
    h = _upsample(nn.relu(norm('bn1', x=x)))
    h = sn(_conv(self.features, 3, in_ch, 'conv1'))(h)
    h = nn.relu(norm('bn2', x=h))
    h = sn(_conv(self.features, 3, self.features, 'conv2'))(h)
    return h + sn(_conv(self.features, 1, in_ch, 'conv_sc'))(_upsample(x))


class DBlock(nn.Module, kw_only=True):
  """BigGAN's DBlock (wide): [ReLU], conv3x3, ReLU, conv3x3, [avg pool]; a conv1x1 shortcut when needed."""
  features: int
  downsample: bool = True
  preactivation: bool = True     # False for the first block, which sees the image
  wide: bool = True              # D_wide: hidden width = output width
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, *, train: bool):
    sn = _spectral(self.spectral_norm, train)
    in_ch = x.shape[-1]
    hidden = self.features if self.wide else in_ch
    h = nn.relu(x) if self.preactivation else x
    h = sn(_conv(hidden, 3, in_ch, 'conv1'))(h)
    h = sn(_conv(self.features, 3, hidden, 'conv2'))(nn.relu(h))
    if self.downsample:
      h = _downsample(h)
    shortcut = x
    if in_ch != self.features or self.downsample:
      conv_sc = sn(_conv(self.features, 1, in_ch, 'conv_sc'))
      # Pre-activated blocks convolve, then pool; the first pools, then convolves.
      if self.preactivation:
        shortcut = conv_sc(shortcut)
        shortcut = _downsample(shortcut) if self.downsample else shortcut
      else:
        shortcut = conv_sc(_downsample(shortcut) if self.downsample else shortcut)
    return h + shortcut


class Attention(nn.Module, kw_only=True):
  """SA-GAN's non-local block as BigGAN's code has it: 1x1 SN convs, 2x2 max-pooled keys, gain 0 at init."""
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, *, train: bool):
    b, height, width, ch = x.shape
    sn = _spectral(self.spectral_norm, train)
    # ch // 8 as in the code; at least 1 so that tiny test widths still build.
    key_ch, value_ch = max(1, ch // 8), max(1, ch // 2)

    def conv(features, name):
      return sn(_conv(features, 1, ch, name, use_bias=False))

    def pool(y):
      return nn.max_pool(y, (2, 2), strides=(2, 2))

    theta = conv(key_ch, 'theta')(x).reshape(b, height * width, key_ch)
    phi = pool(conv(key_ch, 'phi')(x)).reshape(b, -1, key_ch)
    g = pool(conv(value_ch, 'g')(x)).reshape(b, -1, value_ch)
    beta = jax.nn.softmax(jnp.einsum('bqc,bkc->bqk', theta, phi), axis=-1)
    o = jnp.einsum('bqk,bkc->bqc', beta, g).reshape(b, height, width, value_ch)
    o = sn(_conv(ch, 1, value_ch, 'o', use_bias=False))(o)
    gamma = self.param('gamma', nn.initializers.zeros_init(), ())
    return gamma * o + x


class BigGANGenerator(blocks.ImageGenerator, kw_only=True):
  """BigGAN's Generator for `arch`; conditioning 'cbn' is BigGAN's ccbn (module docstring)."""
  arch: Arch = ARCHITECTURES[32]
  ch: int = BASE_CH
  attention: int = 0         # output resolution of the block followed by self-attention; 0: none
  shared_dim: int = 0        # > 0: a shared class embedding of this size (G_shared)
  hier: bool = False         # hierarchical z (needs shared_dim)
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    sn = _spectral(self.spectral_norm, train)
    num_blocks = len(self.arch.g_out)
    chunks = jnp.split(z, num_blocks + 1, axis=-1) if self.hier else [z]
    mode, conds = self._block_conditions(labels, chunks[1:], num_blocks)
    x = layers.condition_vector(chunks[0], labels, self.num_classes, self.conditioning)
    width = self.ch * self.arch.g_in[0]
    x = sn(_dense(width * BOTTOM ** 2, x.shape[-1], 'linear'))(x)
    # PyTorch's h.view(B, -1, 4, 4) reads the units channel-first.
    x = x.reshape(x.shape[0], width, BOTTOM, BOTTOM).transpose(0, 2, 3, 1)
    resolutions = self.arch.g_resolution(BOTTOM)
    for i, mult in enumerate(self.arch.g_out):
      x = GBlock(features=self.ch * mult, norm_mode=mode, num_classes=self.num_classes,
                 bn_momentum=self.bn_momentum, spectral_norm=self.spectral_norm,
                 name=f'block_{i}')(x, conds[i], train=train)
      if resolutions[i] == self.attention:
        x = Attention(spectral_norm=self.spectral_norm, name=f'attention_{i}')(x, train=train)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=BN_EPS,
                     name='output_bn')(x)
    x = sn(_conv(self.channels, 3, x.shape[-1], 'output_conv'))(nn.relu(x))
    return jnp.tanh(x)

  def _block_conditions(self, labels, z_chunks, num_blocks) -> tuple[str, list[Any]]:
    """(norm mode, each block's conditioning): class ids, [shared(y), z chunk], or nothing."""
    if not (self.num_classes and self.conditioning == 'cbn'):
      return 'none', [None] * num_blocks
    if not self.shared_dim:
      return 'classes', [labels] * num_blocks
    # G's embeddings are never spectrally normalised in the authors' code.
    shared = layers.lookup(nn.Embed(self.num_classes, self.shared_dim, embedding_init=N02,
                                    name='shared'), labels)
    if not self.hier:
      return 'vector', [shared] * num_blocks
    return 'vector', [jnp.concatenate([shared, chunk.astype(shared.dtype)], axis=-1)
                      for chunk in z_chunks]


class BigGANDiscriminator(nn.Module, kw_only=True):
  """BigGAN's Discriminator for `arch`; conditioning 'projection' is BigGAN's (N02 SN embedding)."""
  num_classes: int = 0
  arch: Arch = ARCHITECTURES[32]
  ch: int = BASE_CH
  attention: int = 0         # D_arch resolution of the blocks followed by self-attention; 0: none
  conditioning: str = 'projection'
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    sn = _spectral(self.spectral_norm, train)
    x = layers.condition_maps(x, labels, self.num_classes, self.conditioning)
    for i, (mult, down) in enumerate(zip(self.arch.d_out, self.arch.d_down)):
      x = DBlock(features=self.ch * mult, downsample=down, preactivation=i > 0,
                 spectral_norm=self.spectral_norm, name=f'block_{i}')(x, train=train)
      if self.arch.d_resolution[i] == self.attention:
        x = Attention(spectral_norm=self.spectral_norm, name=f'attention_{i}')(x, train=train)
    features = jnp.sum(nn.relu(x), axis=(1, 2))      # global sum pooling
    logits = sn(_dense(1, features.shape[-1], 'linear'))(features)[:, 0]
    if self.num_classes and self.conditioning == 'projection':
      embed = sn(nn.Embed(self.num_classes, features.shape[-1], embedding_init=N02,
                          name='embed'))
      return logits + jnp.sum(embed(labels) * features, axis=-1)
    return blocks.class_output(self, logits, features, labels, train)   # acgan, or plain


OPTION_KEYS = ('attention', 'shared_dim', 'hier')


def _options(options, size: int, num_classes: int, g_conditioning: str,
             latent_dim: int) -> dict:
  """`config.model.biggan`, checked against the architecture and the rest of `config.model`."""
  opts = {'attention': 0, 'shared_dim': 0, 'hier': False, **dict(options or {})}
  unknown = sorted(set(opts) - set(OPTION_KEYS))
  if unknown:
    raise errors.ConfigError(f'config.model.biggan has unknown keys {unknown}; it takes '
                             f'{", ".join(OPTION_KEYS)}.')
  arch = ARCHITECTURES[size]
  places = sorted(set(arch.g_resolution(BOTTOM)) | set(arch.d_resolution))
  if opts['attention'] and opts['attention'] not in places:
    raise errors.ConfigError(
        f"config.model.biggan.attention={opts['attention']} matches no block of biggan{size}: "
        f'use 0 (none) or one of {", ".join(map(str, places))}.')
  if opts['shared_dim'] < 0:
    raise errors.ConfigError(f"config.model.biggan.shared_dim={opts['shared_dim']} must be >= 0 "
                             '(0: per-layer class embeddings, as BigGAN at CIFAR-10).')
  if opts['shared_dim'] and not (num_classes and g_conditioning == 'cbn'):
    raise errors.ConfigError(
        'config.model.biggan.shared_dim > 0 is a shared class embedding for the ccbn layers: it '
        "needs config.model.conditional=True and config.model.g_conditioning='cbn'.")
  if opts['hier']:
    slots = len(arch.g_out) + 1
    if not opts['shared_dim']:
      raise errors.ConfigError('config.model.biggan.hier=True joins z chunks to the shared class '
                               'embedding: set config.model.biggan.shared_dim > 0 (BigGAN: 128).')
    if latent_dim % slots:
      raise errors.ConfigError(
          f'config.model.biggan.hier=True cuts z into {slots} equal chunks at biggan{size}: set '
          f'config.model.latent_dim to a multiple of {slots} (BigGAN-PyTorch rounds its dim_z '
          f'down to {latent_dim // slots * slots}).')
  return opts


def builder(size: int) -> Callable:
  """The `models.ModelEntry` builder of biggan{size}: widths are 64 x model.width_scale (ch)."""
  arch = ARCHITECTURES[size]

  def build_biggan(*, image_shape, num_classes, latent_dim, width_scale, bn_momentum,
                   g_conditioning, d_conditioning, g_spectral_norm, d_spectral_norm,
                   biggan=None, **_):
    opts = _options(biggan, size, num_classes, g_conditioning, latent_dim)
    ch = max(1, int(round(BASE_CH * width_scale)))
    return (BigGANGenerator(channels=image_shape[2], num_classes=num_classes,
                            bn_momentum=bn_momentum, conditioning=g_conditioning, arch=arch,
                            ch=ch, attention=opts['attention'], shared_dim=opts['shared_dim'],
                            hier=opts['hier'], spectral_norm=g_spectral_norm),
            BigGANDiscriminator(num_classes=num_classes, arch=arch, ch=ch,
                                attention=opts['attention'], conditioning=d_conditioning,
                                spectral_norm=d_spectral_norm))
  return build_biggan
