"""`interpolate`, `arithmetic`, `directions`: walks through G's latent space.

interpolate  G's images along paths between pairs of noise vectors: slerp,
             the default for Gaussian z (a straight line between two draws
             cuts through the low-norm interior that G rarely saw; White
             2016), and lerp rows for comparison. Conditional runs also get
             one z per column across every class, and a class morph: the
             class blended from one to another at fixed z (class weights in
             place of ids, `gan_jax.models.layers`).
arithmetic   the DCGAN paper's vector arithmetic (Radford et al. 2016):
             groups of samples by the domain classifier's predicted class,
             the mean z of each, and G(mean_A - mean_B + mean_C) with its
             neighbourhood.
directions   closed-form semantic directions (SeFa, Shen & Zhou 2021): the
             top eigenvectors of A^T A for G's first layer A on z, rendered
             at a few strengths.

The DDPM's "z" is its initial noise x_T (flat). Its paths are sampled by
deterministic DDIM (eta = 0) whatever sampler the run uses: the run's
sampler seeds its per-step noise from the bits of the whole batch's z
(`diffusion.make_sampler`), so under ancestral sampling or eta > 0 an image
depends on the batch it is drawn in, not only on its own x_T.
"""

from __future__ import annotations

import os
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use('Agg')  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gan_jax import errors  # pylint: disable=g-import-not-at-top
from gan_jax.analysis import NotApplicable, register  # pylint: disable=g-import-not-at-top
from gan_jax.analysis.context import to_uint8  # pylint: disable=g-import-not-at-top
from gan_jax.models import layers  # pylint: disable=g-import-not-at-top

PATHS, STEPS = 8, 10            # interpolation rows, and images per row (endpoints included)
CLASS_COLUMNS = 8               # z shown across every class
MAX_CLASS_ROWS = 20             # classes in that grid, at most
MORPH_ROWS = 8                  # class pairs morphed, at most

MIN_POPULATION = 300            # arithmetic: samples classified, at least (ctx.num if more)
GROUP_SIZE = 8                  # the most confident samples averaged per group
NEIGHBOURS = 15                 # samples around the arithmetic's result ...
NEIGHBOUR_SIGMA = 0.25          # ... at this Gaussian noise scale in z

SEFA_K = 5
SEFA_STRENGTHS = (-3.0, -1.5, 0.0, 1.5, 3.0)   # in units of z's per-coordinate std (1)
SEFA_SEEDS = 3

# How class weights enter G, by its conditioning (see `gan_jax.models.layers`).
BLEND_METHODS = {'concat': 'one-hot mixture', 'embed': 'embedding mixture',
                 'cbn': 'embedding mixture'}


# --- pure functions ----------------------------------------------------------------

def lerp(z0, z1, ts) -> np.ndarray:
  """(..., len(ts), d): (1 - t) z0 + t z1 for each t, for z0 and z1 of shape (..., d)."""
  z0 = np.asarray(z0, np.float64)[..., None, :]
  z1 = np.asarray(z1, np.float64)[..., None, :]
  t = np.asarray(ts, np.float64)[:, None]
  return (1 - t) * z0 + t * z1


def slerp(z0, z1, ts) -> np.ndarray:
  """(..., len(ts), d): spherical interpolation from z0 to z1 (shapes (..., d)).

  sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1, w the angle between them:
  the great-circle arc, so vectors of equal norm keep that norm all along, and
  t = 0 and 1 give z0 and z1 exactly. (Anti)parallel pairs, whose arc is
  undefined, fall back to lerp.
  """
  z0 = np.asarray(z0, np.float64)
  z1 = np.asarray(z1, np.float64)
  norms = np.linalg.norm(z0, axis=-1) * np.linalg.norm(z1, axis=-1)
  cos = np.clip(np.sum(z0 * z1, axis=-1) / np.maximum(norms, 1e-300), -1.0, 1.0)
  omega = np.arccos(cos)[..., None, None]
  sin = np.sin(omega)
  t = np.asarray(ts, np.float64)[:, None]
  degenerate = np.abs(sin) < 1e-6
  safe_sin = np.where(degenerate, 1.0, sin)
  spherical = (np.sin((1 - t) * omega) / safe_sin * z0[..., None, :]
               + np.sin(t * omega) / safe_sin * z1[..., None, :])
  return np.where(degenerate, lerp(z0, z1, ts), spherical)


def arithmetic_z(z_a, z_b, z_c) -> np.ndarray:
  """mean(z_a) - mean(z_b) + mean(z_c) for groups of noise vectors, each (n_i, d)."""
  mean_a, mean_b, mean_c = (np.mean(np.asarray(z, np.float64), axis=0) for z in (z_a, z_b, z_c))
  return mean_a - mean_b + mean_c


def choose_groups(probs, group_size: int, num_groups: int = 3):
  """Disjoint groups of samples for `num_groups` distinct classes, from classifier probabilities.

  `probs` (N, classes): softmax outputs. Groups are first the predicted
  classes with the most confidently classified samples: a class scores the
  sum of its `group_size` highest confidences (missing members count 0, so
  one sure sample does not beat many), and keeps those samples. When fewer
  classes than `num_groups` are predicted at all (an undertrained or
  collapsed G), the rest are the classes whose probability is highest among
  the samples not yet taken, each with its `group_size` most likely samples.
  Returns [(class, indices most confident first, chosen by prediction?)], best first.
  """
  probs = np.asarray(probs, np.float64)
  predicted, confidence = probs.argmax(-1), probs.max(-1)
  ranked = []
  for cls in np.unique(predicted):
    members = np.flatnonzero(predicted == cls)
    top = members[np.argsort(-confidence[members], kind='stable')[:group_size]]
    ranked.append((float(confidence[top].sum()), int(cls), top))
  ranked.sort(key=lambda g: (-g[0], g[1]))
  groups = [(cls, top, True) for _, cls, top in ranked[:num_groups]]
  free = np.ones(len(probs), bool)
  for _, top, _ in groups:
    free[top] = False
  while len(groups) < min(num_groups, probs.shape[1]) and free.any():
    candidates = np.flatnonzero(free)
    best = None
    for cls in sorted(set(range(probs.shape[1])) - {g[0] for g in groups}):
      top = candidates[np.argsort(-probs[candidates, cls], kind='stable')[:group_size]]
      score = probs[top, cls].sum()
      if best is None or score > best[0]:
        best = (score, cls, top)
    groups.append((best[1], best[2], False))
    free[best[2]] = False
  return groups


def sefa_directions(kernel_in_out, k: int):
  """(eigenvalues (d,) descending, directions (k, d) unit rows) of SeFa for a layer's kernel.

  `kernel_in_out` (d, out) is a dense kernel on z (x @ kernel), so the layer's
  matrix is A = kernel.T (out, d); the directions are the eigenvectors of
  A^T A of the k largest eigenvalues: the unit moves of z that change the
  layer's output most. Each direction's sign is fixed so that its largest
  component is positive (eigenvectors have no sign of their own).
  """
  kernel = np.asarray(kernel_in_out, np.float64)
  gram = kernel @ kernel.T                   # = A^T A, (d, d)
  eigenvalues, vectors = np.linalg.eigh(gram)
  order = np.argsort(eigenvalues)[::-1]
  eigenvalues, vectors = eigenvalues[order], vectors[:, order]
  directions = vectors[:, :min(k, len(eigenvalues))].T
  directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
  largest = np.argmax(np.abs(directions), axis=1)
  signs = np.sign(directions[np.arange(len(directions)), largest])
  return eigenvalues, directions * signs[:, None]


def mean_step_change(images, steps: int) -> np.ndarray:
  """(steps - 1,): mean |difference| of consecutive images along rows of `steps` images."""
  rows = np.asarray(images, np.float64).reshape(-1, steps, *np.shape(images)[1:])
  return np.abs(np.diff(rows, axis=1)).mean(axis=tuple(i for i in range(rows.ndim) if i != 1))


# --- drawing images ----------------------------------------------------------------

def image_maker(ctx) -> tuple[Callable, str]:
  """(draw(z, int labels) -> images in [-1, 1], a description of how it samples).

  G (or the VAE's decoder) through ctx.generate; the DDPM by deterministic
  DDIM from x_T = z (see the module docstring).
  """
  weights = ', EMA weights' if ctx.uses_ema else ''
  if ctx.family == 'vae':
    return ctx.generate, f'the VAE decoder, its mean image{weights}'
  if ctx.family != 'ddpm':
    return ctx.generate, f'G{weights}'
  from gan_jax.families import diffusion  # pylint: disable=g-import-not-at-top
  run = ctx.config.ddpm
  ddpm = run.copy_and_resolve_references()
  with ddpm.unlocked():
    ddpm.sampler, ddpm.eta = 'ddim', 0.0
  sample = diffusion.make_sampler(ctx.gan, ddpm)
  # eta = 0 multiplies the batch-seeded noise by zero: an image is a function of its x_T.
  draw = ctx.batched(lambda zl, v: sample(v, zl[0], zl[1]))
  if run.sampler == 'ddim' and run.eta == 0:
    source = "the run's own sampler"
  else:
    source = (f"in place of the run's {run.sampler}"
              + (f' (eta={run.eta})' if run.sampler == 'ddim' else '')
              + ', whose noise depends on the whole batch')
  return (lambda z, labels: draw(z, np.asarray(labels, np.int32)),
          f'ddim, eta=0, {ddpm.sample_steps} steps, deterministic in x_T; {source}{weights}')


def blend_method(ctx) -> tuple[str | None, str]:
  """(how class weights enter G, or None when they cannot, and why not)."""
  if ctx.family == 'ddpm':
    return None, ("the DDPM's U-Net looks the class up in an nn.Embed table with a null class "
                  'for guidance (gan_jax/models/ddpm.py): class ids only')
  if ctx.family == 'vae':   # its decoder always concatenates the one-hot
    return 'one-hot mixture', ''
  conditioning = ctx.config.model.g_conditioning
  if conditioning not in BLEND_METHODS:
    return None, f"G ignores the class (model.g_conditioning={conditioning!r})"
  return BLEND_METHODS[conditioning], ''


def _name(ctx, cls: int) -> str:
  names = ctx.class_names
  return names[cls] if 0 <= cls < len(names) else str(cls)


# --- interpolate -------------------------------------------------------------------

@register('interpolate')
def interpolate(ctx) -> dict:
  draw, sampler = image_maker(ctx)
  z, labels = ctx.latents(2 * PATHS, 'interpolate')
  starts, ends, path_labels = z[:PATHS], z[PATHS:], labels[:PATHS]
  ts = np.linspace(0.0, 1.0, STEPS)
  paths = {'slerp': slerp(starts, ends, ts), 'lerp': lerp(starts, ends, ts)}
  latent_dim = z.shape[1]
  flat = np.concatenate([p.reshape(-1, latent_dim) for p in paths.values()])
  # Each path keeps its start's class, so only z moves along a row.
  images = draw(flat.astype(np.float32), np.tile(np.repeat(path_labels, STEPS), len(paths)))
  files, methods = [], {}
  for i, (method, path) in enumerate(paths.items()):
    rows = images[i * PATHS * STEPS:(i + 1) * PATHS * STEPS]
    files.append(os.path.basename(ctx.save_grid(f'interpolate_{method}.png', rows, STEPS)))
    methods[method] = {
        # |z(t)| / sqrt(d), averaged over paths: lerp's dip is the shrinking norm.
        'norm_profile': (np.linalg.norm(path, axis=-1) / np.sqrt(latent_dim)).mean(0),
        'step_change': mean_step_change(rows, STEPS),
    }
    methods[method]['mean_step_change'] = float(methods[method]['step_change'].mean())
  cos = (np.sum(starts * ends, -1)
         / (np.linalg.norm(starts, axis=-1) * np.linalg.norm(ends, axis=-1)))
  conditional = bool(ctx.gan.num_classes)
  result = {
      'files': files, 'sampler': sampler, 'default': 'slerp', 'paths': PATHS, 'steps': STEPS,
      't': ts, 'path_labels': [_name(ctx, int(c)) for c in path_labels] if conditional else None,
      'angles_deg': np.degrees(np.arccos(np.clip(cos, -1, 1))),
      'step_change_units': 'mean |difference| of consecutive images, pixels in [-1, 1]',
      **methods,
  }
  if conditional:
    result['class_grid'] = _class_grid(ctx, draw)
    result['morph'] = _class_morph(ctx)
    files += [part['file'] for part in (result['class_grid'], result['morph']) if 'file' in part]
  return result


def _class_grid(ctx, draw) -> dict:
  """One z per column, every class a row: which of the two moves the image more."""
  classes = np.arange(min(ctx.gan.num_classes, MAX_CLASS_ROWS))
  z, _ = ctx.latents(CLASS_COLUMNS, 'interpolate/classes')
  images = draw(np.tile(z, (len(classes), 1)), np.repeat(classes, CLASS_COLUMNS))
  path = ctx.save_grid('interpolate_classes.png', images, CLASS_COLUMNS)
  grid = images.reshape(len(classes), CLASS_COLUMNS, -1).astype(np.float64)
  return {
      'file': os.path.basename(path), 'rows': [_name(ctx, int(c)) for c in classes], 'columns': CLASS_COLUMNS,
      'classes_left_out': int(ctx.gan.num_classes - len(classes)),
      # mean |difference| between images of one z under two classes, and of one class
      # under two z (every pair): the label's and the noise's share of the variety.
      'change_across_classes': _mean_pairwise_change(grid.transpose(1, 0, 2)),
      'change_across_z': _mean_pairwise_change(grid),
  }


def _mean_pairwise_change(groups) -> float:
  """Mean |a - b| over every pair of rows within each group (groups, members, pixels)."""
  members = groups.shape[1]
  if members < 2:
    return 0.0
  total = sum(np.abs(groups[:, i] - groups[:, j]).mean()
              for i in range(members) for j in range(i + 1, members))
  return float(total / (members * (members - 1) / 2))


def _class_morph(ctx) -> dict:
  """The class blended from one to another at fixed z: class weights (1 - t) e_a + t e_b."""
  method, why_not = blend_method(ctx)
  if method is None:
    return {'skipped': why_not}
  num_classes = ctx.gan.num_classes
  rows = min(num_classes, MORPH_ROWS)
  pairs = [(r % num_classes, (r + 1) % num_classes) for r in range(rows)]
  z, _ = ctx.latents(rows, 'interpolate/morph')
  ts = np.linspace(0.0, 1.0, STEPS)
  eye = np.eye(num_classes)
  weights = np.concatenate([(1 - ts)[:, None] * eye[a] + ts[:, None] * eye[b] for a, b in pairs])
  images = ctx.generate(np.repeat(z, STEPS, axis=0), weights)
  path = ctx.save_grid('interpolate_morph.png', images, STEPS)
  step_change = mean_step_change(images, STEPS)
  return {'file': os.path.basename(path), 'method': method, 'pairs': [[_name(ctx, a), _name(ctx, b)] for a, b in pairs],
          'steps': STEPS, 'step_change': step_change,
          'mean_step_change': float(step_change.mean())}


# --- arithmetic --------------------------------------------------------------------

def _classify(ctx, images) -> np.ndarray:
  """The domain classifier's softmax probabilities (N, classes) for images in [-1, 1]."""
  try:
    logits = np.asarray(ctx.classifier_features(to_uint8(images))['logits'], np.float64)
  except errors.ConfigError as e:   # e.g. no domain classifier for data without classes
    raise NotApplicable(f'needs the domain classifier: {e}') from e
  logits = logits - logits.max(axis=-1, keepdims=True)
  return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)


@register('arithmetic')
def arithmetic(ctx) -> dict:
  draw, sampler = image_maker(ctx)
  population = max(ctx.num, MIN_POPULATION)
  z, labels = ctx.latents(population, 'arithmetic')
  images = draw(z, labels)
  probs = _classify(ctx, images)
  groups = choose_groups(probs, GROUP_SIZE)
  counts = np.bincount(probs.argmax(-1), minlength=probs.shape[1])
  if len(groups) < 3:
    raise NotApplicable(f'needs three classes; the domain classifier has {probs.shape[1]}.')
  (class_a, top_a, _), (class_b, top_b, _), (class_c, top_c, _) = groups
  means = [np.mean(z[top], axis=0) for top in (top_a, top_b, top_c)]
  result_z = arithmetic_z(z[top_a], z[top_b], z[top_c])
  noise = np.asarray(jax.random.normal(ctx.key('arithmetic/neighbourhood'),
                                       (NEIGHBOURS, z.shape[1])))
  neighbourhood = result_z + NEIGHBOUR_SIGMA * noise
  conditional = bool(ctx.gan.num_classes)
  # Conditional G: each mean under its own class; the result and its neighbours under C's.
  render_labels = (np.array([class_a, class_b, class_c] + [class_c] * (1 + NEIGHBOURS))
                   if conditional else np.zeros(4 + NEIGHBOURS, np.int32))
  rendered = draw(np.concatenate([np.stack(means + [result_z]), neighbourhood]).astype(np.float32),
                  render_labels)
  rendered_probs = _classify(ctx, rendered)
  rendered_class, rendered_confidence = rendered_probs.argmax(-1), rendered_probs.max(-1)

  files = []
  shown = np.full((3, GROUP_SIZE) + images.shape[1:], 1.0, np.float32)   # blank: white
  for row, top in enumerate((top_a, top_b, top_c)):
    shown[row, :len(top)] = images[top]
  files.append(os.path.basename(ctx.save_grid('arithmetic_groups.png',
                                       shown.reshape(-1, *images.shape[1:]), GROUP_SIZE)))
  files.append(os.path.basename(ctx.save_grid('arithmetic_equation.png', rendered[:4], 4)))
  files.append(os.path.basename(ctx.save_grid('arithmetic_neighbourhood.png', rendered[3:], 4)))

  def group(index, mean):
    cls, top, by_prediction = groups[index]
    return {'class': _name(ctx, cls), 'class_id': cls, 'size': len(top),
            'chosen_by': ('predicted class' if by_prediction else
                          'probability of the class (too few classes predicted)'),
            'predicted_total': int(counts[cls]),
            'mean_probability': float(probs[top, cls].mean()),
            'mean_z_norm': float(np.linalg.norm(mean))}

  def verdict(i):
    return {'class': _name(ctx, int(rendered_class[i])),
            'confidence': float(rendered_confidence[i])}

  neighbour_classes = rendered_class[4:]
  return {
      'files': files, 'sampler': sampler, 'population': population,
      'group_rule': (f'three distinct predicted classes with the highest summed softmax '
                     f'probability of their top {GROUP_SIZE} samples, best first as A, B, C; '
                     'each group averages those samples\' z. When fewer classes are '
                     'predicted, the rest are the classes most probable among the other '
                     f'samples, with their {GROUP_SIZE} most probable samples'),
      'attribute_groups': ('not implemented: TFDS celeb_a attributes are not available '
                           'offline; groups are the domain classifier\'s predicted classes'),
      'A': group(0, means[0]), 'B': group(1, means[1]), 'C': group(2, means[2]),
      'result_z_norm': float(np.linalg.norm(result_z)),
      'typical_z_norm': float(np.sqrt(z.shape[1])),
      'labels': ('each group mean rendered with its class, the result and its neighbours '
                 f'with group C\'s class ({_name(ctx, class_c)})' if conditional
                 else 'unconditional'),
      'predicted': {'mean_A': verdict(0), 'mean_B': verdict(1), 'mean_C': verdict(2),
                    'result': verdict(3)},
      'neighbourhood': {'count': NEIGHBOURS, 'sigma': NEIGHBOUR_SIGMA,
                        'predicted': {_name(ctx, int(c)): int(n) for c, n in
                                      zip(*np.unique(neighbour_classes, return_counts=True))}},
      'predicted_counts': {_name(ctx, int(c)): int(counts[c]) for c in np.flatnonzero(counts)},
  }


# --- directions --------------------------------------------------------------------

LINEAR_LAYERS = (nn.Dense, nn.Conv, nn.ConvTranspose, layers.ConvTranspose)


def first_layer_on_z(ctx) -> dict:
  """G's first weight layer on z: {'path', 'type', 'kernel' (in, out) as a dense kernel}.

  Found by running G once and recording the first dense or convolution
  layer called, except the 'embed' conditioning's label embedding (it reads
  the class, not z). A transposed convolution of z as a 1 x 1 map whose every
  tap lands in the output (dcgan28's first layer) is one matrix on z too:
  its kernel, (k, k, out, in), becomes (in, k * k * out). Row order is
  irrelevant to A^T A.
  """
  found = []

  def record(next_fun, args, kwargs, context):
    module = context.module
    first = (not found and context.method_name == '__call__'
             and isinstance(module, LINEAR_LAYERS) and module.name != 'label_embed')
    output = next_fun(*args, **kwargs)
    if first:
      transposed = isinstance(module, layers.ConvTranspose) or getattr(
          module, 'transpose_kernel', False)
      found.append({
          'path': '/'.join(module.path) or module.name, 'type': type(module).__name__,
          'dense': isinstance(module, nn.Dense),
          'conv_transpose': isinstance(module, (nn.ConvTranspose, layers.ConvTranspose)),
          'in_axis': -1 if transposed else -2,
          'in_shape': tuple(args[0].shape), 'out_shape': tuple(output.shape),
          # Read inside the call: under spectral norm, the normalised weights.
          'kernel': module.variables['params']['kernel']})
    return output

  def first_kernel(variables, z, labels):
    with nn.intercept_methods(record):
      ctx.gan.generator.apply(variables, z, labels, train=False)
    return found[0]['kernel'] if found else jnp.zeros(())

  z, labels = ctx.latents(1, 'directions/probe')
  # Jitted, all of G but the kernel is dead code: no compiling of G op by op.
  kernel = np.asarray(jax.jit(first_kernel)(ctx.variables, z, labels))
  if not found:
    raise NotApplicable('G has no dense or convolution layer on z.')
  layer = found[0]
  path, kind, in_shape = layer['path'], layer['type'], layer['in_shape']
  if layer['dense']:
    matrix = kernel
  elif (layer['conv_transpose'] and len(in_shape) == 4 and in_shape[1:3] == (1, 1)
        and layer['out_shape'][1:3] == kernel.shape[:2]):
    in_axis = layer['in_axis']
    matrix = np.moveaxis(kernel, in_axis, 0).reshape(kernel.shape[in_axis], -1)
  else:
    raise NotApplicable(f'G\'s first layer on z, {path} ({kind}, input {in_shape}), is '
                        'not a dense layer or a transposed convolution of z as a 1x1 map: '
                        'not one matrix on z.')
  return {'path': path, 'type': kind, 'kernel': matrix}


@register('directions')
def directions(ctx) -> dict:
  if ctx.family == 'ddpm':
    raise NotApplicable('the DDPM has no first layer on z: its noise x_T is an image that the '
                        'U-Net denoises over many steps, not an input to one linear map.')
  layer = first_layer_on_z(ctx)
  latent_dim = ctx.gan.latent_dim
  kernel = layer['kernel']
  if kernel.shape[0] < latent_dim:
    raise NotApplicable(f'G\'s first layer {layer["path"]} takes {kernel.shape[0]} inputs, '
                        f'fewer than z\'s {latent_dim}.')
  # z comes first in G's input; the rows after it read the class (concat or embed).
  eigenvalues, found = sefa_directions(kernel[:latent_dim], SEFA_K)
  z, labels = ctx.latents(SEFA_SEEDS, 'directions')
  strengths = np.asarray(SEFA_STRENGTHS)
  # Rows: (direction, seed), columns: strengths.
  edited = (z[None, :, None, :]
            + strengths[None, None, :, None] * found[:, None, None, :]).reshape(-1, latent_dim)
  draw, sampler = image_maker(ctx)
  images = draw(edited.astype(np.float32), np.tile(np.repeat(labels, len(strengths)), len(found)))
  files = [os.path.basename(ctx.save_grid('directions_sefa.png', images, len(strengths)))]
  grid = images.reshape(len(found), SEFA_SEEDS, len(strengths), -1).astype(np.float64)
  change = np.abs(grid[:, :, -1] - grid[:, :, 0]).mean(axis=(1, 2))
  fraction = eigenvalues / eigenvalues.sum()
  files.append(os.path.basename(_plot_eigenvalues(ctx, fraction, len(found))))
  return {
      'files': files, 'sampler': sampler, 'layer': layer['path'], 'layer_type': layer['type'],
      'kernel_shape': list(kernel.shape), 'rows_for_z': latent_dim,
      'rows_for_class': int(kernel.shape[0] - latent_dim),
      'eigenvalues': eigenvalues, 'eigenvalue_fraction': fraction,
      'top_k_fraction': float(fraction[:len(found)].sum()),
      'k': len(found), 'strengths': strengths, 'seeds': SEFA_SEEDS,
      'labels': [_name(ctx, int(c)) for c in labels] if ctx.gan.num_classes else None,
      'directions': found,
      'grid': 'rows: direction 1..k, each for every seed; columns: strengths',
      # mean |G(z + s_max n) - G(z + s_min n)| per direction, pixels in [-1, 1]
      'image_change': change,
  }


def _plot_eigenvalues(ctx, fraction, k: int) -> str:
  shown = min(len(fraction), 50)
  figure, axis = plt.subplots(figsize=(6, 3.5))
  index = np.arange(1, shown + 1)
  axis.bar(index, fraction[:shown], color=['tab:orange' if i <= k else 'tab:blue' for i in index])
  axis.set_xlabel('eigenvector of A^T A (descending)')
  axis.set_ylabel('share of the eigenvalue sum')
  twin = axis.twinx()
  twin.plot(index, np.cumsum(fraction)[:shown], color='black', linewidth=1)
  twin.set_ylabel('cumulative')
  twin.set_ylim(0, 1.02)
  axis.set_title(f'SeFa: first layer on z (top {k} rendered)')
  return ctx.save_figure('directions_eigenvalues.png', figure)
