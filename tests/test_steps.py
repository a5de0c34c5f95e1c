"""The train step: it updates what it must, is deterministic, and follows n_disc / n_gen / EMA."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.core import state as state_lib
from gan_jax.core import steps
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib
from tests.conftest import make_config

INFO = DatasetInfo((28, 28, 1), 10, tuple('0123456789'), 100, 'test')


def _setup(**overrides):
  config = make_config(**{'train.batch_size': 8, **overrides})
  setup = setup_lib.build_setup(config, INFO)
  step = jax.jit(steps.make_train_step(setup.gan, setup.loss, setup.g_tx,
                                       setup.d_tx, steps.StepSpec.from_config(config.train)))
  return config, setup, step


def _batch(n_disc=1, batch=8, seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.integers(0, 256, (n_disc, batch, 28, 28, 1), dtype=np.uint8),
          'label': rng.integers(0, 10, (n_disc, batch)).astype(np.int32)}


def _changed(a, b):
  return jax.tree.leaves(jax.tree.map(lambda x, y: not np.allclose(x, y), a, b))


def test_one_step_changes_params_and_batchnorm_statistics():
  _, setup, step = _setup()
  state = setup.init_state()
  new, metrics = step(state, _batch())
  assert int(new.step) == 1
  for before, after in ((state.g.params, new.g.params), (state.d.params, new.d.params),
                        (state.g.batch_stats, new.g.batch_stats),
                        (state.d.batch_stats, new.d.batch_stats)):
    assert all(_changed(before, after)), 'every leaf should move after one step'
  assert bool(metrics['finite'])
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_acc_real', 'd_acc_fake',
              'd_real', 'd_fake', 'd_grad_norm', 'g_grad_norm'):
    assert np.isfinite(float(metrics[key])), key
  assert 0 <= float(metrics['d_acc_real']) <= 1


def test_step_is_a_pure_function_of_state_and_batch():
  _, setup, step = _setup()
  state = setup.init_state()
  a, ma = step(state, _batch())
  b, mb = step(state, _batch())
  assert not any(_changed(a, b))
  assert float(ma['g_loss']) == float(mb['g_loss'])
  # The noise comes from fold_in(rng, step): the same state at another step
  # draws other noise and so makes another update.
  c, mc = step(state.replace(step=jnp.array(5, jnp.int32)), _batch())
  assert float(mc['g_loss']) != float(ma['g_loss'])
  assert any(_changed(a.g.params, c.g.params))


def test_d_loss_is_the_sum_of_real_and_fake_parts():
  _, setup, step = _setup()
  _, m = step(setup.init_state(), _batch())
  np.testing.assert_allclose(float(m['d_loss']),
                             float(m['d_loss_real']) + float(m['d_loss_fake']), rtol=1e-6)


@pytest.mark.parametrize('n_disc, n_gen', [(2, 1), (1, 2)])
def test_several_updates_per_step(n_disc, n_gen):
  _, setup, step = _setup(**{'train.n_disc': n_disc, 'train.n_gen': n_gen})
  _, _, single = _setup()
  state = setup.init_state()
  new, _ = step(state, _batch(n_disc))
  once, _ = single(state, _batch(1))
  # More updates per step must move the networks differently from one.
  assert any(_changed(new.d.params if n_disc > 1 else new.g.params,
                      once.d.params if n_disc > 1 else once.g.params))
  assert int(new.step) == 1


def test_ema_follows_its_formula():
  ema = {'w': jnp.array([1.0, 2.0])}
  current = {'w': jnp.array([3.0, 6.0])}
  out = state_lib.update_ema(ema, current, jnp.array(10), decay=0.9, start=5)
  np.testing.assert_allclose(out['w'], 0.9 * np.array([1, 2]) + 0.1 * np.array([3, 6]))
  before_start = state_lib.update_ema(ema, current, jnp.array(2), decay=0.9, start=5)
  np.testing.assert_allclose(before_start['w'], [3.0, 6.0])


def test_ema_state_is_updated_by_the_step():
  _, setup, step = _setup(**{'train.ema_decay': 0.5})
  state = setup.init_state()
  new, _ = step(state, _batch())
  expected = jax.tree.map(lambda e, v: 0.5 * e + 0.5 * v,
                          state.ema['params'], new.g.params)
  for a, b in zip(jax.tree.leaves(new.ema['params']), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert new.sampling_variables() is new.ema


def test_ema_over_several_steps_follows_the_recursion_from_its_start_step():
  _, setup, step = _setup(**{'train.ema_decay': 0.8, 'train.ema_start': 2})
  state = setup.init_state()
  expected = state.g.variables
  for i in range(4):
    state, _ = step(state, _batch(seed=i))
    # After step i (state.step was i when it ran): a copy before ema_start.
    rate = 0.8 if i >= 2 else 0.0
    expected = jax.tree.map(lambda e, v: rate * e + (1 - rate) * v, expected,
                            state.g.variables)
  for a, b in zip(jax.tree.leaves(state.ema), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert any(_changed(state.ema['params'], state.g.params)), 'EMA lags the weights'


def test_toolbox_options_compose_in_one_step():
  """ACGAN head, conditional BatchNorm, R1 and WGAN-GP, label smoothing and instance noise, together."""
  config = make_config(**{
      'model.name': 'mlp', 'model.width_scale': 0.125, 'model.conditional': True,
      'model.g_conditioning': 'cbn', 'model.d_conditioning': 'acgan',
      'loss.label_smoothing': 0.1, 'reg.r1.weight': 1.0, 'reg.r1.every': 2,
      'reg.gradient_penalty.weight': 10.0, 'augment.transforms': ('instance_noise',),
      'train.batch_size': 8})
  setup = setup_lib.build_setup(config, DatasetInfo((8, 8, 1), 10, tuple('0123456789'), 100,
                                                'test'))
  step = jax.jit(setup.train_step(config.train))
  state = setup.init_state()
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (1, 8, 8, 8, 1), dtype=np.uint8),
           'label': rng.integers(0, 10, (1, 8)).astype(np.int32)}
  new, metrics = step(state, batch)
  assert bool(metrics['finite'])
  for key in ('d_r1', 'd_gradient_penalty', 'd_class_real_loss', 'd_class_fake_loss',
              'g_class_loss', 'g_class_acc'):
    assert np.isfinite(float(metrics[key])), key
  # Lazy R1 (every 2) counts, doubled, on D update 0, the one this step makes.
  assert float(metrics['d_r1']) > 0 and float(metrics['d_gradient_penalty']) > 0
  # A fresh 10-class head is near chance: cross-entropy about log(10).
  assert 1.0 < float(metrics['d_class_real_loss']) < 4.0
  assert any(_changed(new.d.params, state.d.params))
  # G's update trains its per-class BatchNorm scales through D's both heads.
  assert any(_changed(new.g.params['ConditionalBatchNorm_0'],
                      state.g.params['ConditionalBatchNorm_0']))


def test_eager_initial_state_with_ema_can_be_donated_to_the_step():
  # The EMA starts as a copy of G; sharing G's buffers made a donating step
  # fail with "donate the same buffer twice" on an eagerly built state.
  config, setup, _ = _setup(**{'train.ema_decay': 0.5})
  state = setup.init_state()
  step = jax.jit(setup.train_step(config.train), donate_argnums=0)
  new, metrics = step(state, _batch())
  assert bool(metrics['finite'])
  assert int(new.step) == 1


def test_step_spec_is_read_once_from_the_train_config():
  config = make_config(**{'train.n_disc': 2, 'train.n_gen': 3, 'train.ema_decay': 0.9,
                          'train.ema_start': 7, 'train.compute_dtype': 'bfloat16'})
  spec = steps.StepSpec.from_config(config.train)
  assert spec == steps.StepSpec(n_disc=2, n_gen=3, ema_decay=0.9, ema_start=7,
                                compute_dtype=jnp.bfloat16)
  with pytest.raises(dataclasses.FrozenInstanceError):
    spec.n_disc = 1
  assert steps.StepSpec.from_config(make_config().train).compute_dtype == jnp.float32
  config.train.compute_dtype = 'float16'
  with pytest.raises(errors.ConfigError, match="compute_dtype='float16'"):
    steps.StepSpec.from_config(config.train)


def test_the_spec_alone_sets_the_updates_and_the_ema():
  # The step reads no config: the same setup under another spec makes another step.
  config, setup, _ = _setup()
  state = setup.init_state()
  spec = steps.StepSpec(n_disc=2, n_gen=1, ema_decay=0.5)
  step = jax.jit(steps.make_train_step(setup.gan, setup.loss, setup.g_tx, setup.d_tx, spec))
  with_ema = state.replace(ema=jax.tree.map(jnp.copy, state.g.variables))
  new, metrics = step(with_ema, _batch(n_disc=2))
  assert bool(metrics['finite']) and int(new.step) == 1
  expected = jax.tree.map(lambda e, v: 0.5 * e + 0.5 * v, with_ema.ema, new.g.variables)
  for a, b in zip(jax.tree.leaves(new.ema), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert config.train.n_disc == 1
