"""Conditioning chosen per network: projection D, conditional BatchNorm G, ACGAN head, none."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors, models
from tests.conftest import make_config

# (model, image shape, width scale): the small zoo models and a tiny SNGAN.
ZOO = [('mlp', (8, 8, 1), 0.125), ('dcgan32', (32, 32, 3), 0.125),
       ('sngan32', (32, 32, 3), 1 / 16)]


def _init(module, *args):
  return jax.jit(lambda key, *a: module.init(key, *a, train=False))(jax.random.PRNGKey(1), *args)


def _apply(module, variables, *args):
  return jax.jit(lambda v, *a: module.apply(v, *a, train=False))(variables, *args)


def _gan(name, shape, scale, g='concat', d='concat'):
  config = make_config(**{'model.name': name, 'model.conditional': True,
                          'model.width_scale': scale, 'model.latent_dim': 8,
                          'model.g_conditioning': g, 'model.d_conditioning': d})
  return models.build(config.model, shape, 10)


@pytest.mark.parametrize('name, shape, scale', ZOO)
def test_projection_discriminator_responds_to_the_label(name, shape, scale):
  gan = _gan(name, shape, scale, d='projection')
  x = jnp.repeat(jax.random.uniform(jax.random.PRNGKey(0), (1, *shape), minval=-1), 2, 0)
  labels = jnp.array([0, 1])
  variables = _init(gan.discriminator, x, labels)
  assert 'class_embed' in str(jax.tree_util.tree_structure(variables['params']))
  logits = _apply(gan.discriminator, variables, x, labels)
  assert logits.shape == (2,)
  assert abs(float(logits[0] - logits[1])) > 1e-4, 'same image, other label, same logit'


@pytest.mark.parametrize('name, shape, scale', ZOO)
def test_conditional_batchnorm_generator_responds_to_the_label(name, shape, scale):
  gan = _gan(name, shape, scale, g='cbn')
  z = jnp.repeat(jax.random.normal(jax.random.PRNGKey(0), (1, 8)), 2, 0)
  labels = jnp.array([0, 1])
  variables = _init(gan.generator, z, labels)
  # At initialisation every class has scale 1 and shift 0 (plain BatchNorm);
  # give the per-class parameters distinct values, as training does.
  key = iter(jax.random.split(jax.random.PRNGKey(2), 1000))
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: (v + 0.5 * jax.random.normal(next(key), v.shape)
                    if any(getattr(k, 'key', '') in ('scale', 'shift') for k in p) else v),
      variables['params'])
  images = _apply(gan.generator, {**variables, 'params': params}, z, labels)
  assert images.shape == (2, *shape)
  assert not np.allclose(images[0], images[1], atol=1e-4)


@pytest.mark.parametrize('name, shape, scale', ZOO)
def test_acgan_head_classifies_the_image(name, shape, scale):
  gan = _gan(name, shape, scale, d='acgan')
  x = jax.random.uniform(jax.random.PRNGKey(0), (3, *shape), minval=-1)
  labels = jnp.array([0, 1, 2])
  variables = _init(gan.discriminator, x, labels)
  out = _apply(gan.discriminator, variables, x, labels)
  logits, extras = models.split_output(out)
  assert logits.shape == (3,) and extras['class_logits'].shape == (3, 10)
  # The head reads the image, not the label.
  other = _apply(gan.discriminator, variables, x, jnp.array([5, 5, 5]))
  np.testing.assert_array_equal(other['class_logits'], extras['class_logits'])
  np.testing.assert_array_equal(other['logits'], logits)


def test_none_ignores_the_label_on_both_sides():
  gan = _gan('mlp', (8, 8, 1), 0.125, g='none', d='none')
  z = jnp.repeat(jax.random.normal(jax.random.PRNGKey(0), (1, 8)), 2, 0)
  labels = jnp.array([0, 1])
  g_vars = _init(gan.generator, z, labels)
  images = _apply(gan.generator, g_vars, z, labels)
  np.testing.assert_array_equal(images[0], images[1])
  d_vars = _init(gan.discriminator, images, labels)
  logits = _apply(gan.discriminator, d_vars, images, labels)
  assert float(logits[0]) == float(logits[1])
  assert gan.num_classes == 10   # still a conditional GAN: labels are drawn and recorded


def test_bad_conditioning_is_named():
  with pytest.raises(errors.ConfigError, match="d_conditioning='projektion'"):
    _gan('mlp', (8, 8, 1), 0.125, d='projektion')
  with pytest.raises(errors.ConfigError, match="g_conditioning='projection'"):
    _gan('mlp', (8, 8, 1), 0.125, g='projection')
  config = make_config(**{'model.d_conditioning': 'projection'})
  with pytest.raises(errors.ConfigError, match='model.conditional=True'):
    models.build(config.model, (28, 28, 1), 10)
