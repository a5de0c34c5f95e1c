"""Command line for evaluating a run: metrics of its generator, printed and written to WORKDIR/eval/.

  python -m gan_jax.evaluate --workdir=DIR --metrics=fid,is,kid,pr,cls_fd,cls_acc,cls_cov [--num=N]

scores the latest checkpoint (or --step, or --best: the one kept by
config.eval.best_metric) against the run's training data, and writes
WORKDIR/eval/step_N.json. `--real` scores real images outside the reference
subset instead of G's samples, the floor every number should be read
against (written to WORKDIR/eval/real.json). Settings not given as flags come
from the run's `config.eval`; every number is printed with its protocol.
"""

from __future__ import annotations

import os
import time

from absl import flags

from gan_jax import cli, errors

DEFAULT_METRICS = 'cls_fd,cls_cov'


def evaluate(workdir: str, metrics=None, *, num=None, num_reference=None, step=None,
             best=False, real=False, classifier=None, inception_weights=None,
             reference_split=None, modes_num=None, seed=None, log=print) -> dict:
  """Runs the evaluators; returns the JSON record it writes."""
  from gan_jax.config import saved as saved_config  # pylint: disable=g-import-not-at-top  (slow: JAX)
  from gan_jax.parallel import devices  # pylint: disable=g-import-not-at-top
  from gan_jax.training import setup as setup_lib
  from gan_jax.evaluation import evaluators, report  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation.context import Evaluation  # pylint: disable=g-import-not-at-top

  config = saved_config.load_from_workdir(workdir)
  ec = config.eval
  for key, value in (('num', num), ('num_reference', num_reference),
                     ('classifier', classifier),
                     ('reference_split', reference_split), ('modes_num', modes_num),
                     ('seed', seed)):
    if value is not None:
      ec[key] = value
  names = report.metric_names(metrics or ec.metrics or DEFAULT_METRICS)
  start = time.perf_counter()
  evaluation = Evaluation(config, None, devices.make_mesh(), inception_weights or '', log=log)
  # Real images must lie outside the reference; G's samples are split the same
  # way only when the reference asked for is larger than the data, so that
  # their numbers compare with --real's (a run's own counts are kept otherwise,
  # as its periodic evaluation used them).
  note = (evaluation.split_small_dataset(fixed_num=num is not None,
                                         fixed_reference=num_reference is not None)
          if real or evaluation.ec.num_reference > len(evaluation.source) else None)
  if note:
    log(note)
  if real:
    samples = evaluation.real_samples()
    name, step_value = 'real.json', None
  else:
    if best and step is not None:
      raise errors.ConfigError('Pass either --step or --best, not both.')
    subdir = report.BEST_SUBDIR if best else 'checkpoints'
    if best and not os.path.isdir(os.path.join(workdir, subdir)):
      raise errors.ConfigError(f'{os.path.join(workdir, subdir)} does not exist: the run '
                               'kept no best checkpoint (config.eval.best_metric).')
    _, setup, state = setup_lib.restore_setup(workdir, step, checkpoint_subdir=subdir)
    step_value = int(state.step)
    samples = evaluation.generator_samples(setup.gan, state, step_value)
    name = f'step_{step_value}{"_best" if best else ""}.json'
  results = evaluators.run(evaluation, samples, names)
  seconds = time.perf_counter() - start
  record = report.full_record(step_value, samples.description, results, ec, seconds)
  path = report.write_json(workdir, name, record)
  log(f'{samples.description}, {len(names)} evaluator(s) in {seconds:.1f}s:')
  log(report.format_results(results))
  log(f'Wrote {path}')
  return record


def _define_flags():
  """Flags exist only when this module runs as a command, so importing `evaluate` is side-effect free."""
  flags.DEFINE_string('workdir', None, 'Workdir of a training run.')
  flags.DEFINE_string('metrics', None, 'Comma-separated evaluators (default: config.eval.metrics, '
                      'else cls_fd,cls_cov). Names: see gan_jax.metrics.evaluators.')
  flags.DEFINE_integer('num', None, 'Samples to score (default: config.eval.num).')
  flags.DEFINE_integer('num_reference', None, 'Reference images (default: config.eval.num_reference; '
                       '0 = all).')
  flags.DEFINE_integer('step', None, 'Checkpoint step to load; default: the latest.')
  flags.DEFINE_bool('best', False, 'Load the best checkpoint (WORKDIR/checkpoints_best).')
  flags.DEFINE_bool('real', False, 'Score real images instead of the generator (the floor).')
  flags.DEFINE_string('classifier', None, 'Domain classifier dir (default: config.eval.classifier).')
  flags.DEFINE_string('inception_weights', None, 'Converted FID Inception dir (default: '
                      'config.eval.inception_weights, $GAN_JAX_INCEPTION_WEIGHTS, the cache).')
  flags.DEFINE_string('reference_split', None, 'Data split of the reference (default: '
                      'config.eval.reference_split).')
  flags.DEFINE_integer('modes_num', None, 'stacked_modes samples (default: config.eval.modes_num).')
  flags.DEFINE_integer('seed', None, 'Evaluation seed (default: config.eval.seed).')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  cli.start(argv)
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  evaluate(FLAGS.workdir, FLAGS.metrics, num=FLAGS.num, num_reference=FLAGS.num_reference,
           step=FLAGS.step, best=FLAGS.best, real=FLAGS.real, classifier=FLAGS.classifier,
           inception_weights=FLAGS.inception_weights, reference_split=FLAGS.reference_split,
           modes_num=FLAGS.modes_num, seed=FLAGS.seed)


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
