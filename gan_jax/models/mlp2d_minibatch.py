"""The 2D lab's D (`mlp2d`) with a minibatch layer before its logit (`config.model.d_minibatch`).

The same hidden layers as `mlp2d.MLP2DDiscriminator` (dense `hidden`,
LeakyReLU 0.2, `layers` times), then `layers.minibatch_features`, then the
dense logit. `models.build` uses it only when `d_minibatch` is not 'none',
so the variable tree of a plain `mlp2d` (and its checkpoints) is untouched;
its own parameters are named Dense_0 .. Dense_L (plus the minibatch layer's).
"""

from __future__ import annotations

import flax.linen as nn

from gan_jax.models import layers as layers_lib   # `layers` is a field below


class MinibatchMLP2DDiscriminator(nn.Module, kw_only=True):
  hidden: int = 128
  layers: int = 2
  minibatch: layers_lib.Minibatch = layers_lib.NO_MINIBATCH

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    del labels, train
    for _ in range(self.layers):
      x = layers_lib.leaky_relu(layers_lib.dense(self.hidden)(x))
    x = layers_lib.minibatch_features(x, self.minibatch)
    return layers_lib.dense(1)(x).reshape(x.shape[0])
