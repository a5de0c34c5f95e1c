"""`spectrum`: mean 2D Fourier spectra of real and generated images, and their radial profiles.

Stride-2 transposed convolutions leave a checkerboard in G's images (Odena et
al. 2016, "Deconvolution and checkerboard artifacts"); in the spectrum it is
energy at the highest frequencies, the Nyquist lines and corner, that real
images lack (Durall et al. 2020, "Watch your up-convolution").

Conventions. Each channel of each image (floats in [-1, 1]) goes through
numpy's orthonormal 2D FFT; log(|F| + EPS) is averaged over channels and
images (averaging log spectra, not the channels' pixels, so a colour
checkerboard whose channels cancel in a grey image still shows), then
fftshifted: DC sits at (H // 2, W // 2) and, for even sizes, the Nyquist
frequency (H/2, W/2) at the corner (0, 0). The image mean is kept, not
removed: a brightness difference between real and generated images then
shows in the DC pixel alone and touches no other frequency, and a constant
image has only the DC term.
"""

from __future__ import annotations

import contextlib
import inspect

import jax
import matplotlib
matplotlib.use('Agg')  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gan_jax.analysis import register  # pylint: disable=g-import-not-at-top
from gan_jax.analysis.context import to_float  # pylint: disable=g-import-not-at-top
from gan_jax.generation import sampling  # pylint: disable=g-import-not-at-top
from gan_jax.models import layers  # pylint: disable=g-import-not-at-top

EPS = 1e-6        # floor of |F| under the log: exact zeros (e.g. of a constant image) stay finite
FFT_CHUNK = 256   # images per FFT call: bounds the complex128 buffer for large --num


def mean_log_spectrum(images) -> np.ndarray:
  """(H, W) mean over images and channels of log(|FFT2| + EPS), fftshifted (DC at the centre).

  `images`: (N, H, W) or (N, H, W, C) floats, used as they are (mean kept).
  """
  images = np.asarray(images, np.float64)
  if images.ndim == 3:
    images = images[..., None]
  total = np.zeros(images.shape[1:3])
  for start in range(0, len(images), FFT_CHUNK):
    magnitude = np.abs(np.fft.fft2(images[start:start + FFT_CHUNK], axes=(1, 2), norm='ortho'))
    total += np.log(magnitude + EPS).sum(axis=(0, 3))
  return np.fft.fftshift(total / (len(images) * images.shape[3]))


def frequency_radius(shape) -> np.ndarray:
  """(H, W): each fftshifted frequency's distance from DC, in frequency bins."""
  h, w = shape
  rows, cols = np.indices((h, w))
  return np.hypot(rows - h // 2, cols - w // 2)


def radial_profile(spectrum: np.ndarray) -> np.ndarray:
  """Azimuthal mean of an fftshifted (H, W) spectrum: entry r averages the radii that round to r.

  Runs out to the corners (radius ~ H/2 * sqrt 2 for a square), where the
  Nyquist corner, the checkerboard's frequency, lies.
  """
  spectrum = np.asarray(spectrum, np.float64)
  radius = np.rint(frequency_radius(spectrum.shape)).astype(int).ravel()
  total = np.bincount(radius, weights=spectrum.ravel())
  count = np.bincount(radius)
  return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def high_frequency_gaps(real_spectrum: np.ndarray, fake_spectrum: np.ndarray) -> dict:
  """Generated-minus-real log magnitude where checkerboards put their energy.

  outer_ring: frequencies at radius >= min(H, W) / 2 (the axes' Nyquist
  points and everything beyond them: the spectrum's corners).
  nyquist_lines: the row and column of the highest frequency along either
  axis (index 0 after fftshift). nyquist_corner: (H/2, W/2), index (0, 0).
  """
  gap = np.asarray(fake_spectrum, np.float64) - np.asarray(real_spectrum, np.float64)
  h, w = gap.shape
  outer = frequency_radius(gap.shape) >= min(h, w) / 2
  lines = np.zeros(gap.shape, bool)
  lines[0, :] = lines[:, 0] = True
  return {'outer_ring': float(gap[outer].mean()), 'nyquist_lines': float(gap[lines].mean()),
          'nyquist_corner': float(gap[0, 0])}


@register('spectrum')
def spectrum(ctx) -> dict:
  real_u8, _ = ctx.real_images(ctx.num, name='spectrum')
  z, labels = ctx.latents(ctx.num, 'spectrum')
  generated = ctx.generate(z, labels)
  real_spectrum = mean_log_spectrum(to_float(real_u8))
  fake_spectrum = mean_log_spectrum(generated)
  real_profile, fake_profile = radial_profile(real_spectrum), radial_profile(fake_spectrum)
  h, w = real_spectrum.shape
  files = [_plot_spectra(ctx, real_spectrum, fake_spectrum),
           _plot_profiles(ctx, real_profile, fake_profile, min(h, w))]
  return {
      'num_real': len(real_u8), 'num_generated': len(generated),
      'convention': 'mean over images and channels of log(|orthonormal FFT2| + '
                    f'{EPS:g}), fftshifted, image mean kept (DC at (H//2, W//2))',
      'profile_frequencies': (np.arange(len(real_profile)) / min(h, w)).tolist(),
      'real_profile': real_profile.tolist(), 'generated_profile': fake_profile.tolist(),
      'generated_minus_real': high_frequency_gaps(real_spectrum, fake_spectrum),
      'real_dc': float(real_spectrum[h // 2, w // 2]),
      'generated_dc': float(fake_spectrum[h // 2, w // 2]),
      'conv_transpose_impls': _compare_conv_transpose_impls(ctx, z, labels, generated,
                                                            fake_spectrum),
      'files': files,
  }


def _extent(h: int, w: int):
  """imshow extent that puts each fftshifted pixel at its frequency in cycles per pixel."""
  return ((-(w // 2) - 0.5) / w, (w - w // 2 - 0.5) / w,
          (-(h // 2) - 0.5) / h, (h - h // 2 - 0.5) / h)


def _plot_spectra(ctx, real_spectrum, fake_spectrum) -> str:
  h, w = real_spectrum.shape
  low = min(real_spectrum.min(), fake_spectrum.min())
  high = max(real_spectrum.max(), fake_spectrum.max())
  gap = fake_spectrum - real_spectrum
  limit = max(float(np.abs(gap).max()), 1e-9)
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
  panels = ((real_spectrum, 'real', 'viridis', low, high),
            (fake_spectrum, 'generated', 'viridis', low, high),
            (gap, 'generated - real', 'RdBu_r', -limit, limit))
  for ax, (values, title, cmap, vmin, vmax) in zip(axes, panels):
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, extent=_extent(h, w),
                      origin='lower')
    ax.set_title(title)
    ax.set_xlabel('horizontal frequency (cycles/pixel)')
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  axes[0].set_ylabel('vertical frequency (cycles/pixel)')
  fig.suptitle(f'Mean log |FFT| (step {ctx.step}); a checkerboard shows at the -0.5 edges '
               'and corner (the Nyquist frequency)')
  fig.tight_layout()
  ctx.save_figure('spectrum_2d.png', fig)
  return 'spectrum_2d.png'


def _plot_profiles(ctx, real_profile, fake_profile, size: int) -> str:
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  frequencies = np.arange(len(real_profile)) / size
  ax.plot(frequencies, real_profile, label='real', color='#1f4fd1', linewidth=1.4)
  ax.plot(frequencies, fake_profile, label='generated', color='#d62728', linewidth=1.4)
  ax.axvline(0.5, color='gray', linestyle=':', linewidth=1)
  ax.text(0.5, 0.98, ' axis Nyquist', transform=ax.get_xaxis_transform(), va='top',
          fontsize=8, color='gray')
  ax.set_xlabel('radial frequency (cycles/pixel)')
  ax.set_ylabel('mean log |FFT|')
  ax.set_title(f'Azimuthally averaged spectrum (step {ctx.step})')
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  ctx.save_figure('spectrum_profile.png', fig)
  return 'spectrum_profile.png'


# --- the other transposed-convolution implementation ------------------------------------

@contextlib.contextmanager
def _conv_transpose_swapped(impls_seen: list):
  """While open, every `layers.conv_transpose` call builds the other implementation.

  No config field selects `impl`: the models take `layers.conv_transpose` by
  name when traced, with its default, so swapping that attribute during
  tracing is the one way to build the same G with the other implementation
  (tests/test_conv_transpose.py does the same). `impls_seen` collects the
  impl each call asked for. Restored on exit; trace nothing else meanwhile.
  """
  original = layers.conv_transpose
  default = inspect.signature(original).parameters['impl'].default

  def swapped(*args, impl=default, **kwargs):
    impls_seen.append(impl)
    other = next(name for name in layers.CONV_TRANSPOSE_IMPLS if name != impl)
    return original(*args, impl=other, **kwargs)

  layers.conv_transpose = swapped
  try:
    yield
  finally:
    layers.conv_transpose = original


def _compare_conv_transpose_impls(ctx, z, labels, generated, fake_spectrum) -> dict:
  """G's images for the same z and weights with the other conv_transpose impl, against the run's."""
  gan = ctx.gan

  def draw(z_and_labels, variables):
    return sampling.draw(gan, variables, z_and_labels[0], z_and_labels[1])

  impls_seen = []
  with _conv_transpose_swapped(impls_seen):
    jax.eval_shape(draw, (z[:1], labels[:1]), ctx.variables)
  if not impls_seen:
    return {'note': 'G builds no layers.conv_transpose, so there is no implementation '
                    'to swap (e.g. no transposed convolutions, or nn.ConvTranspose directly).'}
  with _conv_transpose_swapped([]):
    # A fresh jit, first called (so traced) inside the swap: its program has the other layers.
    other = ctx.batched(draw)(z, labels)
  run_impls = sorted(set(impls_seen))
  other_impls = sorted({next(n for n in layers.CONV_TRANSPOSE_IMPLS if n != i)
                        for i in impls_seen})
  other_spectrum = mean_log_spectrum(other)
  return {
      'run': run_impls, 'other': other_impls, 'layers': len(impls_seen),
      'how': 'no config field selects the implementation; the same weights were traced '
             'again with layers.conv_transpose building the other one',
      'max_abs_image_diff': float(np.abs(other - generated).max()),
      'max_abs_spectrum_diff': float(np.abs(other_spectrum - fake_spectrum).max()),
      'max_abs_profile_diff': float(np.nanmax(np.abs(radial_profile(other_spectrum)
                                                     - radial_profile(fake_spectrum)))),
  }
