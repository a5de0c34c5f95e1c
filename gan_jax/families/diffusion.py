"""DDPM training and sampling: noise schedules, the noise-prediction loss, ancestral and DDIM samplers.

  q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),  abar_t = prod_{s<=t} (1 - beta_s)

The U-Net (`gan_jax.models.ddpm`) predicts the noise; the loss is its mean
squared error (Ho et al. 2020). Schedules: 'linear' (beta from 1e-4 to 0.02 at
T = 1000, Ho et al.; scaled by 1000 / T otherwise) or 'cosine' (Nichol & Dhariwal 2021). Samplers: 'ancestral' (all T
steps of the reverse chain) and 'ddim' (Song et al. 2021; `sample_steps` of
them, eta = 0 deterministic). With classifier-free guidance (Ho & Salimans
2022), labels are dropped to the null class with probability p_uncond in
training, and sampling uses (1 + w) eps(x, y) - w eps(x, null).

The sampler is a function of G's variables, the noise z (flat x_T) and the
labels, like a GAN generator; its per-step noise (ancestral, or DDIM with
eta > 0) is seeded from the bits of z, so a batch's images are a pure
function of its z.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import errors
from gan_jax.core import precision
from gan_jax.core import steps
from gan_jax.core.state import GANState

SCHEDULES = ('linear', 'cosine')
SAMPLERS = ('ancestral', 'ddim')


def betas(schedule: str, timesteps: int) -> np.ndarray:
  if schedule == 'linear':   # Ho et al.'s range at T = 1000, rescaled for other T
    scale = 1000 / timesteps
    return np.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=np.float64)
  if schedule == 'cosine':
    s = 0.008
    f = np.cos((np.arange(timesteps + 1) / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
  raise errors.ConfigError(f'config.ddpm.schedule={schedule!r} is not one of '
                           f'{", ".join(SCHEDULES)}.')


@dataclasses.dataclass(frozen=True)
class Schedule:
  beta: np.ndarray
  alpha_bar: np.ndarray

  @classmethod
  def make(cls, schedule: str, timesteps: int) -> 'Schedule':
    beta = betas(schedule, timesteps)
    return cls(beta.astype(np.float32), np.cumprod(1 - beta).astype(np.float32))

  @property
  def timesteps(self) -> int:
    return len(self.beta)


def q_sample(schedule: Schedule, x0, t, noise):
  """x_t ~ q(x_t | x_0) for integer timesteps t (B,)."""
  ab = jnp.asarray(schedule.alpha_bar)[t][:, None, None, None]
  return jnp.sqrt(ab) * x0 + jnp.sqrt(1 - ab) * noise


def _guided(apply_fn, variables, x, t, labels, null, guidance: float):
  eps = apply_fn(variables, x, labels, t=t)
  if guidance == 0.0 or null is None:
    return eps
  eps_null = apply_fn(variables, x, jnp.full_like(labels, null), t=t)
  return (1 + guidance) * eps - guidance * eps_null


def sample(apply_fn, variables, x_T, labels, key, schedule: Schedule, *, sampler: str = 'ddim',
           sample_steps: int = 50, eta: float = 0.0, guidance: float = 0.0, null=None):
  """Runs the reverse process from x_T; returns images clipped to [-1, 1]."""
  eps_fn = functools.partial(_guided, apply_fn, variables, labels=labels, null=null,
                             guidance=guidance)
  beta, ab = jnp.asarray(schedule.beta), jnp.asarray(schedule.alpha_bar)
  batch = x_T.shape[0]
  if sampler == 'ancestral':
    def body(i, x):
      t = schedule.timesteps - 1 - i
      eps = eps_fn(x, jnp.full((batch,), t, jnp.int32))
      mean = (x - beta[t] / jnp.sqrt(1 - ab[t]) * eps) / jnp.sqrt(1 - beta[t])
      noise = jax.random.normal(jax.random.fold_in(key, t), x.shape)
      return mean + jnp.where(t > 0, jnp.sqrt(beta[t]), 0.0) * noise
    x = jax.lax.fori_loop(0, schedule.timesteps, body, x_T)
  elif sampler == 'ddim':
    steps = np.unique(np.linspace(0, schedule.timesteps - 1, sample_steps).round().astype(int))
    ts = jnp.asarray(steps[::-1].copy())
    prev = jnp.asarray(np.concatenate([steps[::-1][1:], [-1]]))

    def body(i, x):
      t, tp = ts[i], prev[i]
      ab_t, ab_p = ab[t], jnp.where(tp >= 0, ab[jnp.maximum(tp, 0)], 1.0)
      eps = eps_fn(x, jnp.full((batch,), t, jnp.int32))
      x0 = jnp.clip((x - jnp.sqrt(1 - ab_t) * eps) / jnp.sqrt(ab_t), -1, 1)
      sigma = eta * jnp.sqrt((1 - ab_p) / (1 - ab_t) * (1 - ab_t / ab_p))
      noise = jax.random.normal(jax.random.fold_in(key, i), x.shape)
      return (jnp.sqrt(ab_p) * x0 + jnp.sqrt(jnp.maximum(1 - ab_p - sigma ** 2, 0)) * eps
              + sigma * noise)
    x = jax.lax.fori_loop(0, len(steps), body, x_T)
  else:
    raise errors.ConfigError(f'config.ddpm.sampler={sampler!r} is not one of '
                             f'{", ".join(SAMPLERS)}.')
  return jnp.clip(x, -1.0, 1.0)


def check_config(config) -> None:
  """Checks config.ddpm (the family's check, `gan_jax.families`)."""
  ddpm = config.ddpm
  betas(ddpm.schedule, 2)
  if ddpm.sampler not in SAMPLERS:
    raise errors.ConfigError(f'config.ddpm.sampler={ddpm.sampler!r} is not one of '
                             f'{", ".join(SAMPLERS)}.')
  if ddpm.timesteps < 2 or not 1 <= ddpm.sample_steps <= ddpm.timesteps:
    raise errors.ConfigError(f'config.ddpm.timesteps={ddpm.timesteps} must be >= 2 and '
                             f'config.ddpm.sample_steps={ddpm.sample_steps} in [1, timesteps].')


def make_sampler(gan, ddpm):
  """`sample(variables, z, labels) -> images in [-1, 1]` for GANModels.sampler."""
  schedule = Schedule.make(ddpm.schedule, ddpm.timesteps)
  null = gan.num_classes if gan.num_classes else None

  def apply_fn(variables, x, labels, t):
    return gan.generator.apply(variables, x, labels, t=t)

  def draw(variables, z, labels):
    x_T = z.reshape((z.shape[0], *gan.image_shape))
    seed = jnp.sum(jax.lax.bitcast_convert_type(z[:, 0], jnp.uint32))
    return sample(apply_fn, variables, x_T, labels, jax.random.PRNGKey(seed), schedule,
                  sampler=ddpm.sampler, sample_steps=ddpm.sample_steps, eta=ddpm.eta,
                  guidance=ddpm.guidance if gan.num_classes else 0.0, null=null)
  return draw


def make_train_step(gan, loss, g_tx, d_tx, spec: steps.StepSpec, d_input=None,
                    regularizer=None, shard_batch=None, *, ddpm):
  """The pure `step(state, batch) -> (state, metrics)`: one noise-prediction update of the U-Net."""
  del loss, d_tx, d_input, regularizer, shard_batch  # its noise is shaped and sharded like the images
  unet_apply = precision.mixed_apply(gan.generator, spec.compute_dtype)
  schedule = Schedule.make(ddpm.schedule, ddpm.timesteps)

  def step(state: GANState, batch: dict):
    key = jax.random.fold_in(state.rng, state.step)
    t_key, noise_key, drop_key = jax.random.split(key, 3)
    x0 = steps.images_to_float(batch['image'][0])
    labels = batch['label'][0]
    n = x0.shape[0]
    t = jax.random.randint(t_key, (n,), 0, schedule.timesteps)
    noise = jax.random.normal(noise_key, x0.shape)
    x_t = q_sample(schedule, x0, t, noise)
    if gan.num_classes:
      drop = jax.random.uniform(drop_key, (n,)) < ddpm.p_uncond
      labels = jnp.where(drop, gan.num_classes, labels)

    def loss_fn(params):
      eps = unet_apply({'params': params}, x_t, labels, t=t)
      return jnp.mean((eps - noise) ** 2)

    mse, grads = jax.value_and_grad(loss_fn)(state.g.params)
    g = steps.apply_updates(state.g, grads, g_tx, state.g.batch_stats)
    ema = spec.updated_ema(state.ema, g.variables, state.step)
    grad_norm = optax.global_norm(grads)
    metrics = {'loss': mse, 'grad_norm': grad_norm,
               'finite': jnp.all(jnp.isfinite(jnp.stack([mse, grad_norm])))}
    return state.replace(step=state.step + 1, g=g, ema=ema), metrics

  return step
