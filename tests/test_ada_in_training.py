"""ADA, LeCam, bCR and zCR inside the train step: p steered by r_t, state in `state.aux`, identity at p = 0, several devices."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.core import augment
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib
from tests.conftest import make_config, run_on_simulated_devices

INFO = DatasetInfo((16, 16, 3), 10, tuple('0123456789'), 100, 'test')
TINY = {'model.name': 'mlp', 'model.width_scale': 0.125, 'data.image_size': 16,
        'data.channels': 3, 'train.batch_size': 8}


def _ada(**overrides):
  return make_config(**{'augment.transforms': ('ada',),
                        **{f'augment.ada.{k}': v for k, v in overrides.items()}})


def _batch(seed=0, n_disc=1):
  rng = np.random.default_rng(seed)
  return {'image': rng.integers(0, 256, (n_disc, 8, 16, 16, 3), dtype=np.uint8),
          'label': rng.integers(0, 10, (n_disc, 8)).astype(np.int32)}


def _run(steps=2, **overrides):
  config = make_config(**{**TINY, **overrides})
  setup = setup_lib.build_setup(config, INFO)
  step = jax.jit(setup.train_step(config.train))
  state, history = setup.init_state(), []
  for i in range(steps):
    state, metrics = step(state, _batch(i, config.train.n_disc))
    history.append(jax.device_get(metrics))
  return jax.device_get(state), history


def test_p_rises_while_d_is_sure_of_every_real_image_and_falls_when_it_is_not():
  d_input = augment.build(_ada(interval=2, kimg=0.1).augment)   # 8 * 2 / 100 per adjustment
  state = d_input.init_state()
  sure, unsure = jnp.full((8,), 3.0), jnp.full((8,), -3.0)
  ps = []
  for index in range(6):
    state, metrics = d_input.observe(state, sure if index < 4 else unsure, jnp.array(index))
    ps.append(float(state['ada']['p']))
    assert float(metrics['ada_p']) == ps[-1]
    assert float(metrics['ada_rt']) == (1.0 if index < 4 else -1.0)
  # p moves only every `interval` D updates, by the mean r_t of those updates.
  np.testing.assert_allclose(ps, [0, 0.16, 0.16, 0.32, 0.32, 0.16], atol=1e-6)


def test_p_holds_at_the_target_clips_at_zero_and_stays_fixed_without_adapt():
  d_input = augment.build(_ada(interval=1, kimg=0.1, target=0.5).augment)
  state = d_input.init_state()
  at_target = jnp.array([1., 1., 1., 1., 1., 1., -1., -1.])       # E[sign] = 0.5
  state, _ = d_input.observe(state, at_target, jnp.array(0))
  assert float(state['ada']['p']) == 0.0
  state, _ = d_input.observe(state, -at_target, jnp.array(1))
  assert float(state['ada']['p']) == 0.0                          # not below 0
  fixed = augment.build(_ada(p=0.3, adapt=False).augment)
  state, _ = fixed.observe(fixed.init_state(), jnp.full((8,), 3.0), jnp.array(3))
  np.testing.assert_allclose(float(state['ada']['p']), 0.3)


def test_ada_settings_that_cannot_work_are_named():
  with pytest.raises(errors.ConfigError, match='config.augment.ada'):
    augment.build(_ada(target=0.0).augment)
  with pytest.raises(errors.ConfigError, match='warp'):
    augment.build(_ada(ops='blit,warp').augment)


def test_ada_at_fixed_p_zero_trains_bitwise_like_no_augmentation():
  plain, _ = _run()
  ada, history = _run(**{'augment.transforms': ('ada',), 'augment.ada.adapt': False})
  for a, b in zip(jax.tree.leaves((plain.g, plain.d)), jax.tree.leaves((ada.g, ada.d))):
    np.testing.assert_array_equal(a, b)
  assert all(float(m['ada_p']) == 0.0 for m in history)


def test_the_step_keeps_p_in_the_state_and_logs_it_with_r_t():
  state, history = _run(steps=3, **{'augment.transforms': ('ada',),
                                    'augment.ada.interval': 1, 'augment.ada.kimg': 0.05,
                                    'train.n_disc': 2})
  p = float(state.aux['augment']['ada']['p'])
  step_size = 8 / 50
  # Each D update moves p by one step size, up or down, from 0, clipped at 0.
  assert 0 <= p <= 6 * step_size + 1e-6
  np.testing.assert_allclose(p / step_size, round(p / step_size), atol=1e-4)
  for m in history:
    assert {'ada_p', 'ada_rt'} <= set(m) and -1 <= float(m['ada_rt']) <= 1
  # ada_p is logged after each D update: its mean over the last step's two
  # updates ends at the state's p or one step from it.
  assert abs(float(history[-1]['ada_p']) - p) <= step_size / 2 + 1e-6


def test_lecam_anchors_follow_d_in_the_state_and_cr_terms_are_logged():
  state, history = _run(**{'reg.lecam.weight': 0.3, 'reg.bcr.weight': 1.0,
                           'reg.zcr.weight': 1.0, 'augment.transforms': ('ada',),
                           'augment.ada.p': 0.5, 'augment.ada.adapt': False})
  anchors = state.aux['reg']['lecam']
  assert float(anchors['real']) != 0.0 and float(anchors['fake']) != 0.0
  assert set(state.aux) == {'augment', 'reg'}
  for key in ('d_lecam', 'd_bcr', 'd_zcr', 'g_zcr'):
    assert np.isfinite(float(history[-1][key])), key
  assert float(history[-1]['g_zcr']) < 0       # G's zCR term rewards sensitivity to z
  assert all(bool(m['finite']) for m in history)


def test_a_state_without_aux_is_refused_by_a_step_that_needs_it():
  config = make_config(**{**TINY, 'augment.transforms': ('ada',)})
  setup = setup_lib.build_setup(config, INFO)
  state = setup.init_state().replace(aux={})
  with pytest.raises(ValueError, match="no 'augment'"):
    setup.train_step(config.train)(state, _batch())


ON_DEVICES = textwrap.dedent('''
    import jax, numpy as np
    from gan_jax.parallel import devices as devices_lib
    from gan_jax.training import setup as setup_lib
    from gan_jax.data.source import DatasetInfo
    from tests.conftest import make_config

    config = make_config(**{'model.name': 'mlp', 'model.width_scale': 0.125,
                            'data.image_size': 16, 'data.channels': 3, 'train.batch_size': 8,
                            'augment.transforms': ('ada',), 'augment.ada.interval': 1,
                            'augment.ada.kimg': 0.05})
    setup = setup_lib.build_setup(config, DatasetInfo((16, 16, 3), 10, tuple('0123456789'), 64, 't'))
    rng = np.random.default_rng(0)
    batches = [{'image': rng.integers(0, 256, (1, 8, 16, 16, 3), dtype=np.uint8),
                'label': rng.integers(0, 10, (1, 8)).astype(np.int32)} for _ in range(3)]

    def run(devices):
      mesh = devices_lib.make_mesh(devices)
      rep = devices_lib.replicated(mesh)
      step = jax.jit(setup.train_step(config.train, mesh),
                     in_shardings=(rep, devices_lib.batch_sharded(mesh, 1)),
                     out_shardings=(rep, rep))
      state, rts = jax.jit(setup.init_state, out_shardings=rep)(), []
      for b in batches:
        state, metrics = step(state, devices_lib.global_batch(b, mesh))
        rts.append(float(metrics['ada_rt']))
      return float(state.aux['augment']['ada']['p']), rts

    one, four = run(jax.devices()[:1]), run(jax.devices())
    print('P', one, four)
    # r_t is a mean over the global batch: a per-device mean would differ.
    assert one == four, (one, four)
    print('OK')
''')


def test_r_t_and_p_on_four_devices_equal_one_device():
  result = run_on_simulated_devices(ON_DEVICES, 4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout


@pytest.mark.parametrize('loss,d_conditioning,model', [
    ('hinge', 'projection', 'dcgan32'), ('wasserstein', 'acgan', 'dcgan32'),
    ('least_squares', 'concat', 'sngan32'), ('nonsaturating', 'embed', 'resnet18d')])
def test_ada_and_every_regulariser_trace_with_each_loss_model_and_conditioning(
    loss, d_conditioning, model):
  """The step with ADA, LeCam, bCR and zCR on traces (no compute) for these combinations."""
  config = make_config(**{'model.name': model, 'model.width_scale': 0.0625,
                          'model.conditional': True, 'model.d_conditioning': d_conditioning,
                          'model.g_conditioning': 'cbn' if model == 'dcgan32' else 'concat',
                          'loss.name': loss, 'data.image_size': 32, 'data.channels': 3,
                          'train.batch_size': 4, 'augment.transforms': ('ada',),
                          'reg.lecam.weight': 0.3, 'reg.bcr.weight': 10.0,
                          'reg.zcr.weight': 5.0})
  setup = setup_lib.build_setup(config, DatasetInfo((32, 32, 3), 10, tuple('0123456789'), 100, 't'))
  state = jax.eval_shape(setup.init_state)
  batch = {'image': jax.ShapeDtypeStruct((1, 4, 32, 32, 3), jnp.uint8),
           'label': jax.ShapeDtypeStruct((1, 4), jnp.int32)}
  new, metrics = jax.eval_shape(setup.train_step(config.train), state, batch)
  assert jax.tree.structure(new) == jax.tree.structure(state)
  assert {'ada_p', 'ada_rt', 'd_lecam', 'd_bcr', 'd_zcr', 'g_zcr'} <= set(metrics)
