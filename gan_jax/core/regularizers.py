"""Penalties added to D's loss, registered by name and weighted from `config.reg.NAME`.

A regulariser is on when `config.reg.NAME.weight > 0`; several can be on at
once. Each is a function of D's logits l on its inputs as D sees them (after
the `config.augment` transforms), x real and G(z) generated:
  gradient_penalty  E[(||grad l(x_hat)||_2 - target)^2] at x_hat = a x + (1 - a) G(z),
                    a ~ U(0, 1) per example (Gulrajani et al. 2017, WGAN-GP;
                    target 1, weight 10 in the paper)
  r1                1/2 E[||grad l(x)||_2^2] on real data (Mescheder et al. 2018),
                    so `weight` is the paper's gamma
  r2                1/2 E[||grad l(G(z))||_2^2] on generated data, R1's twin on the
                    fakes; with r1 at the same weight, R3GAN's R1 + R2 (Huang et
                    al. 2024: gamma/2 E||grad D(x)||^2 + gamma/2 E||grad D(G(z))||^2).
                    r1 and r2 take `before_augment`: the gradient with respect to
                    the images before config.augment, through the transforms, as
                    R3GAN's code takes it (False: the images as D sees them)
  lecam             E[relu(l(x) - a_F)^2] + E[relu(a_R - l(G(z)))^2] (Tseng et al.
                    2021), a_R and a_F EMAs (decay `decay`) of the mean real and
                    generated logit, kept in the state and updated after each D
                    update; the ReLU is the authors' code's. Weight 0.3 in their
                    BigGAN runs, 0.01 with StyleGAN2.
  bcr               E[(l(x) - l(T x))^2] + E[(l(G(z)) - l(T G(z)))^2], balanced
                    consistency regularisation (Zhao et al. 2020, "Improved
                    consistency regularization"), T a left-right flip (`flip`)
                    and a shift by up to `translation` of the size; weight 10
  zcr               D: E[(l(G(z)) - l(G(z + dz)))^2], dz ~ N(0, sigma^2 I), with
                    `weight` (the paper's lambda_dis, 5); G: -g_weight *
                    E[||G(z) - G(z + dz)||^2] added to G's loss (lambda_gen, 0.5),
                    so G does not ignore small changes of z (the same paper)
For a conditional D they use the real labels on real images and G's labels on
generated ones. A regulariser whose config has `schedule.weight` (r1 and r2
in the base config) moves its weight over training (`gan_jax.core.schedules`;
R3GAN's gamma 0.05 -> 0.005); its metrics then carry 'd_NAME_weight'. The gradient of the batch sum
is each example's own gradient only when D treats examples independently;
BatchNorm in D couples them (WGAN-GP's paper drops it from its critic).

Lazy regularisation (Karras et al. 2020, StyleGAN2): with `every=k > 1` the
penalty counts on one D update in k (updates counted over the whole run,
step * n_disc + i) and is multiplied by k there, so its average strength is
unchanged. The choice is traced, not Python control flow, so the step stays
one jitted program. On GPU and TPU a `lax.cond` skips the double backward
pass on the other updates. On CPU the penalty is computed on every update
and masked: on a 2-core CPU (a measurement under load, not a result) the
`lax.cond` step ran slower than the masked one and than R1 on every update,
apparently because XLA's CPU backend runs the convolutions inside a
conditional's branch slowly, as it does inside loops (docs/design.md).
`python -m benchmarks.lazy_regularization` measures it; BENCHMARKS.md has no
quiet figure for it yet.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax import errors
from gan_jax.core import augment
from gan_jax.core import schedules
from gan_jax.registry import Registry

Array = jax.Array
# d_logits(images, labels) -> D's logits (B,), differentiable in D's params and the images.
DLogits = Callable[[Array, Array], Array]


@dataclasses.dataclass(frozen=True)
class DView:
  """What a penalty on D sees in one D update."""
  d_logits: DLogits       # D as in training, its running statistics untouched
  real: Array             # D's inputs, after config.augment
  fake: Array
  labels: Array | None    # of the real images
  fake_labels: Array | None = None
  real_logits: Array | None = None   # D's logits of the loss pass, when the step has them
  fake_logits: Array | None = None
  z: Array | None = None             # the noise that made `fake` ...
  regenerate: Callable[[Array], Array] | None = None  # ... and z -> G(z) as D sees it
  state: dict | None = None          # the regulariser's own state (lecam)
  # The images before config.augment, and the step's transforms that make
  # `real` and `fake` of them (for penalties taken before the augmentation).
  raw_real: Array | None = None
  raw_fake: Array | None = None
  to_d_real: Callable[[Array], Array] | None = None
  to_d_fake: Callable[[Array], Array] | None = None

  def logits(self, which: str) -> Array:
    given = self.real_logits if which == 'real' else self.fake_logits
    if given is not None:
      return given
    images, labels = ((self.real, self.labels) if which == 'real'
                      else (self.fake, self.labels if self.fake_labels is None
                            else self.fake_labels))
    return self.d_logits(images, labels)

  def labels_of(self, which: str) -> Array | None:
    if which == 'real' or self.fake_labels is None:
      return self.labels
    return self.fake_labels

  def penalty_inputs(self, which: str, before_augment: bool) -> tuple[Array, DLogits]:
    """(images, d_logits) whose input gradient a penalty takes: as D sees them, or before augment."""
    if not before_augment:
      return (self.real if which == 'real' else self.fake), self.d_logits
    raw, to_d = ((self.raw_real, self.to_d_real) if which == 'real'
                 else (self.raw_fake, self.to_d_fake))
    if raw is None or to_d is None:
      raise ValueError('before_augment needs the images before config.augment: call the '
                       'regulariser with raw_real=, raw_fake=, to_d_real= and to_d_fake=.')
    return raw, lambda x, labels: self.d_logits(to_d(x), labels)


@dataclasses.dataclass(frozen=True)
class GView:
  """What a penalty on G sees in one G update."""
  generate: Callable[[Array], Array]  # z -> G(z), differentiable in G's params
  z: Array
  fake: Array                         # G(z) of this update, before config.augment


@dataclasses.dataclass(frozen=True)
class Regularizer:
  # penalty(view: DView, key, cfg) -> scalar, before weighting.
  penalty: Callable[..., Array]
  # init(cfg) -> initial state; observe(state, cfg, real_logits, fake_logits) -> state.
  init: Callable[[ml_collections.ConfigDict], dict] | None = None
  observe: Callable[..., dict] | None = None
  # g_penalty(view: GView, key, cfg) -> scalar added to G's loss, already weighted.
  g_penalty: Callable[..., Array] | None = None


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


def _gradient_penalty(view, key, cfg):
  grads = input_gradients(view.d_logits, interpolates(view.real, view.fake, key), view.labels)
  # The epsilon keeps the norm's gradient finite where D is flat.
  norms = jnp.sqrt(_squared_norms(grads) + 1e-12)
  return jnp.mean(jnp.square(norms - cfg.target))


def _zero_centred(view: DView, which: str, cfg) -> Array:
  """1/2 E[||grad l||^2] at the `which` ('real' or 'fake') images: R1 and R2."""
  images, d_logits = view.penalty_inputs(which, cfg.get('before_augment', False))
  return 0.5 * jnp.mean(_squared_norms(input_gradients(d_logits, images,
                                                       view.labels_of(which))))


def _r1(view, key, cfg):
  del key
  return _zero_centred(view, 'real', cfg)


def _r2(view, key, cfg):
  del key
  return _zero_centred(view, 'fake', cfg)


def _lecam(view, key, cfg):
  del key, cfg
  anchor_real, anchor_fake = view.state['real'], view.state['fake']
  return (jnp.mean(jnp.square(jax.nn.relu(view.logits('real') - anchor_fake))) +
          jnp.mean(jnp.square(jax.nn.relu(anchor_real - view.logits('fake')))))


def _lecam_init(cfg):
  del cfg
  return {'real': jnp.zeros((), jnp.float32), 'fake': jnp.zeros((), jnp.float32)}


def _lecam_observe(state, cfg, real_logits, fake_logits):
  def ema(anchor, logits):
    return cfg.decay * anchor + (1 - cfg.decay) * jnp.mean(jax.lax.stop_gradient(logits))
  return {'real': ema(state['real'], real_logits), 'fake': ema(state['fake'], fake_logits)}


def consistency_transform(images: Array, key: jax.Array, cfg) -> Array:
  """bCR's T: a left-right flip of half the examples (with `flip`), then a shift."""
  flip_key, shift_key = jax.random.split(key)
  if cfg.flip:
    flip = jax.random.bernoulli(flip_key, 0.5, (images.shape[0], 1, 1, 1))
    images = jnp.where(flip, images[:, :, ::-1], images)
  return augment.translation(images, shift_key, cfg.translation)


def _bcr(view, key, cfg):
  real_key, fake_key = jax.random.split(key)
  fake_labels = view.labels if view.fake_labels is None else view.fake_labels
  real_t = view.d_logits(consistency_transform(view.real, real_key, cfg), view.labels)
  fake_t = view.d_logits(consistency_transform(view.fake, fake_key, cfg), fake_labels)
  return (jnp.mean(jnp.square(view.logits('real') - real_t)) +
          jnp.mean(jnp.square(view.logits('fake') - fake_t)))


def perturb(z: Array, key: jax.Array, sigma: float) -> Array:
  return z + sigma * jax.random.normal(key, z.shape, z.dtype)


def _zcr(view, key, cfg):
  if view.regenerate is None or view.z is None:
    raise ValueError('zcr needs the noise and G: call the regulariser with z= and regenerate=.')
  fake_labels = view.labels if view.fake_labels is None else view.fake_labels
  moved = view.d_logits(view.regenerate(perturb(view.z, key, cfg.sigma)), fake_labels)
  return jnp.mean(jnp.square(view.logits('fake') - moved))


def _zcr_g(view, key, cfg):
  moved = view.generate(perturb(view.z, key, cfg.sigma))
  distance = jnp.sum(jnp.square(view.fake - moved), axis=tuple(range(1, moved.ndim)))
  return -cfg.g_weight * jnp.mean(distance)


REGULARIZERS.register('gradient_penalty')(Regularizer(_gradient_penalty))
REGULARIZERS.register('r1')(Regularizer(_r1))
REGULARIZERS.register('r2')(Regularizer(_r2))
REGULARIZERS.register('lecam')(Regularizer(_lecam, _lecam_init, _lecam_observe))
REGULARIZERS.register('bcr')(Regularizer(_bcr))
REGULARIZERS.register('zcr')(Regularizer(_zcr, g_penalty=_zcr_g))


class Regularize:
  """The active penalties of a `config.reg`: D's (called) and G's (`g_penalty`).

  `regularize(d_logits, real, fake, labels, key, update_index, **view) ->
  (total, metrics)`: `total` is the weighted sum of the active penalties, to
  add to D's loss; `metrics` has one entry 'd_NAME' per active penalty: its
  weighted value, so 0 on the updates a lazy penalty skips. `view` fills the
  rest of the `DView` (the step passes D's logits, G's noise, `regenerate`
  and `state`, the dict of `init_state()`). `step`, the training step, is
  needed when a weight follows a schedule (`weights`: {name: Schedule}).
  """

  def __init__(self, active, lazy: str, weights: dict | None = None):
    self._active, self._lazy = active, lazy   # [(name, Regularizer, cfg)]
    self._weights = weights or {}

  def __call__(self, d_logits: DLogits, real: Array, fake: Array, labels: Array,
               key: jax.Array, update_index: Array, *, state: dict | None = None,
               step=None, **view):
    total, metrics = jnp.zeros((), jnp.float32), {}
    for i, (name, reg, cfg) in enumerate(self._active):
      d_view = DView(d_logits, real, fake, labels, state=(state or {}).get(name), **view)
      penalty = functools.partial(reg.penalty, d_view, jax.random.fold_in(key, i), cfg)
      weight = self._weight(name, cfg, step)
      value = self._lazily(cfg, update_index, lambda: weight * penalty())
      total = total + value
      metrics[f'd_{name}'] = value
      if name in self._weights:
        metrics[f'd_{name}_weight'] = jnp.asarray(weight, jnp.float32)
    return total, metrics

  def _weight(self, name: str, cfg, step):
    """`cfg.weight`, or its schedule's value at `step` (the same Python float when unscheduled)."""
    if name not in self._weights:
      return cfg.weight
    if step is None:
      raise ValueError(f'config.reg.{name}.weight follows a schedule: pass step=.')
    return self._weights[name](step)

  def _lazily(self, cfg, update_index, weighted):
    if cfg.every == 1:
      return weighted()
    if self._lazy == 'mask':
      return jnp.where(update_index % cfg.every == 0, cfg.every * weighted(), 0.0)
    return jax.lax.cond(update_index % cfg.every == 0, lambda: cfg.every * weighted(),
                        lambda: jnp.zeros((), jnp.float32))

  def g_penalty(self, generate, z: Array, fake: Array, key: jax.Array, update_index: Array):
    """(total, metrics 'g_NAME') of the active penalties that act on G's loss too."""
    total, metrics = jnp.zeros((), jnp.float32), {}
    for i, (name, reg, cfg) in enumerate(self._active):
      if reg.g_penalty:
        value = self._lazily(cfg, update_index, functools.partial(
            reg.g_penalty, GView(generate, z, fake), jax.random.fold_in(key, i), cfg))
        total = total + value
        metrics[f'g_{name}'] = value
    return total, metrics

  @property
  def acts_on_g(self) -> bool:
    return any(reg.g_penalty for _, reg, _ in self._active)

  def init_state(self) -> dict:
    return {name: reg.init(cfg) for name, reg, cfg in self._active if reg.init}

  def observe(self, state: dict, real_logits: Array, fake_logits: Array) -> dict:
    """The state after a D update whose loss pass gave these logits."""
    return {name: (reg.observe(state[name], cfg, real_logits, fake_logits)
                   if reg.observe else state[name]) for name, reg, cfg in self._active
            if name in state}


def build(reg_config: ml_collections.ConfigDict, lazy: str = 'auto',
          images_per_step: float = 0) -> Regularize:
  """The `Regularize` of the penalties with weight > 0 in `reg_config`.

  `lazy` picks how a penalty with every > 1 is skipped: 'cond' (lax.cond:
  skipped updates do not compute it), 'mask' (always computed, multiplied by
  0) or 'auto' (mask on CPU, cond elsewhere). `images_per_step`
  (train.batch_size x train.n_disc) places weight schedules counted in
  images on the training clock.
  """
  if lazy == 'auto':
    lazy = 'mask' if jax.default_backend() == 'cpu' else 'cond'
  if lazy not in ('cond', 'mask'):
    raise ValueError(f"lazy must be 'auto', 'cond' or 'mask', got {lazy!r}.")
  active, weights = [], {}
  for name in reg_config.keys():
    cfg = reg_config[name]
    reg = REGULARIZERS.get(name)
    if cfg.weight < 0 or cfg.every < 1:
      raise errors.ConfigError(
          f'config.reg.{name}: weight must be >= 0 (0 turns it off) and every >= 1, '
          f'got weight={cfg.weight}, every={cfg.every}.')
    weight = schedules.of(cfg, 'weight', f'reg.{name}', images_per_step)
    if cfg.weight > 0 or not weight.constant:
      active.append((name, reg, cfg))
      if not weight.constant:
        weights[name] = weight
  return Regularize(active, lazy, weights)
