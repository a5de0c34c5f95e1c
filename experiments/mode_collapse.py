"""GAN vs conditional GAN on mode collapse: near-duplicate pairs and class coverage, against real data.

The CIFAR-10 report (../shared/reports/gan-cgan-cifar10-a8-report.txt) saw "two
nearly identical images" in the unconditional GAN's samples at epoch 50 and
no repeated samples in the conditional one. This trains both variants of one
config (model.conditional False / True, otherwise identical), scores them
with the domain classifier (cls_dups, cls_cov, cls_fd, and cls_acc for the
cGAN), scores real images the same way (the floor), and writes
WORKDIR/summary.md, WORKDIR/summary.json and, per variant, a picture of the
closest sample pairs (WORKDIR/VARIANT/closest_pairs.png).

  python -m experiments.mode_collapse --config=configs/dcgan_mnist.py --workdir=runs/mode_collapse \
      --classifier=classifiers/mnist --config.data.source=idx --config.data.path=DIR \
      --config.train.num_steps=1500

Re-running resumes finished or interrupted runs instead of retraining.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags
import numpy as np

from gan_jax import cli
from gan_jax import errors
from gan_jax.config import base as config_base

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for both runs and the summary.')
flags.DEFINE_string('classifier', None, 'Domain classifier dir (python -m gan_jax.metrics.classifier).')
flags.DEFINE_integer('num', 5000, 'Samples scored per variant (and real images for the floor).')
flags.DEFINE_integer('num_reference', 5000, 'Reference images (a seeded subset of the data).')
flags.mark_flags_as_required(['workdir', 'classifier'])
config_flags.DEFINE_config_file('config', config_base.BASE_CONFIG_PATH, 'Experiment config.',
                                lock_config=True)

METRICS = 'cls_dups,cls_cov,cls_fd,cls_acc'
SHOWN = ('cls_dups', 'cls_classes', 'cls_kl', 'cls_fd', 'cls_acc')


def closest_pairs_png(workdir: str, classifier_dir: str, num: int, path: str, pairs: int = 8):
  """Saves the `pairs` closest pairs (classifier features) among the samples cls_dups counted.

  The noise is cls_dups' own (sampling.latents with config.eval.seed 0), so
  these are the same `num` images.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax.generation import sampling  # pylint: disable=g-import-not-at-top
  from gan_jax.training import setup as setup_lib
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  from gan_jax.viz import grids  # pylint: disable=g-import-not-at-top
  config, setup, state = setup_lib.restore_setup(workdir)
  z, labels = sampling.latents(jax.random.PRNGKey(config.eval.seed), setup.gan, num)
  images = np.asarray(sampling.make_sampler(setup.gan)(state.sampling_variables(), z, labels))
  model = classifier.load(classifier_dir)
  feats = classifier.predict(model.module, model.variables, images)['features'].astype(np.float64)
  sq = np.sum(feats ** 2, 1)
  d2 = sq[:, None] + sq[None, :] - 2 * feats @ feats.T
  i, j = np.triu_indices(len(feats), 1)
  order = np.argsort(d2[i, j])[:pairs]
  shown = np.stack([images[k] for o in order for k in (i[o], j[o])])
  grids.save_grid(shown, path, 2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top  (slow: JAX)
  from gan_jax.training import image as image_trainer
  base = FLAGS.config
  summary = {}
  try:
    for variant, conditional in (('gan', False), ('cgan', True)):
      config = base.copy_and_resolve_references()
      config.model.conditional = conditional
      workdir = os.path.join(FLAGS.workdir, variant)
      print(f'== {variant}: training {config.model.name} (conditional={conditional}) in {workdir}',
            flush=True)
      image_trainer.train_and_evaluate(config, workdir)
      record = evaluate.evaluate(workdir, METRICS, num=FLAGS.num,
                                 num_reference=FLAGS.num_reference, classifier=FLAGS.classifier)
      summary[variant] = record
      closest_pairs_png(workdir, FLAGS.classifier, config.eval.dup_num,
                        os.path.join(workdir, 'closest_pairs.png'))
    print('== real data, scored the same way (the floor)', flush=True)
    summary['real'] = evaluate.evaluate(os.path.join(FLAGS.workdir, 'gan'), METRICS, real=True,
                                        num=FLAGS.num, num_reference=FLAGS.num_reference,
                                        classifier=FLAGS.classifier)
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')

  lines = ['| | ' + ' | '.join(SHOWN) + ' |', '|---' * (len(SHOWN) + 1) + '|']
  for name, record in summary.items():
    metrics = record['metrics']
    cells = [f'{metrics[k]["value"]:.4g}' if k in metrics else '-' for k in SHOWN]
    lines.append(f'| {name} (step {record["step"]}) | ' + ' | '.join(cells) + ' |')
  protocols = sorted({f'- {k}: {m["protocol"]}' for r in summary.values()
                      for k, m in r['metrics'].items() if k in SHOWN})
  text = '\n'.join(lines + ['', 'Protocols:'] + protocols) + '\n'
  with open(os.path.join(FLAGS.workdir, 'summary.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(FLAGS.workdir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(text)


if __name__ == '__main__':
  cli.run(main)
