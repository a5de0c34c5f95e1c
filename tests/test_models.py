"""Model zoo: output shapes, PyTorch-equivalent transposed convs, model entries, build errors."""

import dataclasses
import hashlib
import inspect
import math

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


@pytest.mark.parametrize('name, shape, overrides, message', [
    ('dcgan28', (28, 28, 1), {'model.conditional': True, 'model.g_conditioning': 'embed'},
     r"g_conditioning='embed'.*the G of model 'dcgan28'.*"
     r'Models whose G implements it: dcgan64, dcgan64_wide, r3gan32, r3gan64, resnet18d\.'),
    ('vae', (28, 28, 1), {'model.conditional': True, 'model.d_conditioning': 'projection'},
     r"d_conditioning='projection'.*the D of model 'vae', which takes none, concat\..*sngan32"),
    ('dcgan32', (32, 32, 3), {'model.spectral_norm': 'gd'},
     r"spectral_norm='gd' is not supported by model 'dcgan32', which takes 'none', 'd' "
     r"\('default' is 'none'\)\. Models that take 'gd': biggan128, biggan32, biggan64, sngan32, "
     r"sngan48, sngan64\."),
    ('vae', (28, 28, 1), {'model.spectral_norm': 'd'},
     r"spectral_norm='d' is not supported by model 'vae'"),
    ('dcgan64', (32, 32, 3), {},
     r"model.name='dcgan64' makes 64x64 images, but the data is 32x32 images\. Set "
     r'--config.data.image_size=64, or pick a model that makes 32x32 images: biggan32, '
     r'dcgan32, ddpm_unet, mlp, r3gan32, resnet18d, sngan32, vae\.'),
    ('vae', (30, 30, 1), {}, r'side divisible by 4.*but the data is 30x30 images'),
    ('mlp2d', (28, 28, 1), {}, r"makes 2D points, but the data is 28x28 images\. Use it "
     r"with config.trainer='toy2d'"),
    ('dcgan28', (2,), {}, r'the data is 2D points.*that makes 2D points: mlp2d, pacgan2d\.'),
    ('mlp2d', (2,), {'model.conditional': True},
     r"model 'mlp2d' is unconditional.*conditional=False"),
])
def test_a_model_entry_refuses_what_it_does_not_support(name, shape, overrides, message):
  config = make_config(**{'model.name': name, 'model.width_scale': 0.125, **overrides})
  with pytest.raises(errors.ConfigError, match=message):
    models.build(config.model, shape, 10)


def test_model_entries_declare_what_they_support():
  sngan, dcgan28 = models.MODELS.get('sngan32'), models.MODELS.get('dcgan28')
  assert sngan.default_spectral_norm == 'd' and 'gd' in sngan.spectral_norm
  assert sngan.spectral_norm_in('default') == (False, True)
  assert dcgan28.spectral_norm_in('default') == (False, False)
  assert dcgan28.makes((28, 28, 3)) and not dcgan28.makes((32, 32, 3))
  assert models.MODELS.get('vae').makes((32, 32, 3))
  assert not models.MODELS.get('vae').makes((28, 32, 3))
  assert 'embed' in models.MODELS.get('resnet18d').d_conditionings
  assert 'embed' not in dcgan28.d_conditionings
  # Spectral norm in D honoured by the builder, from the entry's default or the config.
  config = make_config(**{'model.name': 'dcgan28', 'model.spectral_norm': 'd'})
  assert models.build(config.model, (28, 28, 1), 0).discriminator.spectral_norm


@pytest.mark.parametrize('name', models.MODELS.names())
def test_builders_take_keyword_arguments_only(name):
  builder = models.MODELS.get(name).builder
  kinds = {p.kind for p in inspect.signature(builder).parameters.values()}
  assert kinds <= {inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD}
  with pytest.raises(TypeError):
    builder((28, 28, 1), 0, 100)
  # The modules it builds take keywords only too.
  shape = _SHAPES[name]
  config = make_config(**{'model.name': name, 'model.latent_dim': 16})
  gan = models.build(config.model, shape, 0)
  for module in (gan.generator, gan.discriminator):
    fields = [f.name for f in dataclasses.fields(module) if f.name not in ('parent', 'name')]
    if fields:
      with pytest.raises(TypeError):
        type(module)(*[getattr(module, f) for f in fields])


# sha256 (first 16 hex) of the sorted (path, shape, dtype) of G's and D's
# variables: unconditional, and conditional (cbn G, projection D; concat for
# vae and ddpm_unet; embed G for r3gan). Checkpoints written before (tests/fixtures/legacy_runs)
# restore only while these stay: a change here breaks every saved run.
VARIABLE_TREES = {
    'biggan32': ('8dc0603e675cd58a', 'c85e1786b87e1992'),
    'biggan64': ('0f931a84e41d0198', 'dab180ca581db904'),
    'biggan128': ('01b7bf13e8f1092a', 'a20ca2bd95d416ff'),
    'r3gan32': ('e59560b84b0e4d60', '6508bbed181ce56d'),
    'r3gan64': ('40516ded24bd9959', '3859abfeddafe320'),
    'dcgan28': ('14da21ddef25a354', 'fc18be5854dd6230'),
    'dcgan32': ('7e0a715561a432d6', '552bb16c540ee5f9'),
    'dcgan64': ('698fd3958e218e49', '84432878b5d8bd3f'),
    'dcgan64_wide': ('fe373e54c23f2c3c', '00ed111846ffd66a'),
    'ddpm_unet': ('eef2fe9fb3718fb8', 'bd90647f71582991'),
    'mlp': ('c4f38e6ff593d16f', '6f0a7d20d371c089'),
    'mlp2d': ('62467bb3b525dd2b', None),
    'pacgan2d': ('6379e6c48cadddfa', None),
    'resnet18d': ('243b161f31623b8d', '29197e96ea21fdf3'),
    'sngan32': ('1182845d74802bf3', 'e7fb6df2afe14d09'),
    'sngan48': ('0c8ed333d95871c9', 'b7bb4b479b8edec0'),
    'sngan64': ('cfd0088f64af1476', 'b0530ad582195023'),
    'vae': ('777e92a15d58a344', '79d58359cb415ca8'),
}
_SHAPES = {'biggan32': (32, 32, 3), 'biggan64': (64, 64, 3), 'biggan128': (128, 128, 3),
           'r3gan32': (32, 32, 3), 'r3gan64': (64, 64, 3), 'dcgan28': (28, 28, 1), 'dcgan32': (32, 32, 3), 'dcgan64': (64, 64, 3),
           'dcgan64_wide': (64, 64, 3), 'ddpm_unet': (28, 28, 1), 'mlp': (28, 28, 1),
           'mlp2d': (2,), 'pacgan2d': (2,), 'resnet18d': (32, 32, 3), 'sngan32': (32, 32, 3),
           'sngan48': (48, 48, 3), 'sngan64': (64, 64, 3), 'vae': (28, 28, 1)}


def _variable_tree_digest(name: str, conditional: bool) -> str:
  shape = _SHAPES[name]
  overrides = {'model.name': name, 'model.conditional': conditional}
  if conditional and name not in ('vae', 'ddpm_unet'):
    g_conditioning = 'embed' if name.startswith('r3gan') else 'cbn'
    overrides.update({'model.g_conditioning': g_conditioning,
                      'model.d_conditioning': 'projection'})
  config = make_config(**overrides)
  gan = models.build(config.model, shape, 10 if conditional else 0)
  latent = math.prod(shape) if name == 'ddpm_unet' else config.model.latent_dim
  z, labels = jnp.zeros((1, latent)), jnp.zeros((1,), jnp.int32)
  key = jax.random.PRNGKey(0)
  g = jax.eval_shape(lambda: gan.generator.init(key, z, labels, train=False))
  d = jax.eval_shape(lambda: gan.discriminator.init(key, jnp.zeros((1, *shape)), labels,
                                                    train=False))
  lines = sorted(f'{jax.tree_util.keystr(p)} {x.shape} {x.dtype}'
                 for p, x in jax.tree_util.tree_leaves_with_path({'g': g, 'd': d}))
  return hashlib.sha256('\n'.join(lines).encode()).hexdigest()[:16]


@pytest.mark.parametrize('name', sorted(VARIABLE_TREES))
def test_variable_trees_are_those_checkpoints_were_written_with(name):
  assert set(VARIABLE_TREES) == set(models.MODELS.names()), 'add the new model here'
  plain, conditional = VARIABLE_TREES[name]
  assert _variable_tree_digest(name, False) == plain
  if conditional:
    assert _variable_tree_digest(name, True) == conditional
