"""Generator families (`config.model.family`): their models, their train step, how G samples.

Every family keeps the GAN state layout and calling conventions (see
`gan_jax.models`), so the trainer, sampling, `generate` and evaluation are
shared. A family is a `Family` entry of `FAMILIES` that carries its whole
contract: the model names only it trains, the check of its config keys,
its view of the built models (the DDPM's flat latent and its reverse
process as `GANModels.sampler`), and its step maker, with the signature of
`gan_jax.core.steps.make_train_step`. 'gan' is the default. A run uses one as

  family = FAMILIES.get(config.model.family)
  family.check(config)
  gan = family.adapt(config, models.build(config.model, ...))
  make_step = family.make_step(config)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.core import steps
from gan_jax.families import diffusion, vae
from gan_jax.models import GANModels
from gan_jax.registry import Registry

FAMILIES = Registry('model family', 'config.model.family')


def _no_check(config: ml_collections.ConfigDict) -> None:
  del config


def _same_models(config: ml_collections.ConfigDict, gan: GANModels) -> GANModels:
  del config
  return gan


def _gan_step(config: ml_collections.ConfigDict) -> Callable:
  del config
  return steps.make_train_step


@dataclasses.dataclass(frozen=True)
class Family:
  """One generator family's contract with the trainer."""
  name: str
  # The model names only this family trains; a model no family names is the GAN family's.
  models: tuple[str, ...] = ()
  # Checks the family's own config keys (config.vae, config.ddpm); ConfigError if wrong.
  check_keys: Callable[[ml_collections.ConfigDict], None] = _no_check
  # The family's view of the built models: (config, GANModels) -> GANModels.
  adapt: Callable[[ml_collections.ConfigDict, GANModels], GANModels] = _same_models
  # config -> a step maker with `steps.make_train_step`'s signature.
  make_step: Callable[[ml_collections.ConfigDict], Callable] = _gan_step
  # False: one update of each network per step (train.n_disc = train.n_gen = 1).
  several_updates: bool = True
  # Whether the D slot holds a discriminator (the VAE keeps its encoder there, the DDPM nothing).
  has_discriminator: bool = True

  def check(self, config: ml_collections.ConfigDict) -> None:
    """Checks that config.model.name and the train keys fit this family, then its own keys."""
    owner = family_of_model(config.model.name)
    if owner != self.name:
      raise errors.ConfigError(
          f'config.model.name={config.model.name!r} belongs to the {owner!r} family, '
          f'but config.model.family={self.name!r}. Set --config.model.family={owner}.')
    if not self.several_updates and (config.train.n_disc != 1 or config.train.n_gen != 1):
      raise errors.ConfigError(
          f'The {self.name!r} family makes one update per step, but config.train.n_disc='
          f'{config.train.n_disc} and config.train.n_gen={config.train.n_gen}: set both to 1.')
    if not self.has_discriminator and config.train.get('unroll_steps', 0):
      raise errors.ConfigError(
          f'config.train.unroll_steps={config.train.unroll_steps} unrolls a discriminator, '
          f'which the {self.name!r} family does not have: set it to 0.')
    self.check_keys(config)


def register(family: Family) -> Family:
  return FAMILIES.register(family.name)(family)


def family_of_model(model_name: str) -> str:
  """The family that trains `model_name`: the one that names it, else 'gan'."""
  owners = [name for name in FAMILIES.names() if model_name in FAMILIES.get(name).models]
  return owners[0] if owners else 'gan'


def _vae_step(config: ml_collections.ConfigDict) -> Callable:
  return functools.partial(vae.make_train_step, beta=config.vae.beta,
                           likelihood=config.vae.likelihood, sigma=config.vae.sigma)


def _ddpm_step(config: ml_collections.ConfigDict) -> Callable:
  return functools.partial(diffusion.make_train_step, ddpm=config.ddpm)


def _ddpm_models(config: ml_collections.ConfigDict, gan: GANModels) -> GANModels:
  """G's input is flat x_T (latent_dim = H*W*C) and drawing is the reverse process."""
  gan = dataclasses.replace(gan, latent_dim=int(np.prod(gan.image_shape)))
  return dataclasses.replace(gan, sampler=diffusion.make_sampler(gan, config.ddpm))


register(Family('gan'))
register(Family('vae', models=('vae',), check_keys=vae.check_config, make_step=_vae_step,
                several_updates=False, has_discriminator=False))
register(Family('ddpm', models=('ddpm_unet',), check_keys=diffusion.check_config,
                adapt=_ddpm_models, make_step=_ddpm_step, several_updates=False,
                has_discriminator=False))
