"""Tunes the embedded quickstart: candidate recipes on the bundled digits, scored by the digits classifier.

  python -m experiments.quickstart_recipe --workdir=runs/quickstart_recipe \
      --classifier=runs/classifiers/digits --seeds=0,1,2 \
      --candidate='base:' --candidate='ema:train.ema_decay=0.999 train.ema_start=500'

Each candidate is `NAME:KEY=VALUE KEY=VALUE` (space-separated overrides of the
base config, `gan_jax/config.py`; values are Python literals or strings). Every candidate and seed trains in WORKDIR/NAME/seedS
(resumed when it exists), then its generator is scored by `cls_fd` and class
coverage: 898 samples against the 899-image reference subset of the 1,797
digits, the same counts `gan_jax.evaluate --real` uses for the floor on this
dataset. The goal of the quickstart issue: every class at least 5% of the
samples (`cls_min_class`), and cls_fd within 3x of the real floor.

Writes WORKDIR/results.json and WORKDIR/results.md (one row per candidate:
median and range over seeds, and the training time of each run).
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import time

from absl import app, flags, logging

from gan_jax import cli

flags.DEFINE_string('workdir', None, 'Directory for the runs and the results.')
flags.DEFINE_string('classifier', None, 'Digits domain classifier dir '
                    '(python -m gan_jax.metrics.classifier --out=DIR); default: trained on demand.')
flags.DEFINE_multi_string('candidate', ['base:'], 'NAME:KEY=VALUE KEY=VALUE (repeatable).')
flags.DEFINE_list('seeds', ['0'], 'Seeds per candidate.')
flags.DEFINE_integer('num', 898, 'Samples scored (the floor uses the same count).')
flags.DEFINE_integer('num_reference', 899, 'Reference images (a seeded subset of the digits).')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def parse_candidate(text: str) -> tuple[str, dict]:
  """'name:a.b=1 c=x' -> ('name', {'a.b': '1', 'c': 'x'})."""
  name, _, overrides = text.partition(':')
  pairs = [item.split('=', 1) for item in overrides.split()]
  if not name or any(len(p) != 2 for p in pairs):
    raise app.UsageError(f'bad --candidate {text!r}: expected NAME:KEY=VALUE KEY=VALUE')
  return name, dict(pairs)


def literal(text: str):
  """'1e-4' -> 1e-4, '(0, 1)' -> (0, 1), 'hinge' -> 'hinge'."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def run_one(workdir: str, overrides: dict, seed: int) -> dict:
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
  from gan_jax import evaluate
  from gan_jax.training import trainers
  config = config_base.get_config()
  config.update_from_flattened_dict({k: literal(v) for k, v in overrides.items()})
  config.seed = seed
  start = time.perf_counter()
  trainers.train_and_evaluate(config, workdir)
  train_s = time.perf_counter() - start
  record = evaluate.evaluate(workdir, 'cls_fd,cls_cov', num=FLAGS.num,
                             num_reference=FLAGS.num_reference, classifier=FLAGS.classifier,
                             log=lambda *a: None)
  metrics = record['metrics']
  return {'seed': seed, 'train_s': train_s,
          **{k: metrics[k]['value'] for k in ('cls_fd', 'cls_classes', 'cls_kl',
                                                 'cls_min_class')}}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's INFO lines would bury the results
  os.makedirs(FLAGS.workdir, exist_ok=True)
  results_path = os.path.join(FLAGS.workdir, 'results.json')
  results = {}
  if os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
  for text in FLAGS.candidate:
    name, overrides = parse_candidate(text)
    runs = results.setdefault(name, {'overrides': overrides, 'runs': {}})['runs']
    for seed in map(int, FLAGS.seeds):
      if str(seed) in runs:
        continue
      runs[str(seed)] = run_one(os.path.join(FLAGS.workdir, name, f'seed{seed}'), overrides, seed)
      print(f'{name} seed {seed}: {runs[str(seed)]}', flush=True)
      with open(results_path, 'w') as f:
        json.dump(results, f, indent=2)
  lines = ['| candidate | overrides | seeds | cls_fd median (range) | rarest class share, '
           'median (min) | classes | train s, median |', '|---|---|---|---|---|---|---|']
  for name, entry in results.items():
    rs = list(entry['runs'].values())
    if not rs:
      continue
    fd = [r['cls_fd'] for r in rs]
    mc = [r['cls_min_class'] for r in rs]
    lines.append(
        f'| {name} | {" ".join(f"{k}={v}" for k, v in entry["overrides"].items()) or "-"} | '
        f'{len(rs)} | {statistics.median(fd):.1f} ({min(fd):.1f}-{max(fd):.1f}) | '
        f'{statistics.median(mc):.3f} ({min(mc):.3f}) | '
        f'{min(r["cls_classes"] for r in rs)}-{max(r["cls_classes"] for r in rs)} | '
        f'{statistics.median(r["train_s"] for r in rs):.0f} |')
  with open(os.path.join(FLAGS.workdir, 'results.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  cli.run(main)
