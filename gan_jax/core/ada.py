"""ADA's differentiable augmentations (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", Appendix B; the `bgc` pipeline plus cutout).

Each op is applied to each example independently with probability p (its own
Bernoulli draw); its parameters, all per example, are:
  blit    xflip       mirror left-right with probability 1/2
          rotate90    k * 90 degrees counter-clockwise, k uniform in {0, 1, 2, 3}
          xint        integer shift round(U(-0.125, 0.125) * size) per axis
  geom    scale       isotropic, s = 2^N(0, 0.2^2)
          rotate      angle U(-pi, pi), drawn twice (before and after aniso), each
                      with p_rot = 1 - sqrt(1 - p), so some rotation happens with p
          aniso       x * s and y / s, s = 2^N(0, 0.2^2)
          xfrac       shift N(0, 0.125^2) * size per axis
  color   brightness  + b, b ~ N(0, 0.2^2)
          contrast    * c, c = 2^N(0, 0.5^2)
          lumaflip    with probability 1/2, I - 2 v v^T (v = (1, 1, 1) / sqrt(3)):
                      negates luma, keeps chroma
          hue         rotation about v by U(-pi, pi)
          saturation  the part orthogonal to v times s = 2^N(0, 1)
  cutout  cutout      a zeroed square of half the side, centre uniform in the image

Blit ops are exact index operations (reflect padding for xint). Geom ops are
composed into one output-to-input matrix per example and resampled once; colour
ops into one 4x4 matrix per example, applied to the pixel values as they are
([-1, 1], as in ADA). An example that drew no geom op skips the resampling, and
one that drew no colour op the colour matrix (jnp.where), so at p = 0 the output
is bitwise the input and unaugmented examples are never resampled.

Departures from stylegan2-ada: it folds the blit ops into the same matrix as the
geom ops and resamples once, after upsampling 2x with a wavelet filter and
before filtering back down; here blit ops are exact and geom ops are sampled
bicubically (Keys, a = -0.5) at 1x, which aliases more when content shrinks.
Parameters come from one uniform draw per op (normals by the inverse CDF), so
the random streams differ from ADA's, not the distributions. Grayscale images
are transformed as r = g = b = v and averaged back to one channel.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import errors

Array = jax.Array

OP_GROUPS: dict[str, tuple[str, ...]] = {
    'blit': ('xflip', 'rotate90', 'xint'),
    'geom': ('scale', 'rotate', 'aniso', 'xfrac'),
    'color': ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation'),
    'cutout': ('cutout',),
}
PIPELINE_ORDER: tuple[str, ...] = tuple(op for group in OP_GROUPS.values() for op in group)

# Tiny matrix products must not drop to TF32/bf16 on accelerators.
_HIGHEST = jax.lax.Precision.HIGHEST


def _split_entry(entry: str, spec: str) -> tuple[str, float]:
  """'color:0.5' -> ('color', 0.5); 'color' -> ('color', 1.0)."""
  name, _, multiplier = entry.partition(':')
  if not multiplier:
    return name.strip(), 1.0
  try:
    value = float(multiplier)
  except ValueError:
    value = -1.0
  if value < 0:
    raise errors.ConfigError(f'ADA ops {spec!r}: {entry!r} gives {multiplier!r} as the '
                             'probability multiplier of its ops; give a number >= 0.')
  return name.strip(), value


def parse_ops(spec: str) -> tuple[str, ...]:
  """'blit,geom,color' (group and/or op names, comma separated) -> op names in pipeline order.

  An entry may carry a probability multiplier, 'color:0.5': its ops then
  apply with probability p x 0.5 (`parse_multipliers`), as the per-op
  strengths of StyleGAN2-ADA's AugmentPipe (R3GAN's brightness=0.5, ...).
  """
  entries = [_split_entry(entry, spec)[0] for entry in spec.split(',') if entry.strip()]
  unknown = [entry for entry in entries if entry not in OP_GROUPS and entry not in PIPELINE_ORDER]
  if unknown or not entries:
    raise errors.ConfigError(
        f'ADA ops {spec!r}: ' + (f'unknown {", ".join(map(repr, unknown))}; ' if unknown
                                 else 'empty; ')
        + f'give a comma list of groups ({", ".join(OP_GROUPS)}) and/or ops '
        f'({", ".join(PIPELINE_ORDER)}).')
  wanted = {op for entry in entries for op in OP_GROUPS.get(entry, (entry,))}
  return tuple(op for op in PIPELINE_ORDER if op in wanted)


def parse_multipliers(spec: str) -> dict[str, float]:
  """{op: probability multiplier} of the ops of `spec` whose entry gives one other than 1."""
  parse_ops(spec)   # the same checks, and the same message
  multipliers = {}
  for entry in spec.split(','):
    if entry.strip():
      name, value = _split_entry(entry, spec)
      for op in OP_GROUPS.get(name, (name,)):
        if value != 1.0:
          multipliers[op] = value
  return multipliers


def heuristic_rt(real_logits: Array) -> Array:
  """ADA's overfitting heuristic r_t = E[sign(D(x_real))] over the batch (float32 scalar)."""
  return jnp.mean(jnp.sign(jnp.asarray(real_logits, jnp.float32)))


def adjust_p(p, rt, *, target: float, batch_size: int, interval: int, kimg: float) -> Array:
  """p + sign(rt - target) * batch_size * interval / (kimg * 1000), clipped to [0, 1].

  The step lets p cross [0, 1] in `kimg` thousand real images (the paper uses 500).
  """
  step = batch_size * interval / (kimg * 1000.0)
  direction = jnp.sign(jnp.asarray(rt, jnp.float32) - target)
  return jnp.clip(jnp.asarray(p, jnp.float32) + direction * step, 0.0, 1.0)


def xflip(images: Array, flip: Array) -> Array:
  """Mirrors left-right the examples where `flip` (B,) bool is True."""
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


def rotate90(images: Array, k: Array) -> Array:
  """Rotates example b by k[b] * 90 degrees counter-clockwise, as np.rot90(img, k, axes=(0, 1))."""
  if images.shape[1] != images.shape[2]:
    raise ValueError(f'rotate90 needs square images, got {images.shape[1]}x{images.shape[2]}.')
  out = images
  for turns in (1, 2, 3):
    out = jnp.where((k == turns)[:, None, None, None], jnp.rot90(images, turns, axes=(1, 2)), out)
  return out


def _reflect(index: Array, size: int) -> Array:
  """Maps any integer index into [0, size) by mirroring about the edge pixels (np.pad 'reflect')."""
  if size == 1:
    return jnp.zeros_like(index)
  period = 2 * (size - 1)
  folded = jnp.mod(index, period)
  return jnp.where(folded >= size, period - folded, folded)


def translate_int(images: Array, dx: Array, dy: Array) -> Array:
  """out[b, y, x] = in[b, y - dy[b], x - dx[b]] for integer (B,) shifts, reflect padding."""
  _, height, width, _ = images.shape
  cols = _reflect(jnp.arange(width)[None, :] - dx[:, None], width)
  rows = _reflect(jnp.arange(height)[None, :] - dy[:, None], height)
  return jax.vmap(lambda image, r, c: image[r][:, c])(images, rows, cols)


def _keys_weights(frac: Array) -> Array:
  """Keys (a = -0.5) weights of the taps at floor - 1 .. floor + 2 for fractional part `frac`."""
  distance = jnp.abs(jnp.stack([frac + 1, frac, 1 - frac, 2 - frac], axis=-1))
  a = -0.5
  near = ((a + 2) * distance - (a + 3)) * distance ** 2 + 1
  far = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
  return jnp.where(distance <= 1, near, jnp.where(distance < 2, far, 0.0))


def resample_affine(images: Array, matrices: Array) -> Array:
  """Samples each example at M @ (x, y, 1) for every output pixel, bicubic, reflect outside.

  Coordinates: pixel centres in a frame centred on the image centre, x right, y
  down, one unit per pixel, so output pixel (row i, column j) sits at
  (j - (W - 1) / 2, i - (H - 1) / 2). `matrices` (B, 3, 3) map those OUTPUT
  coordinates to INPUT coordinates (the inverse of the transform seen in the
  image): translation by (tx, ty) is [[1, 0, -tx], [0, 1, -ty], [0, 0, 1]], and
  [[cos t, -sin t], [sin t, cos t]] rotates the content counter-clockwise by t as
  seen on screen. Taps outside the image are mirrored about the edge pixels, so
  content continues instead of turning black. The identity reproduces the input
  exactly (Keys weights at integer offsets are 0, 1, 0, 0).
  """
  batch, height, width, _ = images.shape
  m = jnp.asarray(matrices, jnp.float32)[:, :, :, None, None]
  ys = jnp.arange(height, dtype=jnp.float32)[:, None] - (height - 1) / 2
  xs = jnp.arange(width, dtype=jnp.float32)[None, :] - (width - 1) / 2
  cols = m[:, 0, 0] * xs + m[:, 0, 1] * ys + m[:, 0, 2] + (width - 1) / 2    # (B, H, W)
  rows = m[:, 1, 0] * xs + m[:, 1, 1] * ys + m[:, 1, 2] + (height - 1) / 2
  taps = jnp.arange(-1, 3)
  col_floor, row_floor = jnp.floor(cols), jnp.floor(rows)
  col_taps = _reflect(col_floor.astype(jnp.int32)[..., None] + taps, width)     # (B, H, W, 4)
  row_taps = _reflect(row_floor.astype(jnp.int32)[..., None] + taps, height)
  col_weights = _keys_weights(cols - col_floor)
  row_weights = _keys_weights(rows - row_floor)
  example = jnp.arange(batch)[:, None, None, None]
  out = 0.0
  # One row of taps at a time keeps the gathered block at 4, not 16, per pixel.
  for k in range(4):
    gathered = images[example, row_taps[..., k:k + 1], col_taps]                 # (B, H, W, 4, C)
    row_value = jnp.sum(col_weights[..., None] * gathered, axis=-2)
    out = out + row_weights[..., k, None] * row_value
  return out.astype(images.dtype)


def _affine(a, b, c, d, tx=0.0, ty=0.0) -> Array:
  """(B, 3, 3) matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (B,) or scalar entries."""
  a, b, c, d, tx, ty = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.float32)
                                              for v in (a, b, c, d, tx, ty)))
  zero, one = jnp.zeros_like(a), jnp.ones_like(a)
  return jnp.stack([jnp.stack([a, b, tx], -1), jnp.stack([c, d, ty], -1),
                    jnp.stack([zero, zero, one], -1)], -2)


def _rotation_inverse(angle: Array) -> Array:
  """Output-to-input matrix of a counter-clockwise (on screen) rotation by `angle`."""
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  return _affine(cos, -sin, sin, cos)


# v v^T for the luma axis v = (1, 1, 1) / sqrt(3); numpy so that importing
# this module does not start a jax backend.
_LUMA_PROJECTION = np.full((3, 3), 1.0 / 3.0, np.float32)


def _colour_matrix(linear: Array, offset: Array | None = None) -> Array:
  """(B, 4, 4) homogeneous matrices from (B, 3, 3) linear parts and (B, 3) offsets (default 0)."""
  offset = jnp.zeros(linear.shape[:-1]) if offset is None else offset
  top = jnp.concatenate([linear, offset[..., None]], axis=-1)
  bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0]), linear.shape[:-2] + (1, 4))
  return jnp.concatenate([top, bottom], axis=-2)


def _brightness_matrix(b: Array) -> Array:
  return _colour_matrix(jnp.broadcast_to(jnp.eye(3), b.shape + (3, 3)), jnp.stack([b] * 3, -1))


def _contrast_matrix(c: Array) -> Array:
  return _colour_matrix(c[:, None, None] * jnp.eye(3))


def _lumaflip_matrix(flip: Array) -> Array:
  reflection = jnp.eye(3) - 2 * _LUMA_PROJECTION
  return _colour_matrix(jnp.where(flip[:, None, None], reflection, jnp.eye(3)))


def _hue_matrix(angle: Array) -> Array:
  """Rodrigues' rotation about the luma axis by `angle`."""
  cross = jnp.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3)
  cos, sin = jnp.cos(angle)[:, None, None], jnp.sin(angle)[:, None, None]
  linear = cos * jnp.eye(3) + sin * cross + (1 - cos) * _LUMA_PROJECTION
  return _colour_matrix(linear)


def _saturation_matrix(s: Array) -> Array:
  linear = _LUMA_PROJECTION + s[:, None, None] * (jnp.eye(3) - _LUMA_PROJECTION)
  return _colour_matrix(linear)


def color_transform(images: Array, matrices: Array) -> Array:
  """Applies (B, 4, 4) homogeneous colour matrices to RGB; gray is used as r = g = b and averaged back."""
  rgb = images if images.shape[-1] == 3 else jnp.repeat(images, 3, axis=-1)
  m = jnp.asarray(matrices, jnp.float32)[:, None, None]
  # Elementwise rather than a matmul, whose default precision is reduced on GPUs.
  out = jnp.sum(m[..., :3, :3] * rgb[..., None, :], axis=-1) + m[..., :3, 3]
  if images.shape[-1] == 1:
    out = jnp.mean(out, axis=-1, keepdims=True)
  return out.astype(images.dtype)


def cutout(images: Array, apply: Array, key: jax.Array) -> Array:
  """Zeroes, where `apply` (B,) is True, a square of half the side centred uniformly in the image.

  Pixels whose centres lie within a quarter of the size of the centre on both
  axes are zeroed, so the square is clipped when the centre is near an edge.
  """
  batch, height, width, _ = images.shape
  centre = jax.random.uniform(key, (batch, 2))
  ys = (jnp.arange(height) + 0.5) / height
  xs = (jnp.arange(width) + 0.5) / width
  inside_y = jnp.abs(ys[None, :] - centre[:, :1]) < 0.25                           # (B, H)
  inside_x = jnp.abs(xs[None, :] - centre[:, 1:]) < 0.25                           # (B, W)
  zeroed = apply[:, None, None] & inside_y[:, :, None] & inside_x[:, None, :]
  return jnp.where(zeroed[..., None], jnp.zeros((), images.dtype), images)


def _normal(uniform: Array) -> Array:
  """Standard normal samples from uniform [0, 1) samples (inverse CDF, as jax.random.normal)."""
  return math.sqrt(2) * jax.lax.erf_inv(jnp.clip(2 * uniform - 1, -1 + 1e-7, 1 - 1e-7))


def _compose(steps, batch: int, size: int, *, output_to_input: bool) -> tuple[Array, Array]:
  """Product of the steps' (B, size, size) matrices where applied, and whether any was applied.

  Steps come in the order they act on the image; output-to-input matrices then
  compose as G1^-1 G2^-1 ..., forward (colour) matrices as ... C2 C1.
  """
  identity = jnp.broadcast_to(jnp.eye(size), (batch, size, size))
  product, any_applied = identity, jnp.zeros((batch,), bool)
  for applied, matrix in steps:
    # An exact identity where not applied (not, say, s * (1 / s)).
    matrix = jnp.where(applied[:, None, None], matrix, identity)
    pair = (product, matrix) if output_to_input else (matrix, product)
    product = jnp.matmul(*pair, precision=_HIGHEST)
    any_applied = any_applied | applied
  return product, any_applied


def augment(images: Array, p: Array | float, key: jax.Array, ops: Sequence[str],
            multipliers: dict | None = None) -> Array:
  """Applies each op in `ops` (static) to each example with probability p (may be traced).

  images: (B, H, W, C) float, C in {1, 3}, values in about [-1, 1]. Ops run in
  pipeline order whatever the order of `ops`; op i of PIPELINE_ORDER draws from
  fold_in(key, i) whether or not the others are enabled. Differentiable in
  `images`; bitwise identity at p == 0. `multipliers` ({op: m}, static) make
  op apply with probability min(1, p x m) instead.
  """
  unknown = [op for op in ops if op not in PIPELINE_ORDER]
  if unknown:
    raise errors.ConfigError(f'ADA ops {unknown}: not among {", ".join(PIPELINE_ORDER)}.')
  enabled = set(ops)
  batch, height, width, _ = images.shape
  p = jnp.clip(jnp.asarray(p, jnp.float32), 0.0, 1.0)
  # Each op's probability: p itself (the same array) unless it has a multiplier.
  p = {op: jnp.clip(p * multipliers[op], 0.0, 1.0) if op in (multipliers or {}) else p
       for op in PIPELINE_ORDER}
  # All ops' draws in one batched threefry call: one call per op would cost
  # seconds of XLA compile time on CPU. Row 0 decides whether the op applies
  # (uniform < p: never at p = 0, always at p = 1); rows 1-3 are its parameters.
  op_keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(key, i)))(
      jnp.arange(len(PIPELINE_ORDER)))
  uniforms = jax.vmap(lambda k: jax.random.uniform(k, (4, batch)))(op_keys[:, 0])
  draws = {op: uniforms[i] for i, op in enumerate(PIPELINE_ORDER)}
  size = jnp.array([[width], [height]], jnp.float32)
  images = _blit(images, p, draws, enabled, size)
  images = _geometric(images, p, draws, enabled, size)
  images = _colour(images, p, draws, enabled)
  if 'cutout' in enabled:
    index = PIPELINE_ORDER.index('cutout')
    images = cutout(images, draws['cutout'][0] < p['cutout'], op_keys[index, 1])
  return images


def _blit(images: Array, p: dict, draws: dict, enabled: set, size: Array) -> Array:
  """The pixel-exact ops: x-flip, quarter turns, integer translation."""
  if 'xflip' in enabled:
    u = draws['xflip']
    images = xflip(images, (u[0] < p['xflip']) & (u[1] < 0.5))
  if 'rotate90' in enabled:
    u = draws['rotate90']
    turns = jnp.minimum(jnp.floor(u[1] * 4), 3).astype(jnp.int32)
    images = rotate90(images, jnp.where(u[0] < p['rotate90'], turns, 0))
  if 'xint' in enabled:
    u = draws['xint']
    shift = jnp.round((2 * u[1:3] - 1) * 0.125 * size).astype(jnp.int32)
    shift = jnp.where(u[0] < p['xint'], shift, 0)
    images = translate_int(images, shift[0], shift[1])
  return images


def _geometric(images: Array, p: dict, draws: dict, enabled: set, size: Array) -> Array:
  """Scale, rotation, anisotropy and fractional translation, composed into one resampling."""
  batch = images.shape[0]
  geom = []
  p_rotate = 1 - jnp.sqrt(1 - p['rotate'])
  rotate = draws['rotate']
  if 'scale' in enabled:
    u = draws['scale']
    s = jnp.exp2(0.2 * _normal(u[1]))
    geom.append((u[0] < p['scale'], _affine(1 / s, 0.0, 0.0, 1 / s)))
  if 'rotate' in enabled:
    geom.append((rotate[0] < p_rotate, _rotation_inverse((2 * rotate[1] - 1) * math.pi)))
  if 'aniso' in enabled:
    u = draws['aniso']
    s = jnp.exp2(0.2 * _normal(u[1]))
    geom.append((u[0] < p['aniso'], _affine(1 / s, 0.0, 0.0, s)))
  if 'rotate' in enabled:
    geom.append((rotate[2] < p_rotate, _rotation_inverse((2 * rotate[3] - 1) * math.pi)))
  if 'xfrac' in enabled:
    u = draws['xfrac']
    shift = _normal(u[1:3]) * 0.125 * size
    geom.append((u[0] < p['xfrac'], _affine(1.0, 0.0, 0.0, 1.0, -shift[0], -shift[1])))
  if not geom:
    return images
  output_to_input, any_geom = _compose(geom, batch, 3, output_to_input=True)
  resampled = resample_affine(images, output_to_input)
  return jnp.where(any_geom[:, None, None, None], resampled, images)


def _colour(images: Array, p: dict, draws: dict, enabled: set) -> Array:
  """Brightness, contrast, luma flip, hue and saturation, composed into one matrix."""
  colour_matrices = {
      'brightness': lambda u: _brightness_matrix(0.2 * _normal(u)),
      'contrast': lambda u: _contrast_matrix(jnp.exp2(0.5 * _normal(u))),
      'lumaflip': lambda u: _lumaflip_matrix(u < 0.5),
      'hue': lambda u: _hue_matrix((2 * u - 1) * math.pi),
      'saturation': lambda u: _saturation_matrix(jnp.exp2(_normal(u))),
  }
  colour = [(draws[op][0] < p[op], colour_matrices[op](draws[op][1]))
            for op in OP_GROUPS['color'] if op in enabled]
  if not colour:
    return images
  matrices, any_colour = _compose(colour, images.shape[0], 4, output_to_input=False)
  transformed = color_transform(images, matrices)
  return jnp.where(any_colour[:, None, None, None], transformed, images)
