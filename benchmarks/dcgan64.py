"""A stand-in DCGAN-64 for the benchmarks until issue 3 registers the model zoo's own.

The networks issue 3 specifies (../shared/reports/dcgan64-cats-anime-report.txt),
built from `gan_jax.models.layers` so they use the same convolutions as the
zoo: G dense z -> 8x8x1024, transposed convs 512/256/128 (k4 s2) with
BatchNorm and LeakyReLU, a k4 'SAME' conv to 3 channels, tanh; D 5x5 convs
128/256/512/1024 at strides 1, 2, 2, 2 with BatchNorm and LeakyReLU, a dense
logit. `benchmarks.torch_reference` has the same networks in PyTorch.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import GANModels, layers


class Generator64(nn.Module):
  channels: int = 3

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    del labels
    x = layers.dense(8 * 8 * 1024)(z).reshape(-1, 8, 8, 1024)
    x = nn.relu(layers.batch_norm(train, 0.9)(x))
    for features in (512, 256, 128):
      x = layers.conv_transpose(features, 4, 2, 1)(x)
      x = layers.leaky_relu(layers.batch_norm(train, 0.9)(x))
    x = nn.Conv(self.channels, (4, 4), padding='SAME',
                kernel_init=layers.torch_kernel_init)(x)
    return jnp.tanh(x)


class Discriminator64(nn.Module):

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    del labels
    for features, stride in ((128, 1), (256, 2), (512, 2), (1024, 2)):
      x = layers.conv(features, 5, stride, 2)(x)
      x = layers.leaky_relu(layers.batch_norm(train, 0.9)(x))
    return layers.dense(1)(x.reshape(x.shape[0], -1)).reshape(x.shape[0])


def build(latent_dim: int = 100) -> GANModels:
  return GANModels(Generator64(), Discriminator64(), latent_dim, 0, (64, 64, 3))
