"""Adversarial losses against hand computation from D's probabilities or raw outputs."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.core import losses
from gan_jax.core.losses import LOSSES
from tests.conftest import make_config

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


def test_hinge():
  loss = LOSSES.get('hinge')
  l = LOGITS.astype(np.float64)
  # D: max(0, 1 - l) on real, max(0, 1 + l) on fake; G: -l.
  np.testing.assert_allclose(loss.d_real(jnp.asarray(LOGITS)), [4.0, 1.5, 1.0, 0.3, 0.0],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(loss.d_fake(jnp.asarray(LOGITS)), [0.0, 0.5, 1.0, 1.7, 5.0],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(loss.g(jnp.asarray(LOGITS)), -l, rtol=1e-6)


def test_wasserstein():
  loss = LOSSES.get('wasserstein')
  l = LOGITS.astype(np.float64)
  np.testing.assert_allclose(loss.d_real(jnp.asarray(LOGITS)), -l, rtol=1e-6)
  np.testing.assert_allclose(loss.d_fake(jnp.asarray(LOGITS)), l, rtol=1e-6)
  np.testing.assert_allclose(loss.g(jnp.asarray(LOGITS)), -l, rtol=1e-6)


def test_least_squares():
  loss = LOSSES.get('least_squares')
  # (l - 1)^2 / 2 and l^2 / 2 at l = -3, -0.5, 0, 0.7, 4.
  real = [8.0, 1.125, 0.5, 0.045, 4.5]
  np.testing.assert_allclose(loss.d_real(jnp.asarray(LOGITS)), real, rtol=1e-5)
  np.testing.assert_allclose(loss.d_fake(jnp.asarray(LOGITS)), [4.5, 0.125, 0.0, 0.245, 8.0],
                             rtol=1e-5)
  np.testing.assert_allclose(loss.g(jnp.asarray(LOGITS)), real, rtol=1e-5)


def test_label_smoothing_moves_the_real_target_only():
  smooth = losses.build(make_config(**{'loss.label_smoothing': 0.1}).loss)
  d = D
  np.testing.assert_allclose(smooth.d_real(jnp.asarray(LOGITS)),
                             -(0.9 * np.log(d) + 0.1 * np.log(1 - d)), rtol=1e-5)
  np.testing.assert_allclose(smooth.d_fake(jnp.asarray(LOGITS)), -np.log(1 - d), rtol=1e-5)
  np.testing.assert_allclose(smooth.g(jnp.asarray(LOGITS)), -np.log(d), rtol=1e-5)
  lsq = losses.build(make_config(**{'loss.name': 'least_squares',
                                    'loss.label_smoothing': 0.2}).loss)
  np.testing.assert_allclose(lsq.d_real(jnp.asarray(LOGITS)),
                             0.5 * (LOGITS.astype(np.float64) - 0.8) ** 2, rtol=1e-5)
  with pytest.raises(errors.ConfigError, match="label_smoothing.*'hinge'"):
    losses.build(make_config(**{'loss.name': 'hinge', 'loss.label_smoothing': 0.1}).loss)
  with pytest.raises(errors.ConfigError, match=r'\[0, 1\)'):
    losses.build(make_config(**{'loss.label_smoothing': 1.0}).loss)


def test_classifier_loss_is_cross_entropy():
  logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], np.float32)
  labels = np.array([0, 2])
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_allclose(losses.classifier_loss(jnp.asarray(logits), jnp.asarray(labels)),
                             -np.log(p[[0, 1], labels]), rtol=1e-5)


def test_losses_are_finite_for_extreme_logits():
  extreme = jnp.array([-200.0, 200.0])
  for name in LOSSES.names():
    loss = LOSSES.get(name)
    if loss.paired:   # every pairing of extreme real and fake logits
      for fn in (loss.d_pair, loss.g_pair):
        assert np.all(np.isfinite(fn(extreme, extreme[::-1]))), name
      continue
    for fn in (loss.d_real, loss.d_fake, loss.g):
      assert np.all(np.isfinite(fn(extreme))), name


def test_unknown_loss():
  with pytest.raises(errors.ConfigError, match="'not_a_loss'.*Choose one of"):
    LOSSES.get('not_a_loss')
