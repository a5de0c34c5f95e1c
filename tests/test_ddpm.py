"""The DDPM: forward-process marginals, schedules, and the samplers' shapes and range."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax import families
from gan_jax import models
from gan_jax.core import state as state_lib
from gan_jax.core import steps
from gan_jax.families import diffusion
from gan_jax.generation import sampling
from tests.conftest import make_config


@pytest.mark.parametrize('schedule', ['linear', 'cosine'])
def test_forward_noising_has_the_right_marginal_variance(schedule):
  sched = diffusion.Schedule.make(schedule, 100)
  assert np.all(np.diff(sched.alpha_bar) < 0) and sched.alpha_bar[-1] < 0.05
  n = 20_000
  x0 = jnp.full((n, 1, 1, 1), 0.6)
  for t in (0, 30, 99):
    noise = jax.random.normal(jax.random.PRNGKey(t), x0.shape)
    xt = np.asarray(diffusion.q_sample(sched, x0, jnp.full((n,), t), noise)).ravel()
    ab = sched.alpha_bar[t]
    np.testing.assert_allclose(xt.mean(), np.sqrt(ab) * 0.6, atol=0.02)
    np.testing.assert_allclose(xt.var(), 1 - ab, rtol=0.05, atol=1e-4)


def _tiny_ddpm(**ddpm):
  config = make_config(**{'model.name': 'ddpm_unet', 'model.family': 'ddpm',
                          'model.conditional': True, 'model.width_scale': 0.125,
                          'ddpm.timesteps': 8, 'ddpm.sample_steps': 3,
                          **{f'ddpm.{k}': v for k, v in ddpm.items()}})
  family = families.FAMILIES.get('ddpm')
  family.check(config)
  gan = family.adapt(config, models.build(config.model, (8, 8, 1), 10))
  import optax  # pylint: disable=g-import-not-at-top
  st = state_lib.create(gan, optax.adam(1e-3), optax.adam(1e-3), 0, use_ema=False)
  return config, gan, st


@pytest.mark.parametrize('ddpm', [dict(sampler='ancestral'),
                                  dict(sampler='ddim', eta=0.5, guidance=2.0)])
@pytest.mark.slow
def test_samplers_return_images_of_the_right_shape_and_range(ddpm):
  _, gan, st = _tiny_ddpm(**ddpm)
  assert gan.latent_dim == 8 * 8
  # Random weights: the zero-initialised output layer would predict no noise at all.
  params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.PRNGKey(1), p.shape),
                        st.g.params)
  z, labels = sampling.latents(jax.random.PRNGKey(0), gan, 4, label=3)
  images = np.asarray(sampling.make_sampler(gan)({'params': params, 'batch_stats': {}},
                                                 z, labels))
  assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8
  raw = np.asarray(sampling.draw(gan, {'params': params}, z, labels))
  assert np.all(np.isfinite(raw)) and raw.min() >= -1 and raw.max() <= 1
  assert raw.std() > 0 and not np.allclose(raw[0], raw[1])


def test_train_step_reduces_the_noise_prediction_loss():
  config, gan, st = _tiny_ddpm()
  import optax  # pylint: disable=g-import-not-at-top
  make_step = families.FAMILIES.get('ddpm').make_step(config)
  step = jax.jit(make_step(gan, None, optax.adam(3e-3), optax.adam(1e-3),
                           steps.StepSpec.from_config(config.train)))
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 255, (1, 8, 8, 8, 1)).astype(np.uint8),
           'label': rng.integers(0, 10, (1, 8)).astype(np.int32)}
  losses = []
  for _ in range(8):
    st, metrics = step(st, batch)
    losses.append(float(metrics['loss']))
  assert bool(metrics['finite']) and np.mean(losses[-3:]) < np.mean(losses[:3])


def test_bad_sampler_is_a_config_error():
  with pytest.raises(errors.ConfigError, match='sampler'):
    _tiny_ddpm(sampler='euler')


def test_the_ddpm_family_entry_carries_its_contract():
  ddpm, gan_family = families.FAMILIES.get('ddpm'), families.FAMILIES.get('gan')
  assert ddpm.models == ('ddpm_unet',) and families.family_of_model('ddpm_unet') == 'ddpm'
  config, gan, _ = _tiny_ddpm()
  # adapt: G's input is flat x_T, and drawing is the reverse process.
  assert gan.latent_dim == 8 * 8 * 1 and gan.sampler is not None
  plain = models.build(config.model, (8, 8, 1), 10)
  assert gan_family.adapt(config, plain) is plain
  with pytest.raises(errors.ConfigError,
                     match="config.model.name='ddpm_unet' belongs to the 'ddpm' family, but "
                           "config.model.family='gan'"):
    gan_family.check(config)
  config.train.n_gen = 2
  with pytest.raises(errors.ConfigError, match='one update per step.*n_gen=2'):
    ddpm.check(config)
  config.train.n_gen = 1
  config.ddpm.sample_steps = 9
  with pytest.raises(errors.ConfigError, match='sample_steps=9'):
    ddpm.check(config)
  # The step maker has make_train_step's signature, with the schedule bound.
  assert ddpm.make_step(config).keywords == {'ddpm': config.ddpm}
