"""Drawing images from a generator: fixed-noise grids during training, batches for `generate`.

G runs in inference mode (BatchNorm uses its running statistics), from the
EMA weights when the run keeps them; an EMA G's BatchNorm statistics are
then standing statistics (`gan_jax.generation.standing.sampling_variables`
gives the variables every caller draws with).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import errors
from gan_jax.models import GANModels


def to_uint8(images: jax.Array) -> jax.Array:
  """[-1, 1] floats -> uint8 pixels, rounding to nearest."""
  return jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def draw(gan: GANModels, variables, z, labels) -> jax.Array:
  """G's images in [-1, 1] for noise z, in inference mode (traceable)."""
  if gan.sampler is not None:   # e.g. the DDPM's reverse process
    return gan.sampler(variables, z, labels)
  return gan.generator.apply(variables, z, labels, train=False)


def make_sampler(gan: GANModels):
  """Returns jitted `sample(variables, z, labels) -> uint8 images (N, H, W, C)`."""
  @jax.jit
  def sample(variables, z, labels):
    return to_uint8(draw(gan, variables, z, labels))
  return sample


def latents(key: jax.Array, gan: GANModels, num: int, label: int | None = None):
  """`num` noise vectors and their labels: `label` for all, or uniform over classes."""
  z_key, label_key = jax.random.split(key)
  z = jax.random.normal(z_key, (num, gan.latent_dim), jnp.float32)
  if not gan.num_classes:
    labels = jnp.zeros((num,), jnp.int32)
  elif label is None:
    labels = jax.random.randint(label_key, (num,), 0, gan.num_classes)
  else:
    if not 0 <= label < gan.num_classes:
      raise errors.ConfigError(f'label {label} is out of range: this model has '
                       f'{gan.num_classes} classes (0..{gan.num_classes - 1}).')
    labels = jnp.full((num,), label, jnp.int32)
  return z, labels


def grid_latents(seed: int, gan: GANModels, num: int, per_class: int):
  """The fixed noise behind every sample grid of a run, and the grid's column count.

  Unconditional: `num` images in a near-square grid. Conditional: one row per
  class with `per_class` columns, the same noise in every row, so a column
  shows one z across classes.
  """
  key = jax.random.PRNGKey(seed)
  if gan.num_classes:
    z = jax.random.normal(key, (per_class, gan.latent_dim), jnp.float32)
    z = jnp.tile(z, (gan.num_classes, 1))
    labels = jnp.repeat(jnp.arange(gan.num_classes, dtype=jnp.int32), per_class)
    return z, labels, per_class
  z = jax.random.normal(key, (num, gan.latent_dim), jnp.float32)
  return z, jnp.zeros((num,), jnp.int32), int(np.ceil(np.sqrt(num)))
