"""Generator families (`config.model.family`): which train step the trainer runs, and how G samples.

Every family keeps the GAN state layout and calling conventions (see
`gan_jax.models`), so the trainer, sampling, `generate` and evaluation are
shared; a family supplies its step maker, with the signature of
`gan_jax.steps.make_train_step`, and may adapt the built models (the DDPM
sets `GANModels.sampler`, its reverse process). 'gan' is the default.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import ml_collections

from gan_jax import errors
from gan_jax.core import steps
from gan_jax.registry import Registry

FAMILIES = Registry('model family', 'config.model.family')
# Each entry: config -> step maker; and the model names that family trains.
_MODELS_OF = {}


def register(name: str, models: tuple[str, ...] = ()):
  def decorator(fn):
    _MODELS_OF[name] = models
    return FAMILIES.register(name)(fn)
  return decorator


@register('gan')
def _gan(config):
  del config
  return steps.make_train_step


@register('vae', models=('vae',))
def _vae(config):
  from gan_jax.families import vae  # pylint: disable=g-import-not-at-top
  vae.check_config(config)
  return functools.partial(vae.make_train_step, beta=config.vae.beta,
                           likelihood=config.vae.likelihood, sigma=config.vae.sigma)


@register('ddpm', models=('ddpm_unet',))
def _ddpm(config):
  from gan_jax.families import diffusion  # pylint: disable=g-import-not-at-top
  diffusion.check_config(config.ddpm)
  return functools.partial(diffusion.make_train_step, ddpm=config.ddpm)


def adapt_models(config: ml_collections.ConfigDict, gan):
  """The family's view of the built models (identity but for the DDPM)."""
  if config.model.family != 'ddpm':
    return gan
  from gan_jax.families import diffusion  # pylint: disable=g-import-not-at-top
  diffusion.check_config(config.ddpm)
  gan = dataclasses.replace(gan, latent_dim=int(np.prod(gan.image_shape)))
  return dataclasses.replace(gan, sampler=diffusion.make_sampler(gan, config.ddpm))


def step_maker(config: ml_collections.ConfigDict):
  """The step maker of `config.model.family`, after checking the model and train keys fit it."""
  family = config.model.family
  maker = FAMILIES.get(family)(config)
  owned = {m: f for f, ms in _MODELS_OF.items() for m in ms}
  expected = owned.get(config.model.name, 'gan')
  if expected != family:
    raise errors.ConfigError(
        f'config.model.name={config.model.name!r} belongs to the {expected!r} family, '
        f'but config.model.family={family!r}. Set --config.model.family={expected}.')
  if family != 'gan' and (config.train.n_disc != 1 or config.train.n_gen != 1):
    raise errors.ConfigError(f'The {family!r} family makes one update per step: set '
                             'config.train.n_disc=1 and config.train.n_gen=1.')
  return maker
