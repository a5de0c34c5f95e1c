"""The sub-pixel transposed convolution equals Flax's `nn.ConvTranspose`, parameters included.

`layers.conv_transpose` computes PyTorch's ConvTranspose2d as small stride-1
convolutions interleaved by depth-to-space (`impl='subpixel'`, the default)
instead of XLA's input-dilated convolution (`impl='xla'`). Same function,
same parameters: checkpoints written with either load in the other.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import layers
from gan_jax.training import checkpoint
from tests.conftest import make_config

# (kernel, stride, padding, input size): every transposed conv of the zoo, and odd ones.
SHAPES = [(3, 1, 0, 1), (3, 2, 0, 3), (4, 2, 1, 7), (4, 2, 1, 4), (5, 2, 2, 4),
          (4, 3, 1, 3), (4, 2, 0, 3), (2, 2, 0, 3), (1, 2, 0, 3)]


def _both(kernel, stride, padding, size, features=5, channels=3):
  x = jax.random.normal(jax.random.PRNGKey(1), (2, size, size + 1, channels))
  xla = layers.conv_transpose(features, kernel, stride, padding, impl='xla')
  subpixel = layers.conv_transpose(features, kernel, stride, padding)
  params = xla.init(jax.random.PRNGKey(0), x)
  # A nonzero bias, so that its layout is checked too.
  params = jax.tree.map(lambda p: p + 0.1 * jnp.arange(p.size).reshape(p.shape) / p.size,
                        params)
  return x, xla, subpixel, params


@pytest.mark.parametrize('kernel, stride, padding, size', SHAPES)
def test_same_parameters_and_outputs(kernel, stride, padding, size):
  x, xla, subpixel, params = _both(kernel, stride, padding, size)
  fresh = subpixel.init(jax.random.PRNGKey(0), x)
  assert jax.tree.structure(fresh) == jax.tree.structure(params)
  # Same names, shapes and initial values: a fresh init is the old one.
  old_init = xla.init(jax.random.PRNGKey(0), x)
  jax.tree.map(np.testing.assert_array_equal, fresh, old_init)
  expected = xla.apply(params, x)
  out = subpixel.apply(params, x)
  assert out.shape == expected.shape == (
      2, (size - 1) * stride - 2 * padding + kernel, size * stride - 2 * padding + kernel, 5)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kernel, stride, padding, size', [(3, 2, 0, 3), (4, 2, 1, 4),
                                                           (4, 3, 1, 3)])
def test_same_gradients(kernel, stride, padding, size):
  x, xla, subpixel, params = _both(kernel, stride, padding, size)
  target = jax.random.normal(jax.random.PRNGKey(2), xla.apply(params, x).shape)

  def loss(layer, params, x):
    return jnp.sum(jnp.sin(layer.apply(params, x)) * target)

  expected = jax.grad(functools.partial(loss, xla), argnums=(0, 1))(params, x)
  grads = jax.grad(functools.partial(loss, subpixel), argnums=(0, 1))(params, x)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-4),
               grads, expected)


def test_unknown_impl_is_an_error():
  with pytest.raises(ValueError, match='subpixel'):
    layers.conv_transpose(4, 4, 2, 1, impl='fast')


def test_checkpoint_of_the_xla_layout_loads(tmp_path, monkeypatch):
  """A generator saved with `nn.ConvTranspose` layers restores and gives the same images.

  dcgan28's G has every kind of transposed conv in the zoo: k3 s1, k3 s2, k4 s2 p1.
  """
  shape = (28, 28, 1)
  config = make_config(**{'model.name': 'dcgan28', 'model.latent_dim': 8})
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  labels = jnp.zeros((4,), jnp.int32)
  new_gan = models.build(config.model, shape, 0)
  with monkeypatch.context() as patch:
    patch.setattr(layers, 'conv_transpose',
                  functools.partial(layers.conv_transpose, impl='xla'))
    old_gan = models.build(config.model, shape, 0)
    old_vars = old_gan.generator.init(jax.random.PRNGKey(3), z, labels, train=False)
    assert any(name.startswith('ConvTranspose_') for name in old_vars['params'])
    old_images = old_gan.generator.apply(old_vars, z, labels, train=False)
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), async_save=False)
  ckpt.save(1, old_vars)
  ckpt.wait()
  abstract = jax.eval_shape(
      lambda: new_gan.generator.init(jax.random.PRNGKey(4), z, labels, train=False))
  restored = ckpt.restore(abstract)
  ckpt.close()
  np.testing.assert_allclose(new_gan.generator.apply(restored, z, labels, train=False),
                             old_images, rtol=1e-5, atol=1e-5)

