"""The model zoo: G/D pairs registered by name, with what each supports, built from `config.model`.

A `ModelEntry` of `MODELS` declares its contract: the images it makes (sides,
any square side divisible by 4, any image, or 2D points), the conditionings
its G and D implement, where it can take spectral norm and where it takes it
by default, the minibatch layers its D can insert before its last layer
(`model.d_minibatch`) and whether its D can judge packs (`model.pack`).
`build` checks `config.model` and the data against the entry once, with one
message per kind of mismatch naming the key, the value and the models that
do support it, then calls the entry's builder with
keyword-only arguments (see `build`). The G and D modules take keyword
arguments only too, so no field can land in another's place.

G is called as `G(z, labels, train=...)` and returns images in [-1, 1]; D as
`D(images, labels, train=...)` and returns one logit per image, shape (B,),
or, when it has an auxiliary head (ACGAN), a dict {'logits': (B,),
'class_logits': (B, C)}; `split_output` reads either. `num_classes` is 0 for
unconditional models. `model.width_scale` scales the widths of the models
that have a width list. With `model.pack` = m the train step hands D packs
of m samples side by side (`GANModels.d_input_shape`, `gan_jax.core.packing`)
and D gives one logit per pack.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import ml_collections

from gan_jax import errors
from gan_jax.models import (biggan, cifar_resnet, dcgan, dcgan64, ddpm, layers, mlp, mlp2d,
                            mlp2d_minibatch, pacgan2d, r3gan, resnet, vae)
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
  # PacGAN packing (config.model.pack): D judges `pack` samples at once, its
  # input `d_input_shape` (gan_jax.core.packing); 1: one sample per input.
  pack: int = 1
  # Group size of D's minibatch-stddev layer (config.model.minibatch_group);
  # 0 when D has none. The trainer checks the groups fit a device's batch.
  stddev_group: int = 0

  @property
  def d_input_shape(self) -> tuple:
    """The shape of one of D's inputs: `image_shape`, with `pack` samples side by side."""
    return self.image_shape[:-1] + (self.pack * self.image_shape[-1],)


def split_output(output: Any) -> tuple[Any, dict]:
  """D's output -> (logits (B,), extra outputs such as {'class_logits': (B, C)})."""
  if isinstance(output, dict):
    extras = dict(output)
    return extras.pop('logits'), extras
  return output, {}


# What a model makes (`ModelEntry.sizes`), besides a tuple of square sides.
ANY_IMAGE = 'any image'           # flattened: images of any (H, W, C)
SQUARE_BY_4 = 'square by 4'       # square images whose side is divisible by 4
POINTS = '2D points'              # the 2D lab's points (data shape (2,))

SPECTRAL_NORM = ('default', 'none', 'd', 'g', 'gd')
G_USUAL = ('none', 'concat', 'cbn')                    # `layers`' G hooks
D_USUAL = ('none', 'concat', 'projection', 'acgan')    # `layers`' D hooks
LABEL_FREE = ('none', 'concat')   # the defaults, meaningless without labels


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """A registered G/D pair and what it supports; `build` checks a config against it."""
  # (*, image_shape, num_classes, ...) -> (G, D): keyword-only, as `build` calls it.
  builder: Callable[..., tuple[nn.Module, nn.Module]]
  sizes: tuple[int, ...] | str         # square sides, or ANY_IMAGE, SQUARE_BY_4, POINTS
  g_conditionings: tuple[str, ...] = G_USUAL
  d_conditionings: tuple[str, ...] = D_USUAL
  spectral_norm: tuple[str, ...] = ('none', 'd')   # where it can go: 'none', 'd', 'g', 'gd'
  default_spectral_norm: str = 'none'
  conditional: bool = True             # whether it can be class-conditional
  # config.model.d_minibatch values its D implements (layers.D_MINIBATCH).
  d_minibatch: tuple[str, ...] = ('none',)
  packing: bool = True                 # whether its D can judge packs (config.model.pack > 1)

  def makes(self, image_shape: tuple) -> bool:
    """Whether this model makes data of `image_shape` ((H, W, C), or (2,) for points)."""
    if self.sizes == POINTS:
      return len(image_shape) == 1
    if len(image_shape) != 3:
      return False
    height, width = image_shape[:2]
    if self.sizes == ANY_IMAGE:
      return True
    if self.sizes == SQUARE_BY_4:
      return height == width and height % 4 == 0
    return height == width and height in self.sizes

  def describe_sizes(self) -> str:
    """What it makes, in words: '28x28 images', '2D points', ..."""
    if isinstance(self.sizes, str):
      return {ANY_IMAGE: 'images of any size', POINTS: '2D points',
              SQUARE_BY_4: 'square images with a side divisible by 4 (28, 32, ...)'}[self.sizes]
    return ' or '.join(f'{s}x{s}' for s in self.sizes) + ' images'

  def spectral_norm_in(self, value: str) -> tuple[bool, bool]:
    """(in G, in D) for `model.spectral_norm`; 'default' is the entry's own choice."""
    where = self.default_spectral_norm if value == 'default' else value
    return 'g' in where, 'd' in where


def _entries() -> dict[str, ModelEntry]:
  return {name: MODELS.get(name) for name in MODELS.names()}


def _supporting(test: Callable[[ModelEntry], bool]) -> str:
  names = [name for name, entry in _entries().items() if test(entry)]
  return ', '.join(names) if names else 'none'


def _describe_data(image_shape: tuple) -> str:
  if len(image_shape) == 3:
    return f'{image_shape[0]}x{image_shape[1]} images'
  if image_shape == (2,):
    return '2D points'
  return f'of shape {image_shape}'


def _size_fix(entry: ModelEntry, image_shape: tuple) -> str:
  if entry.sizes == POINTS:
    return ("Use it with config.trainer='toy2d' and config.data.source='toy2d' "
            '(configs/toy2d.py), or pick')
  if len(image_shape) != 3:
    return 'Pick'
  if entry.sizes == SQUARE_BY_4:
    return 'Set --config.data.image_size to a multiple of 4, or pick'
  if isinstance(entry.sizes, tuple):
    return f'Set --config.data.image_size={entry.sizes[0]}, or pick'
  return 'Pick'


def _check_shape(name: str, entry: ModelEntry, image_shape: tuple) -> None:
  if entry.makes(image_shape):
    return
  data = _describe_data(image_shape)
  raise errors.ConfigError(
      f'config.model.name={name!r} makes {entry.describe_sizes()}, but the data is {data}. '
      f'{_size_fix(entry, image_shape)} a model that makes {data}: '
      f'{_supporting(lambda e: e.makes(image_shape))}.')


def _check_conditioning(name: str, entry: ModelEntry, cfg) -> None:
  for net, key in (('G', 'g_conditioning'), ('D', 'd_conditioning')):
    value = cfg[key]
    field = f'{key[0]}_conditionings'
    supported = getattr(entry, field)
    if value not in supported:
      raise errors.ConfigError(
          f"config.model.{key}={value!r}: '{value}' conditioning is not implemented by the "
          f"{net} of model {name!r}, which takes {', '.join(supported)}. Models whose {net} "
          f'implements it: {_supporting(lambda e: value in getattr(e, field))}.')
  if cfg.conditional and not entry.conditional:
    raise errors.ConfigError(
        f'config.model.conditional=True, but model {name!r} is unconditional. Set '
        '--config.model.conditional=False, or pick a conditional model: '
        f'{_supporting(lambda e: e.conditional)}.')


def _check_spectral_norm(name: str, entry: ModelEntry, value: str) -> None:
  if value == 'default' or value in entry.spectral_norm:
    return
  raise errors.ConfigError(
      f'config.model.spectral_norm={value!r} is not supported by model {name!r}, which '
      f"takes {', '.join(repr(w) for w in entry.spectral_norm)} ('default' is "
      f'{entry.default_spectral_norm!r}). Models that take {value!r}: '
      f'{_supporting(lambda e: value in e.spectral_norm)}.')


def _check_config(cfg, num_classes: int) -> None:
  """The checks of `config.model` that hold for every model."""
  if cfg.conditional and num_classes < 2:
    raise errors.ConfigError(
        'config.model.conditional=True needs labelled data with at least two '
        f'classes, but the dataset has {num_classes}. Use class subfolders, a '
        'labelled dataset, or set --config.model.conditional=False.')
  for key, choices in (('g_conditioning', layers.G_CONDITIONINGS),
                       ('d_conditioning', layers.D_CONDITIONINGS),
                       ('spectral_norm', SPECTRAL_NORM)):
    if cfg[key] not in choices:
      raise errors.ConfigError(f'config.model.{key}={cfg[key]!r} is not one of '
                               f'{", ".join(choices)}.')
  for key in ('g_conditioning', 'd_conditioning'):
    if not cfg.conditional and cfg[key] not in LABEL_FREE:
      raise errors.ConfigError(
          f'config.model.{key}={cfg[key]!r} conditions on the class, which '
          'needs config.model.conditional=True (and labelled data).')
  if cfg.width_scale <= 0:
    raise errors.ConfigError(f'config.model.width_scale={cfg.width_scale} '
                             'must be positive.')


def _minibatch(cfg) -> layers.Minibatch:
  """`config.model`'s D minibatch layer; keys missing from older saved configs take defaults."""
  return layers.Minibatch(cfg.get('d_minibatch', 'none'),
                          cfg.get('minibatch_group', layers.MINIBATCH_GROUP),
                          cfg.get('minibatch_kernels', layers.MINIBATCH_KERNELS),
                          cfg.get('minibatch_dims', layers.MINIBATCH_DIMS))


def _check_mode_collapse_tools(name: str, entry: ModelEntry, cfg) -> None:
  """config.model.pack and d_minibatch (with its sizes) against the model's entry."""
  pack, minibatch = cfg.get('pack', 1), _minibatch(cfg)
  if not isinstance(pack, int) or pack < 1:
    raise errors.ConfigError(f'config.model.pack={pack!r} must be an integer >= 1 '
                             '(1: no packing).')
  if pack > 1 and cfg.conditional:
    raise errors.ConfigError(
        f'config.model.pack={pack} with config.model.conditional=True: a pack mixes '
        'the classes of its samples, and same-class packs are not implemented. Set '
        '--config.model.pack=1 or --config.model.conditional=False.')
  if pack > 1 and not entry.packing:
    raise errors.ConfigError(
        f'config.model.pack={pack}: model {name!r} has no discriminator that judges '
        f'packs. Models that pack: {_supporting(lambda e: e.packing)}.')
  if minibatch.kind not in layers.D_MINIBATCH:
    raise errors.ConfigError(f'config.model.d_minibatch={minibatch.kind!r} is not one of '
                             f'{", ".join(layers.D_MINIBATCH)}.')
  if minibatch.kind not in entry.d_minibatch:
    raise errors.ConfigError(
        f'config.model.d_minibatch={minibatch.kind!r} is not implemented by the D of model '
        f"{name!r}, which takes {', '.join(entry.d_minibatch)}. Models whose D implements "
        f'it: {_supporting(lambda e: minibatch.kind in e.d_minibatch)}.')
  for key in ('group', 'kernels', 'dims'):
    value = getattr(minibatch, key)
    if not isinstance(value, int) or value < 1:
      raise errors.ConfigError(f'config.model.minibatch_{key}={value!r} must be an '
                               'integer >= 1.')


def build(model_config: ml_collections.ConfigDict, image_shape: Sequence[int],
          num_classes: int) -> GANModels:
  """Builds G and D for data of `image_shape` with `num_classes` labels (0: none)."""
  cfg, image_shape = model_config, tuple(image_shape)
  entry = MODELS.get(cfg.name)
  _check_config(cfg, num_classes)
  _check_shape(cfg.name, entry, image_shape)
  _check_conditioning(cfg.name, entry, cfg)
  _check_spectral_norm(cfg.name, entry, cfg.spectral_norm)
  _check_mode_collapse_tools(cfg.name, entry, cfg)
  num_classes = num_classes if cfg.conditional else 0
  minibatch = _minibatch(cfg)
  g_sn, d_sn = entry.spectral_norm_in(cfg.spectral_norm)
  generator, discriminator = entry.builder(
      image_shape=image_shape, num_classes=num_classes, latent_dim=cfg.latent_dim,
      width_scale=cfg.width_scale, bn_momentum=cfg.bn_momentum,
      g_conditioning=cfg.g_conditioning, d_conditioning=cfg.d_conditioning,
      g_spectral_norm=g_sn, d_spectral_norm=d_sn, hidden=cfg.hidden,
      hidden_layers=cfg.hidden_layers, d_minibatch=minibatch, biggan=cfg.get('biggan'))
  return GANModels(generator, discriminator, cfg.latent_dim, num_classes, image_shape,
                   pack=cfg.get('pack', 1),
                   stddev_group=minibatch.group if minibatch.kind == 'stddev' else 0)


# The builders. Each takes the keywords `build` passes (naming those it uses;
# `**_` takes the others) and calls the modules with keywords, so no field
# lands in another's place.

def _scaled(widths: Sequence[int], scale: float) -> tuple[int, ...]:
  return tuple(max(1, int(round(w * scale))) for w in widths)


def _conv_pair(generator: type[nn.Module], discriminator: type[nn.Module]) -> Callable:
  """The builder of a conv G (channels out) and D with BatchNorm: the DCGANs."""
  def build_pair(*, image_shape, num_classes, width_scale, bn_momentum, g_conditioning,
                 d_conditioning, d_spectral_norm, d_minibatch=layers.NO_MINIBATCH, **_):
    return (generator(channels=image_shape[2], num_classes=num_classes,
                      bn_momentum=bn_momentum, conditioning=g_conditioning,
                      widths=_scaled(generator.widths, width_scale)),
            discriminator(num_classes=num_classes, bn_momentum=bn_momentum,
                          conditioning=d_conditioning, spectral_norm=d_spectral_norm,
                          widths=_scaled(discriminator.widths, width_scale),
                          minibatch=d_minibatch))
  return build_pair


def _mlp(*, image_shape, num_classes, width_scale, bn_momentum, g_conditioning,
         d_conditioning, d_spectral_norm, d_minibatch=layers.NO_MINIBATCH, **_):
  return (mlp.MLPGenerator(image_shape=image_shape, num_classes=num_classes,
                           bn_momentum=bn_momentum, conditioning=g_conditioning,
                           widths=_scaled(mlp.MLPGenerator.widths, width_scale)),
          mlp.MLPDiscriminator(num_classes=num_classes, conditioning=d_conditioning,
                               spectral_norm=d_spectral_norm,
                               widths=_scaled(mlp.MLPDiscriminator.widths, width_scale),
                               minibatch=d_minibatch))


def _sngan(size: int) -> Callable:
  bottom, g_widths, d_widths, downsample = resnet.ARCHITECTURES[size]

  def build_sngan(*, image_shape, num_classes, width_scale, bn_momentum, g_conditioning,
                  d_conditioning, g_spectral_norm, d_spectral_norm,
                  d_minibatch=layers.NO_MINIBATCH, **_):
    return (resnet.ResNetGenerator(channels=image_shape[2], num_classes=num_classes,
                                   bn_momentum=bn_momentum, bottom=bottom,
                                   widths=_scaled(g_widths, width_scale),
                                   conditioning=g_conditioning, spectral_norm=g_spectral_norm),
            resnet.ResNetDiscriminator(num_classes=num_classes,
                                       widths=_scaled(d_widths, width_scale),
                                       downsample=downsample, conditioning=d_conditioning,
                                       spectral_norm=d_spectral_norm, minibatch=d_minibatch))
  return build_sngan


def _resnet18d(*, image_shape, num_classes, width_scale, bn_momentum, g_conditioning,
               d_conditioning, d_spectral_norm, d_minibatch=layers.NO_MINIBATCH, **_):
  """The CIFAR-10 A8 report's GAN: ResNet-18 D, transposed-conv G with avgpool and dense."""
  g_cls, d_cls = cifar_resnet.AvgPoolGenerator, cifar_resnet.ResNet18Discriminator
  return (g_cls(image_shape=image_shape, num_classes=num_classes, bn_momentum=bn_momentum,
                widths=_scaled(g_cls.widths, width_scale), conditioning=g_conditioning),
          d_cls(num_classes=num_classes, bn_momentum=bn_momentum,
                widths=_scaled(d_cls.widths, width_scale), conditioning=d_conditioning,
                spectral_norm=d_spectral_norm, minibatch=d_minibatch))


def _vae(*, image_shape, num_classes, latent_dim, width_scale, **_):
  """Conditional VAE (model.family='vae'): (decoder, encoder) in the (G, D) slots."""
  widths = _scaled((32, 64, 128), width_scale)
  return (vae.Decoder(image_shape=image_shape, num_classes=num_classes, widths=widths),
          vae.Encoder(latent_dim=latent_dim, num_classes=num_classes, widths=widths))


def _ddpm_unet(*, image_shape, num_classes, width_scale, **_):
  """The DDPM's noise-predicting U-Net (model.family='ddpm'); no discriminator."""
  return (ddpm.UNet(image_shape=image_shape, num_classes=num_classes,
                    widths=_scaled((32, 64, 64), width_scale)),
          ddpm.NoDiscriminator())


def _mlp2d(*, image_shape, hidden, hidden_layers, d_minibatch=layers.NO_MINIBATCH, **_):
  if hidden < 1:
    raise errors.ConfigError(f'config.model.hidden={hidden} must be at least 1.')
  if hidden_layers < 1:
    raise errors.ConfigError(f'config.model.hidden_layers={hidden_layers} must be at least 1.')
  if d_minibatch.kind != 'none':   # a separate class, so plain mlp2d keeps its variable tree
    discriminator = mlp2d_minibatch.MinibatchMLP2DDiscriminator(
        hidden=hidden, layers=hidden_layers, minibatch=d_minibatch)
  else:
    discriminator = mlp2d.MLP2DDiscriminator(hidden=hidden, layers=hidden_layers)
  generator = mlp2d.MLP2DGenerator(dim=image_shape[0], hidden=hidden, layers=hidden_layers)
  return generator, discriminator


def _register(name: str, builder: Callable, sizes, **supports) -> None:
  MODELS.register(name)(ModelEntry(builder=builder, sizes=sizes, **supports))


EMBED_G, EMBED_D = G_USUAL + ('embed',), D_USUAL + ('embed',)
MB = layers.D_MINIBATCH   # the Ds that call `layers.minibatch_features` before their last layer
_register('dcgan28', _conv_pair(dcgan.Generator28, dcgan.Discriminator28), (28,), d_minibatch=MB)
_register('dcgan32', _conv_pair(dcgan.Generator32, dcgan.Discriminator32), (32,), d_minibatch=MB)
_register('mlp', _mlp, ANY_IMAGE, d_minibatch=MB)
for _size in resnet.ARCHITECTURES:
  _register(f'sngan{_size}', _sngan(_size), (_size,), spectral_norm=('none', 'd', 'g', 'gd'),
            default_spectral_norm='d', d_minibatch=MB)
# BigGAN (gan_jax.models.biggan; reads config.model.biggan): SN in G and D by default.
for _size in biggan.ARCHITECTURES:
  _register(f'biggan{_size}', biggan.builder(_size), (_size,),
            spectral_norm=('none', 'd', 'g', 'gd'), default_spectral_norm='gd')
# R3GAN (gan_jax.models.r3gan): its G embeds the class into z ('embed'), its D projects
# ('projection'); no normalisation layers, and no spectral norm.
for _size in r3gan.ARCHITECTURES:
  _register(f'r3gan{_size}', r3gan.builder(_size), (_size,),
            g_conditionings=('none', 'concat', 'embed'),
            d_conditionings=('none', 'concat', 'projection'), spectral_norm=('none',))
_register('resnet18d', _resnet18d, (32,), g_conditionings=EMBED_G, d_conditionings=EMBED_D,
          d_minibatch=MB)
_register('dcgan64', _conv_pair(dcgan64.Generator64, dcgan64.Discriminator64), (64,),
          g_conditionings=EMBED_G, d_conditionings=EMBED_D, d_minibatch=MB)
_register('dcgan64_wide', _conv_pair(dcgan64.WideGenerator64, dcgan64.WideDiscriminator64),
          (64,), g_conditionings=EMBED_G, d_conditionings=EMBED_D, d_minibatch=MB)
# The other families' models condition on the class their own way (by
# concatenation, or the U-Net's class embedding) and have no spectral norm.
_register('vae', _vae, SQUARE_BY_4, g_conditionings=LABEL_FREE, d_conditionings=LABEL_FREE,
          spectral_norm=('none',), packing=False)
_register('ddpm_unet', _ddpm_unet, SQUARE_BY_4, g_conditionings=LABEL_FREE,
          d_conditionings=LABEL_FREE, spectral_norm=('none',), packing=False)
_register('mlp2d', _mlp2d, POINTS, g_conditionings=LABEL_FREE, d_conditionings=LABEL_FREE,
          spectral_norm=('none',), conditional=False, d_minibatch=MB)
_register('pacgan2d', pacgan2d.build, POINTS, g_conditionings=LABEL_FREE,
          d_conditionings=LABEL_FREE, spectral_norm=('none',), conditional=False)
