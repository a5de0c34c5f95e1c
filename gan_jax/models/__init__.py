"""The model zoo: G/D pairs registered by name and built from `config.model`.

A builder takes (model_config, image_shape, num_classes) and returns
(generator, discriminator). G is called as `G(z, labels, train=...)` and
returns images in [-1, 1]; D as `D(images, labels, train=...)` and returns one
logit per image, shape (B,), or, when it has an auxiliary head (ACGAN), a dict
{'logits': (B,), 'class_logits': (B, C)}; `split_output` reads either.
`num_classes` is 0 for unconditional models.

Every builder honours `model.g_conditioning`, `model.d_conditioning` and
`model.spectral_norm`; `model.width_scale` scales the widths of the models
that have a width list.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import ml_collections

from gan_jax import errors
from gan_jax.models import cifar_resnet, dcgan, dcgan64, ddpm, layers, mlp, mlp2d, resnet, vae
from gan_jax.registry import Registry

MODELS = Registry('model', 'config.model.name')


@dataclasses.dataclass(frozen=True)
class GANModels:
  generator: nn.Module
  discriminator: nn.Module
  latent_dim: int
  num_classes: int          # 0 when the model is unconditional
  image_shape: tuple        # (H, W, C) of generated images
  # `sampler(variables, z, labels) -> images in [-1, 1]` when drawing is more
  # than one G call (the DDPM's reverse process); None: G(z, labels).
  sampler: Any = None


def _require_size(name: str, image_shape: Sequence[int], size: int) -> None:
  if len(image_shape) != 3:
    raise errors.ConfigError(f'Model {name!r} makes {size}x{size} images, but the data '
                             f'has shape {tuple(image_shape)}.')
  if tuple(image_shape[:2]) != (size, size):
    raise errors.ConfigError(
        f'Model {name!r} makes {size}x{size} images, but the data is '
        f'{image_shape[0]}x{image_shape[1]}. Set --config.data.image_size='
        f'{size}, or pick a model for that size (models: {", ".join(MODELS.names())}).')


SPECTRAL_NORM = ('default', 'none', 'd', 'g', 'gd')


def _spectral_norm(cfg, default: str) -> tuple[bool, bool]:
  """(in G, in D) from `model.spectral_norm`; 'default' is the architecture's own choice."""
  where = default if cfg.spectral_norm == 'default' else cfg.spectral_norm
  return 'g' in where, 'd' in where


def _scaled(widths: Sequence[int], scale: float) -> tuple[int, ...]:
  return tuple(max(1, int(round(w * scale))) for w in widths)


def _conditioning(cfg) -> dict:
  return dict(g=cfg.g_conditioning, d=cfg.d_conditioning)


@MODELS.register('dcgan28')
def _dcgan28(cfg, image_shape, num_classes):
  _require_size('dcgan28', image_shape, 28)
  g_sn, d_sn = _spectral_norm(cfg, 'none')
  if g_sn:
    raise errors.ConfigError("dcgan28 supports spectral norm in D only: "
                             "config.model.spectral_norm='d' or 'none'.")
  cond, s = _conditioning(cfg), cfg.width_scale
  return (dcgan.Generator28(image_shape[2], num_classes, cfg.bn_momentum, cond['g'],
                            _scaled(dcgan.Generator28.widths, s)),
          dcgan.Discriminator28(num_classes, cfg.bn_momentum, cond['d'], d_sn,
                                _scaled(dcgan.Discriminator28.widths, s)))


@MODELS.register('dcgan32')
def _dcgan32(cfg, image_shape, num_classes):
  _require_size('dcgan32', image_shape, 32)
  g_sn, d_sn = _spectral_norm(cfg, 'none')
  if g_sn:
    raise errors.ConfigError("dcgan32 supports spectral norm in D only: "
                             "config.model.spectral_norm='d' or 'none'.")
  cond, s = _conditioning(cfg), cfg.width_scale
  return (dcgan.Generator32(image_shape[2], num_classes, cfg.bn_momentum,
                            _scaled(dcgan.Generator32.widths, s), cond['g']),
          dcgan.Discriminator32(num_classes, cfg.bn_momentum,
                                _scaled(dcgan.Discriminator32.widths, s), cond['d'], d_sn))


@MODELS.register('mlp')
def _mlp(cfg, image_shape, num_classes):
  g_sn, d_sn = _spectral_norm(cfg, 'none')
  if g_sn:
    raise errors.ConfigError("mlp supports spectral norm in D only: "
                             "config.model.spectral_norm='d' or 'none'.")
  cond, s = _conditioning(cfg), cfg.width_scale
  return (mlp.MLPGenerator(tuple(image_shape), num_classes, cfg.bn_momentum,
                           _scaled(mlp.MLPGenerator.widths, s), cond['g']),
          mlp.MLPDiscriminator(num_classes, _scaled(mlp.MLPDiscriminator.widths, s),
                               cond['d'], d_sn))


def _sngan(size: int):
  def build_sngan(cfg, image_shape, num_classes):
    _require_size(f'sngan{size}', image_shape, size)
    bottom, g_widths, d_widths, downsample = resnet.ARCHITECTURES[size]
    g_sn, d_sn = _spectral_norm(cfg, 'd')
    cond, s = _conditioning(cfg), cfg.width_scale
    return (resnet.ResNetGenerator(image_shape[2], num_classes, cfg.bn_momentum, bottom,
                                   _scaled(g_widths, s), cond['g'], g_sn),
            resnet.ResNetDiscriminator(num_classes, _scaled(d_widths, s), downsample,
                                       cond['d'], d_sn))
  return build_sngan


for _size in resnet.ARCHITECTURES:
  MODELS.register(f'sngan{_size}')(_sngan(_size))


def _g_without_spectral_norm(name: str, cfg) -> bool:
  g_sn, d_sn = _spectral_norm(cfg, 'none')
  if g_sn:
    raise errors.ConfigError(f"{name} supports spectral norm in D only: "
                             "config.model.spectral_norm='d' or 'none'.")
  return d_sn


@MODELS.register('resnet18d')
def _resnet18d(cfg, image_shape, num_classes):
  """The CIFAR-10 A8 report's GAN: ResNet-18 D, transposed-conv G with avgpool and dense."""
  _require_size('resnet18d', image_shape, 32)
  d_sn = _g_without_spectral_norm('resnet18d', cfg)
  cond, s = _conditioning(cfg), cfg.width_scale
  return (cifar_resnet.AvgPoolGenerator(
              tuple(image_shape), num_classes, cfg.bn_momentum,
              _scaled(cifar_resnet.AvgPoolGenerator.widths, s), cond['g']),
          cifar_resnet.ResNet18Discriminator(
              num_classes, cfg.bn_momentum,
              _scaled(cifar_resnet.ResNet18Discriminator.widths, s), cond['d'], d_sn))


def _dcgan64(name: str, generator, discriminator):
  def build_dcgan64(cfg, image_shape, num_classes):
    _require_size(name, image_shape, 64)
    d_sn = _g_without_spectral_norm(name, cfg)
    cond, s = _conditioning(cfg), cfg.width_scale
    return (generator(image_shape[2], num_classes, cfg.bn_momentum,
                      _scaled(generator.widths, s), cond['g']),
            discriminator(num_classes, cfg.bn_momentum, _scaled(discriminator.widths, s),
                          cond['d'], d_sn))
  return build_dcgan64


MODELS.register('dcgan64')(_dcgan64('dcgan64', dcgan64.Generator64, dcgan64.Discriminator64))
MODELS.register('dcgan64_wide')(
    _dcgan64('dcgan64_wide', dcgan64.WideGenerator64, dcgan64.WideDiscriminator64))

# The models whose G and D implement the 'embed' conditioning of `layers`.
EMBED_CONDITIONING = ('resnet18d', 'dcgan64', 'dcgan64_wide')


@MODELS.register('vae')
def _vae(cfg, image_shape, num_classes):
  """Conditional VAE (model.family='vae'): (decoder, encoder) in the (G, D) slots."""
  if image_shape[0] % 4 or image_shape[0] != image_shape[1]:
    raise errors.ConfigError(f'Model vae needs square images with a side divisible by 4 '
                             f'(28, 32, ...), got {image_shape[0]}x{image_shape[1]}.')
  if cfg.g_conditioning not in ('none', 'concat') or cfg.d_conditioning not in ('none', 'concat'):
    raise errors.ConfigError("Model vae conditions by concatenation only: set "
                             "config.model.g_conditioning and d_conditioning to 'concat'.")
  widths = _scaled((32, 64, 128), cfg.width_scale)
  return (vae.Decoder(tuple(image_shape), num_classes, widths),
          vae.Encoder(cfg.latent_dim, num_classes, widths))


@MODELS.register('ddpm_unet')
def _ddpm_unet(cfg, image_shape, num_classes):
  """The DDPM's noise-predicting U-Net (model.family='ddpm'); no discriminator."""
  if image_shape[0] % 4 or image_shape[0] != image_shape[1]:
    raise errors.ConfigError(f'Model ddpm_unet needs square images with a side divisible '
                             f'by 4 (28, 32, ...), got {image_shape[0]}x{image_shape[1]}.')
  return (ddpm.UNet(tuple(image_shape), num_classes, _scaled((32, 64, 64), cfg.width_scale)),
          ddpm.NoDiscriminator())


def split_output(output: Any) -> tuple[Any, dict]:
  """D's output -> (logits (B,), extra outputs such as {'class_logits': (B, C)})."""
  if isinstance(output, dict):
    extras = dict(output)
    return extras.pop('logits'), extras
  return output, {}


@MODELS.register('mlp2d')
def _mlp2d(cfg, image_shape, num_classes):
  if len(image_shape) != 1 or num_classes:
    raise errors.ConfigError(
        "Model 'mlp2d' generates unconditional points, not images: use it with "
        "config.trainer='toy2d' and config.data.source='toy2d' (configs/toy2d_*.py).")
  if cfg.hidden < 1:
    raise errors.ConfigError(f'config.model.hidden={cfg.hidden} must be at least 1.')
  if cfg.hidden_layers < 1:
    raise errors.ConfigError(
        f'config.model.hidden_layers={cfg.hidden_layers} must be at least 1.')
  return (mlp2d.MLP2DGenerator(image_shape[0], cfg.hidden, cfg.hidden_layers),
          mlp2d.MLP2DDiscriminator(cfg.hidden, cfg.hidden_layers))


def build(model_config: ml_collections.ConfigDict, image_shape: Sequence[int],
          num_classes: int) -> GANModels:
  """Builds G and D for data of `image_shape` with `num_classes` labels (0: none)."""
  if model_config.conditional and num_classes < 2:
    raise errors.ConfigError(
        'config.model.conditional=True needs labelled data with at least two '
        f'classes, but the dataset has {num_classes}. Use class subfolders, a '
        'labelled dataset, or set --config.model.conditional=False.')
  for key, choices in (('g_conditioning', layers.G_CONDITIONINGS),
                       ('d_conditioning', layers.D_CONDITIONINGS),
                       ('spectral_norm', SPECTRAL_NORM)):
    if model_config[key] not in choices:
      raise errors.ConfigError(f'config.model.{key}={model_config[key]!r} is not one of '
                               f'{", ".join(choices)}.')
  label_free = ('none', 'concat')   # the defaults, meaningless without labels
  for key in ('g_conditioning', 'd_conditioning'):
    if not model_config.conditional and model_config[key] not in label_free:
      raise errors.ConfigError(
          f'config.model.{key}={model_config[key]!r} conditions on the class, which '
          'needs config.model.conditional=True (and labelled data).')
  uses_embed = 'embed' in (model_config.g_conditioning, model_config.d_conditioning)
  if uses_embed and model_config.name not in EMBED_CONDITIONING:
    raise errors.ConfigError(
        f"'embed' conditioning is implemented by the models {', '.join(EMBED_CONDITIONING)}, "
        f'not by {model_config.name!r}; use concat, cbn, projection or acgan there.')
  if model_config.width_scale <= 0:
    raise errors.ConfigError(f'config.model.width_scale={model_config.width_scale} '
                             'must be positive.')
  num_classes = num_classes if model_config.conditional else 0
  generator, discriminator = MODELS.get(model_config.name)(
      model_config, tuple(image_shape), num_classes)
  return GANModels(generator, discriminator, model_config.latent_dim,
                   num_classes, tuple(image_shape))
