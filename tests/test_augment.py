"""D-input transforms: DiffAugment shared by real and fake, differentiable; instance noise and its decay."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_jax import errors
from gan_jax.core import augment
from gan_jax.core import steps
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib
from tests.conftest import make_config

INFO = DatasetInfo((16, 16, 3), 10, tuple('0123456789'), 100, 'test')


def _d_input(**overrides):
  config = make_config(**{'augment.transforms': ('diffaugment',),
                          **{f'augment.{k}': v for k, v in overrides.items()}})
  return augment.build(config.augment)


def _images(n=4, size=16, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n, size, size, 3), minval=-1, maxval=1)


def test_diffaugment_draws_its_parameters_from_the_shared_key_only():
  d_input = jax.jit(_d_input())
  x = _images()
  k = jax.random.PRNGKey(1)
  a = d_input(x, k, jax.random.PRNGKey(2), 0)
  b = d_input(x, k, jax.random.PRNGKey(3), 0)        # another own key: same transform
  c = d_input(x, jax.random.PRNGKey(4), jax.random.PRNGKey(2), 0)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  assert not np.allclose(a, x)
  # Parameters are drawn per example: one image repeated comes out differently.
  repeated = d_input(jnp.repeat(x[:1], 4, axis=0), k, k, 0)
  assert not np.allclose(repeated[0], repeated[1])


def test_the_step_applies_the_same_diffaugment_to_the_real_and_fake_batch():
  """Records every batch D sees in a real train step and replays the transform."""
  config = make_config(**{'model.name': 'mlp', 'model.width_scale': 0.125,
                          'data.image_size': 16, 'train.batch_size': 4,
                          'augment.transforms': ('diffaugment',)})
  setup = setup_lib.build_setup(config, INFO)
  calls = []

  def spy(images, shared_key, own_key, step, state=None):
    out = setup.d_input(images, shared_key, own_key, step, state)
    jax.debug.callback(lambda *a: calls.append([np.asarray(v) for v in a]),
                       images, out, shared_key, ordered=True)
    return out

  step = jax.jit(steps.make_train_step(setup.gan, setup.loss, setup.g_tx, setup.d_tx,
                                       steps.StepSpec.from_config(config.train), d_input=spy))
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (1, 4, 16, 16, 3), dtype=np.uint8),
           'label': rng.integers(0, 10, (1, 4)).astype(np.int32)}
  jax.block_until_ready(step(setup.init_state(), batch))
  assert len(calls) == 3   # D update: real, fake; G update: fake
  (real_in, real_out, real_key), (fake_in, fake_out, fake_key), (_, _, g_key) = calls
  np.testing.assert_array_equal(real_key, fake_key)
  assert not np.array_equal(real_key, g_key)          # G's update draws afresh
  assert not np.allclose(real_in, fake_in) and not np.allclose(real_out, real_in)
  # The transform D applied to the real batch, applied to the fake batch, is what D saw.
  replay = jax.jit(setup.d_input)(jnp.asarray(fake_in), jnp.asarray(real_key),
                                  jax.random.PRNGKey(9), 0)
  np.testing.assert_allclose(replay, fake_out, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('policy', ['color', 'translation', 'cutout',
                                    'color,translation,cutout'])
def test_diffaugment_is_differentiable(policy):
  d_input = _d_input(**{'diffaugment.policy': policy})
  k = jax.random.PRNGKey(5)
  fn = jax.jit(lambda x: d_input(x, k, k, 0))
  check_grads(fn, (_images(2, 8),), order=1, modes=['rev'], atol=1e-2, rtol=1e-2)
  grad = jax.grad(lambda x: jnp.sum(fn(x) ** 2))(_images(2, 8))
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_translation_shifts_with_zero_fill():
  x = jnp.arange(2 * 5 * 5, dtype=jnp.float32).reshape(2, 5, 5, 1) + 1
  out = np.asarray(augment._shift_axis(x, jnp.array([1, -2]), axis=1))
  expected = np.zeros_like(out)
  expected[0, :4] = np.asarray(x)[0, 1:]        # out[i] = x[i + 1]
  expected[1, 2:] = np.asarray(x)[1, :3]        # out[i] = x[i - 2]
  np.testing.assert_array_equal(out, expected)
  shifted = np.asarray(augment.translation(jnp.ones((64, 8, 8, 1)), jax.random.PRNGKey(0), 0.25))
  zero_rows = (shifted[..., 0] == 0).all(axis=2).sum(axis=1)
  assert zero_rows.max() <= 2 and zero_rows.max() > 0   # at most round(0.25 * 8) rows


def test_cutout_zeroes_one_square_per_image():
  out = np.asarray(augment.cutout(jnp.ones((32, 8, 8, 3)), jax.random.PRNGKey(0), 0.5))
  for image in out[..., 0]:
    rows, cols = np.nonzero(image == 0)
    assert 0 < len(rows) <= 16                      # side 4, clipped at the edges
    assert len(rows) == len(set(rows)) * len(set(cols))   # a rectangle
    assert max(rows) - min(rows) < 4 and max(cols) - min(cols) < 4


def test_instance_noise_std_decays_linearly_to_zero():
  config = make_config(**{'augment.transforms': ('instance_noise',),
                          'augment.instance_noise.std': 0.2,
                          'augment.instance_noise.decay_steps': 100})
  cfg = config.augment.instance_noise
  for step, expected in ((0, 0.2), (50, 0.1), (100, 0.0), (400, 0.0)):
    np.testing.assert_allclose(float(augment.instance_noise_std(cfg, jnp.array(step))),
                               expected, atol=1e-7)
  d_input = jax.jit(augment.build(config.augment))
  zeros = jnp.zeros((8, 32, 32, 3))
  shared = jax.random.PRNGKey(0)
  a = d_input(zeros, shared, jax.random.PRNGKey(1), jnp.array(0))
  b = d_input(zeros, shared, jax.random.PRNGKey(2), jnp.array(0))
  np.testing.assert_allclose(float(jnp.std(a)), 0.2, rtol=0.05)
  assert not np.allclose(a, b)                      # per-batch noise: own key
  np.testing.assert_allclose(float(jnp.std(d_input(zeros, shared, shared, jnp.array(50)))),
                             0.1, rtol=0.05)
  np.testing.assert_array_equal(d_input(zeros, shared, shared, jnp.array(100)), zeros)


def test_bad_transform_settings_are_named():
  with pytest.raises(errors.ConfigError, match="Unknown D-input transform 'diffaugmnt'"):
    augment.build(make_config(**{'augment.transforms': ('diffaugmnt',)}).augment)
  with pytest.raises(errors.ConfigError, match='unknown: rotate'):
    _d_input(**{'diffaugment.policy': 'color,rotate'})
  with pytest.raises(errors.ConfigError, match='twice'):
    augment.build(make_config(**{'augment.transforms': ('diffaugment', 'diffaugment')}).augment)
