"""Loss curves from a run's `metrics.jsonl`: D loss on real and fake, G loss, and D's outputs."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib
matplotlib.use('Agg')  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

# (metric key, legend name) per panel; names follow the reference reports.
PANELS = (
    ('Losses', (('d_loss_real', 'D loss (real)'), ('d_loss_fake', 'D loss (fake)'),
                ('d_loss_pair', 'D loss (paired)'),
                ('g_loss', 'G loss'), ('g_similarity_loss', 'MSE similarity'))),
    ('Discriminator outputs', (('d_real', 'D(x)'), ('d_fake', 'D(G(z))'))),
)


def plot_curves(records: Sequence[dict], path: str, title: str = '') -> str:
  """Plots every known metric present in `records` (dicts with a 'step') to `path`."""
  fig, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4))
  for ax, (panel_title, series) in zip(axes, PANELS):
    for key, label in series:
      points = [(r['step'], r[key]) for r in records if key in r]
      if points:
        steps, values = zip(*points)
        ax.plot(steps, values, label=label, linewidth=1.2)
    ax.set_title(panel_title)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    if ax.has_data():
      ax.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
