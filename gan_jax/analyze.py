"""Command line for looking inside a trained run: `python -m gan_jax.analyze --workdir=DIR --what=NAME[,NAME...]`.

Runs the named analyses (gan_jax.analysis; `--what=all` runs every one that
fits the run) on the newest readable checkpoint, or `--step`, and writes
their PNGs and a JSON of the numbers behind them to WORKDIR/analysis/
(NAME.json, and summary.json for the run). G is the EMA generator where the
run keeps one. Everything is seeded by --seed.

  python -m gan_jax.analyze --workdir=runs/dcgan_mnist --what=interpolate,spectrum
  python -m gan_jax.analyze --workdir=runs/cgan --what=all --num=2000
"""

from __future__ import annotations

import time

from absl import flags

from gan_jax import cli
from gan_jax import errors


def run(workdir: str, what: list[str], **context_args) -> dict:
  """Runs the analyses `what` (or 'all') on `workdir`; returns {name: numbers}."""
  from gan_jax import analysis  # pylint: disable=g-import-not-at-top  (slow: JAX)
  analysis.load_all()
  names = analysis.ANALYSES.names() if what in (['all'], 'all') else list(what)
  chosen = [(name, analysis.ANALYSES.get(name)) for name in names]   # unknown names fail here
  ctx = analysis.Context.load(workdir, **context_args)
  ctx.log(f'Analysing {workdir} at step {ctx.step} ({ctx.config.model.name}, '
          f'{"EMA generator" if ctx.uses_ema else "generator"}); output in {ctx.out_dir}')
  results = {}
  for name, fn in chosen:
    start = time.perf_counter()
    try:
      numbers = fn(ctx)
    except analysis.NotApplicable as e:
      if what not in (['all'], 'all'):
        raise errors.ConfigError(f'--what={name}: {e}') from e
      ctx.log(f'  {name}: skipped ({e})')
      continue
    numbers = {'step': ctx.step, 'seed': ctx.seed, **numbers}
    ctx.save_json(f'{name}.json', numbers)
    results[name] = numbers
    ctx.log(f'  {name}: {time.perf_counter() - start:.1f}s, '
            + ', '.join(numbers.get('files', [])))
  ctx.save_json('summary.json', {'workdir': workdir, 'step': ctx.step,
                                 'analyses': sorted(results)})
  return results


def _define_flags():
  """Flags exist only when this module runs as a command, so importing `analyze` is side-effect free."""
  flags.DEFINE_string('workdir', None, 'Workdir of a training run.')
  flags.DEFINE_list('what', ['all'], 'Analyses to run, comma-separated, or "all": '
                    'interpolate, arithmetic, spectrum, discriminator, embedding, directions, '
                    'duplicates.')
  flags.DEFINE_integer('num', 1000, 'Samples (and real images) for the analyses that need a '
                       'population: spectrum, embedding, duplicates, D\'s logit histograms.')
  flags.DEFINE_integer('seed', 0, 'Seed of every noise vector and data subset.')
  flags.DEFINE_integer('step', None, 'Checkpoint step to analyse; default: the newest readable.')
  flags.DEFINE_string('heldout_split', '', 'A data split the run never trained on (e.g. test), '
                      'for D\'s logits on held-out real images; default: none.')
  flags.DEFINE_string('classifier', '', 'Domain classifier dir for feature-space analyses; '
                      'default: the one evaluation trains and caches for this data.')
  flags.DEFINE_string('out', '', 'Output directory; default: WORKDIR/analysis.')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  cli.start(argv)
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  run(FLAGS.workdir, FLAGS.what, step=FLAGS.step, seed=FLAGS.seed, num=FLAGS.num,
      heldout_split=FLAGS.heldout_split, classifier=FLAGS.classifier, out_dir=FLAGS.out)


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
