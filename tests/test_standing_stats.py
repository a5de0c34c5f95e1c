"""An EMA G with BatchNorm draws with standing statistics: the fix for the EMA's averaged running statistics.

The state's EMA averages G's BatchNorm running statistics along with its
weights (`core.state.update_ema`), but those are not the statistics of the
averaged weights. Here the EMA of six generators (dcgan28, each with the
running statistics training leaves it) is built with the real `update_ema`,
and its samples are compared with what that EMA G makes when BatchNorm
normalises by its own statistics (train mode on a batch of 4,352). With the
averaged running statistics (`sample.standing_stats_batches=0`, the
behaviour before the fix) the samples collapse to nearly one image (their
pixel std is about 0.05 of the reference's; mean error 0.11 on [-1, 1]);
with standing statistics (the default) they match (mean error 0.0015).
"""

import types

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.core.state import update_ema
from gan_jax.data.source import DatasetInfo
from gan_jax.generation import export, sampling, standing
from gan_jax.training import setup as setup_lib
from tests.conftest import make_config

LATENT = 16
NUM = 256          # samples compared
SNAPSHOTS = 6      # generators the EMA averages


def _config(**overrides):
  return make_config(**{'model.name': 'dcgan28', 'model.width_scale': 0.25,
                        'model.latent_dim': LATENT, 'train.batch_size': 64,
                        'train.ema_decay': 0.999, **overrides})


def _settled(gan, variables, key):
  """`variables` with the running statistics 50 train-mode batches leave (momentum 0.9)."""
  def body(v, k):
    z, labels = sampling.latents(k, gan, 64)
    _, updates = gan.generator.apply(v, z, labels, train=True, mutable=['batch_stats'])
    return {**v, 'batch_stats': updates['batch_stats']}, None
  return jax.lax.scan(body, variables, jax.random.split(key, 50))[0]


@pytest.fixture(scope='module')
def ema_run():
  """(setup, state): a state whose EMA averages SNAPSHOTS differently initialised generators."""
  setup = setup_lib.build_setup(_config(), DatasetInfo((28, 28, 1), 10, tuple('0123456789'),
                                                       100, 'test'))
  gan = setup.gan
  z, labels = jnp.zeros((1, LATENT)), jnp.zeros((1,), jnp.int32)
  settle = jax.jit(lambda v, k: _settled(gan, v, k))
  ema = None
  for k in range(SNAPSHOTS):   # G's weights wander; the EMA follows them, statistics included
    snapshot = settle(gan.generator.init(jax.random.PRNGKey(100 + k), z, labels, train=False),
                      jax.random.PRNGKey(k))
    ema = snapshot if ema is None else update_ema(ema, snapshot, jnp.asarray(k), 0.8, 0)
  state = jax.jit(setup.init_state)().replace(ema=ema)
  return setup, state


def _reference(gan, ema):
  """The first NUM images `generate_batches(seed=0)` would make, normalised by the EMA G's own statistics."""
  z, labels = sampling.latents(jax.random.fold_in(jax.random.PRNGKey(0), 0), gan, NUM)
  more_z, more_labels = sampling.latents(jax.random.PRNGKey(9), gan, 4096)
  images, _ = gan.generator.apply(ema, jnp.concatenate([z, more_z]),
                                  jnp.concatenate([labels, more_labels]), train=True,
                                  mutable=['batch_stats'])
  return np.asarray(sampling.to_uint8(images[:NUM]), np.float32) / 127.5 - 1


def _generated(setup, state, batches: int):
  spec = standing.StandingStats(batches, setup.standing_stats.batch_size,
                                setup.standing_stats.seed)
  (images, _), = export.generate_batches(types.SimpleNamespace(gan=setup.gan, standing_stats=spec),
                                         state, NUM, seed=0, batch_size=NUM)
  return images.astype(np.float32) / 127.5 - 1


def test_the_ema_generator_samples_with_its_own_statistics(ema_run):
  setup, state = ema_run
  assert setup.standing_stats == standing.StandingStats(16, 64, 0)   # the config's default
  reference = _reference(setup.gan, state.ema)
  fixed = _generated(setup, state, setup.standing_stats.batches)
  assert np.abs(fixed - reference).mean() < 0.005
  assert 0.9 < fixed.std() / reference.std() < 1.1
  # The behaviour before (the EMA of the running statistics): nearly one image.
  averaged = _generated(setup, state, 0)
  assert np.abs(averaged - reference).mean() > 0.05
  assert averaged.std() / reference.std() < 0.2


def test_the_averaged_running_statistics_are_not_the_averaged_weights_statistics(ema_run):
  """The diagnosis, layer by layer: each BatchNorm's input under the EMA weights has about 0.4
  of the standard deviation its averaged running statistics expect, and the shrinkage compounds."""
  setup, state = ema_run
  z, labels = sampling.latents(jax.random.PRNGKey(3), setup.gan, 4096)
  moments = standing.batch_moments(setup.gan, state.ema, z, labels)
  stats = flax.traverse_util.flatten_dict(state.ema['batch_stats'])
  assert len(moments) == 3
  for path, (_, var) in moments.items():
    ratio = float(jnp.median(jnp.sqrt(var / stats[path + ('var',)])))
    assert ratio < 0.6, (path, ratio)


def test_standing_statistics_are_derived_deterministic_and_touch_only_batchnorm(ema_run):
  setup, state = ema_run
  before = jax.device_get(state.ema)
  first = standing.sampling_variables(setup.gan, state, setup.standing_stats)
  again = standing.sampling_variables(setup.gan, state, setup.standing_stats)
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, b)
  # The state's EMA is left as training made it (nothing is stored).
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(state.ema))):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(first['params']), jax.tree.leaves(state.ema['params'])):
    np.testing.assert_array_equal(a, b)
  new = flax.traverse_util.flatten_dict(first['batch_stats'])
  old = flax.traverse_util.flatten_dict(state.ema['batch_stats'])
  assert set(new) == set(old)
  assert all(not np.array_equal(new[path], old[path]) for path in new)   # every mean and var


def test_standing_statistics_apply_only_to_an_ema_generator_with_batchnorm(ema_run):
  setup, state = ema_run
  spec = setup.standing_stats
  raw = standing.sampling_variables(setup.gan, state.replace(ema={}), spec)
  assert raw['params'] is state.g.params and raw['batch_stats'] is state.g.batch_stats
  assert standing.sampling_variables(setup.gan, state, None) is state.ema
  off = standing.StandingStats(0, spec.batch_size, spec.seed)
  assert standing.sampling_variables(setup.gan, state, off) is state.ema
  assert not standing.has_batch_norm({'params': {}, 'batch_stats': {
      'SpectralNorm_0': {'Dense_0/kernel/u': jnp.ones((1, 2))}}})


def test_evaluation_draws_with_standing_statistics(ema_run, idx_dir):
  from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top
  setup, state = ema_run
  config = _config(**{'data.source': 'idx', 'data.path': idx_dir, 'eval.batch_size': 32})
  images, _ = Evaluation(config, log=lambda *_: None).generator_samples(
      setup.gan, state, 0).take(32)
  z, labels = sampling.latents(jax.random.PRNGKey(config.eval.seed), setup.gan, 32)
  variables = standing.sampling_variables(setup.gan, state,
                                          standing.StandingStats.from_config(config))
  expected = np.asarray(sampling.make_sampler(setup.gan)(variables, z, labels))
  assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1
