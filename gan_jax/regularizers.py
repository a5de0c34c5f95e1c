"""Penalties added to D's loss, registered by name and weighted from `config.reg.NAME`.

A regulariser is on when `config.reg.NAME.weight > 0`; several can be on at
once. Each penalises the gradient of D's logits l with respect to D's input,
as D sees it (after the `config.augment` transforms):
  gradient_penalty  E[(||grad l(x_hat)||_2 - target)^2] at x_hat = a x + (1 - a) G(z),
                    a ~ U(0, 1) per example (Gulrajani et al. 2017, WGAN-GP;
                    target 1, weight 10 in the paper)
  r1                1/2 E[||grad l(x)||_2^2] on real data (Mescheder et al. 2018),
                    so `weight` is the paper's gamma
For a conditional D both use the real labels. The gradient of the batch sum
is each example's own gradient only when D treats examples independently;
BatchNorm in D couples them (WGAN-GP's paper drops it from its critic).

Lazy regularisation (Karras et al. 2020, StyleGAN2): with `every=k > 1` the
penalty counts on one D update in k (updates counted over the whole run,
step * n_disc + i) and is multiplied by k there, so its average strength is
unchanged. The choice is traced, not Python control flow, so the step stays
one jitted program. On GPU and TPU a `lax.cond` skips the double backward
pass on the other updates. On CPU the penalty is computed on every update
and masked: on the shared 2-core development CPU (not a quiet machine) the
`lax.cond` step measured slower than the masked one and than R1 on every
update, apparently because XLA's CPU backend runs the convolutions inside a
conditional's branch slowly, as it does inside loops (docs/design.md).
`python -m benchmarks.lazy_regularization` measures it; BENCHMARKS.md has no
figure for it yet.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import errors
from gan_jax.registry import Registry

Array = jax.Array
# d_logits(images, labels) -> D's logits (B,), differentiable in D's params and the images.
DLogits = Callable[[Array, Array], Array]


@dataclasses.dataclass(frozen=True)
class Regularizer:
  # penalty(d_logits, real, fake, labels, key, cfg) -> scalar, before weighting.
  penalty: Callable[..., Array]


REGULARIZERS: Registry[Regularizer] = Registry('regularizer', 'config.reg')


def input_gradients(d_logits: DLogits, images: Array, labels: Array) -> Array:
  """d sum(l) / d images: each example's gradient when D treats examples independently."""
  return jax.grad(lambda x: jnp.sum(d_logits(x, labels)))(images)


def _squared_norms(grads: Array) -> Array:
  return jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim)))


def interpolates(real: Array, fake: Array, key: jax.Array) -> Array:
  """a * real + (1 - a) * fake with a ~ U(0, 1) drawn once per example."""
  alpha = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  return alpha * real + (1.0 - alpha) * fake


def _gradient_penalty(d_logits, real, fake, labels, key, cfg):
  grads = input_gradients(d_logits, interpolates(real, fake, key), labels)
  # The epsilon keeps the norm's gradient finite where D is flat.
  norms = jnp.sqrt(_squared_norms(grads) + 1e-12)
  return jnp.mean(jnp.square(norms - cfg.target))


def _r1(d_logits, real, fake, labels, key, cfg):
  del fake, key, cfg
  return 0.5 * jnp.mean(_squared_norms(input_gradients(d_logits, real, labels)))


REGULARIZERS.register('gradient_penalty')(Regularizer(_gradient_penalty))
REGULARIZERS.register('r1')(Regularizer(_r1))


def build(reg_config: ml_collections.ConfigDict, lazy: str = 'auto'):
  """Returns `regularize(d_logits, real, fake, labels, key, update_index) -> (total, metrics)`.

  `total` is the weighted sum of the active penalties, to add to D's loss;
  `metrics` has one entry 'd_NAME' per active penalty: its weighted value,
  so 0 on the updates a lazy penalty skips. `lazy` picks how a penalty is
  skipped: 'cond' (lax.cond: skipped updates do not compute it), 'mask'
  (always computed, multiplied by 0) or 'auto' (mask on CPU, cond elsewhere).
  """
  if lazy == 'auto':
    lazy = 'mask' if jax.default_backend() == 'cpu' else 'cond'
  if lazy not in ('cond', 'mask'):
    raise ValueError(f"lazy must be 'auto', 'cond' or 'mask', got {lazy!r}.")
  active = []
  for name in reg_config.keys():
    cfg = reg_config[name]
    reg = REGULARIZERS.get(name)
    if cfg.weight < 0 or cfg.every < 1:
      raise errors.ConfigError(
          f'config.reg.{name}: weight must be >= 0 (0 turns it off) and every >= 1, '
          f'got weight={cfg.weight}, every={cfg.every}.')
    if cfg.weight > 0:
      active.append((name, reg, cfg))

  def regularize(d_logits: DLogits, real: Array, fake: Array, labels: Array,
                 key: jax.Array, update_index: Array):
    total, metrics = jnp.zeros((), jnp.float32), {}
    for i, (name, reg, cfg) in enumerate(active):
      penalty = functools.partial(reg.penalty, d_logits, real, fake, labels,
                                  jax.random.fold_in(key, i), cfg)
      if cfg.every == 1:
        value = cfg.weight * penalty()
      elif lazy == 'mask':
        value = jnp.where(update_index % cfg.every == 0,
                          cfg.weight * cfg.every * penalty(), 0.0)
      else:
        value = jax.lax.cond(update_index % cfg.every == 0,
                             lambda: cfg.weight * cfg.every * penalty(),
                             lambda: jnp.zeros((), jnp.float32))
      total = total + value
      metrics[f'd_{name}'] = value
    return total, metrics

  return regularize

