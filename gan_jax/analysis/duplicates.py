"""`duplicates`: nearest-neighbour pairs in the domain classifier's feature space.

(a) Among ctx.num generated samples: each sample's nearest other sample; the
    closest of those pairs (each unordered pair once), shown side by side.
    `cls_dups` counts such pairs under a threshold; this shows them.
(b) Memorisation: each sample's nearest image in a training subset of
    max(ctx.num, TRAIN_SUBSET) images, next to the same distance for real
    images outside that subset. Samples much closer to the training images
    than held-out real images are is the memorisation signal; both are
    measured against the same subset, so its size cancels out.

Distances are Euclidean between the classifier's 'features', as in
`cls_dups`. The held-out real images come from ctx.heldout_split when it is
set; otherwise from the training data outside the subset: one seeded draw of
subset + held-out size, split by a seeded permutation into two disjoint sets
(two `ctx.real_images` draws under different names may share images).
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

TRAIN_SUBSET = 5000   # training images searched for each sample's nearest neighbour (at least)
PAIRS_SHOWN = 8
BLOCK = 1024          # query rows per distance block: bounds the (block, references) matrix


def nearest_neighbours(queries, references, exclude_self: bool = False):
  """(indices, distances): each query row's nearest reference row, Euclidean.

  `exclude_self`: queries and references are the same rows, and a row may not
  be its own neighbour.
  """
  queries = np.asarray(queries, np.float64)
  references = np.asarray(references, np.float64)
  if exclude_self and len(references) < 2:
    raise ValueError('exclude_self needs at least two rows.')
  reference_sq = np.sum(references ** 2, axis=1)
  indices = np.empty(len(queries), np.int64)
  for start in range(0, len(queries), BLOCK):
    block = queries[start:start + BLOCK]
    d2 = np.sum(block ** 2, axis=1)[:, None] + reference_sq[None, :] - 2 * block @ references.T
    if exclude_self:
      rows = np.arange(len(block))
      d2[rows, start + rows] = np.inf
    indices[start:start + len(block)] = np.argmin(d2, axis=1)
  # Measured directly: the expanded square above cancels badly at small distances,
  # and an exact copy must come out at 0.
  distances = np.linalg.norm(queries - references[indices], axis=1)
  return indices, distances


def closest_pairs(indices, distances, k: int) -> list[tuple[int, int, float]]:
  """The k closest (i, indices[i], distance) nearest-neighbour pairs, each unordered pair once."""
  pairs, seen = [], set()
  for i in np.argsort(distances, kind='stable'):
    pair = tuple(sorted((int(i), int(indices[i]))))
    if pair not in seen:
      seen.add(pair)
      pairs.append((pair[0], pair[1], float(distances[i])))
      if len(pairs) == k:
        break
  return pairs


def distance_summary(distances) -> dict:
  distances = np.asarray(distances, np.float64)
  return {'count': len(distances), 'min': float(distances.min()),
          'p1': float(np.percentile(distances, 1)), 'median': float(np.median(distances)),
          'mean': float(distances.mean())}


def _train_and_heldout(ctx):
  """(train uint8, held-out uint8, description): disjoint real image sets (see module doc)."""
  train_size = max(ctx.num, TRAIN_SUBSET)
  if ctx.heldout_split:
    train, _ = ctx.real_images(train_size, name='duplicates/train')
    heldout, _ = ctx.real_images(ctx.num, split=ctx.heldout_split, name='duplicates/heldout')
    return train, heldout, f'split {ctx.heldout_split!r}'
  images, _ = ctx.real_images(train_size + ctx.num, name='duplicates')
  # real_images returns its subset in index order: shuffled before splitting, so
  # neither set is, say, the dataset's first classes.
  order = np.asarray(jax.random.permutation(ctx.key('duplicates/split'), len(images)))
  num_heldout = min(ctx.num, max(len(images) - train_size, len(images) // 2))
  heldout, train = images[order[:num_heldout]], images[order[num_heldout:]]
  return train, heldout, 'training images outside the subset (disjoint indices)'


@register('duplicates')
def duplicates(ctx) -> dict:
  if ctx.num < 2:
    raise NotApplicable('needs --num of at least 2 samples.')
  z, labels = ctx.latents(ctx.num, 'duplicates')
  generated = to_uint8(ctx.generate(z, labels))
  train, heldout, heldout_source = _train_and_heldout(ctx)
  if len(heldout) < 2 or not len(train):
    raise NotApplicable(f'the data has too few images ({len(train) + len(heldout)}) '
                        'for a training subset and held-out images.')
  try:
    features = {name: np.asarray(ctx.classifier_features(images)['features'])
                for name, images in (('generated', generated), ('train', train),
                                     ('heldout', heldout))}
  except errors.ConfigError as e:   # e.g. no domain classifier for data without classes
    raise NotApplicable(f'needs the domain classifier: {e}') from e

  sample_nn, sample_nn_dist = nearest_neighbours(features['generated'], features['generated'],
                                                 exclude_self=True)
  _, heldout_nn_dist = nearest_neighbours(features['heldout'], features['heldout'],
                                          exclude_self=True)
  to_train, to_train_dist = nearest_neighbours(features['generated'], features['train'])
  _, heldout_to_train_dist = nearest_neighbours(features['heldout'], features['train'])

  generated_pairs = closest_pairs(sample_nn, sample_nn_dist, PAIRS_SHOWN)
  closest_samples = np.argsort(to_train_dist, kind='stable')[:PAIRS_SHOWN]
  train_pairs = [(int(i), int(to_train[i]), float(to_train_dist[i])) for i in closest_samples]
  heldout_p1 = float(np.percentile(heldout_to_train_dist, 1))
  files = [
      _pair_figure(ctx, 'duplicates_generated.png',
                   generated[[i for i, _, _ in generated_pairs]],
                   generated[[j for _, j, _ in generated_pairs]],
                   [d for _, _, d in generated_pairs], ('sample', 'its NN sample'),
                   'Closest pairs among generated samples'),
      _pair_figure(ctx, 'duplicates_train.png',
                   generated[[i for i, _, _ in train_pairs]],
                   train[[j for _, j, _ in train_pairs]],
                   [d for _, _, d in train_pairs], ('sample', 'NN training image'),
                   'Samples closest to a training image'),
      _histogram(ctx, to_train_dist, heldout_to_train_dist, heldout_source),
  ]
  return {
      'feature_space': 'domain classifier features, Euclidean distance',
      'num_generated': len(generated), 'num_train_subset': len(train),
      'num_heldout': len(heldout), 'heldout_source': heldout_source,
      'generated_pairs': [{'sample': i, 'sample_nn': j, 'distance': d}
                          for i, j, d in generated_pairs],
      'generated_nn': distance_summary(sample_nn_dist),
      'heldout_nn': distance_summary(heldout_nn_dist),
      'sample_to_train_pairs': [{'sample': i, 'train': j, 'distance': d}
                                for i, j, d in train_pairs],
      'sample_to_train': distance_summary(to_train_dist),
      'heldout_to_train': distance_summary(heldout_to_train_dist),
      # None when held-out images have exact copies in the subset half the time or more
      'median_ratio_sample_vs_heldout': (
          float(np.median(to_train_dist) / np.median(heldout_to_train_dist))
          if np.median(heldout_to_train_dist) > 0 else None),
      # about 0.01 when samples sit no closer to the training set than unseen real images
      'fraction_samples_below_heldout_p1': float(np.mean(to_train_dist < heldout_p1)),
      'files': files,
  }


def _show(ax, image: np.ndarray) -> None:
  if image.shape[-1] == 1:
    ax.imshow(image[..., 0], cmap='gray', vmin=0, vmax=255)
  else:
    ax.imshow(image)
  ax.set_xticks([])
  ax.set_yticks([])


def _pair_figure(ctx, name, top, bottom, distances, row_names, title) -> str:
  """Pairs as columns: `top` over `bottom`, each column titled with its distance."""
  columns = max(len(top), 1)
  fig, axes = plt.subplots(2, columns, figsize=(1.4 * columns + 1.0, 3.4), squeeze=False)
  for col, (a, b, distance) in enumerate(zip(top, bottom, distances)):
    _show(axes[0, col], a)
    _show(axes[1, col], b)
    axes[0, col].set_title(f'd={distance:.3g}', fontsize=8)
  for ax in axes[:, len(top):].ravel():
    ax.axis('off')
  axes[0, 0].set_ylabel(row_names[0], fontsize=8)
  axes[1, 0].set_ylabel(row_names[1], fontsize=8)
  fig.suptitle(f'{title} (step {ctx.step})', fontsize=10)
  fig.tight_layout()
  ctx.save_figure(name, fig)
  return name


def _histogram(ctx, sample_distances, heldout_distances, heldout_source) -> str:
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  edges = np.histogram_bin_edges(np.concatenate([sample_distances, heldout_distances]), 40)
  ax.hist(sample_distances, edges, density=True, alpha=0.55, color='#d62728',
          label=f'generated ({len(sample_distances)})')
  ax.hist(heldout_distances, edges, density=True, alpha=0.55, color='#1f4fd1',
          label=f'held-out real ({len(heldout_distances)}; {heldout_source})')
  ax.set_xlabel('distance to the nearest training image (classifier features)')
  ax.set_ylabel('density')
  ax.set_title(f'Nearest training image (step {ctx.step}): memorised samples sit left')
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  ctx.save_figure('duplicates_distances.png', fig)
  return 'duplicates_distances.png'
