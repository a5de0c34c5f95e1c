"""The small-data study's command line (experiments/small_data/__init__.py says what it measures).

For example (experiments/RESULTS.md, "Small datasets", has the measured runs):

  python -m experiments.small_data --workdir=runs/small/mnist_100 --config=configs/dcgan_mnist.py \\
      --data_source=idx --data_path=../shared/data/mnist --image_size=28 --channels=1 \\
      --num_train=100 --num_heldout=1000 --steps=1500 --batch_size=64
  python -m experiments.small_data --workdir=runs/small/mnist_1000 --config=configs/dcgan_mnist.py \\
      --data_source=idx --data_path=../shared/data/mnist --image_size=28 --channels=1 \\
      --num_train=1000 --num_heldout=1000 --steps=1500 --batch_size=64
  mkdir -p /tmp/cifar10 && tar xzf ../shared/data/cifar10/cifar10-train-jpeg.tar.gz -C /tmp/cifar10
  python -m experiments.small_data --workdir=runs/small/cifar_1000 --config=configs/gan_cifar10_cpu.py \\
      --data_source=folder --data_path=/tmp/cifar10/train --image_size=32 --channels=3 \\
      --num_train=1000 --num_heldout=1000 --steps=800 \\
      --fid_stats=runs/qpt/cifar10_train_20k_stats.npz --fid_num=1000
  python -m experiments.small_data --workdir=runs/small/cifar_5000 --config=configs/gan_cifar10_cpu.py \\
      --data_source=folder --data_path=/tmp/cifar10/train --image_size=32 --channels=3 \\
      --num_train=5000 --num_heldout=1000 --steps=800 \\
      --fid_stats=runs/qpt/cifar10_train_20k_stats.npz --fid_num=1000

The reference data config is the --config file's `data` with --data_source,
--data_path, --image_size and --channels, so that it finds the domain
classifiers already cached for those datasets (keyed by the data config,
`name` included) instead of training one. Re-running resumes: a variant with a
checkpoint at --steps is not retrained (its recorded wall seconds and load are
kept), an unfinished one continues from its last checkpoint; the split is
checked against the one on disk. A new variant is one line in VARIANTS;
`--override=KEY=VALUE` changes any config key of every variant (e.g.
model.width_scale=0.125 for a smoke run).
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

from experiments.small_data.report import markdown_table
from experiments.small_data.settings import Settings
from experiments.small_data.study import run_study
from experiments.small_data.variants import VARIANTS
from gan_jax import cli, errors

FLAGS = flags.FLAGS


def define_flags():
  """The command line's flags (defined only when run as a script: others share absl's FLAGS)."""
  d = Settings('', '', '', '')
  flags.DEFINE_string('workdir', None, 'Directory for the split, every run and the results.')
  flags.DEFINE_string('config', None, 'Config file every variant starts from.')
  flags.DEFINE_string('data_source', 'idx', 'Source of the full data (config.data.source).')
  flags.DEFINE_string('data_path', None, 'Its config.data.path.')
  flags.DEFINE_integer('image_size', d.image_size, 'config.data.image_size.')
  flags.DEFINE_integer('channels', d.channels, 'config.data.channels.')
  flags.DEFINE_integer('num_train', d.num_train, 'N: training images, balanced over the classes.')
  flags.DEFINE_integer('num_heldout', d.num_heldout,
                       'Held-out real images (fixed seed; never trained on).')
  flags.DEFINE_integer('seed', d.seed, 'Seeds the training subset and every run.')
  flags.DEFINE_integer('steps', d.steps, 'Training steps of every variant.')
  flags.DEFINE_integer('batch_size', d.batch_size, 'Training batch of every variant.')
  flags.DEFINE_list('variants', list(d.variants), f'Some of {", ".join(VARIANTS)}.')
  flags.DEFINE_float('lecam_weight', d.lecam_weight, 'ada_lecam: config.reg.lecam.weight.')
  flags.DEFINE_float('ada_target', d.ada_target, 'ADA: config.augment.ada.target (r_t).')
  flags.DEFINE_float('ada_kimg', d.ada_kimg, 'ADA: config.augment.ada.kimg (thousands of '
                     'images for p to move by 1; short CPU runs need less than the paper\'s 500).')
  flags.DEFINE_integer('checkpoints', d.checkpoints, 'Evenly spaced checkpoints kept per run.')
  flags.DEFINE_list('metrics', list(d.metrics), 'Domain-classifier metrics against the full '
                    'data (cls_acc is added for conditional models); empty: none.')
  flags.DEFINE_integer('eval_num', d.eval_num, 'Samples for the classifier metrics.')
  flags.DEFINE_integer('num_reference', d.num_reference, 'Reference images of the full data '
                       '(seeded subset; 0 = all).')
  flags.DEFINE_string('fid_stats', d.fid_stats, 'FID reference: a stats .npz (python -m '
                      'gan_jax.metrics.fid), an images .npz or a folder; empty: no FID.')
  flags.DEFINE_integer('fid_num', d.fid_num, 'Samples for FID.')
  flags.DEFINE_multi_string('override', [], 'KEY=VALUE config override for every variant '
                            '(a Python literal or a string), e.g. model.width_scale=0.125.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  if not FLAGS.workdir or not FLAGS.config or not FLAGS.data_path:
    raise errors.ConfigError('--workdir, --config and --data_path are required.')
  settings = Settings(
      workdir=FLAGS.workdir, config=FLAGS.config, data_source=FLAGS.data_source,
      data_path=FLAGS.data_path, image_size=FLAGS.image_size, channels=FLAGS.channels,
      num_train=FLAGS.num_train, num_heldout=FLAGS.num_heldout, seed=FLAGS.seed,
      steps=FLAGS.steps, batch_size=FLAGS.batch_size, variants=tuple(FLAGS.variants),
      lecam_weight=FLAGS.lecam_weight, ada_target=FLAGS.ada_target, ada_kimg=FLAGS.ada_kimg,
      checkpoints=FLAGS.checkpoints, metrics=tuple(FLAGS.metrics), eval_num=FLAGS.eval_num,
      num_reference=FLAGS.num_reference, fid_stats=FLAGS.fid_stats, fid_num=FLAGS.fid_num,
      overrides=tuple(FLAGS.override))
  command = 'python -m experiments.small_data ' + ' '.join(sys.argv[1:])
  results = run_study(settings, command, log=lambda *a: print(*a, flush=True))
  print(markdown_table(results))


if __name__ == '__main__':
  define_flags()
  cli.run(main)
