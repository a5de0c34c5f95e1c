"""Quality per wall-clock minute: a gan_jax config against eager PyTorch's DCGAN-32, scored by the same metrics.

  # Train a config (its checkpoints are the curve's points; metrics.jsonl keeps
  # the wall time of each).
  python -m benchmarks.quality_per_time train --config=configs/gan_cifar10_cpu.py \
      --config.data.path=/tmp/cifar10/train --out=runs/qpt/gan_cifar10_cpu
  # The baseline: DCGAN-32 in eager PyTorch (Adam 2e-4, b1 0.5, BCE, batch 64)
  # on the same images for the same wall time, snapshots at the same minutes.
  python -m benchmarks.quality_per_time torch --data=/tmp/cifar10/train \
      --match=runs/qpt/gan_cifar10_cpu --out=runs/qpt/torch_dcgan32
  # Score every point, outside the timed training.
  python -m benchmarks.quality_per_time score --out=runs/qpt/gan_cifar10_cpu \
      --fid_stats=runs/qpt/cifar10_train_20k_stats.npz
  # The Markdown table and the figure.
  python -m benchmarks.quality_per_time report \
      --runs=runs/qpt/gan_cifar10_cpu,runs/qpt/cgan_cifar10_cpu,runs/qpt/torch_dcgan32 \
      --figure=docs/images/quality_per_time.png

Training is timed from the start of training in the process (after imports;
data loading, compile, checkpoints and grids included) and nothing else
should run on the machine meanwhile: check `uptime`. Scoring does not time
anything. Metrics (gan_jax.metrics, every point the same): the domain
classifier's Fréchet distance (cls_fd), class coverage (cls_cov), and for a
conditional G the classifier's accuracy on the classes asked for (cls_acc),
with --num samples against --num_reference training images; FID with the
real weights on --fid_num samples against --fid_stats (a statistics file of
`python -m gan_jax.metrics.fid --save_stats DATA OUT.npz --num=20000`), at
the last point only unless --fid_points=all (about 11 images/s on a 2-core
CPU).
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

from benchmarks.quality import baseline, scoring, summary
from gan_jax import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'gan_jax config for `train`.')
flags.DEFINE_string('out', None, 'The run\'s directory (train, torch, score).')
flags.DEFINE_string('data', '', '`torch`: the image folder (one subfolder per class).')
flags.DEFINE_string('match', '', '`torch`: a gan_jax run trained by `train`; the baseline '
                    'trains for its wall time and snapshots at its checkpoints\' minutes.')
flags.DEFINE_float('minutes', 30.0, '`torch` without --match: wall minutes to train.')
flags.DEFINE_float('every', 5.0, '`torch` without --match: minutes between snapshots.')
flags.DEFINE_integer('batch_size', 64, '`torch`: batch size.')
flags.DEFINE_integer('seed', 0, '`torch`: seed of the weights, noise and batches.')
flags.DEFINE_enum('torch_bn', 'eval', ['eval', 'batch'], '`score` of a PyTorch run: G\'s '
                  'BatchNorm in eval mode (running statistics, as gan_jax samples) or batch '
                  'statistics (as the PyTorch DCGAN example draws its grids).')
flags.DEFINE_integer('num', 10_000, '`score`: samples per classifier metric.')
flags.DEFINE_integer('num_reference', 10_000, '`score`: training images the classifier '
                     'metrics compare with.')
flags.DEFINE_string('fid_stats', '', '`score`: FID statistics of the training images; '
                    '\'\' = no FID.')
flags.DEFINE_integer('fid_num', 10_000, '`score`: samples per FID.')
flags.DEFINE_enum('fid_points', 'last', ['last', 'all'], '`score`: the points that get a FID.')
flags.DEFINE_list('runs', [], '`report`: scored run directories, in table order.')
flags.DEFINE_string('figure', '', '`report`: where to write the figure (PNG).')

COMMANDS = ('train', 'torch', 'score', 'report')


def _config_file() -> str:
  """The --config argument as given (path and preset)."""
  for arg in sys.argv[1:]:
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
  return ''


def _train(out: str) -> None:
  from gan_jax import errors  # pylint: disable=g-import-not-at-top
  from gan_jax.training import image as image_trainer
  config = FLAGS.config
  if config is None:
    raise app.UsageError('`train` needs --config=configs/....py')
  # Every checkpoint is a point of the curve: keep them all.
  steps = config.train.num_steps
  config.train.keep_checkpoints = max(config.train.keep_checkpoints,
                                      steps // max(config.train.checkpoint_every, 1) + 2)
  if config.train.checkpoint_every % config.train.log_every:
    raise errors.ConfigError('train.log_every must divide train.checkpoint_every: a '
                             'checkpoint\'s wall time is read from the log line at its step.')
  load_before = os.getloadavg()
  image_trainer.train_and_evaluate(config, out)
  baseline.write_json(os.path.join(out, 'benchmark.json'), {
      'kind': 'gan_jax', 'config_file': _config_file(), 'config': config.to_dict(),
      'command': ' '.join(sys.argv), 'load_before': load_before,
      'load_after': os.getloadavg()})


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f'Give one command: {" | ".join(COMMANDS)}.')
  command = argv[1]
  if command != 'report' and not FLAGS.out:
    raise app.UsageError(f'`{command}` needs --out=DIR.')
  start = time.perf_counter()
  if command == 'train':
    _train(FLAGS.out)
  elif command == 'torch':
    baseline.train(FLAGS.out, FLAGS.data, match=FLAGS.match, minutes=FLAGS.minutes,
                   every=FLAGS.every, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
                   command=' '.join(sys.argv))
  elif command == 'score':
    scoring.score(FLAGS.out, num=FLAGS.num, num_reference=FLAGS.num_reference,
                  fid_stats=FLAGS.fid_stats, fid_num=FLAGS.fid_num,
                  fid_points=FLAGS.fid_points, torch_bn=FLAGS.torch_bn)
  else:
    if not FLAGS.runs:
      raise app.UsageError('`report` needs --runs=DIR,DIR,...')
    print(summary.table(FLAGS.runs))
    if FLAGS.figure:
      summary.figure(FLAGS.runs, FLAGS.figure)
      print(f'Wrote {FLAGS.figure}')
  print(f'{command}: {time.perf_counter() - start:.0f}s', file=sys.stderr)


if __name__ == '__main__':
  cli.run(main)
