"""Spectral norm: sigma_max of the normalised weight is 1, u is trained state that eval only reads."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.data.source import DatasetInfo
from gan_jax.generation import sampling
from gan_jax.models import layers
from gan_jax.training import checkpoint
from gan_jax.training import setup as setup_lib
from tests.conftest import make_config


class _OneLayer(nn.Module):
  """A single spectrally normalised Dense (12 -> 7) or 3x3 Conv (4 -> 7 channels), no bias."""
  kind: str

  @nn.compact
  def __call__(self, x, *, train: bool):
    layer = (layers.dense(7, use_bias=False) if self.kind == 'dense'
             else layers.conv(7, 3, 1, 0, use_bias=False))
    return layers.spectral(layer, True, train)(x)


def _basis(kind):
  """Inputs whose outputs are the rows of the layer's effective (normalised) weight matrix."""
  if kind == 'dense':
    return jnp.eye(12)
  # A VALID 3x3 conv on a 3x3 input is one matmul with the (3*3*4, 7) reshaped kernel.
  return jnp.eye(36).reshape(36, 3, 3, 4)


@pytest.mark.parametrize('kind', ['dense', 'conv'])
def test_power_iterations_make_the_largest_singular_value_one(kind):
  model, x = _OneLayer(kind), _basis(kind)
  variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.PRNGKey(3))
  infer = jax.jit(lambda v: model.apply(v, x, train=False, mutable=['batch_stats']))

  def sigma_max(variables):
    weight = np.asarray(infer(variables)[0], np.float64).reshape(len(x), 7)
    return np.linalg.svd(weight, compute_uv=False)[0]

  first = sigma_max(variables)
  train_step = jax.jit(lambda v: model.apply(v, x, train=True, mutable=['batch_stats'])[1])
  for _ in range(30):
    variables = {**variables, **train_step(variables)}
  assert abs(sigma_max(variables) - 1.0) < 1e-3
  assert abs(first - 1.0) > 1e-3, 'one power iteration from a random u should not be exact'
  # Inference reads u but never writes it.
  _, unchanged = infer(variables)
  for a, b in zip(jax.tree.leaves(unchanged), jax.tree.leaves(variables['batch_stats'])):
    np.testing.assert_array_equal(a, b)


def test_spectral_norm_vectors_are_trained_state_that_survives_a_checkpoint(tmp_path):
  config = make_config(**{'model.name': 'mlp', 'model.width_scale': 0.125,
                          'model.spectral_norm': 'd', 'train.batch_size': 4})
  setup = setup_lib.build_setup(config, DatasetInfo((8, 8, 1), 0, (), 16, 'test'))
  state = jax.jit(setup.init_state)()
  assert jax.tree.leaves(state.d.batch_stats), 'u vectors live in D batch_stats'
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (1, 4, 8, 8, 1), dtype=np.uint8),
           'label': np.zeros((1, 4), np.int32)}
  new, _ = jax.jit(setup.train_step(config.train))(state, batch)
  for a, b in zip(jax.tree.leaves(state.d.batch_stats), jax.tree.leaves(new.d.batch_stats)):
    assert not np.allclose(a, b), 'a training step moves every u (and sigma)'
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), async_save=False)
  ckpt.save(1, new)
  restored = ckpt.restore(jax.eval_shape(setup.init_state))
  ckpt.close()
  for a, b in zip(jax.tree.leaves(new.d.batch_stats), jax.tree.leaves(restored.d.batch_stats)):
    np.testing.assert_array_equal(a, b)


def test_sampling_uses_the_stored_vectors_without_updating_them():
  config = make_config(**{'model.name': 'sngan32', 'model.width_scale': 1 / 32,
                          'model.spectral_norm': 'gd', 'model.latent_dim': 8})
  gan = models.build(config.model, (32, 32, 3), 0)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 8))
  labels = jnp.zeros((2,), jnp.int32)
  variables = jax.jit(lambda k: gan.generator.init(k, z, labels, train=False))(
      jax.random.PRNGKey(1))
  u_leaves = [p for p, _ in jax.tree_util.tree_leaves_with_path(variables['batch_stats'])
              if p[-1].key.endswith('/u')]
  assert u_leaves, 'G built with spectral norm keeps u vectors'
  sample = sampling.make_sampler(gan)   # applies G without any mutable collection
  images = sample(variables, z, labels)
  flipped = jax.tree_util.tree_map_with_path(
      lambda p, v: -v + 0.5 if p[-1].key.endswith('/u') else v, variables)
  assert not np.array_equal(images, sample(flipped, z, labels)), 'samples depend on u'
  np.testing.assert_array_equal(images, sample(variables, z, labels))
