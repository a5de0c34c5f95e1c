"""`embedding`: t-SNE of real and generated images in the domain classifier's feature space.

min(ctx.num, MAX_POINTS) real images and as many samples are embedded
together (scikit-learn's Barnes-Hut t-SNE, PCA initialisation, seeded from
ctx). Two figures: coloured by class (real: their labels; generated: the
conditioning label for a conditional G, else the classifier's predicted
class) and coloured real vs generated. Generated regions with no real
images are G's inventions; real clusters with no samples are missing modes,
which the per-class counts of the classifier's predictions also show as
empty or thin classes.
"""

from __future__ import annotations

import jax
import matplotlib
matplotlib.use('Agg')  # files only; no display needed
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gan_jax import errors  # pylint: disable=g-import-not-at-top
from gan_jax.analysis import NotApplicable, register  # pylint: disable=g-import-not-at-top
from gan_jax.analysis.context import to_uint8  # pylint: disable=g-import-not-at-top

MAX_POINTS = 1000          # of each population: t-SNE's cost grows as n log n, its plot's clutter as n
MAX_PERPLEXITY = 30.0      # scikit-learn's default, for populations of a thousand or more
REAL_COLOUR, FAKE_COLOUR = '#1f4fd1', '#d62728'


def suited_perplexity(num_points: int) -> float:
  """30 when there are enough points, else (n - 1) / 3: Barnes-Hut looks at 3 * perplexity neighbours of each point."""
  return float(min(MAX_PERPLEXITY, max(1.0, (num_points - 1) / 3.0)))


def tsne_embedding(features, perplexity: float, seed: int):
  """((N, 2) t-SNE coordinates of `features` (N, D), the final KL divergence)."""
  from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top  (slow import)
  tsne = TSNE(n_components=2, perplexity=perplexity, init='pca', learning_rate='auto',
              random_state=seed)
  coordinates = tsne.fit_transform(np.asarray(features, np.float64))
  return coordinates, float(tsne.kl_divergence_)


def _classifier_outputs(ctx, images) -> dict:
  try:
    return ctx.classifier_features(images)
  except errors.ConfigError as e:   # e.g. no domain classifier for data without classes
    raise NotApplicable(f'needs the domain classifier: {e}') from e


@register('embedding')
def embedding(ctx) -> dict:
  num = min(ctx.num, MAX_POINTS)
  real, real_labels = ctx.real_images(num, name='embedding')
  z, labels = ctx.latents(num, 'embedding')
  generated = to_uint8(ctx.generate(z, labels))
  if len(real) + len(generated) < 4:
    raise NotApplicable('needs at least 2 real images and 2 samples (--num).')
  real_out = _classifier_outputs(ctx, real)
  fake_out = _classifier_outputs(ctx, generated)
  predicted = np.asarray(fake_out['logits']).argmax(-1)
  conditional = ctx.gan.num_classes > 0
  fake_classes = labels if conditional else predicted
  # The classifier's classes, unless the data's labels or G's run past them.
  num_classes = max([np.asarray(real_out['logits']).shape[-1]]
                    + [int(classes.max()) + 1 for classes in (real_labels, fake_classes)])
  colour_source = 'conditioning label' if conditional else "classifier's predicted class"

  perplexity = suited_perplexity(len(real) + len(generated))
  seed = int(jax.random.randint(ctx.key('embedding/tsne'), (), 0, 2 ** 31 - 1))
  coordinates, kl = tsne_embedding(
      np.concatenate([real_out['features'], fake_out['features']]), perplexity, seed)
  real_xy, fake_xy = coordinates[:len(real)], coordinates[len(real):]

  names = ctx.class_names
  names = names if len(names) == num_classes else [str(i) for i in range(num_classes)]
  fake_counts = np.bincount(predicted, minlength=num_classes)
  files = [_plot_classes(ctx, real_xy, real_labels, fake_xy, fake_classes, names, colour_source),
           _plot_real_fake(ctx, real_xy, fake_xy)]
  numbers = {
      'num_real': len(real), 'num_generated': len(generated), 'perplexity': perplexity,
      'tsne_seed': seed, 'tsne_kl_divergence': kl,
      'feature_dim': int(np.asarray(real_out['features']).shape[-1]),
      'generated_colour': colour_source,
      'real_class_counts': dict(zip(names, np.bincount(real_labels, minlength=num_classes)
                                    .tolist())),
      'generated_predicted_class_counts': dict(zip(names, fake_counts.tolist())),
      'generated_empty_classes': [name for name, count in zip(names, fake_counts) if not count],
      'files': files,
  }
  if conditional:
    numbers['generated_label_agreement'] = float(np.mean(predicted == labels))
  return numbers


def _class_colours(num_classes: int):
  cmap = plt.get_cmap('tab10' if num_classes <= 10 else 'tab20' if num_classes <= 20 else 'hsv')
  return [cmap(i if num_classes <= 20 else i / num_classes) for i in range(num_classes)]


def _plot_classes(ctx, real_xy, real_labels, fake_xy, fake_classes, names, colour_source) -> str:
  colours = np.asarray(_class_colours(len(names)))
  fig, ax = plt.subplots(figsize=(7.5, 6.5))
  ax.scatter(real_xy[:, 0], real_xy[:, 1], s=10, c=colours[real_labels], marker='o',
             alpha=0.55, linewidths=0)
  ax.scatter(fake_xy[:, 0], fake_xy[:, 1], s=14, c=colours[fake_classes], marker='x',
             alpha=0.8, linewidths=0.8)
  if len(names) <= 20:
    handles = [plt.Line2D([], [], linestyle='', marker='s', color=colours[i], label=name)
               for i, name in enumerate(names)]
    handles += [plt.Line2D([], [], linestyle='', marker='o', color='black', label='real'),
                plt.Line2D([], [], linestyle='', marker='x', color='black',
                           label=f'generated ({colour_source})')]
    ax.legend(handles=handles, fontsize=7, loc='center left', bbox_to_anchor=(1.0, 0.5))
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(f't-SNE of classifier features by class (step {ctx.step})')
  fig.tight_layout()
  ctx.save_figure('embedding_classes.png', fig)
  return 'embedding_classes.png'


def _plot_real_fake(ctx, real_xy, fake_xy) -> str:
  fig, ax = plt.subplots(figsize=(6.5, 6.5))
  ax.scatter(real_xy[:, 0], real_xy[:, 1], s=10, color=REAL_COLOUR, alpha=0.55, linewidths=0,
             label=f'real ({len(real_xy)})')
  ax.scatter(fake_xy[:, 0], fake_xy[:, 1], s=10, color=FAKE_COLOUR, alpha=0.55, linewidths=0,
             label=f'generated ({len(fake_xy)})')
  ax.legend(fontsize=8)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(f't-SNE of classifier features, real vs generated (step {ctx.step})')
  fig.tight_layout()
  ctx.save_figure('embedding_real_fake.png', fig)
  return 'embedding_real_fake.png'
