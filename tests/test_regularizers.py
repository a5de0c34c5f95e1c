"""D's gradient penalties against a direct per-example computation, and lazy regularisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors, regularizers
from gan_jax.models import mlp
from tests.conftest import make_config

SHAPE = (6, 4, 4, 2)


def _d():
  """A small nonlinear D with no BatchNorm, so examples are independent."""
  model = mlp.MLPDiscriminator(num_classes=0, widths=(16, 8))
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros(SHAPE), None, train=False)
  return lambda x, labels: model.apply(variables, x, labels, train=True)


def _direct_gradient_norms(d_logits, images):
  """||grad D(x_i)|| for each example, each from its own single-example call."""
  single = jax.jit(jax.grad(lambda v: d_logits(v[None], None)[0]))
  grads = [np.asarray(single(x), np.float64) for x in jnp.asarray(images)]
  return np.asarray([np.sqrt(np.sum(np.square(g))) for g in grads])


def _images(seed):
  return jax.random.normal(jax.random.PRNGKey(seed), SHAPE)


def _regularize(**reg):
  """The configured regulariser, jitted with D's function static."""
  config = make_config(**{f'reg.{k}': v for k, v in reg.items()})
  return jax.jit(regularizers.build(config.reg), static_argnums=(0, 3))


def test_r1_equals_half_the_mean_squared_gradient_norm_on_real_data():
  d_logits, real, fake = _d(), _images(1), _images(2)
  total, metrics = _regularize(**{'r1.weight': 3.0})(
      d_logits, real, fake, None, jax.random.PRNGKey(0), jnp.array(0))
  norms = _direct_gradient_norms(d_logits, real)
  np.testing.assert_allclose(float(total), 3.0 * 0.5 * np.mean(norms ** 2), rtol=1e-4)
  assert set(metrics) == {'d_r1'}


def test_gradient_penalty_equals_direct_computation_at_the_interpolates():
  d_logits, real, fake = _d(), _images(1), _images(2)
  key = jax.random.PRNGKey(7)
  total, metrics = _regularize(**{'gradient_penalty.weight': 10.0})(
      d_logits, real, fake, None, key, jnp.array(0))
  # The penalty's own key is fold_in(key, index of the regulariser).
  mixed = regularizers.interpolates(real, fake, jax.random.fold_in(key, 0))
  norms = _direct_gradient_norms(d_logits, mixed)
  np.testing.assert_allclose(float(total), 10.0 * np.mean((norms - 1.0) ** 2), rtol=1e-4)
  np.testing.assert_allclose(float(metrics['d_gradient_penalty']), float(total))


def test_gradient_penalty_at_real_equals_fake_needs_no_interpolation_weights():
  d_logits, real = _d(), _images(3)
  total, _ = _regularize(**{'gradient_penalty.weight': 1.0,
                            'gradient_penalty.target': 0.5})(
      d_logits, real, real, None, jax.random.PRNGKey(0), jnp.array(0))
  norms = _direct_gradient_norms(d_logits, real)
  np.testing.assert_allclose(float(total), np.mean((norms - 0.5) ** 2), rtol=1e-4)


def test_interpolates_lie_on_the_segment_with_one_weight_per_example():
  real, fake = _images(1), _images(2)
  mixed = np.asarray(regularizers.interpolates(real, fake, jax.random.PRNGKey(0)))
  alpha = (mixed - np.asarray(fake)) / (np.asarray(real) - np.asarray(fake))
  per_example = alpha.reshape(len(alpha), -1)
  np.testing.assert_allclose(per_example, per_example[:, :1].repeat(per_example.shape[1], 1),
                             rtol=1e-3, atol=1e-3)
  assert np.all((per_example >= 0) & (per_example <= 1))
  assert np.std(per_example[:, 0]) > 0.05


@pytest.mark.parametrize('lazy', ['cond', 'mask'])
def test_lazy_r1_runs_every_k_updates_scaled_by_k(lazy):
  d_model = mlp.MLPDiscriminator(num_classes=0, widths=(16, 8))
  params = d_model.init(jax.random.PRNGKey(0), jnp.zeros(SHAPE), None, train=False)
  real, fake = _images(1), _images(2)
  config = make_config(**{'reg.r1.weight': 2.0, 'reg.r1.every': 3})
  regularize = regularizers.build(config.reg, lazy=lazy)
  eager = regularizers.build(make_config(**{'reg.r1.weight': 2.0}).reg)

  def penalty(p, index, fn):
    d_logits = lambda x, labels: d_model.apply(p, x, labels, train=True)
    return fn(d_logits, real, fake, None, jax.random.PRNGKey(0), index)[0]

  value_and_grad = jax.jit(jax.value_and_grad(penalty), static_argnums=2)
  full, full_grad = value_and_grad(params, jnp.array(0), eager)
  for index in range(7):
    value, grad = value_and_grad(params, jnp.array(index), regularize)
    scale = 3.0 if index % 3 == 0 else 0.0
    np.testing.assert_allclose(float(value), scale * float(full), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(full_grad)):
      np.testing.assert_allclose(a, scale * b, rtol=1e-4, atol=1e-6)


def test_regularizers_off_by_default_and_bad_settings_named():
  total, metrics = regularizers.build(make_config().reg)(
      _d(), _images(1), _images(2), None, jax.random.PRNGKey(0), jnp.array(0))
  assert float(total) == 0.0 and metrics == {}
  with pytest.raises(errors.ConfigError, match='config.reg.r1'):
    regularizers.build(make_config(**{'reg.r1.weight': 1.0, 'reg.r1.every': 0}).reg)
