"""Mixed precision (`config.train.compute_dtype`): networks computed in bfloat16 around float32 state.

Under 'bfloat16', `mixed_apply(module, dtype)` is `module.apply` with the
parameters and the floating inputs cast to bfloat16 on the way in and the
floating outputs (and the updated BatchNorm statistics and spectral-norm
vectors) cast back to float32 on the way out. So every convolution, matmul
and activation of G and D runs in bfloat16, while what persists stays
float32: the parameters (the gradient reaches them through the cast), the
optimizer states, the running statistics (Flax reduces BatchNorm's mean and
variance in float32), the EMA, and every loss and penalty computed from the
networks' outputs.

It is a cast policy at the call (as DeepMind's jmp does), not a `dtype`
field threaded through every module (as Flax's ImageNet example does): every
registered model, and any model added later, runs in bfloat16 without a
change, and `tests/test_precision.py` checks, for each model, that the
convolutions and matmuls of a train step really get bfloat16 operands.
Checkpoints hold float32 either way, so a run may resume in the other dtype.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import errors

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str):
  """The dtype named by `config.train.compute_dtype`, or a ConfigError naming the choices."""
  if name not in COMPUTE_DTYPES:
    raise errors.ConfigError(
        f'config.train.compute_dtype={name!r} is not one of {", ".join(COMPUTE_DTYPES)}. '
        "bfloat16 is for GPUs and TPUs; on a CPU it is emulated and slower than float32.")
  return COMPUTE_DTYPES[name]


def cast_floating(tree, dtype):
  """`tree` with its floating arrays cast to `dtype`; ints, bools and non-arrays unchanged."""
  def cast(leaf):
    if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.floating):
      return leaf.astype(dtype)
    return leaf
  return jax.tree.map(cast, tree)


def mixed_apply(module: nn.Module, dtype) -> Callable:
  """`module.apply`, computed in `dtype` with float32 parameters, state and results.

  Only the 'params' collection is cast: the other collections (BatchNorm's
  running statistics, spectral norm's `u`) enter as float32, and their
  updates come back as float32, so the state keeps its dtype from step to step.
  """
  if jnp.dtype(dtype) == jnp.float32:
    return module.apply

  def apply(variables, *args, **kwargs):
    variables = {name: cast_floating(value, dtype) if name == 'params' else value
                 for name, value in variables.items()}
    result = module.apply(variables, *cast_floating(args, dtype),
                          **cast_floating(kwargs, dtype))
    return cast_floating(result, jnp.float32)
  return apply
