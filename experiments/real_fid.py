"""Real-data FID floors with the real Inception weights: how far two disjoint real samples sit apart.

  python -m experiments.real_fid --out=runs/real_fid \
      --cifar10=/tmp/cifar10/train --mnist=../shared/data/mnist --digits

For each dataset given, two disjoint seeded subsets A and B are drawn and
their Inception features extracted once (cached in OUT as `.npz`):
  * CIFAR-10 (a folder of the training JPEGs): 10k vs 10k and 5k vs 5k
    (the 5k sets are the first halves of the 10k ones); the input-scaling
    study re-extracts the first `--scaling_num` of A and B with TensorFlow's
    (x - 128) / 128 and compares with pytorch-fid's x / 127.5 - 1 on the same
    images;
  * MNIST (IDX files; the shared copy is the 10k test set): 5k vs 5k, plus
    the statistics of all of it (`mnist_stats.npz`, for `gan_jax.metrics.fid`);
  * scikit-learn's digits (the quickstart's data): 898 vs 899, plus
    `digits_stats.npz`.
Results go to OUT/results.json (and a Markdown table, printed), each with
its protocol. A FID between two finite samples of one distribution is not
0: it falls with N, so these floors are the scale against which a model's
FID at the same N reads.
"""

from __future__ import annotations

import json
import os
import time

from absl import flags
import numpy as np

from gan_jax import cli

flags.DEFINE_string('out', 'runs/real_fid', 'Output directory (features cache, results).')
flags.DEFINE_string('cifar10', '', 'CIFAR-10 training images folder (one subfolder per class).')
flags.DEFINE_string('mnist', '', 'Directory with MNIST IDX files.')
flags.DEFINE_bool('digits', False, 'Also scikit-learn\'s 8x8 digits at 28x28 (the quickstart data).')
flags.DEFINE_integer('scaling_num', 2000, 'Images per set in the input-scaling study (0 = skip).')
flags.DEFINE_integer('seed', 0, 'Seed of the subsets.')
flags.DEFINE_string('inception_weights', '', 'Converted FID Inception dir (default: the cache).')
FLAGS = flags.FLAGS


def _images(source: str, path: str, size: int, channels: int) -> np.ndarray:
  from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.read_all_images(source, path, size, channels)[0]


class Study:
  """Features cached per (dataset, scaling), FIDs of subsets, results written as they come."""

  def __init__(self, out: str):
    self.out = out
    os.makedirs(out, exist_ok=True)
    self._sets = {}
    self.results_path = os.path.join(out, 'results.json')
    self.results = []

  def sets(self, scaling: str):
    """The extractor and protocol of one input scaling, loaded on first use."""
    from gan_jax.metrics import fid  # pylint: disable=g-import-not-at-top
    if scaling not in self._sets:
      self._sets[scaling] = fid.FeatureSets(FLAGS.inception_weights, scaling)
    return self._sets[scaling]

  def features(self, name: str, images: np.ndarray, scaling: str = 'pytorch_fid'):
    path = os.path.join(self.out, f'{name}-{scaling}-features.npz')
    if os.path.exists(path):
      with np.load(path, allow_pickle=False) as npz:
        return npz['features']
    start = time.perf_counter()
    features = self.sets(scaling).features(images, f'{name} ({scaling})')
    seconds = time.perf_counter() - start
    np.savez(path, features=features)
    print(f'{name}: {len(images)} images in {seconds:.0f}s ({len(images) / seconds:.2f} img/s)')
    return features

  def fid(self, dataset: str, a: np.ndarray, b: np.ndarray, what: str,
          scaling: str = 'pytorch_fid') -> float:
    from gan_jax.metrics import frechet  # pylint: disable=g-import-not-at-top
    value = frechet.frechet_distance(frechet.statistics(a), frechet.statistics(b))
    protocol = self.sets(scaling).protocol
    self.results.append({'dataset': dataset, 'fid': value, 'num_a': len(a), 'num_b': len(b),
                         'what': what, **protocol})
    with open(self.results_path, 'w') as f:
      json.dump(self.results, f, indent=2)
    print(f'{dataset}: FID {value:.3f}  ({what}; {protocol["scaling"]})', flush=True)
    return value

  def save_stats(self, name: str, features: np.ndarray, description: str) -> None:
    from gan_jax.metrics import fid, frechet  # pylint: disable=g-import-not-at-top
    protocol = dict(self.sets('pytorch_fid').protocol,
                    set={'path': name, 'description': description, 'num': len(features),
                         'of': len(features), 'subset': f'all {len(features)}'})
    fid.save_stats(os.path.join(self.out, f'{name}_stats.npz'), frechet.statistics(features),
                   protocol)


def main(argv):
  del argv
  study = Study(FLAGS.out)
  rng = lambda: np.random.default_rng(FLAGS.seed)  # pylint: disable=unnecessary-lambda-assignment
  if FLAGS.cifar10:
    images = _images('folder', FLAGS.cifar10, 32, 3)
    order = rng().permutation(len(images))[:20_000]
    feats = study.features('cifar10_train_20k', images[order])
    a, b = feats[:10_000], feats[10_000:]
    study.fid('CIFAR-10 train', a, b, '10k vs a disjoint 10k of the training JPEGs')
    study.fid('CIFAR-10 train', a[:5000], b[:5000], '5k vs a disjoint 5k of the training JPEGs')
    n = FLAGS.scaling_num
    if n:
      subset = np.concatenate([order[:n], order[10_000:10_000 + n]])
      tf_feats = study.features(f'cifar10_train_{n}x2', images[subset], 'tf')
      what = f'{n} vs a disjoint {n} of the training JPEGs'
      study.fid('CIFAR-10 train', a[:n], b[:n], what)
      study.fid('CIFAR-10 train', tf_feats[:n], tf_feats[n:], what, 'tf')
  if FLAGS.mnist:
    images = _images('idx', FLAGS.mnist, 28, 1)
    order = rng().permutation(len(images))
    feats = study.features('mnist', images[order])
    half = len(feats) // 2
    study.fid('MNIST', feats[:half], feats[half:2 * half],
              f'{half} vs a disjoint {half} of {FLAGS.mnist} ({len(images)} digits)')
    study.save_stats('mnist', feats, f'MNIST IDX {FLAGS.mnist} ({len(images)} digits)')
  if FLAGS.digits:
    images = _images('digits', '', 28, 1)
    order = rng().permutation(len(images))
    feats = study.features('digits', images[order])
    half = len(feats) // 2
    study.fid('scikit-learn digits (28x28)', feats[:half], feats[half:],
              f'{half} vs the other {len(feats) - half} of the 1,797 digits')
    study.save_stats('digits', feats, 'scikit-learn digits at 28x28 (1,797)')
  print('\n| data | sets | FID | scaling |\n| --- | --- | --- | --- |')
  for r in study.results:
    print(f'| {r["dataset"]} | {r["what"]} | {r["fid"]:.2f} | {r["scaling"]} |')


if __name__ == '__main__':
  cli.run(main)
