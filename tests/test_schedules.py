"""Schedules over training: the values at the start, middle and end, and constant specs that change nothing."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import errors
from gan_jax.core import augment
from gan_jax.core import optim
from gan_jax.core import regularizers
from gan_jax.core import schedules
from gan_jax.core import steps
from tests.conftest import make_config


def _r3gan_cosine(cur_nimg, base_value, total_nimg, final_value):
  """brownvc/R3GAN's cosine_decay_with_warmup without warm-up or hold, written out in numpy."""
  decay = 0.5 * (1 + np.cos(np.pi * cur_nimg / float(total_nimg)))
  value = base_value + (1 - decay) * (final_value - base_value)
  return float(np.where(cur_nimg > total_nimg, final_value, value))


def test_linear_and_cosine_at_the_start_middle_and_end():
  linear = schedules.build(1.0, schedules.spec('linear', 3.0, 100, 'steps'), 'k')
  assert [linear.at(s) for s in (0, 50, 100, 250)] == pytest.approx([1.0, 2.0, 3.0, 3.0])
  cosine = schedules.build(2e-4, schedules.spec('cosine', 5e-5, 20_000_000), 'k',
                           images_per_step=512)
  for step in (0, 10_000, 19_531, 39_062, 39_063, 100_000):
    assert cosine.at(step) == pytest.approx(
        _r3gan_cosine(step * 512, 2e-4, 2e7, 5e-5), rel=1e-5), step
  assert cosine.at(0) == pytest.approx(2e-4) and cosine.at(10 ** 6) == pytest.approx(5e-5)
  # Halfway the cosine is at the mean of its ends.
  assert cosine.at(20_000_000 / 512 / 2) == pytest.approx(1.25e-4, rel=1e-5)


def test_a_constant_spec_is_the_start_value_itself():
  constant = schedules.build(0.05, schedules.spec(), 'reg.r1.schedule.weight')
  assert constant.constant and constant(jnp.asarray(7)) == 0.05
  assert isinstance(constant(123), float)
  assert schedules.of(ml_collections.ConfigDict({'weight': 2.0}), 'weight', 'reg.x').start == 2.0


@pytest.mark.parametrize('spec, match', [
    (dict(kind='exponential'), r'reg.r1.schedule.weight.kind=.exponential. is not one of'),
    (dict(kind='cosine', unit='epochs', length=10.0), r'unit=.epochs. is not one of'),
    (dict(kind='linear', length=0.0), r'length=0.0 must be positive'),
    (dict(kind='linear', length=10.0), r'counts images, which needs the images per step'),
])
def test_bad_specs_are_named(spec, match):
  cfg = schedules.spec(**spec)
  with pytest.raises(errors.ConfigError, match=match):
    schedules.build(1.0, cfg, 'reg.r1.schedule.weight')


def _updates(tx, count):
  params, grads = {'w': jnp.ones(3)}, {'w': jnp.array([0.1, -0.2, 0.3])}
  state, out = tx.init(params), []
  for _ in range(count):
    update, state = tx.update(grads, state, params)
    out.append(update['w'])
  return np.stack(out), state


def test_constant_schedules_build_the_optimizer_of_before_bit_for_bit():
  cfg = make_config(**{'optim.g.b1': 0.0, 'optim.g.b2': 0.9}).optim.g
  built = optim.build(cfg, 10, images_per_step=64, key='optim.g')
  plain = optax.adam(cfg.lr, b1=0.0, b2=0.9, eps=cfg.eps)
  (a, state_a), (b, state_b) = _updates(built, 4), _updates(plain, 4)
  np.testing.assert_array_equal(a, b)
  assert jax.tree.structure(state_a) == jax.tree.structure(state_b)


def test_scheduled_adam_follows_lr_and_b2_per_step():
  cfg = make_config(**{'optim.g.b1': 0.0, 'optim.g.b2': 0.9, 'optim.g.lr': 2e-4}).optim.g
  cfg.schedule.lr = schedules.spec('cosine', 5e-5, 4, 'steps')
  cfg.schedule.b2 = schedules.spec('linear', 0.99, 4, 'steps')
  # Two updates per step (n_gen=2): both updates of a step see the step's values.
  tx = optim.build(cfg, 0, updates_per_step=2, key='optim.g')
  got, _ = _updates(tx, 6)
  grad = np.array([0.1, -0.2, 0.3])
  nu, expected = np.zeros(3), []
  for count in range(6):
    step = count // 2
    lr = 2e-4 + (5e-5 - 2e-4) * (1 - math.cos(math.pi * step / 4)) / 2
    b2 = 0.9 + (0.99 - 0.9) * step / 4
    nu = b2 * nu + (1 - b2) * grad ** 2          # b1 = 0: the first moment is the gradient
    expected.append(-lr * grad / (np.sqrt(nu / (1 - b2 ** (count + 1))) + cfg.eps))
  np.testing.assert_allclose(got, np.stack(expected), rtol=2e-5)


def test_optimizer_schedule_errors_name_the_key():
  cfg = make_config(**{'optim.d.name': 'sgd'}).optim.d
  cfg.schedule.b2 = schedules.spec('cosine', 0.99, 10, 'steps')
  with pytest.raises(errors.ConfigError, match=r"config.optim.d.schedule.b2 moves b2.*'sgd'"):
    optim.build(cfg, 0, key='optim.d')
  cfg = make_config(**{'optim.g.lr_schedule': 'linear'}).optim.g
  cfg.schedule.lr = schedules.spec('cosine', 1e-5, 10, 'steps')
  with pytest.raises(errors.ConfigError, match='both move the learning rate'):
    optim.build(cfg, 100, key='optim.g')


def test_regulariser_weight_follows_its_schedule():
  config = make_config(**{'reg.r1.weight': 0.05})
  config.reg.r1.schedule.weight = schedules.spec('cosine', 0.005, 10, 'steps')
  regularize = regularizers.build(config.reg)
  x = jnp.arange(12, dtype=jnp.float32).reshape(2, 6) / 10

  def d_logits(images, labels):
    del labels
    return jnp.sum(images ** 2, axis=-1)

  for step in (0, 5, 10, 20):
    total, metrics = regularize(d_logits, x, x, None, jax.random.PRNGKey(0), jnp.asarray(0),
                                step=jnp.asarray(step))
    gamma = 0.05 + (0.005 - 0.05) * (1 - math.cos(math.pi * min(step, 10) / 10)) / 2
    penalty = 0.5 * np.mean(np.sum((2 * np.asarray(x)) ** 2, axis=-1))
    np.testing.assert_allclose(float(total), gamma * penalty, rtol=1e-5)
    np.testing.assert_allclose(float(metrics['d_r1_weight']), gamma, rtol=1e-5)
  with pytest.raises(ValueError, match='pass step='):
    regularize(d_logits, x, x, None, jax.random.PRNGKey(0), jnp.asarray(0))


def test_ada_p_follows_its_schedule_and_refuses_adapt():
  config = make_config(**{'augment.transforms': ('ada',), 'augment.ada.adapt': False})
  config.augment.ada.schedule.p = schedules.spec('linear', 0.5, 10, 'steps')
  d_input = augment.build(config.augment)
  state = d_input.init_state()
  assert float(state['ada']['p']) == 0.0
  logits = jnp.ones(4)
  for step, p in ((0, 0.0), (4, 0.2), (10, 0.5), (30, 0.5)):
    new, metrics = d_input.observe(state, logits, jnp.asarray(step), step=jnp.asarray(step))
    np.testing.assert_allclose(float(metrics['ada_p']), p, atol=1e-7)
    np.testing.assert_allclose(float(new['ada']['p']), p, atol=1e-7)
  images = jnp.zeros((4, 8, 8, 3)) + jnp.linspace(-1, 1, 8)[None, :, None, None]
  key = jax.random.PRNGKey(1)
  # At step 0 p is 0: the images pass unchanged, whatever the state says.
  same = d_input(images, key, key, jnp.asarray(0), {'ada': {**state['ada'], 'p': 1.0}})
  np.testing.assert_array_equal(same, images)
  config.augment.ada.adapt = True
  with pytest.raises(errors.ConfigError, match='set adapt=False for a scheduled p'):
    augment.build(config.augment)
  config.augment.ada.adapt = False
  with config.unlocked():
    config.augment.ada.schedule.target = schedules.spec('linear', 0.5, 10, 'steps')
  with pytest.raises(errors.ConfigError, match="has no schedule for 'target'"):
    augment.build(config.augment)


def test_ema_by_half_life_in_images():
  config = make_config(**{'train.batch_size': 8, 'train.n_disc': 2,
                          'train.ema_half_life': 0.0})
  config.train.schedule.ema_half_life = schedules.spec('linear', 1600.0, 10, 'steps')
  spec = steps.StepSpec.from_config(config.train)
  assert spec.has_ema and spec.images_per_step == 16
  ema, g = {'w': jnp.zeros(())}, {'w': jnp.ones(())}
  # Half-life 0 at step 0: the EMA is a copy of G (R3GAN's beta = 0.5 ** (B / 1e-8)).
  assert float(spec.updated_ema(ema, g, jnp.asarray(0))['w']) == 1.0
  for step in (5, 10, 20):
    half_life = 1600.0 * min(step, 10) / 10
    decay = 0.5 ** (16 / half_life)
    np.testing.assert_allclose(float(spec.updated_ema(ema, g, jnp.asarray(step))['w']),
                               1 - decay, rtol=1e-5)
  config.train.ema_decay = 0.999
  with pytest.raises(errors.ConfigError, match='both set the EMA'):
    steps.StepSpec.from_config(config.train)
  plain = steps.StepSpec.from_config(make_config(**{'train.ema_decay': 0.9}).train)
  assert plain.ema_half_life is None and plain.has_ema
  assert not steps.StepSpec.from_config(make_config().train).has_ema
