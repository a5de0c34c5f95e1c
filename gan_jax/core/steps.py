"""The pure train step: `n_disc` D updates then `n_gen` G updates, on one step's batches.

`make_train_step` closes over the models, loss, optimizers and a `StepSpec`
(the train keys the step reads, `StepSpec.from_config(config.train)`) and
returns `step(state, batch) -> (state, metrics)`, a pure function of its
arguments: all randomness comes from `fold_in(state.rng, state.step)`, unless
the batch carries G's noise itself (`noise`: (n_disc, B, latent) for the D
updates, `g_noise`: (n_gen, B, latent) for the G updates; unconditional
models), as the 2D lab's batches do, drawn for many steps at once. It is
meant to be jitted over global arrays (see `gan_jax.parallel`), which makes
every mean in it, BatchNorm's included, a mean over the global batch.

Like the reference PyTorch loops, D sees the real and the generated batch in
two separate calls (so BatchNorm normalises each on its own), D's running
statistics (and spectral-norm vectors) are updated by every D call, G's by its
own update only, and the generated batch is detached from G in D's update.
G and D compute in `train.compute_dtype` (`gan_jax.core.precision`); the
images, logits, losses and penalties between them are float32.

Every batch D sees first goes through `d_input` (config.augment), with one
shared key for the real and the generated batch of a D update. D's loss adds
the penalties of `regularizer` (config.reg) and, when D has an auxiliary
classifier head (ACGAN), its class cross-entropy on real and generated images;
G's loss adds the cross-entropy on its own images and, when
`loss.similarity_weight` > 0, the MSE between its images and a real batch
whose labels it borrows (G update i pairs with D update i's real batch,
modulo n_disc), logged as `g_similarity_loss`, and the G-side terms of the
regularisers that have one (zCR).

Transforms and regularisers that keep state (ADA's p, LeCam's anchors) find
it in `state.aux` ('augment' and 'reg') and update it after every D update
from that update's logits, so it is checkpointed and restored with the rest.

PacGAN packing (`gan.pack` = m > 1, `gan_jax.core.packing`): every batch D
sees is packed after `d_input`, so each sample is augmented alone and D gets
(B/m, H, W, m*C); D's logits, the losses, the penalties (on packed inputs),
ADA's r_t, LeCam's anchors and the d_acc/d_real/d_fake metrics are all per
pack. With m = 1 nothing is packed and the step is the one without packing.

Unrolled D (Metz et al. 2017, `StepSpec.unroll_steps` = k > 0): each G update
computes G's loss with D's parameters after k more D updates (`make_lookahead`)
and differentiates through them. Unrolled update j uses the real batch, the
keys (noise, augmentation, penalties) and the update index of this step's D
update j mod n_disc, the same optimizer from D's current parameters and
optimizer state, and BatchNorm in train mode whose new statistics, like
those of G's pass through the unrolled D, are discarded. D's own updates are
unchanged; k = 0 is the step without unrolling.

A paired loss (`GANLoss.paired`: R3GAN's rpgan) pairs real example i with
generated example i: D's loss is mean(d_pair(l(x), l(G(z)))), logged as
d_loss_pair, and G's update passes its real batch through D too (after the
generated one, as R3GAN's code does) for mean(g_pair(l(x), l(G(z)))). A
class-conditional G then draws, in both updates, the classes of the real
batch it is paired with, as the authors' code does (it feeds the real
labels to G); other losses draw uniform classes. Regularisers also see the
images before config.augment and the transforms that made D's inputs of
them (r1 and r2 with `before_augment`).

The EMA decays by `train.ema_decay` per step, or, with a half-life in
images (`train.ema_half_life`, which `train.schedule.ema_half_life` may
move: R3GAN's 0 -> 5M images), by 0.5 ** (images per step / half-life) at
the step's value (`schedules.half_life_decay`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import errors
from gan_jax.core import augment as augment_lib
from gan_jax.core import losses as losses_lib
from gan_jax.core import packing
from gan_jax.core import precision
from gan_jax.core import regularizers as regularizers_lib
from gan_jax.core import schedules
from gan_jax.core.losses import GANLoss
from gan_jax.core.state import GANState, NetState, update_ema
from gan_jax.models import GANModels, split_output


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """The train keys a step reads, read once from `config.train` (validated in `config.base`)."""
  n_disc: int = 1             # D updates per step, each on its own real batch
  n_gen: int = 1              # G updates per step
  ema_decay: float = 0.0      # 0: no EMA of G
  ema_start: int = 0          # the EMA copies G before this step
  compute_dtype: Any = jnp.float32   # G's and D's (`precision.mixed_apply`)
  unroll_steps: int = 0       # G's loss looks this many D updates ahead (Metz et al.); 0: off
  # The EMA's half-life in images, as a schedule of the step, and the images
  # per step it is counted in; None: the EMA decays by `ema_decay`.
  ema_half_life: schedules.Schedule | None = None
  images_per_step: int = 0

  @classmethod
  def from_config(cls, train_config: ml_collections.ConfigDict) -> 'StepSpec':
    half_life, images_per_step = _ema_half_life(train_config)
    return cls(n_disc=train_config.n_disc, n_gen=train_config.n_gen,
               ema_decay=train_config.ema_decay, ema_start=train_config.ema_start,
               compute_dtype=precision.compute_dtype(
                   train_config.get('compute_dtype', 'float32')),
               unroll_steps=train_config.get('unroll_steps', 0),
               ema_half_life=half_life, images_per_step=images_per_step)

  @property
  def has_ema(self) -> bool:
    return self.ema_decay > 0 or self.ema_half_life is not None

  def updated_ema(self, ema: dict, g_variables: dict, step: jax.Array) -> dict:
    """The EMA of G after the update of `step`; {} (no EMA) stays {}."""
    if not ema:
      return ema
    decay = self.ema_decay
    if self.ema_half_life is not None:
      decay = schedules.half_life_decay(self.ema_half_life(step), self.images_per_step)
    return update_ema(ema, g_variables, step, decay, self.ema_start)


def _ema_half_life(tc: ml_collections.ConfigDict) -> tuple[schedules.Schedule | None, int]:
  """(the half-life schedule, images per step) of `train_config`, or (None, 0) without one."""
  if 'ema_half_life' not in tc:
    return None, 0
  images_per_step = tc.batch_size * tc.n_disc
  half_life = schedules.of(tc, 'ema_half_life', 'train', images_per_step)
  if half_life.constant and not tc.ema_half_life:
    return None, 0
  if tc.ema_decay:
    raise errors.ConfigError(
        f'config.train.ema_decay={tc.ema_decay} and config.train.ema_half_life '
        f'({tc.ema_half_life}, schedule {half_life.kind!r}) both set the EMA: keep one.')
  return half_life, images_per_step


def images_to_float(images: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [-1, 1]; done on device so the host ships bytes.

  Float inputs (the 2D lab's points) are already model inputs and pass through.
  """
  if jnp.issubdtype(images.dtype, jnp.floating):
    return images.astype(jnp.float32)
  return images.astype(jnp.float32) / 127.5 - 1.0


def sample_latents(key: jax.Array, gan: GANModels, batch_size: int):
  """Noise z ~ N(0, I) and, for conditional models, uniformly drawn labels."""
  z_key, label_key = jax.random.split(key)
  z = jax.random.normal(z_key, (batch_size, gan.latent_dim), jnp.float32)
  if gan.num_classes:
    labels = jax.random.randint(label_key, (batch_size,), 0, gan.num_classes)
  else:
    labels = jnp.zeros((batch_size,), jnp.int32)
  return z, labels


def apply_updates(net: NetState, grads, tx: optax.GradientTransformation,
                  batch_stats) -> NetState:
  """`net` after one optimizer update from `grads`, with the new `batch_stats`."""
  updates, opt_state = tx.update(grads, net.opt_state, net.params)
  return NetState(optax.apply_updates(net.params, updates), batch_stats, opt_state)


def _finite(*values) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in values]))


def _classifier_terms(extras: dict, labels: jax.Array, prefix: str) -> dict:
  """Cross-entropy (and accuracy) of D's class head, when it has one (ACGAN)."""
  if 'class_logits' not in extras:
    return {}
  logits = extras['class_logits']
  return {f'{prefix}_loss': jnp.mean(losses_lib.classifier_loss(logits, labels)),
          f'{prefix}_acc': jnp.mean(jnp.argmax(logits, -1) == labels)}


@dataclasses.dataclass(frozen=True)
class Nets:
  """What the D and the G update share: G and D in the step's dtype, the loss, D's extras, noise."""
  gan: GANModels
  loss: GANLoss
  g_apply: Callable           # G.apply in spec.compute_dtype: float32 in, float32 out
  d_apply: Callable
  d_input: Any                # `augment.DInput`: every batch D sees goes through it
  regularizer: Any            # `regularizers.Regularize`: D's (and G's) penalties
  shard_batch: Callable       # places the noise and labels the step draws
  pack: int = 1               # PacGAN: samples per D input (`gan.pack`)

  @classmethod
  def build(cls, gan: GANModels, loss: GANLoss, spec: StepSpec, d_input=None,
            regularizer=None, shard_batch=None) -> 'Nets':
    if loss.similarity_weight and not gan.num_classes:
      raise errors.ConfigError(
          'config.loss.similarity_weight pairs generated and real images of the same '
          'class, so it needs config.model.conditional=True (and labelled data).')
    return cls(gan, loss, precision.mixed_apply(gan.generator, spec.compute_dtype),
               precision.mixed_apply(gan.discriminator, spec.compute_dtype),
               d_input or augment_lib.DInput([]),
               regularizer or regularizers_lib.Regularize([], 'mask'),
               shard_batch or (lambda x: x), gan.pack)

  def noise(self, key: jax.Array, batch_size: int, given):
    """(z, labels) for G: drawn from `key`, or `given` z with class 0 (unconditional models)."""
    if given is None:
      z, labels = sample_latents(key, self.gan, batch_size)
    else:
      z, labels = given, jnp.zeros((batch_size,), jnp.int32)
    return self.shard_batch(z), self.shard_batch(labels)

  def packed(self, x: jax.Array) -> jax.Array:
    """A batch as D takes it: packs of `pack` consecutive samples; `x` itself when pack = 1."""
    if self.pack == 1:
      return x
    # Packs lie inside a device's share (packing.check_batch), so this keeps
    # the batch split along axis 0 without moving data.
    return self.shard_batch(packing.pack(x, self.pack))

  def packed_labels(self, labels: jax.Array) -> jax.Array:
    return packing.pack_labels(labels, self.pack)

  def paired_labels(self, drawn: jax.Array, real: dict) -> jax.Array:
    """G's classes: the real batch's under a paired loss (conditional models), else `drawn`."""
    if self.loss.paired and self.gan.num_classes:
      return real['label']
    return drawn


class _DBatch(NamedTuple):
  """The inputs of one D update's loss, as D sees them (after `d_input`)."""
  images: jax.Array
  fake: jax.Array
  labels: jax.Array
  fake_labels: jax.Array
  z: jax.Array
  regenerate: Callable        # z -> G(z) as D sees it (for the regularisers that resample)
  raw_images: jax.Array       # `images` and `fake` before `d_input` ...
  raw_fake: jax.Array
  to_d_real: Callable         # ... and the update's `d_input` of each
  to_d_fake: Callable


def _adversarial_d(loss: GANLoss, real_logits, fake_logits) -> dict:
  """D's loss parts: {'d_loss_real', 'd_loss_fake'}, or {'d_loss_pair'} for a paired loss."""
  if loss.paired:
    return {'d_loss_pair': jnp.mean(loss.d_pair(real_logits, fake_logits))}
  return {'d_loss_real': jnp.mean(loss.d_real(real_logits)),
          'd_loss_fake': jnp.mean(loss.d_fake(fake_logits))}


def _d_loss(nets: Nets, batch_stats, batch: _DBatch, reg_key: jax.Array,
            update_index: jax.Array, reg_state: dict, step: jax.Array, params):
  """D's loss (with its penalties) and (new statistics, logits, loss parts, extra metrics)."""
  d_apply, loss = nets.d_apply, nets.loss
  real_out, upd = d_apply({'params': params, 'batch_stats': batch_stats},
                          batch.images, batch.labels, train=True, mutable=['batch_stats'])
  fake_out, upd = d_apply({'params': params, **upd}, batch.fake, batch.fake_labels,
                          train=True, mutable=['batch_stats'])
  (real_logits, real_extras), (fake_logits, fake_extras) = (
      split_output(real_out), split_output(fake_out))
  parts = _adversarial_d(loss, real_logits, fake_logits)
  extra = {**_classifier_terms(real_extras, batch.labels, 'd_class_real'),
           **_classifier_terms(fake_extras, batch.fake_labels, 'd_class_fake')}
  total = _sum_parts(parts)
  if extra:
    total += loss.classifier_weight * (extra['d_class_real_loss'] +
                                       extra['d_class_fake_loss'])

  def d_logits(x, labels):
    # Penalties see D as in training but leave its state alone.
    out, _ = d_apply({'params': params, 'batch_stats': batch_stats}, x, labels,
                     train=True, mutable=['batch_stats'])
    return split_output(out)[0]

  penalty, penalty_metrics = nets.regularizer(
      d_logits, batch.images, batch.fake, batch.labels, reg_key, update_index,
      state=reg_state, step=step, fake_labels=batch.fake_labels, real_logits=real_logits,
      fake_logits=fake_logits, z=batch.z, regenerate=batch.regenerate,
      raw_real=batch.raw_images, raw_fake=batch.raw_fake, to_d_real=batch.to_d_real,
      to_d_fake=batch.to_d_fake)
  extra.update(penalty_metrics)
  return total + penalty, (upd.get('batch_stats', {}), real_logits, fake_logits, parts, extra)


def _sum_parts(parts: dict):
  """D's adversarial loss: real + fake (in that order, as always), or the paired loss."""
  if 'd_loss_pair' in parts:
    return parts['d_loss_pair']
  return parts['d_loss_real'] + parts['d_loss_fake']


def _observe(nets: Nets, aux: dict, real_logits, fake_logits, update_index, batch_size: int,
             step):
  """`state.aux` after a D update (ADA's p, LeCam's anchors), and the metrics that says.

  The logits are per pack under packing; `batch_size` counts the real images.
  """
  new_aux, metrics = dict(aux), {}
  if 'augment' in aux:
    new_aux['augment'], metrics = nets.d_input.observe(aux['augment'], real_logits,
                                                       update_index, batch_size=batch_size,
                                                       step=step)
  if 'reg' in aux:
    new_aux['reg'] = nets.regularizer.observe(aux['reg'], real_logits, fake_logits)
  return new_aux, metrics


def _d_metrics(parts: dict, real_logits, fake_logits, grad_norm, extra) -> dict:
  return {
      'd_loss': _sum_parts(parts),
      **parts,
      'd_acc_real': jnp.mean(real_logits > 0),
      'd_acc_fake': jnp.mean(fake_logits < 0),
      'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),   # mean D(x)
      'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),   # mean D(G(z))
      'd_grad_norm': grad_norm,
      **extra,
      'finite': _finite(*parts.values(), grad_norm, *extra.values()),
  }


def _d_batch(nets: Nets, g_variables: dict, real: dict, key: jax.Array, step: jax.Array,
             aug_state: dict, detach: bool = True) -> tuple[_DBatch, jax.Array]:
  """One D update's inputs as D sees them (after `d_input`, packed), and its penalties' key.

  `detach`: the generated batch carries no gradient to G (D's own update);
  the unrolled updates keep it, so G's gradient flows through them.
  """
  raw_images = images_to_float(real['image'])
  z, fake_labels = nets.noise(key, raw_images.shape[0], real.get('noise'))
  fake_labels = nets.paired_labels(fake_labels, real)
  aug_key, reg_key = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)

  def as_d_sees_it(own: int) -> Callable:
    # The real (own 1) or generated (own 2) batch through config.augment, each
    # sample augmented alone, then packed (PacGAN).
    return lambda x: nets.packed(nets.d_input(x, aug_key, jax.random.fold_in(aug_key, own),
                                              step, aug_state))
  to_d_real, to_d_fake = as_d_sees_it(1), as_d_sees_it(2)

  def generate(z):
    fake, _ = nets.g_apply(g_variables, z, fake_labels, train=True, mutable=['batch_stats'])
    return jax.lax.stop_gradient(fake) if detach else fake

  raw_fake = generate(z)
  batch = _DBatch(to_d_real(raw_images), to_d_fake(raw_fake), nets.packed_labels(real['label']),
                  nets.packed_labels(fake_labels), z, lambda z: to_d_fake(generate(z)),
                  raw_images, raw_fake, to_d_real, to_d_fake)
  return batch, reg_key


def make_d_update(nets: Nets, d_tx: optax.GradientTransformation) -> Callable:
  """`d_update(g, d, aux, real, key, step, update_index) -> (d, aux, metrics)`: one D update."""

  def d_update(g: NetState, d: NetState, aux: dict, real: dict, key: jax.Array,
               step: jax.Array, update_index: jax.Array):
    batch, reg_key = _d_batch(nets, g.variables, real, key, step, aux.get('augment', {}))
    loss_fn = functools.partial(_d_loss, nets, d.batch_stats, batch, reg_key, update_index,
                                aux.get('reg', {}), step)
    grads, (stats, real_logits, fake_logits, parts, extra) = jax.grad(
        loss_fn, has_aux=True)(d.params)
    grad_norm = optax.global_norm(grads)
    aux, aug_metrics = _observe(nets, aux, real_logits, fake_logits, update_index,
                                real['image'].shape[0], step)
    metrics = _d_metrics(parts, real_logits, fake_logits, grad_norm, {**extra, **aug_metrics})
    return apply_updates(d, grads, d_tx, stats), aux, metrics

  return d_update


def make_lookahead(nets: Nets, d_tx: optax.GradientTransformation,
                   unroll_steps: int) -> Callable:
  """`lookahead(g_params, g_batch_stats, d, aux, *, d_batch, d_keys, step)` -> D's params, k on.

  Metz et al. 2017's unrolled D: `unroll_steps` = k D updates, a `lax.scan`
  with the optimizer `d_tx`, from `d`'s parameters and optimizer state,
  as functions of G's parameters `g_params`, so that G's loss on the result
  is differentiated through them. Update j uses the step's D batch and key
  j mod n_disc (`d_batch` (n_disc, B, ...), `d_keys` (n_disc, ...)) and that
  D update's index for lazy penalties. BatchNorm (G's and D's) runs in
  train mode from the current statistics; the updated statistics are
  dropped, so the look-ahead changes no state.
  """

  def lookahead(g_params, g_batch_stats, d: NetState, aux: dict, *, d_batch: dict,
                d_keys: jax.Array, step: jax.Array):
    n_disc = d_keys.shape[0]
    g_variables = {'params': g_params, 'batch_stats': g_batch_stats}

    def one_update(carry, j):
      params, opt_state = carry
      i = j % n_disc
      batch, reg_key = _d_batch(nets, g_variables, jax.tree.map(lambda x: x[i], d_batch),
                                d_keys[i], step, aux.get('augment', {}), detach=False)
      loss_fn = functools.partial(_d_loss, nets, d.batch_stats, batch, reg_key,
                                  step * n_disc + i, aux.get('reg', {}), step)
      grads, _ = jax.grad(loss_fn, has_aux=True)(params)
      updates, opt_state = d_tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(one_update, (d.params, d.opt_state),
                                  jnp.arange(unroll_steps))
    return params

  return lookahead


def _g_side_terms(nets: Nets, generate: Callable, z, fake, real: dict, reg_key,
                  update_index) -> tuple:
  """(penalty, metrics): G's terms without D, the similarity term and G-side penalties (zCR)."""
  loss, regularizer = nets.loss, nets.regularizer
  extra, penalty = {}, 0.0
  if loss.similarity_weight:
    extra['g_similarity_loss'] = jnp.mean(
        losses_lib.similarity_loss(fake, images_to_float(real['image'])))
  if regularizer.acts_on_g:
    penalty, penalty_metrics = regularizer.g_penalty(
        lambda z: generate(z)[0], z, fake, reg_key, update_index)
    extra.update(penalty_metrics)
  return penalty, extra


def _g_total(loss: GANLoss, g_loss, penalty, extra: dict):
  """G's loss plus its penalty and its weighted class and similarity terms."""
  total = g_loss + penalty
  if 'g_class_loss' in extra:
    total += loss.classifier_weight * extra['g_class_loss']
  if 'g_similarity_loss' in extra:
    total += loss.similarity_weight * extra['g_similarity_loss']
  return total


def _g_adversarial(nets: Nets, d_variables: dict, fake, labels, real: dict, to_d: Callable):
  """G's adversarial loss of its images `fake`, D's outputs' extras, and D's new statistics.

  `to_d(images, own)` passes a batch through config.augment (own 2: generated,
  1: real) and packs it; `labels` are packed to match. A paired loss also
  passes the real batch through D, after the generated one, for its logits l(x).
  """
  out, d_upd = nets.d_apply(d_variables, to_d(fake, 2), labels, train=True,
                            mutable=['batch_stats'])
  logits, extras = split_output(out)
  if not nets.loss.paired:
    return jnp.mean(nets.loss.g(logits)), extras, d_upd
  real_out, d_upd = nets.d_apply({'params': d_variables['params'], **d_upd},
                                 to_d(images_to_float(real['image']), 1),
                                 nets.packed_labels(real['label']), train=True,
                                 mutable=['batch_stats'])
  real_logits = split_output(real_out)[0]
  return jnp.mean(nets.loss.g_pair(real_logits, logits)), extras, d_upd


def make_g_update(nets: Nets, g_tx: optax.GradientTransformation) -> Callable:
  """`g_update(g, d, aux, key, batch_size, step, update_index, real, given, lookahead) -> (g, d, m)`

  `lookahead` (`make_lookahead`'s, bound to the step's D batches), when
  given, replaces D's parameters in G's loss by the unrolled ones; D's
  statistics from that pass are then dropped.
  """
  loss, d_input = nets.loss, nets.d_input

  def g_update(g: NetState, d: NetState, aux: dict, key: jax.Array, batch_size: int,
               step: jax.Array, update_index: jax.Array, real: dict, given=None,
               lookahead: Callable | None = None):
    z, labels = nets.noise(key, batch_size, given)
    if loss.similarity_weight:
      labels = real['label']
    labels = nets.paired_labels(labels, real)
    aug_key, reg_key = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)

    def to_d(images, own: int):
      # Each sample is augmented alone, then packed (PacGAN).
      return nets.packed(d_input(images, aug_key, jax.random.fold_in(aug_key, own), step,
                                 aux.get('augment', {})))

    def loss_fn(params):
      def generate(z):
        return nets.g_apply({'params': params, 'batch_stats': g.batch_stats},
                            z, labels, train=True, mutable=['batch_stats'])

      fake, g_upd = generate(z)
      penalty, extra = _g_side_terms(nets, generate, z, fake, real, reg_key, update_index)
      d_variables = d.variables if lookahead is None else {
          'params': lookahead(params, g.batch_stats, d, aux), 'batch_stats': d.batch_stats}
      d_labels = nets.packed_labels(labels)
      g_loss, extras, d_upd = _g_adversarial(nets, d_variables, fake, d_labels, real, to_d)
      extra.update(_classifier_terms(extras, d_labels, 'g_class'))
      stats = (g_upd.get('batch_stats', {}), d_upd.get('batch_stats', {}))
      return _g_total(loss, g_loss, penalty, extra), (g_loss, extra, *stats)

    (_, (g_loss, extra, g_stats, d_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(g.params)
    grad_norm = optax.global_norm(grads)
    metrics = {'g_loss': g_loss, 'g_grad_norm': grad_norm, **extra,
               'finite': _finite(g_loss, grad_norm, *extra.values())}
    # Statistics of a pass through the unrolled D describe no D that exists: dropped.
    d = d if lookahead is not None else d.replace(batch_stats=d_stats)
    return apply_updates(g, grads, g_tx, g_stats), d, metrics

  return g_update


def _check_step_inputs(nets: Nets, state: GANState, batch: dict) -> None:
  if nets.gan.num_classes and ('noise' in batch or 'g_noise' in batch):
    raise ValueError('Noise given in the batch is for unconditional models only.')
  for part, component in (('augment', nets.d_input), ('reg', nets.regularizer)):
    if getattr(component, 'init_state', dict)() and part not in state.aux:
      raise ValueError(f'config.{part} keeps state, but state.aux has no {part!r}: '
                       'create the state with its init_state() (train.build_setup does).')
  if nets.pack > 1:   # the devices are the trainer's to check (Setup.train_step)
    packing.check_batch(batch['image'].shape[1], nets.pack)


def _mean_metrics(updates: list[dict]) -> dict:
  """Each metric averaged over the updates that report it; 'finite' only if all were."""
  metrics = {k: jnp.mean(jnp.stack([m[k] for m in updates if k in m]))
             for k in sorted({k for m in updates for k in m} - {'finite'})}
  metrics['finite'] = jnp.all(jnp.stack([m['finite'] for m in updates]))
  return metrics


def make_train_step(gan: GANModels, loss: GANLoss,
                    g_tx: optax.GradientTransformation,
                    d_tx: optax.GradientTransformation,
                    spec: StepSpec, d_input=None, regularizer=None, shard_batch=None):
  """Returns the pure `step(state, batch) -> (state, metrics)`.

  `d_input` (`gan_jax.core.augment.build`: `d_input(images, shared_key,
  own_key, step, state)`, with `init_state` and `observe`) transforms every
  batch D sees; `regularizer` (`gan_jax.core.regularizers.build`) adds its
  penalties to D's loss (and G's, for zCR). Both default to nothing.
  `shard_batch(x)` places the noise and labels the step draws
  (`parallel.batch_constraint`); the default leaves them to XLA.
  `gan.pack` > 1 packs D's inputs, `spec.unroll_steps` > 0 unrolls D in G's
  updates (see the module docstring).
  """
  nets = Nets.build(gan, loss, spec, d_input, regularizer, shard_batch)
  d_update, g_update = make_d_update(nets, d_tx), make_g_update(nets, g_tx)
  n_disc, n_gen = spec.n_disc, spec.n_gen
  lookahead = make_lookahead(nets, d_tx, spec.unroll_steps) if spec.unroll_steps else None

  def step(state: GANState, batch: dict):
    _check_step_inputs(nets, state, batch)
    keys = jax.random.split(jax.random.fold_in(state.rng, state.step), n_disc + n_gen)
    d_keys, g_keys = keys[:n_disc], keys[n_disc:]
    batch_size = batch['image'].shape[1]
    # Python loops, not lax.scan: on CPU, XLA runs convolutions inside a
    # while loop slowly (docs/design.md; `python -m benchmarks.compare_torch
    # --scan_steps=4` measures it).
    g_noise = batch.get('g_noise')
    d_batch = {k: v for k, v in batch.items() if k != 'g_noise'}
    d, aux, updates = state.d, state.aux, []
    for i in range(n_disc):
      d, aux, m = d_update(state.g, d, aux, jax.tree.map(lambda x: x[i], d_batch),
                           d_keys[i], state.step, state.step * n_disc + i)
      updates.append(m)
    g = state.g
    # The unrolled D updates replay this step's D batches and keys.
    ahead = lookahead and functools.partial(lookahead, d_batch=d_batch, d_keys=d_keys,
                                            step=state.step)
    for i in range(n_gen):
      g, d, m = g_update(g, d, aux, g_keys[i], batch_size, state.step,
                         state.step * n_gen + i,
                         jax.tree.map(lambda x: x[i % n_disc], d_batch),
                         None if g_noise is None else g_noise[i], lookahead=ahead)
      updates.append(m)
    ema = spec.updated_ema(state.ema, g.variables, state.step)
    new_state = state.replace(step=state.step + 1, g=g, d=d, ema=ema, aux=aux)
    return new_state, _mean_metrics(updates)

  return step
