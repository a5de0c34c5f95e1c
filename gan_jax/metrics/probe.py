"""The discriminator as a feature extractor: a linear probe on frozen D features (DCGAN paper, sec. 5.1).

Following Radford et al., the outputs of every convolution (or dense layer)
of D, the final one-unit logit layer excluded, are max-pooled to at most a 4x4 grid,
flattened and concatenated; a multinomial logistic regression on standardised
features is fitted on labelled real images and scored on held-out ones. The
same probe on a randomly initialised D of the same architecture is the
baseline that says how much training added. Conditional D's get class 0 for
every image, so the label cannot leak into the features.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _pool_to_grid(x, grid: int = 4):
  if x.ndim == 2:   # a dense layer (MLP discriminator)
    return x
  n, h, w, _ = x.shape
  if h <= grid and w <= grid:
    return x.reshape(n, -1)
  sh, sw = -(-h // grid), -(-w // grid)
  pooled = nn.max_pool(x, (sh, sw), (sh, sw), padding='SAME')
  return pooled.reshape(n, -1)


def feature_fn(discriminator):
  """jitted (variables, images uint8) -> (N, F) concatenated pooled conv features of D."""
  def features(variables, images):
    x = images.astype(jnp.float32) / 127.5 - 1.0
    labels = jnp.zeros((x.shape[0],), jnp.int32)
    _, state = discriminator.apply(
        variables, x, labels, train=False,
        capture_intermediates=lambda mdl, _: isinstance(mdl, (nn.Conv, nn.Dense)),
        mutable=['intermediates'])
    maps = [leaf for leaf in jax.tree.leaves(state['intermediates']) if leaf.shape[-1] > 1]
    return jnp.concatenate([_pool_to_grid(m) for m in maps], axis=-1)
  return jax.jit(features)


def linear_probe_accuracy(train_x, train_y, test_x, test_y, seed: int = 0) -> float:
  """Held-out accuracy of a logistic regression on standardised features."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, random_state=seed))
  model.fit(np.asarray(train_x, np.float64), train_y)
  return float(model.score(np.asarray(test_x, np.float64), test_y))
