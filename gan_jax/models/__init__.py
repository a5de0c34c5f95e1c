"""The model zoo: G/D pairs registered by name and built from `config.model`.

A builder takes (model_config, image_shape, num_classes) and returns
(generator, discriminator). G is called as `G(z, labels, train=...)` and
returns images in [-1, 1]; D as `D(images, labels, train=...)` and returns one
logit per image. `num_classes` is 0 for unconditional models.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import ml_collections

from gan_jax import errors
from gan_jax.models import dcgan, mlp, mlp2d
from gan_jax.registry import Registry

MODELS = Registry('model', 'config.model.name')


@dataclasses.dataclass(frozen=True)
class GANModels:
  generator: nn.Module
  discriminator: nn.Module
  latent_dim: int
  num_classes: int          # 0 when the model is unconditional
  image_shape: tuple        # (H, W, C) of generated images


def _require_size(name: str, image_shape: Sequence[int], size: int) -> None:
  if len(image_shape) != 3:
    raise errors.ConfigError(f'Model {name!r} makes {size}x{size} images, but the data '
                             f'has shape {tuple(image_shape)}.')
  if tuple(image_shape[:2]) != (size, size):
    raise errors.ConfigError(
        f'Model {name!r} makes {size}x{size} images, but the data is '
        f'{image_shape[0]}x{image_shape[1]}. Set --config.data.image_size='
        f'{size}, or pick a model for that size (models: {", ".join(MODELS.names())}).')


@MODELS.register('dcgan28')
def _dcgan28(cfg, image_shape, num_classes):
  _require_size('dcgan28', image_shape, 28)
  return (dcgan.Generator28(image_shape[2], num_classes, cfg.bn_momentum),
          dcgan.Discriminator28(num_classes, cfg.bn_momentum))


@MODELS.register('dcgan32')
def _dcgan32(cfg, image_shape, num_classes):
  _require_size('dcgan32', image_shape, 32)
  return (dcgan.Generator32(image_shape[2], num_classes, cfg.bn_momentum),
          dcgan.Discriminator32(num_classes, cfg.bn_momentum))


@MODELS.register('mlp')
def _mlp(cfg, image_shape, num_classes):
  return (mlp.MLPGenerator(tuple(image_shape), num_classes, cfg.bn_momentum),
          mlp.MLPDiscriminator(num_classes))


@MODELS.register('mlp2d')
def _mlp2d(cfg, image_shape, num_classes):
  if len(image_shape) != 1 or num_classes:
    raise errors.ConfigError(
        "Model 'mlp2d' generates unconditional points, not images: use it with "
        "config.trainer='toy2d' and config.data.source='toy2d' (configs/toy2d_*.py).")
  if cfg.hidden < 1:
    raise errors.ConfigError(f'config.model.hidden={cfg.hidden} must be at least 1.')
  return (mlp2d.MLP2DGenerator(image_shape[0], cfg.hidden),
          mlp2d.MLP2DDiscriminator(cfg.hidden))


def build(model_config: ml_collections.ConfigDict, image_shape: Sequence[int],
          num_classes: int) -> GANModels:
  """Builds G and D for data of `image_shape` with `num_classes` labels (0: none)."""
  if model_config.conditional and num_classes < 2:
    raise errors.ConfigError(
        'config.model.conditional=True needs labelled data with at least two '
        f'classes, but the dataset has {num_classes}. Use class subfolders, a '
        'labelled dataset, or set --config.model.conditional=False.')
  num_classes = num_classes if model_config.conditional else 0
  generator, discriminator = MODELS.get(model_config.name)(
      model_config, tuple(image_shape), num_classes)
  return GANModels(generator, discriminator, model_config.latent_dim,
                   num_classes, tuple(image_shape))
