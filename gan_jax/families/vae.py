"""The VAE family's objective and train step: the negative ELBO with a weight beta on the KL term.

  loss = E_q[-log p(x | z, y)] + beta * KL(q(z | x, y) || N(0, I)),  per image, averaged

with one reparameterised sample z = mean + exp(logvar / 2) * eps. beta = 1
is the ELBO; beta > 1 the beta-VAE. The likelihood is Bernoulli on pixels
mapped to [0, 1] (the usual choice for MNIST) or Gaussian with a fixed std
on [-1, 1] pixels. The step has the GAN step's signature and state layout
(state.g = decoder, state.d = encoder), so the trainer runs it unchanged.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import errors
from gan_jax.core import precision
from gan_jax.core import steps
from gan_jax.core.state import GANState

LIKELIHOODS = ('bernoulli', 'gaussian')


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
  return 0.5 * jnp.sum(mean ** 2 + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


def bernoulli_nll(logits: jax.Array, images: jax.Array) -> jax.Array:
  """-log p(x | logits) per example, pixels in [-1, 1] read as probabilities (x + 1) / 2."""
  targets = (images + 1.0) / 2.0
  per_pixel = optax.sigmoid_binary_cross_entropy(logits, targets)
  return jnp.sum(per_pixel.reshape(per_pixel.shape[0], -1), axis=-1)


def gaussian_nll(raw: jax.Array, images: jax.Array, sigma: float) -> jax.Array:
  """-log N(x; 2 sigmoid(raw) - 1, sigma^2 I) per example, pixels in [-1, 1]."""
  z = (images - (2.0 * jax.nn.sigmoid(raw) - 1.0)) / sigma
  per_pixel = 0.5 * z ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
  return jnp.sum(per_pixel.reshape(per_pixel.shape[0], -1), axis=-1)


def negative_elbo(decoder_raw, images, mean, logvar, *, beta: float, likelihood: str,
                  sigma: float):
  """(loss, reconstruction NLL, KL), each averaged over the batch; loss = nll + beta * kl."""
  if likelihood == 'bernoulli':
    nll = bernoulli_nll(decoder_raw, images)
  else:
    nll = gaussian_nll(decoder_raw, images, sigma)
  kl = kl_to_standard_normal(mean, logvar)
  return jnp.mean(nll + beta * kl), jnp.mean(nll), jnp.mean(kl)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks config.vae (the family's check, `gan_jax.families`)."""
  vae = config.vae
  if vae.likelihood not in LIKELIHOODS:
    raise errors.ConfigError(f'config.vae.likelihood={vae.likelihood!r} is not one of '
                             f'{", ".join(LIKELIHOODS)}.')
  if vae.beta < 0 or vae.sigma <= 0:
    raise errors.ConfigError(f'config.vae.beta={vae.beta} must be >= 0 and '
                             f'config.vae.sigma={vae.sigma} positive.')


def make_train_step(gan, loss, g_tx, d_tx, spec: steps.StepSpec, d_input=None,
                    regularizer=None, shard_batch=None,
                    *, beta: float, likelihood: str, sigma: float):
  """The pure `step(state, batch) -> (state, metrics)`: one joint encoder/decoder update.

  Takes the GAN step's arguments; the GAN loss, D-input transforms and
  regularisers do not apply to a VAE and are ignored.
  """
  del loss, d_input, regularizer, shard_batch  # its noise is shaped and sharded like the images
  decode = precision.mixed_apply(gan.generator, spec.compute_dtype)
  encode = precision.mixed_apply(gan.discriminator, spec.compute_dtype)
  objective = functools.partial(negative_elbo, beta=beta, likelihood=likelihood,
                                sigma=sigma)

  def step(state: GANState, batch: dict):
    key = jax.random.fold_in(state.rng, state.step)
    images = steps.images_to_float(batch['image'][0])
    labels = batch['label'][0]

    def loss_fn(params):
      dec_params, enc_params = params
      mean, logvar = encode({'params': enc_params}, images, labels)
      eps = jax.random.normal(key, mean.shape, mean.dtype)
      z = mean + jnp.exp(0.5 * logvar) * eps
      raw = decode({'params': dec_params}, z, labels, logits=True)
      total, nll, kl = objective(raw, images, mean, logvar)
      return total, (nll, kl)

    (total, (nll, kl)), (g_grads, d_grads) = jax.value_and_grad(loss_fn, has_aux=True)(
        (state.g.params, state.d.params))
    g = steps.apply_updates(state.g, g_grads, g_tx, state.g.batch_stats)
    d = steps.apply_updates(state.d, d_grads, d_tx, state.d.batch_stats)
    ema = spec.updated_ema(state.ema, g.variables, state.step)
    grad_norm = optax.global_norm((g_grads, d_grads))
    metrics = {'loss': total, 'recon_nll': nll, 'kl': kl, 'grad_norm': grad_norm,
               'finite': jnp.all(jnp.isfinite(jnp.stack([total, grad_norm])))}
    return state.replace(step=state.step + 1, g=g, d=d, ema=ema), metrics

  return step
