"""`discriminator`: what D sees. D's first-layer and G's last-layer filters, D's feature maps and saliency, D's logits.

Layers are found in the order the model calls them, by tracing it (no
compute) with `nn.intercept_methods`, not by walking the parameter tree: a
restored (or trained) tree has passed through `jax.tree.map`, which sorts
dict keys, so 'BasicBlock_0' would come before resnet18d's stem 'Conv_0' and
'Conv_10' before 'Conv_2'. Spectral norm needs no special case: flax's
`nn.SpectralNorm` keeps the wrapped layer's parameter path (its `u` and
`sigma` live in 'batch_stats'), and its 1/sigma scales a whole kernel, which
the per-filter normalisation of the pictures cancels.

Kernel layouts: `nn.Conv` stores (kh, kw, in, out) and correlates, so a D
filter is the input pattern it matches, kernel[:, :, :, o] as is, and a G
conv paints kernel[::-1, ::-1, i, :] for a unit activation of input map i.
`layers.conv_transpose` (both impls; `nn.ConvTranspose(transpose_kernel=True)`)
stores PyTorch's weight as (k, k, out, in) and stamps kernel[:, :, :, i]
unflipped; flax's plain `nn.ConvTranspose` stores (k, k, in, out) and paints
it flipped, as a conv does.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use('Agg')  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gan_jax.analysis import NotApplicable, register
from gan_jax.analysis.context import to_float
from gan_jax.models import layers, split_output

NUM_SHOWN = 4              # real and generated images in the feature-map and saliency figures
MAX_FILTERS = 256          # filters drawn per layer
MAX_FEATURE_LAYERS = 16    # feature-map columns; evenly spaced through D when it has more
FILTER_PIXELS = 48         # a filter's side in the PNG (nearest-neighbour upscaling)
HISTOGRAM_BINS = 40

# ConvLayer.kind: how the kernel is laid out and applied.
CONV = 'conv'                          # (kh, kw, in, out), correlation
TRANSPOSE_TORCH = 'transpose_torch'    # (k, k, out, in), PyTorch's ConvTranspose2d
TRANSPOSE_FLAX = 'transpose_flax'      # (k, k, in, out), flax's default ConvTranspose


@dataclasses.dataclass(frozen=True)
class ConvLayer:
  path: tuple[str, ...]    # of its 'kernel' in the 'params' tree (and of its intermediates)
  kind: str                # CONV, TRANSPOSE_TORCH or TRANSPOSE_FLAX

  @property
  def name(self) -> str:
    return '/'.join(self.path)


def _conv_kind(module: nn.Module) -> str | None:
  if isinstance(module, layers.ConvTranspose):
    return TRANSPOSE_TORCH
  if isinstance(module, nn.ConvTranspose):
    return TRANSPOSE_TORCH if module.transpose_kernel else TRANSPOSE_FLAX
  if isinstance(module, nn.Conv):
    return CONV
  return None


def conv_layers(module: nn.Module, variables: dict, *args, **kwargs) -> list[ConvLayer]:
  """The convolutions of `module.apply(variables, *args, **kwargs)` in call order (traced only)."""
  found = []

  def record(call, call_args, call_kwargs, context):
    kind = _conv_kind(context.module)
    if context.method_name == '__call__' and kind:
      layer = ConvLayer(tuple(context.module.path), kind)
      if layer not in found:    # a layer called twice is one layer
        found.append(layer)
    return call(*call_args, **call_kwargs)

  def traced():
    with nn.intercept_methods(record):
      return module.apply(variables, *args, **kwargs)

  jax.eval_shape(traced)
  return found


def kernel_at(params: dict, path: Sequence[str]) -> np.ndarray:
  node = params
  for part in path:
    node = node[part]
  return np.asarray(node['kernel'], np.float32)


def first_conv_kernel(module: nn.Module, variables: dict, *args,
                      **kwargs) -> tuple[ConvLayer, np.ndarray] | None:
  """(layer, kernel (kh, kw, in, out)) of the first convolution `module` applies; None if none."""
  convs = [c for c in conv_layers(module, variables, *args, **kwargs) if c.kind == CONV]
  return (convs[0], kernel_at(variables['params'], convs[0].path)) if convs else None


def last_conv_kernel(module: nn.Module, variables: dict, *args,
                     **kwargs) -> tuple[ConvLayer, np.ndarray] | None:
  """(layer, kernel in its own layout) of the last conv or transposed conv `module` applies."""
  convs = conv_layers(module, variables, *args, **kwargs)
  return (convs[-1], kernel_at(variables['params'], convs[-1].path)) if convs else None


def matched_patterns(kernel: np.ndarray) -> np.ndarray:
  """(out, kh, kw, in): the input patch each output unit of an `nn.Conv` kernel responds to most."""
  return np.transpose(kernel, (3, 0, 1, 2))


def painted_patterns(layer: ConvLayer, kernel: np.ndarray) -> np.ndarray:
  """(in, kh, kw, out): what a unit activation of each input map adds to the layer's output."""
  if layer.kind == TRANSPOSE_TORCH:
    return np.transpose(kernel, (3, 0, 1, 2))
  # A correlation (conv, or flax's default ConvTranspose) paints its kernel point-reflected.
  return np.transpose(kernel[::-1, ::-1], (2, 0, 1, 3))


def filter_images(patterns: np.ndarray, image_channels: int) -> np.ndarray:
  """(N, kh, kw, C) patterns -> images in [-1, 1], RGB from the first 3 channels of an RGB
  model, else channel 0 in gray; each filter scaled by its own max |weight|, so 0 is mid-gray."""
  channels = 3 if image_channels == 3 and patterns.shape[-1] >= 3 else 1
  picked = patterns[..., :channels]
  scale = np.max(np.abs(picked), axis=(1, 2, 3), keepdims=True)
  return picked / np.where(scale > 0, scale, 1.0)


def _upscaled(images: np.ndarray) -> np.ndarray:
  factor = max(1, FILTER_PIXELS // max(images.shape[1:3]))
  return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def saliency(logit_fn: Callable, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """|d logit_i / d image_i| summed over channels, (N, H, W).

  `logit_fn(images, labels) -> (N,)` must give each image's logit from that
  image alone (D in inference mode), so the gradient of their sum holds every
  image's own gradient.
  """
  grad = jax.jit(jax.grad(lambda x, y: jnp.sum(logit_fn(x, y))))(
      jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32))
  return np.asarray(jnp.sum(jnp.abs(grad), axis=-1))


def summarize_logits(train: np.ndarray, generated: np.ndarray,
                     heldout: np.ndarray | None = None) -> dict:
  """Mean, std (population) and fraction scored real (logit > 0) per group, and D's memorisation:
  its mean logit on training images minus that on held-out ones (None without held-out images)."""
  def summary(logits):
    logits = np.asarray(logits, np.float64).reshape(-1)
    return {'count': int(logits.size), 'mean': float(np.mean(logits)),
            'std': float(np.std(logits)), 'fraction_real': float(np.mean(logits > 0))}
  groups = {'train': summary(train), 'generated': summary(generated),
            'heldout': None if heldout is None else summary(heldout)}
  gap = None if heldout is None else groups['train']['mean'] - groups['heldout']['mean']
  return {**groups, 'train_minus_heldout_mean': gap}


# --- the pictures -------------------------------------------------------------------


def _filters_section(ctx, name: str, role: str, found, patterns_of) -> tuple[dict, str | None]:
  """Draws `patterns_of(layer, kernel)` of the layer `found` as a grid; returns (numbers, file)."""
  if found is None:
    return {'note': f'{role} has no convolution'}, None
  layer, kernel = found
  patterns = patterns_of(layer, kernel)
  images = filter_images(patterns[:MAX_FILTERS], ctx.gan.image_shape[-1])
  ctx.save_grid(name, _upscaled(images), ncols=int(np.ceil(np.sqrt(len(images)))))
  norms = np.linalg.norm(patterns.reshape(len(patterns), -1), axis=1)
  return {'layer': layer.name, 'kind': layer.kind, 'kernel_shape': list(kernel.shape),
          'shown': len(images), 'colour': 'RGB' if images.shape[-1] == 3 else 'channel 0',
          'filter_norms': norms.tolist()}, name


def _show(ax, image_float):
  shown = np.clip((image_float + 1) / 2, 0, 1)
  if shown.shape[-1] == 1:
    ax.imshow(shown[..., 0], cmap='gray', vmin=0, vmax=1)
  else:
    ax.imshow(shown)
  ax.axis('off')


def _feature_maps(ctx, images, labels, row_names, is_real, convs) -> tuple[dict, str | None]:
  """One row per image: the image, then mean |output| over channels of each conv of D."""
  def is_conv_call(module, method_name):
    return method_name == '__call__' and _conv_kind(module) is not None

  captured = jax.jit(lambda x, y: ctx.d_apply(x, y, capture_intermediates=is_conv_call,
                                              mutable=['intermediates'])[1]['intermediates'])(
                                                  jnp.asarray(images), jnp.asarray(labels))
  maps = []
  for conv in convs:
    node = captured
    for part in conv.path:
      node = node[part]
    output = np.asarray(node['__call__'][0], np.float32)
    if output.shape[1] * output.shape[2] > 1:   # a 1x1 map (a logit conv) shows nothing
      maps.append((conv, output))
  if not maps:
    return {'note': 'no convolution of D has a spatial output'}, None
  shown = np.unique(np.linspace(0, len(maps) - 1, min(len(maps), MAX_FEATURE_LAYERS))
                    .round().astype(int))
  maps = [maps[i] for i in shown]
  fig, axes = plt.subplots(len(images), len(maps) + 1, squeeze=False,
                           figsize=(1.2 * (len(maps) + 1), 1.25 * len(images)))
  numbers = []
  for col, (conv, output) in enumerate(maps, start=1):
    energy = np.mean(np.abs(output), axis=-1)
    top = float(np.max(energy)) or 1.0    # one scale per layer, so real and fake compare
    for row in range(len(images)):
      axes[row, col].imshow(energy[row], cmap='gray', vmin=0, vmax=top)
      axes[row, col].axis('off')
    axes[0, col].set_title(f'{conv.name}\n{output.shape[1]}x{output.shape[2]}x{output.shape[3]}',
                           fontsize=6)
    numbers.append({'layer': conv.name, 'shape': list(output.shape[1:]),
                    'mean_abs_real': float(np.mean(np.abs(output[is_real]))),
                    'mean_abs_generated': float(np.mean(np.abs(output[~is_real])))})
  for row, row_name in enumerate(row_names):
    _show(axes[row, 0], images[row])
    axes[row, 0].set_title(row_name, fontsize=6)
  fig.suptitle("D's feature maps: mean |conv output| over channels", fontsize=9)
  name = 'discriminator_feature_maps.png'
  ctx.save_figure(name, fig)
  return {'layers': numbers, 'layers_available': len(convs)}, name


def _saliency_figure(ctx, images, maps, logits, row_names) -> str:
  fig, axes = plt.subplots(2, len(images), squeeze=False,
                           figsize=(1.4 * len(images), 3.0))
  for col in range(len(images)):
    _show(axes[0, col], images[col])
    axes[0, col].set_title(f'{row_names[col]}\nlogit {logits[col]:.2f}', fontsize=7)
    axes[1, col].imshow(maps[col], cmap='inferno', vmin=0, vmax=float(np.max(maps[col])) or 1.0)
    axes[1, col].axis('off')
  fig.suptitle("|d D logit / d image| (summed over channels; each map its own scale)", fontsize=9,
               y=1.06)
  name = 'discriminator_saliency.png'
  ctx.save_figure(name, fig)
  return name


def _histogram_figure(ctx, groups: dict) -> str:
  edges = np.histogram_bin_edges(np.concatenate(list(groups.values())), HISTOGRAM_BINS)
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for label, logits in groups.items():
    ax.hist(logits, bins=edges, density=True, alpha=0.45,
            label=f'{label} (n={len(logits)}, mean {np.mean(logits):.2f})')
  ax.axvline(0, color='k', linewidth=0.8)   # D's boundary between "real" and "fake"
  ax.set_xlabel('D logit')
  ax.set_ylabel('density')
  ax.legend(fontsize=7)
  ax.set_title(f"D's logits at step {ctx.step}", fontsize=9)
  name = 'discriminator_logits.png'
  ctx.save_figure(name, fig)
  return name


@register('discriminator')
def discriminator(ctx) -> dict:
  """D's and G's filters, D's feature maps and saliency on a few images, D's logit histograms."""
  if not ctx.has_discriminator:
    raise NotApplicable(f'the {ctx.family} family has no discriminator')
  gan = ctx.gan
  if gan.pack > 1:   # its logits, filters and saliency would be of packs, not images
    raise NotApplicable(f'D judges packs of {gan.pack} images (model.pack), not single images')
  real_uint8, real_labels = ctx.real_images(ctx.num, name='discriminator')
  real = to_float(real_uint8)
  z, fake_labels = ctx.latents(ctx.num, 'discriminator')
  fake = ctx.generate(z, fake_labels)
  groups = {'train': ctx.d_logits(real, real_labels)}
  if ctx.heldout_split:
    heldout_uint8, heldout_labels = ctx.real_images(ctx.num, split=ctx.heldout_split,
                                                    name='discriminator')
    groups['heldout'] = ctx.d_logits(to_float(heldout_uint8), heldout_labels)
  groups['generated'] = ctx.d_logits(fake, fake_labels)
  files, numbers = [], {}

  d_args = (jnp.zeros((1, *gan.image_shape)), jnp.zeros((1,), jnp.int32))
  g_args = (jnp.zeros((1, gan.latent_dim)), jnp.zeros((1,), jnp.int32))
  d_variables = ctx.state.d.variables
  d_convs = conv_layers(gan.discriminator, d_variables, *d_args, train=False)
  numbers['d_first_layer'], written = _filters_section(
      ctx, 'discriminator_d_filters.png', 'D',
      first_conv_kernel(gan.discriminator, d_variables, *d_args, train=False),
      lambda layer, kernel: matched_patterns(kernel))
  files += [written] if written else []
  numbers['g_last_layer'], written = _filters_section(   # G's EMA weights when kept
      ctx, 'discriminator_g_filters.png', 'G',
      last_conv_kernel(gan.generator, ctx.variables, *g_args, train=False), painted_patterns)
  files += [written] if written else []

  shown = min(NUM_SHOWN, len(real), len(fake))
  images = np.concatenate([real[:shown], fake[:shown]])
  labels = np.concatenate([real_labels[:shown], fake_labels[:shown]]).astype(np.int32)
  is_real = np.arange(2 * shown) < shown
  row_names = [f'real {i}' for i in range(shown)] + [f'fake {i}' for i in range(shown)]
  if gan.num_classes:
    class_names = ctx.class_names
    row_names = [f'{row} (class {class_names[label]})' for row, label in zip(row_names, labels)]
  numbers['feature_maps'], written = _feature_maps(ctx, images, labels, row_names, is_real,
                                                   d_convs)
  files += [written] if written else []

  maps = saliency(lambda x, y: split_output(ctx.d_apply(x, y))[0], images, labels)
  shown_logits = np.concatenate([groups['train'][:shown], groups['generated'][:shown]])
  files.append(_saliency_figure(ctx, images, maps, shown_logits, row_names))
  numbers['saliency'] = {
      'images': row_names, 'logits': shown_logits.tolist(),
      'mean_real': float(np.mean(maps[:shown])), 'mean_generated': float(np.mean(maps[shown:])),
      'max_per_image': np.max(maps, axis=(1, 2)).tolist()}

  files.append(_histogram_figure(ctx, groups))
  numbers['logits'] = summarize_logits(groups['train'], groups['generated'], groups.get('heldout'))
  numbers['logits']['heldout_split'] = ctx.heldout_split or None
  if not ctx.heldout_split:
    numbers['logits']['note'] = ('no held-out split given (--heldout_split): '
                                 "D's memorisation gap is not measured")
  return {**numbers, 'files': files}
