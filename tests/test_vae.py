"""The conditional VAE: ELBO pieces against direct computations, and a short run through the trainer."""

import math

import jax
import numpy as np
import pytest

from gan_jax import errors
from gan_jax import generate
from gan_jax.families import vae
from gan_jax.training import image as image_trainer
from gan_jax.training import setup as setup_lib
from tests.conftest import tiny_config


def test_kl_equals_a_direct_computation():
  mean = np.array([[0.5, -1.0], [0.0, 0.0]], np.float32)
  logvar = np.array([[np.log(0.25), 0.0], [0.0, np.log(4.0)]], np.float32)
  # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2)/2 - 1/2, per dimension.
  s2 = np.exp(logvar)
  direct = np.sum(-0.5 * np.log(s2) + (s2 + mean ** 2) / 2 - 0.5, axis=-1)
  np.testing.assert_allclose(vae.kl_to_standard_normal(mean, logvar), direct, rtol=1e-6)
  assert float(vae.kl_to_standard_normal(mean, logvar)[1]) > 0   # N(0, 4) != N(0, 1)


def test_likelihoods_equal_direct_computations():
  rng = np.random.default_rng(0)
  raw = rng.normal(size=(2, 2, 2, 1)).astype(np.float32)
  images = rng.uniform(-1, 1, size=(2, 2, 2, 1)).astype(np.float32)
  p, t = 1 / (1 + np.exp(-raw)), (images + 1) / 2
  direct = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=(1, 2, 3))
  np.testing.assert_allclose(vae.bernoulli_nll(raw, images), direct, rtol=1e-5)
  mean, sigma = 2 * p - 1, 0.3
  log_density = (-0.5 * ((images - mean) / sigma) ** 2 - math.log(sigma)
                 - 0.5 * math.log(2 * math.pi))
  np.testing.assert_allclose(vae.gaussian_nll(raw, images, sigma),
                             -np.sum(log_density, axis=(1, 2, 3)), rtol=1e-5)


def test_negative_elbo_weights_the_kl_by_beta():
  raw = np.zeros((3, 2, 2, 1), np.float32)
  images = np.zeros((3, 2, 2, 1), np.float32)
  mean, logvar = np.ones((3, 4), np.float32), np.zeros((3, 4), np.float32)
  total, nll, kl = vae.negative_elbo(raw, images, mean, logvar, beta=2.5,
                                     likelihood='bernoulli', sigma=1.0)
  np.testing.assert_allclose(kl, 2.0, rtol=1e-6)              # 0.5 * 4 * 1^2
  np.testing.assert_allclose(nll, 4 * math.log(2), rtol=1e-6)  # p = 0.5 = target
  np.testing.assert_allclose(total, nll + 2.5 * kl, rtol=1e-6)


def test_vae_trains_and_samples_per_class(tmp_path, idx_dir):
  config = tiny_config(**{'data.source': 'idx', 'data.path': idx_dir, 'model.name': 'vae',
                          'model.family': 'vae', 'model.conditional': True,
                          'model.latent_dim': 4, 'model.width_scale': 0.25,
                          'train.num_steps': 6, 'optim.g.lr': 3e-3, 'optim.d.lr': 3e-3})
  workdir = str(tmp_path / 'vae')
  image_trainer.train_and_evaluate(config, workdir)
  from gan_jax.training import reporting  # pylint: disable=g-import-not-at-top
  records = reporting.read_metrics(workdir)
  assert records[-1]['loss'] < records[0]['loss']   # the ELBO improves
  images, labels, step = generate.generate(workdir, num=5, label=2)
  assert images.shape == (5, 28, 28, 1) and np.all(labels == 2) and step == 6
  _, setup, state = setup_lib.restore_setup(workdir)
  z = jax.numpy.zeros((2, 4))
  a = setup.gan.generator.apply(state.g.variables, z, jax.numpy.array([0, 1]))
  assert not np.allclose(a[0], a[1])   # the class changes the decoded image


def test_family_and_model_must_match():
  with pytest.raises(errors.ConfigError, match="family"):
    from gan_jax import families  # pylint: disable=g-import-not-at-top
    config = tiny_config(**{'model.name': 'vae'})
    families.FAMILIES.get(config.model.family).check(config)


def test_the_vae_family_entry_checks_its_keys_and_binds_them_to_its_step():
  from gan_jax import families  # pylint: disable=g-import-not-at-top
  family = families.FAMILIES.get('vae')
  config = tiny_config(**{'model.name': 'vae', 'model.family': 'vae', 'vae.beta': 2.0})
  family.check(config)
  assert family.make_step(config).keywords == {'beta': 2.0, 'likelihood': 'bernoulli',
                                               'sigma': config.vae.sigma}
  gan_config = tiny_config(**{'model.family': 'vae'})   # dcgan28 is the GAN family's
  with pytest.raises(errors.ConfigError, match="belongs to the 'gan' family"):
    family.check(gan_config)
  config.vae.likelihood = 'poisson'
  with pytest.raises(errors.ConfigError, match="config.vae.likelihood='poisson'"):
    family.check(config)
