"""Model zoo: output shapes, PyTorch-equivalent transposed convolutions, build errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors, models
from gan_jax.models import layers
from tests.conftest import make_config


@pytest.mark.parametrize('name, shape', [('dcgan28', (28, 28, 1)),
                                         ('dcgan28', (28, 28, 3)),
                                         ('dcgan32', (32, 32, 3)),
                                         ('mlp', (28, 28, 1)),
                                         ('mlp', (16, 16, 3))])
@pytest.mark.parametrize('num_classes', [0, 10])
def test_generator_and_discriminator_shapes(name, shape, num_classes):
  config = make_config(**{'model.name': name, 'model.latent_dim': 16,
                          'model.conditional': bool(num_classes)})
  gan = models.build(config.model, shape, num_classes)
  z = jnp.zeros((3, 16))
  labels = jnp.array([0, 1, 2])
  g_vars = gan.generator.init(jax.random.PRNGKey(0), z, labels, train=False)
  images = gan.generator.apply(g_vars, z, labels, train=False)
  assert images.shape == (3, *shape)
  assert float(jnp.max(jnp.abs(images))) <= 1.0  # tanh output
  d_vars = gan.discriminator.init(jax.random.PRNGKey(1), images, labels, train=False)
  logits = gan.discriminator.apply(d_vars, images, labels, train=False)
  assert logits.shape == (3,)
  assert gan.num_classes == num_classes


def test_conditional_models_respond_to_the_label():
  config = make_config(**{'model.name': 'dcgan28', 'model.conditional': True})
  gan = models.build(config.model, (28, 28, 1), 10)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 100))
  same_z = jnp.concatenate([z[:1], z[:1]])
  g_vars = gan.generator.init(jax.random.PRNGKey(0), z, jnp.array([0, 1]), train=False)
  images = gan.generator.apply(g_vars, same_z, jnp.array([0, 1]), train=False)
  assert not np.allclose(images[0], images[1])


def torch_conv_transpose_reference(x, w, stride, padding):
  """PyTorch ConvTranspose2d by its definition: scatter-add of input x kernel.

  x: (H, W, Cin); w: (Cin, Cout, k, k) in PyTorch's layout.
  """
  h, wd, _ = x.shape
  cin, cout, k, _ = w.shape
  full = np.zeros(((h - 1) * stride + k, (wd - 1) * stride + k, cout))
  for i in range(h):
    for j in range(wd):
      full[i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum(
          'c,cokl->klo', x[i, j], w)
  return full[padding:full.shape[0] - padding, padding:full.shape[1] - padding]


@pytest.mark.parametrize('kernel, stride, padding, size', [(3, 1, 0, 1), (3, 2, 0, 3),
                                                           (4, 2, 1, 7), (4, 2, 1, 14)])
def test_conv_transpose_matches_pytorch_definition(kernel, stride, padding, size):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1, size, size, 3)).astype(np.float32)
  layer = layers.conv_transpose(5, kernel, stride, padding, use_bias=False)
  params = layer.init(jax.random.PRNGKey(0), x)
  ours = np.asarray(layer.apply(params, x))[0]
  # With transpose_kernel=True Flax stores (k, k, Cout, Cin) and flips it itself,
  # so it is PyTorch's (Cin, Cout, k, k) weight with the axes reordered.
  flax_kernel = np.asarray(params['params']['kernel'])
  torch_weight = flax_kernel.transpose(3, 2, 0, 1)
  expected = torch_conv_transpose_reference(x[0], torch_weight, stride, padding)
  assert ours.shape == expected.shape == ((size - 1) * stride - 2 * padding + kernel,) * 2 + (5,)
  np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_wrong_image_size_names_the_fix():
  config = make_config(**{'model.name': 'dcgan32'})
  with pytest.raises(errors.ConfigError, match='image_size=32'):
    models.build(config.model, (28, 28, 1), 0)


def test_unknown_model_lists_the_choices():
  config = make_config(**{'model.name': 'dcgan23'})
  with pytest.raises(errors.ConfigError, match="Unknown model 'dcgan23'.*dcgan28"):
    models.build(config.model, (28, 28, 1), 0)


def test_conditional_needs_labels():
  config = make_config(**{'model.conditional': True})
  with pytest.raises(errors.ConfigError, match='conditional'):
    models.build(config.model, (28, 28, 1), 0)
