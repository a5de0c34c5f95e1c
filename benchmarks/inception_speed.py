"""Inception feature extraction: gan_jax against pytorch-fid's own module, same weights, batch and threads.

  python -m benchmarks.inception_speed [--batch=20] [--repeats=5] [--batches=3] [--threads=2]

Both take uint8 32x32 images (CIFAR-10's size), resize them bilinearly to
299x299, scale them and return the 2048-d pool3 features: gan_jax's jitted
`inception.apply` and pytorch-fid's `InceptionV3` (its resize and
normalisation on), loaded with the same converted weights (the cache's, see
`gan_jax.metrics.inception_weights`). PyTorch gets `torch.set_num_threads`;
XLA's CPU pool is sized by the CPUs the process may use, so `--threads`
also pins the process (`os.sched_setaffinity`) before JAX starts. The two
take turns, `--repeats` times, each timing `--batches` batches per turn,
the order flipping every repeat. gan_jax's compile time and PyTorch's first
batch are reported apart. A repeat's ratio is gan_jax's images/s over
PyTorch's in that repeat; the summary gives the median and the min-max.
The load average is printed before and after.
"""

from __future__ import annotations

import json
import os
import statistics
import time

from absl import app, flags

flags.DEFINE_integer('batch', 20, 'Images per batch, for both.')
flags.DEFINE_integer('batches', 3, 'Batches timed per turn.')
flags.DEFINE_integer('repeats', 5, 'Alternating turns of each.')
flags.DEFINE_integer('threads', 2, 'CPUs (pinned) and PyTorch threads.')
flags.DEFINE_string('inception_weights', '', 'Converted weights (default: the cache).')
flags.DEFINE_string('json', '', 'Also write the results here.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:FLAGS.threads]))
  import jax  # pylint: disable=g-import-not-at-top  (after pinning: XLA sizes its pool then)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception, inception_weights  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(FLAGS.threads)
  print(f'load average before: {os.getloadavg()}', flush=True)
  path = inception_weights.resolve_path(FLAGS.inception_weights)
  variables, meta = inception_weights.load(
      path, auto_convert=path == inception_weights.default_path())
  images = np.random.default_rng(0).integers(0, 256, (FLAGS.batch, 32, 32, 3), np.uint8)
  jax_vars = jax.device_put(variables)
  extract = jax.jit(lambda v, x: inception.apply(v, x)['pool3'])
  start = time.perf_counter()
  ours = np.asarray(extract(jax_vars, images))
  compile_s = time.perf_counter() - start
  model = inception_weights.pytorch_fid_module(variables)
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
  with torch.no_grad():
    start = time.perf_counter()
    theirs = model(x)[0][:, :, 0, 0].numpy()
    first_s = time.perf_counter() - start
  error = float(np.abs(ours - theirs).max() / np.abs(theirs).max())

  def rate(fn) -> float:
    start = time.perf_counter()
    for _ in range(FLAGS.batches):
      fn()
    return FLAGS.batches * FLAGS.batch / (time.perf_counter() - start)

  run_jax = lambda: extract(jax_vars, images).block_until_ready()  # pylint: disable=unnecessary-lambda-assignment

  def run_torch():
    with torch.no_grad():
      model(x)

  jax_rates, torch_rates, ratios = [], [], []
  for repeat in range(FLAGS.repeats):
    turns = [('jax', run_jax), ('torch', run_torch)]
    got = dict((name, rate(fn)) for name, fn in (turns if repeat % 2 == 0 else turns[::-1]))
    jax_rates.append(got['jax'])
    torch_rates.append(got['torch'])
    ratios.append(got['jax'] / got['torch'])
    print(f'repeat {repeat}: gan_jax {got["jax"]:.2f} img/s, pytorch-fid {got["torch"]:.2f} '
          f'img/s, ratio {ratios[-1]:.3f}', flush=True)
  result = {
      'weights': meta.get('source'), 'batch': FLAGS.batch, 'threads': FLAGS.threads,
      'jax_img_s_median': statistics.median(jax_rates),
      'pytorch_fid_img_s_median': statistics.median(torch_rates),
      'ratio_median': statistics.median(ratios), 'ratio_min': min(ratios),
      'ratio_max': max(ratios), 'jax_compile_s': compile_s, 'pytorch_first_batch_s': first_s,
      'max_relative_difference': error, 'jax': jax.__version__, 'torch': torch.__version__,
      'load_after': os.getloadavg()}
  print(f'gan_jax {result["jax_img_s_median"]:.2f} img/s vs pytorch-fid '
        f'{result["pytorch_fid_img_s_median"]:.2f} img/s: ratio {result["ratio_median"]:.3f} '
        f'(min {min(ratios):.3f}, max {max(ratios):.3f}); compile {compile_s:.1f}s, PyTorch '
        f'first batch {first_s:.1f}s; features differ by {error:.1e} (relative)')
  print(f'load average after: {os.getloadavg()}')
  if FLAGS.json:
    with open(FLAGS.json, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main)
