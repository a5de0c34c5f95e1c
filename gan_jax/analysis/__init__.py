"""Looking inside a trained run: analyses registered by name, run by `python -m gan_jax.analyze`.

Each analysis is `fn(ctx: Context) -> dict`: it writes its PNGs through
`ctx.save_grid` / `ctx.save_figure` into WORKDIR/analysis/ and returns the
numbers behind them, which `gan_jax.analyze` writes to
WORKDIR/analysis/NAME.json. Adding one never touches the command line.

  interpolate   paths between noise vectors (slerp/lerp), class morphs
  arithmetic    the DCGAN paper's vector arithmetic on group means of z
  spectrum      mean 2D Fourier spectra of real and generated images
  discriminator D's and G's filters, D's feature maps and saliency, D's logits
  embedding     t-SNE of real and generated images in feature space
  directions    closed-form semantic directions of G's first layer (SeFa)
  duplicates    nearest-neighbour pairs: sample-sample and sample-training
"""

from __future__ import annotations

from gan_jax.analysis.context import Context
from gan_jax.registry import Registry

ANALYSES = Registry('analysis', '--what')


class NotApplicable(Exception):
  """Raised by an analysis that does not fit the run (e.g. `directions` on a DDPM); says why."""


def register(name: str):
  return ANALYSES.register(name)


def load_all() -> None:
  """Imports the modules that register analyses (each imports JAX and plotting: slow)."""
  # pylint: disable=g-import-not-at-top,unused-import
  from gan_jax.analysis import discriminator, duplicates, embedding, latent, spectrum


__all__ = ['ANALYSES', 'Context', 'NotApplicable', 'register', 'load_all']
