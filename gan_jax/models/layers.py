"""Layers shared by the model zoo: PyTorch-shaped convolutions and label conditioning.

The reference experiments are PyTorch code, so convolutions here take PyTorch's
(kernel, stride, padding) arguments and produce exactly PyTorch's output
shapes; a weight ported from a reference model lines up without guesswork.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

# PyTorch initialises conv and dense layers with kaiming_uniform(a=sqrt(5)),
# i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) = variance_scaling(1/3, fan_in, uniform).
torch_kernel_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')


def conv(features: int, kernel: int, stride: int = 1, padding: int = 0,
         use_bias: bool = True, name: str | None = None) -> nn.Conv:
  """`torch.nn.Conv2d(in, features, kernel, stride, padding)` in NHWC."""
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((padding, padding), (padding, padding)),
                 use_bias=use_bias, kernel_init=torch_kernel_init, name=name)


def conv_transpose(features: int, kernel: int, stride: int = 1,
                   padding: int = 0, use_bias: bool = True,
                   name: str | None = None) -> nn.ConvTranspose:
  """`torch.nn.ConvTranspose2d(in, features, kernel, stride, padding)` in NHWC.

  Output size is (in - 1) * stride - 2 * padding + kernel, as in PyTorch:
  the transposed convolution pads the stride-dilated input by
  kernel - 1 - padding on each side and applies the flipped kernel.
  """
  pad = kernel - 1 - padding
  return nn.ConvTranspose(features, (kernel, kernel), strides=(stride, stride),
                          padding=((pad, pad), (pad, pad)),
                          transpose_kernel=True, use_bias=use_bias,
                          kernel_init=torch_kernel_init, name=name)


def dense(features: int, use_bias: bool = True,
          name: str | None = None) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, kernel_init=torch_kernel_init,
                  name=name)


def batch_norm(train: bool, momentum: float, name: str | None = None):
  """BatchNorm with PyTorch's epsilon; `momentum` is Flax's (1 - PyTorch's)."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum,
                      epsilon=1e-5, name=name)


leaky_relu = functools.partial(nn.leaky_relu, negative_slope=0.2)


def concat_label(z: jnp.ndarray, labels, num_classes: int) -> jnp.ndarray:
  """Appends the one-hot class to a vector input (conditioning by concatenation)."""
  if not num_classes:
    return z
  return jnp.concatenate([z, nn.one_hot(labels, num_classes, dtype=z.dtype)],
                         axis=-1)


def concat_label_maps(x: jnp.ndarray, labels, num_classes: int) -> jnp.ndarray:
  """Appends the one-hot class as constant feature maps to an NHWC input."""
  if not num_classes:
    return x
  onehot = nn.one_hot(labels, num_classes, dtype=x.dtype)
  maps = jnp.broadcast_to(onehot[:, None, None, :],
                          x.shape[:3] + (num_classes,))
  return jnp.concatenate([x, maps], axis=-1)
