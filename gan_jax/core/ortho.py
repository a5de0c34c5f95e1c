"""BigGAN's orthogonal regularisation (Brock et al. 2019, section 3.1), `config.optim.{g,d}.ortho`.

For each weight W, viewed as a matrix with one row per output unit, the
gradient gets beta * 2 (W W^T * (1 - I)) W added before the optimizer's
update: the gradient of (beta / 2) ||W W^T * (1 - I)||_F^2, which pushes the
rows of W towards orthogonality without constraining their norms. That is
BigGAN-PyTorch's `utils.ortho` exactly: it adds this term to `param.grad`
after the backward pass and before `optim.step()`, so the loss never
contains it, and Adam sees it as part of the gradient. Like `utils.ortho`,
it skips parameters with fewer than two axes (biases, BatchNorm gains,
attention's gamma) and G's shared class embedding (BigGAN's blacklist:
`G.shared`, here every parameter under a module named 'shared').

The rows are PyTorch's: a conv or dense kernel (..., in, out) has one row
per output unit, an embedding table (classes, dim) one per class, as
`param.view(param.shape[0], -1)` reads PyTorch's (out, ...) and (classes,
dim) weights. BigGAN uses beta = 1e-4 at ImageNet and 0 at CIFAR-10.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gan_jax import errors

SKIPPED_MODULES = ('shared',)   # BigGAN's blacklist: G's shared class embedding


def _as_rows(path, param: jax.Array):
  """(W, back): `param` as PyTorch's (rows, -1) matrix and the map back to its shape; None if skipped."""
  names = [getattr(k, 'key', str(k)) for k in path]
  if param.ndim < 2 or any(name in SKIPPED_MODULES for name in names):
    return None
  if names[-1] == 'embedding':   # nn.Embed: (classes, dim), a row per class, as PyTorch's
    return param, lambda grad: grad
  # Kernels (..., in, out): a row per output unit, as PyTorch's (out, in, ...).
  return param.reshape(-1, param.shape[-1]).T, lambda grad: grad.T.reshape(param.shape)


def ortho_gradient(rows: jax.Array) -> jax.Array:
  """2 (W W^T * (1 - I)) W for W = `rows`: the gradient of 1/2 ||W W^T * (1 - I)||_F^2."""
  gram = rows @ rows.T
  return 2.0 * (gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))) @ rows


def add_ortho_gradient(strength: float) -> optax.GradientTransformation:
  """Adds `strength` x BigGAN's orthogonality gradient to each weight's gradient."""

  def update(updates, state, params=None):
    if params is None:
      raise ValueError('add_ortho_gradient needs the parameters (optax passes them).')

    def add(path, grad, param):
      as_rows = _as_rows(path, param)
      if as_rows is None:
        return grad
      rows, back = as_rows
      return grad + strength * back(ortho_gradient(rows)).astype(grad.dtype)
    return jax.tree_util.tree_map_with_path(add, updates, params), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def with_ortho(strength: float, tx: optax.GradientTransformation,
               key: str) -> optax.GradientTransformation:
  """`tx` after the orthogonality gradient when `strength` > 0; `tx` itself at 0.

  At 0 the optimizer state keeps its structure, so checkpoints of runs
  without it restore unchanged. `key` names the config key in errors.
  """
  if strength < 0:
    raise errors.ConfigError(f'config.{key}={strength} must be >= 0 (0: off; BigGAN: 1e-4 at '
                             'ImageNet, 0 at CIFAR-10).')
  if strength == 0:
    return tx
  return optax.chain(add_ortho_gradient(strength), tx)
