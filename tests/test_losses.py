"""Adversarial losses against hand computation from D's probabilities."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.losses import LOSSES

LOGITS = np.array([-3.0, -0.5, 0.0, 0.7, 4.0], np.float32)
D = 1 / (1 + np.exp(-LOGITS.astype(np.float64)))   # D's probability "real"


def test_minimax():
  loss = LOSSES.get('minimax')
  np.testing.assert_allclose(loss.d_real(jnp.asarray(LOGITS)), -np.log(D), rtol=1e-5)
  np.testing.assert_allclose(loss.d_fake(jnp.asarray(LOGITS)), -np.log(1 - D), rtol=1e-5)
  np.testing.assert_allclose(loss.g(jnp.asarray(LOGITS)), np.log(1 - D), rtol=1e-5)


def test_nonsaturating():
  loss = LOSSES.get('nonsaturating')
  np.testing.assert_allclose(loss.d_real(jnp.asarray(LOGITS)), -np.log(D), rtol=1e-5)
  np.testing.assert_allclose(loss.d_fake(jnp.asarray(LOGITS)), -np.log(1 - D), rtol=1e-5)
  np.testing.assert_allclose(loss.g(jnp.asarray(LOGITS)), -np.log(D), rtol=1e-5)


def test_losses_are_finite_for_extreme_logits():
  extreme = jnp.array([-200.0, 200.0])
  for name in ('minimax', 'nonsaturating'):
    loss = LOSSES.get(name)
    for fn in (loss.d_real, loss.d_fake, loss.g):
      assert np.all(np.isfinite(fn(extreme)))


def test_unknown_loss():
  with pytest.raises(errors.ConfigError, match="'not_a_loss'.*Choose one of"):
    LOSSES.get('not_a_loss')
