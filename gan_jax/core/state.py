"""The GAN training state: G and D weights, BatchNorm statistics and optimizer states, step, rng, EMA, aux.

The state is a pytree of arrays and nothing else (no functions, no modules),
so it is replicated, donated, checkpointed and restored as one object. The
models and optimizers that give it meaning are rebuilt from the config.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from gan_jax.models import GANModels

Params = Any


@flax.struct.dataclass
class NetState:
  params: Params
  batch_stats: Params          # {} for a network without BatchNorm
  opt_state: optax.OptState

  @property
  def variables(self) -> dict:
    return {'params': self.params, 'batch_stats': self.batch_stats}


@flax.struct.dataclass
class GANState:
  step: jax.Array              # int32 scalar: completed training iterations
  rng: jax.Array               # uint32[2] base key; step keys are fold_in(rng, step)
  g: NetState
  d: NetState
  ema: dict                    # EMA of G's variables, or {} when EMA is off
  # State of the D-input transforms and regularisers that keep some (ADA's p,
  # LeCam's anchors): {'augment': {name: ...}, 'reg': {name: ...}}, {} if none.
  aux: dict = flax.struct.field(default_factory=dict)

  def sampling_variables(self) -> dict:
    """G's variables for samples and evaluation: the EMA when there is one."""
    return self.ema or self.g.variables


def create(gan: GANModels, g_tx: optax.GradientTransformation,
           d_tx: optax.GradientTransformation, seed: int, use_ema: bool,
           aux: dict | None = None) -> GANState:
  """Initialises a fresh state from `seed` (traceable, so it can run under jit).

  `aux` is the initial state of the transforms and regularisers that keep
  one (`augment.build(...).init_state()` and `regularizers.build(...)`'s).
  """
  g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  z = jnp.zeros((1, gan.latent_dim), jnp.float32)
  labels = jnp.zeros((1,), jnp.int32)
  g_vars = gan.generator.init(g_key, z, labels, train=False)
  # D's own input shape: with PacGAN packing, `pack` samples side by side.
  images = jnp.zeros((1, *gan.d_input_shape), jnp.float32)
  d_vars = gan.discriminator.init(d_key, images, labels, train=False)

  def net(variables, tx):
    params = variables['params']
    return NetState(params, variables.get('batch_stats', {}), tx.init(params))

  g = net(g_vars, g_tx)
  # A copy, not the same arrays: run eagerly, shared buffers would make a
  # step that donates the state donate them twice.
  ema = jax.tree.map(jnp.copy, g.variables) if use_ema else {}
  return GANState(step=jnp.zeros((), jnp.int32), rng=train_key, g=g,
                  d=net(d_vars, d_tx), ema=ema,
                  aux=jax.tree.map(jnp.asarray, aux or {}))


def update_ema(ema: dict, variables: dict, step: jax.Array, decay: float,
               start: int) -> dict:
  """ema <- decay * ema + (1 - decay) * variables, or a plain copy before `start`."""
  rate = jnp.where(step >= start, decay, 0.0)
  return jax.tree.map(lambda e, v: rate * e + (1 - rate) * v, ema, variables)
