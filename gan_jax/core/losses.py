"""Adversarial losses, registered by name (`config.loss.name`), all computed from D's raw output l.

With D(x) = sigmoid(l) for the two cross-entropy losses:
  minimax        D: -log D(x) - log(1 - D(G(z)))      G: log(1 - D(G(z)))
  nonsaturating  D: as minimax                        G: -log D(G(z))
  hinge          D: max(0, 1 - l(x)) + max(0, 1 + l(G(z)))    G: -l(G(z))
                 (Lim & Ye 2017; Miyato et al. 2018, SNGAN)
  wasserstein    D: -l(x) + l(G(z))                   G: -l(G(z))
                 (Arjovsky et al. 2017; needs a Lipschitz D: a gradient penalty
                 (config.reg.gradient_penalty) or spectral norm)
  least_squares  D: (l(x) - 1)^2 / 2 + l(G(z))^2 / 2  G: (l(G(z)) - 1)^2 / 2
                 (Mao et al. 2017, LSGAN with a=0, b=c=1; l is not squashed)
Each function returns per-example losses; the step averages them, and D's
total loss is mean(d_real) + mean(d_fake), as in the reference PyTorch code.

A paired loss sees the logits of real example i and generated example i
together (`GANLoss.d_pair`, `g_pair`, of (real logits, fake logits)); the
step then forms the pairs (see `gan_jax.core.steps`):
  rpgan          D: f(l(G(z)) - l(x))                 G: f(l(x) - l(G(z)))
                 with f = softplus: the relativistic pairing GAN (Jolicoeur-
                 Martineau 2019) in R3GAN's form (Huang et al. 2024; their
                 R3GAN/Trainer.py: softplus(-(l_real - l_fake)) for D and
                 softplus(-(l_fake - l_real)) for G). In G's update D also sees
                 a real batch, and a class-conditional G draws the classes of
                 the real batch it is paired with, as their code does.

`build(config.loss)` returns the configured loss: with one-sided label
smoothing (Salimans et al. 2016) D's target on real data becomes
1 - config.loss.label_smoothing, for the losses that have a target
(minimax, nonsaturating, least_squares).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import errors
from gan_jax.registry import Registry

Array = jax.Array


PairLoss = Callable[[Array, Array], Array]   # (real logits, fake logits) -> per-example loss


@dataclasses.dataclass(frozen=True)
class GANLoss:
  """D's and G's losses of D's logits: per side (d_real, d_fake, g) or paired (d_pair, g_pair)."""
  d_real: Callable[[Array], Array] | None = None   # D's loss on real logits
  d_fake: Callable[[Array], Array] | None = None   # D's loss on generated logits
  g: Callable[[Array], Array] | None = None        # G's loss on generated logits
  # D's loss on real logits towards a target other than 1 (label smoothing);
  # None for losses without a target (hinge, wasserstein).
  d_real_to: Optional[Callable[[Array, float], Array]] = None
  # Weight of the auxiliary-classifier (ACGAN) cross-entropy, used when D has
  # a classifier head (config.model.d_conditioning='acgan').
  classifier_weight: float = 1.0
  # Weight of the MSE similarity between G(z, y) and a real image of class y
  # in G's loss (the CIFAR-10 A8 report's cGAN); 0 is off.
  similarity_weight: float = 0.0
  # A paired loss instead of the three above: D's and G's per-example losses
  # of (real logits, fake logits), real example i paired with generated i.
  d_pair: PairLoss | None = None
  g_pair: PairLoss | None = None

  def __post_init__(self):
    sides = [f is not None for f in (self.d_real, self.d_fake, self.g)]
    pairs = [f is not None for f in (self.d_pair, self.g_pair)]
    if not ((all(sides) and not any(pairs)) or (all(pairs) and not any(sides))):
      raise ValueError('A GANLoss has either d_real, d_fake and g, or d_pair and g_pair.')

  @property
  def paired(self) -> bool:
    return self.d_pair is not None


LOSSES: Registry[GANLoss] = Registry('loss', 'config.loss.name')


def _bce_to(logits: Array, target: float) -> Array:
  return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target))


def _bce_real(logits: Array) -> Array:
  return _bce_to(logits, 1.0)


def _bce_fake(logits: Array) -> Array:
  return _bce_to(logits, 0.0)


def _squared_to(logits: Array, target: float) -> Array:
  return 0.5 * jnp.square(logits - target)


LOSSES.register('minimax')(GANLoss(
    d_real=_bce_real, d_fake=_bce_fake, g=lambda logits: -_bce_fake(logits),
    d_real_to=_bce_to))

LOSSES.register('nonsaturating')(GANLoss(
    d_real=_bce_real, d_fake=_bce_fake, g=_bce_real, d_real_to=_bce_to))

LOSSES.register('hinge')(GANLoss(
    d_real=lambda logits: jax.nn.relu(1.0 - logits),
    d_fake=lambda logits: jax.nn.relu(1.0 + logits),
    g=lambda logits: -logits))

LOSSES.register('wasserstein')(GANLoss(
    d_real=lambda logits: -logits, d_fake=lambda logits: logits,
    g=lambda logits: -logits))

LOSSES.register('least_squares')(GANLoss(
    d_real=lambda logits: _squared_to(logits, 1.0),
    d_fake=lambda logits: _squared_to(logits, 0.0),
    g=lambda logits: _squared_to(logits, 1.0), d_real_to=_squared_to))


LOSSES.register('rpgan')(GANLoss(
    d_pair=lambda real, fake: jax.nn.softplus(fake - real),
    g_pair=lambda real, fake: jax.nn.softplus(real - fake)))


def build(loss_config: ml_collections.ConfigDict) -> GANLoss:
  """The loss named by `loss_config.name`, with label smoothing and classifier weight applied."""
  loss = LOSSES.get(loss_config.name)
  smoothing = loss_config.label_smoothing
  if not 0.0 <= smoothing < 1.0:
    raise errors.ConfigError(
        f'config.loss.label_smoothing={smoothing} must be in [0, 1) (0.1 makes '
        "D's target on real data 0.9).")
  if smoothing:
    if loss.d_real_to is None:
      with_target = [n for n in LOSSES.names() if LOSSES.get(n).d_real_to]
      raise errors.ConfigError(
          f'config.loss.label_smoothing applies to losses with a target for real '
          f'data ({", ".join(with_target)}), not to {loss_config.name!r}. Set it to 0.')
    target = 1.0 - smoothing
    real_to = loss.d_real_to
    loss = dataclasses.replace(loss, d_real=lambda logits: real_to(logits, target))
  if loss_config.similarity_weight < 0:
    raise errors.ConfigError(f'config.loss.similarity_weight={loss_config.similarity_weight} '
                             'must be >= 0 (0 turns the MSE similarity term off).')
  return dataclasses.replace(loss, classifier_weight=loss_config.classifier_weight,
                             similarity_weight=loss_config.similarity_weight)


def classifier_loss(class_logits: Array, labels: Array) -> Array:
  """Per-example cross-entropy of an auxiliary classifier head (ACGAN, Odena et al. 2017)."""
  return optax.softmax_cross_entropy_with_integer_labels(class_logits, labels)


def similarity_loss(generated: Array, real: Array) -> Array:
  """Per-example mean squared error between paired images (the A8 report's mse_simuloss)."""
  return jnp.mean(jnp.square(generated - real), axis=tuple(range(1, generated.ndim)))
