"""Optimizers from the config: the linear learning-rate decay of the SNGAN recipes."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.core import optim
from tests.conftest import make_config


def test_linear_schedule_decays_the_update_to_zero_over_the_run():
  cfg = make_config(**{'optim.g.name': 'sgd', 'optim.g.b1': 0.0, 'optim.g.lr': 0.5,
                       'optim.g.lr_schedule': 'linear'}).optim.g
  tx = optim.build(cfg, total_updates=4)
  params, grads = {'w': jnp.zeros(())}, {'w': jnp.ones(())}
  state = tx.init(params)
  steps = []
  for _ in range(5):
    updates, state = tx.update(grads, state, params)
    steps.append(float(updates['w']))
  # lr 0.5 * (1 - n / 4) for update n = 0..3, then 0.
  np.testing.assert_allclose(steps, [-0.5, -0.375, -0.25, -0.125, 0.0], atol=1e-7)
  constant = optim.build(make_config().optim.g)
  assert constant is not None
  with pytest.raises(errors.ConfigError, match='lr_schedule'):
    optim.build(make_config(**{'optim.g.lr_schedule': 'cosine'}).optim.g)
