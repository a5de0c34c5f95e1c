"""D's gradient penalties against a direct per-example computation, and lazy regularisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.core import regularizers
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


def _logits(d_logits, images):
  return np.asarray(d_logits(images, None), np.float64)


def test_lecam_against_its_formula_with_the_anchors_in_the_state():
  d_logits, real, fake = _d(), _images(1), _images(2)
  regularize = regularizers.build(make_config(**{'reg.lecam.weight': 0.3}).reg)
  state = regularize.init_state()
  assert set(state) == {'lecam'}
  # Anchors between the logits make both ReLUs cut some examples and keep others.
  lr, lf = _logits(d_logits, real), _logits(d_logits, fake)
  anchors = {'real': jnp.float32(np.median(lf)), 'fake': jnp.float32(np.median(lr))}
  total, metrics = regularize(d_logits, real, fake, None, jax.random.PRNGKey(0),
                              jnp.array(0), state={'lecam': anchors})
  a_r, a_f = float(anchors['real']), float(anchors['fake'])
  direct = (np.mean(np.maximum(lr - a_f, 0) ** 2) + np.mean(np.maximum(a_r - lf, 0) ** 2))
  assert 0 < np.sum(lr > a_f) < len(lr)
  np.testing.assert_allclose(float(total), 0.3 * direct, rtol=1e-5)
  np.testing.assert_allclose(float(metrics['d_lecam']), float(total))
  # After a D update the anchors move toward the batch's mean logits at rate 1 - decay.
  new = regularize.observe({'lecam': anchors}, jnp.asarray(lr), jnp.asarray(lf))['lecam']
  np.testing.assert_allclose(float(new['real']), 0.99 * a_r + 0.01 * lr.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(new['fake']), 0.99 * a_f + 0.01 * lf.mean(), rtol=1e-5)


def test_lecam_uses_the_logits_the_step_gives_it():
  d_logits, real, fake = _d(), _images(1), _images(2)
  regularize = regularizers.build(make_config(**{'reg.lecam.weight': 1.0}).reg)
  given = jnp.full((SHAPE[0],), 2.0)
  total, _ = regularize(d_logits, real, fake, None, jax.random.PRNGKey(0), jnp.array(0),
                        state=regularize.init_state(), real_logits=given,
                        fake_logits=-given)
  np.testing.assert_allclose(float(total), 4.0 + 4.0, rtol=1e-6)   # relu(2 - 0)^2 + relu(0 + 2)^2


def test_bcr_against_a_direct_computation_with_its_transform():
  # 8x8 images, so that a shift by an eighth of the size moves them.
  real, fake = (jax.random.normal(jax.random.PRNGKey(s), (6, 8, 8, 2)) for s in (3, 4))
  model = mlp.MLPDiscriminator(num_classes=0, widths=(16, 8))
  variables = model.init(jax.random.PRNGKey(0), real, None, train=False)
  d_logits = lambda x, labels: model.apply(variables, x, labels, train=True)
  config = make_config(**{'reg.bcr.weight': 10.0})
  key = jax.random.PRNGKey(5)
  total, metrics = regularizers.build(config.reg)(d_logits, real, fake, None, key,
                                                  jnp.array(0))
  real_key, fake_key = jax.random.split(jax.random.fold_in(key, 0))
  t_real = regularizers.consistency_transform(real, real_key, config.reg.bcr)
  t_fake = regularizers.consistency_transform(fake, fake_key, config.reg.bcr)
  assert not np.allclose(t_real, real)
  direct = (np.mean((_logits(d_logits, real) - _logits(d_logits, t_real)) ** 2) +
            np.mean((_logits(d_logits, fake) - _logits(d_logits, t_fake)) ** 2))
  np.testing.assert_allclose(float(total), 10.0 * direct, rtol=1e-5)
  assert set(metrics) == {'d_bcr'}
  # With neither flips nor shifts T is the identity and so is D: no penalty.
  identity = make_config(**{'reg.bcr.weight': 10.0, 'reg.bcr.flip': False,
                            'reg.bcr.translation': 0.0})
  zero, _ = regularizers.build(identity.reg)(d_logits, real, fake, None, key, jnp.array(0))
  assert float(zero) == 0.0


def test_consistency_transform_flips_and_shifts_whole_examples():
  x = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8, 1)
  cfg = make_config(**{'reg.bcr.translation': 0.0}).reg.bcr
  flips = [np.asarray(regularizers.consistency_transform(x, jax.random.PRNGKey(s), cfg))
           for s in range(8)]
  for out in flips:
    for i in range(2):
      assert (np.array_equal(out[i], np.asarray(x[i])) or
              np.array_equal(out[i], np.asarray(x[i, :, ::-1])))
  assert any(not np.array_equal(out, x) for out in flips)


def test_zcr_d_and_g_terms_against_direct_computation():
  d_logits, fake = _d(), _images(2)
  g_matrix = jax.random.normal(jax.random.PRNGKey(9), (3, int(np.prod(SHAPE[1:]))))
  generate = lambda z: jnp.tanh(z @ g_matrix).reshape((-1,) + SHAPE[1:])
  z = jax.random.normal(jax.random.PRNGKey(4), (SHAPE[0], 3))
  fake = generate(z)
  config = make_config(**{'reg.zcr.weight': 5.0, 'reg.zcr.g_weight': 0.5,
                          'reg.zcr.sigma': 0.05})
  regularize = regularizers.build(config.reg)
  key = jax.random.PRNGKey(6)
  total, metrics = regularize(d_logits, fake, fake, None, key, jnp.array(0), z=z,
                              regenerate=generate)
  moved = generate(regularizers.perturb(z, jax.random.fold_in(key, 0), 0.05))
  direct = np.mean((_logits(d_logits, fake) - _logits(d_logits, moved)) ** 2)
  assert direct > 0
  np.testing.assert_allclose(float(total), 5.0 * direct, rtol=1e-5)
  assert set(metrics) == {'d_zcr'}
  assert regularize.acts_on_g
  g_total, g_metrics = regularize.g_penalty(generate, z, fake, key, jnp.array(0))
  distance = np.sum((np.asarray(fake) - np.asarray(moved)) ** 2, axis=(1, 2, 3))
  np.testing.assert_allclose(float(g_total), -0.5 * distance.mean(), rtol=1e-5)
  assert set(g_metrics) == {'g_zcr'}
  # G's term has a gradient: G is pushed to respond to small changes of z.
  grad = jax.grad(lambda m: regularize.g_penalty(
      lambda z: jnp.tanh(z @ m).reshape((-1,) + SHAPE[1:]), z,
      jnp.tanh(z @ m).reshape((-1,) + SHAPE[1:]), key, jnp.array(0))[0])(g_matrix)
  assert float(jnp.abs(grad).sum()) > 0


def test_zcr_without_the_noise_names_what_is_missing():
  with pytest.raises(ValueError, match='zcr needs'):
    regularizers.build(make_config(**{'reg.zcr.weight': 1.0}).reg)(
        _d(), _images(1), _images(2), None, jax.random.PRNGKey(0), jnp.array(0))
