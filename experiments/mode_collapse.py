"""Mode collapse: PacGAN's Table 1 in the 2D lab, and GAN vs conditional GAN on images.

1. PacGAN's Table 1 (without --classifier; --table=1, the default). Lin et al. (NeurIPS 2018) train
   a GAN and PacGAN2/3/4 on the 2D-ring (8 Gaussians, radius 1, std 0.01) and
   the 2D-grid (25 Gaussians at {-4..4}^2, std 0.05) with their networks (G 4
   x 400 with BatchNorm and ReLU, D 3 x 200 LinearMaxout with 5 pieces), Adam
   lr 1e-4, b1 0.8, batch 100 (packs), 2D N(0, I) noise, for 400 epochs of
   100,000 points (400,000 steps), 10 trials, and report modes, % of
   high-quality samples and the reverse KL over 2,500 samples, mean ±
   standard error. Every row here is a preset of configs/toy2d.py
   (`ring,gan`, `grid,pac4`, ...; packing: config.model.pack) whose seeds
   train side by side in one vmapped sweep (gan_jax/toy2d/sweep.py); rows
   with different packing change D's input shape, so each row is its own
   sweep. The defaults are the paper's length and trials; a CPU takes
   fewer (--steps, --seeds), and then the curves (WORKDIR/curves.png: modes,
   HQ % and reverse KL against steps) and the table's "settled" column say
   whether the numbers had stopped moving. Writes WORKDIR/table1.md (published
   beside measured, with the command, seeds, steps, machine and load),
   WORKDIR/table1.json (every seed and curve) and, per row, WORKDIR/ROW/ (the
   sweep's tables, final panels and row.json). A row measured before with the
   same seeds and steps is read back, not retrained.

  python -m experiments.mode_collapse --rows=ring-gan,grid-gan --seeds=3 --steps=10000 \
      --workdir=runs/pacgan_table1

   PacGAN's Tables 2 (Stacked MNIST in VEEGAN's setting: DCGAN vs
   PacDCGAN2/3/4) and 3 (Unrolled GAN's setting, D at 1/4 and 1/2 of G:
   DCGAN, unrolled 1/5/10 steps, PacDCGAN2/3/4) are named by --table=2 and
   --table=3 but not implemented yet: asking for them is an error, not a
   table.

2. GAN vs conditional GAN (with --classifier). The CIFAR-10 A8 report
   (GAN and cGAN on CIFAR-10) saw "two nearly
   identical images" in the unconditional GAN's samples at epoch 50 and no
   repeated samples in the conditional one. This trains both variants of one
   config (model.conditional False / True, otherwise identical), scores them
   with the domain classifier (cls_dups, cls_cov, cls_fd, and cls_acc for the
   cGAN), scores real images the same way (the floor), and writes
   WORKDIR/summary.md, WORKDIR/summary.json and, per variant, a picture of
   the closest sample pairs (WORKDIR/VARIANT/closest_pairs.png).

  python -m experiments.mode_collapse --config=configs/dcgan_mnist.py --workdir=runs/mode_collapse \
      --classifier=classifiers/mnist --config.data.source=idx --config.data.path=DIR \
      --config.train.num_steps=1500

   Re-running resumes finished or interrupted runs instead of retraining.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags
import numpy as np

from gan_jax import cli
from gan_jax import errors
from gan_jax.config import base as config_base

FLAGS = flags.FLAGS
TOY2D_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'configs',
                            'toy2d.py')
PAPER_STEPS = 400_000
ROW_FILE = 'row.json'
CLS_METRICS = 'cls_dups,cls_cov,cls_fd,cls_acc'
CLS_SHOWN = ('cls_dups', 'cls_classes', 'cls_kl', 'cls_fd', 'cls_acc')


def define_flags():
  """The command line's flags (defined only when run as a script: tests import the functions)."""
  flags.DEFINE_string('workdir', None, 'Directory for the runs and the table (or summary).')
  flags.DEFINE_string('table', '1', f'PacGAN table to reproduce: {", ".join(TABLES)} '
                      f'(planned, not implemented: {", ".join(PLANNED_TABLES)}).')
  flags.DEFINE_string('rows', 'all', 'Table 1: rows TARGET-METHOD, comma-separated, of '
                      'ring-gan, ring-pac2, ring-pac3, ring-pac4, grid-gan, ... grid-pac4; '
                      'or all.')
  flags.DEFINE_integer('seeds', 10, 'Table 1: seeds per row (the paper: 10 trials).')
  flags.DEFINE_integer('steps', PAPER_STEPS, 'Table 1: steps per run (the paper: 400 epochs '
                       'of 1,000 steps).')
  flags.DEFINE_integer('log_every', 1000, 'Table 1: steps between the points of the curves.')
  flags.DEFINE_string('classifier', None, 'GAN vs cGAN: domain classifier dir (python -m '
                      'gan_jax.metrics.classifier); without it, PacGAN Table 1 runs.')
  flags.DEFINE_integer('num', 5000, 'GAN vs cGAN: samples scored per variant (and real images '
                       'for the floor).')
  flags.DEFINE_integer('num_reference', 5000, 'GAN vs cGAN: reference images (a seeded '
                       'subset of the data).')
  flags.mark_flags_as_required(['workdir'])
  config_flags.DEFINE_config_file('config', config_base.BASE_CONFIG_PATH,
                                  'GAN vs cGAN: experiment config.', lock_config=True)

# ---------------------------------------------------------------------------
# 1. PacGAN's Table 1 in the 2D lab.

TABLES = ('1',)
TARGETS = ('ring', 'grid')
METHODS = ('gan', 'pac2', 'pac3', 'pac4')
ROWS = tuple(f'{t}-{m}' for t in TARGETS for m in METHODS)
METRICS = ('modes', 'hq_percent', 'reverse_kl')
PAPER_TRIALS = 10
# PacGAN Table 1 (Lin et al., NeurIPS 2018): mean and standard error over
# their 10 trials of 400 epochs; modes of 8 (ring) or 25 (grid), % of
# high-quality samples, reverse KL of the mode histogram.
PUBLISHED = {
    'ring-gan': {'modes': (6.3, 0.5), 'hq_percent': (98.2, 0.2), 'reverse_kl': (0.45, 0.09)},
    'ring-pac2': {'modes': (7.9, 0.1), 'hq_percent': (95.6, 2.0), 'reverse_kl': (0.07, 0.03)},
    'ring-pac3': {'modes': (7.8, 0.1), 'hq_percent': (97.7, 0.3), 'reverse_kl': (0.10, 0.02)},
    'ring-pac4': {'modes': (7.8, 0.1), 'hq_percent': (95.9, 1.4), 'reverse_kl': (0.07, 0.02)},
    'grid-gan': {'modes': (17.3, 0.8), 'hq_percent': (94.8, 0.7), 'reverse_kl': (0.70, 0.07)},
    'grid-pac2': {'modes': (23.8, 0.7), 'hq_percent': (91.3, 0.8), 'reverse_kl': (0.13, 0.04)},
    'grid-pac3': {'modes': (24.6, 0.4), 'hq_percent': (94.2, 0.4), 'reverse_kl': (0.06, 0.02)},
    'grid-pac4': {'modes': (24.8, 0.2), 'hq_percent': (93.6, 0.6), 'reverse_kl': (0.04, 0.01)},
}
# PacGAN's tables on Stacked MNIST; each needs its image presets and script
# part before it can run. Named here so that asking for one says so.
PLANNED_TABLES = {
    '2': "Stacked MNIST in VEEGAN's setting: DCGAN vs PacDCGAN2/3/4",
    '3': "Unrolled GAN's setting (D at 1/4 and 1/2 of G): DCGAN, unrolled 1/5/10 steps, "
         'PacDCGAN2/3/4',
}
SETTLED_FRACTION = 0.75   # "settled": the change of the mean over the last quarter of the steps


def check_table(table: str) -> None:
  """Refuses a table this script names but cannot run yet, and any other."""
  if table in PLANNED_TABLES:
    raise errors.ConfigError(f'--table={table} (PacGAN Table {table}, {PLANNED_TABLES[table]}) '
                             'is not implemented yet; --table=1 runs Table 1.')
  if table not in TABLES:
    raise errors.ConfigError(f'--table={table!r}: give one of {", ".join(TABLES)}.')


def parse_rows(text: str) -> list[str]:
  """'ring-gan,grid-pac4' (or 'all') -> the rows, each TARGET-METHOD, in Table 1's order."""
  rows = list(ROWS) if text.strip() == 'all' else [r.strip() for r in text.split(',') if r.strip()]
  unknown = [r for r in rows if r not in ROWS]
  if unknown or not rows:
    raise errors.ConfigError(f'--rows: unknown row {unknown[0] if unknown else text!r}; give '
                             f'some of {", ".join(ROWS)} (comma-separated), or all.')
  return [r for r in ROWS if r in rows]


def row_config(row: str, steps: int, log_every: int):
  """The config of a row: configs/toy2d.py:TARGET,METHOD, run for `steps` steps."""
  from gan_jax.config import files as config_files  # pylint: disable=g-import-not-at-top
  target, method = row.split('-')
  config = config_files.load_file(f'{TOY2D_CONFIG}:{target},{method}')
  config.train.num_steps = steps
  config.train.log_every = max(1, min(log_every, steps))
  return config


def summarize(values) -> dict:
  """Mean, sample std and standard error (std / sqrt(n), the paper's ±) of per-seed values."""
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
  return {'mean': float(values.mean()), 'std': std, 'se': std / math.sqrt(len(values))}


def curves(histories: list[list[dict]]) -> dict:
  """{'step': [...], METRIC: [[per seed] per logged step]} from the seeds' logged histories."""
  steps = [r['step'] for r in histories[0]]
  return {'step': steps, **{m: [[h[i][m] for h in histories] for i in range(len(steps))]
                            for m in METRICS}}


def settled(curve: dict) -> dict:
  """Per metric: the mean over seeds at the end minus the mean at SETTLED_FRACTION of the steps."""
  steps = np.asarray(curve['step'])
  earlier = int(np.argmin(np.abs(steps - SETTLED_FRACTION * steps[-1])))
  return {m: _nanmean(curve[m][-1]) - _nanmean(curve[m][earlier]) for m in METRICS}


def _nanmean(values) -> float:
  """The mean of the values that are not NaN (reverse KL without high-quality samples), or NaN."""
  values = np.asarray(values, np.float64)
  return float(values[~np.isnan(values)].mean()) if np.any(~np.isnan(values)) else math.nan


def run_row(row: str, seeds: int, steps: int, log_every: int, workdir: str) -> dict:
  """Trains a row's seeds side by side (one vmapped sweep) and returns its record.

  A row already measured in `workdir` with the same seeds and steps is read
  back, not retrained, so rows can be run by separate commands and tabled
  together.
  """
  from gan_jax.toy2d import sweep  # pylint: disable=g-import-not-at-top  (slow: JAX)
  row_dir = os.path.join(workdir, row)
  record_path = os.path.join(row_dir, ROW_FILE)
  if os.path.exists(record_path):
    with open(record_path) as f:
      record = json.load(f)
    if (record['seeds'], record['steps']) == (seeds, steps):
      print(f'== {row}: measured before ({record_path}), not retrained', flush=True)
      return record
  config = row_config(row, steps, log_every)
  print(f'== {row}: {seeds} seeds x {steps} steps of configs/toy2d.py:{row.replace("-", ",")} '
        f'(batch {config.train.batch_size}, pack {config.model.get("pack", 1)})', flush=True)
  load_before, start = os.getloadavg(), time.perf_counter()
  result = sweep.run_sweep(config, [], seeds, row_dir)
  wall = time.perf_counter() - start
  with open(os.path.join(row_dir, 'histories.json')) as f:
    histories = [h['history'] for h in sorted(json.load(f), key=lambda h: h['seed'])]
  finals = {m: [result['runs'][(0, config.seed + s)][m] for s in range(seeds)] for m in METRICS}
  curve = curves(histories)
  record = {'row': row, 'preset': f'configs/toy2d.py:{row.replace("-", ",")}', 'seeds': seeds,
            'steps': steps, 'batch_size': config.train.batch_size,
            'pack': config.model.get('pack', 1), 'per_seed': finals,
            'measured': {m: summarize(v) for m, v in finals.items()},
            'published': {m: dict(zip(('mean', 'se'), PUBLISHED[row][m])) for m in METRICS},
            'settled': settled(curve), 'curve': curve,
            'load_before': list(load_before), 'load_after': list(os.getloadavg()),
            'wall_s_under_load': wall}
  with open(record_path, 'w') as f:
    json.dump(record, f, indent=1)
  return record


def plot_curves(records: list[dict], path: str) -> str:
  """Modes, HQ % and reverse KL against steps, one column per metric, one line per row."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  targets = [t for t in TARGETS if any(r['row'].startswith(t) for r in records)]
  fig, axes = plt.subplots(len(targets), len(METRICS), figsize=(4.2 * len(METRICS),
                                                                3.2 * len(targets)),
                           squeeze=False)
  titles = {'modes': 'modes covered', 'hq_percent': 'high-quality samples (%)',
            'reverse_kl': 'reverse KL'}
  for i, target in enumerate(targets):
    for j, metric in enumerate(METRICS):
      ax = axes[i, j]
      for r in [r for r in records if r['row'].startswith(target)]:
        values = np.asarray(r['curve'][metric], np.float64)   # (logged steps, seeds)
        line, = ax.plot(r['curve']['step'], [_nanmean(v) for v in values], label=r['row'])
        ax.plot(r['curve']['step'], values, color=line.get_color(), alpha=0.2, lw=0.7)
        ax.axhline(r['published'][metric]['mean'], color=line.get_color(), ls=':', lw=1)
      ax.set_title(f'{target}: {titles[metric]}', fontsize=9)
      ax.set_xlabel('step', fontsize=8)
      ax.tick_params(labelsize=7)
      if j == 0:
        ax.legend(fontsize=7)
  fig.suptitle('PacGAN Table 1 rows: mean over seeds (thick), seeds (thin), published '
               '(dotted)', fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _cell(stat: dict, digits: int) -> str:
  return f'{stat["mean"]:.{digits}f} ± {stat["se"]:.{digits}f}'


def table_markdown(records: list[dict], meta: dict) -> str:
  """Published beside measured, with the command, seeds, steps, machine and load."""
  lines = [
      '# PacGAN Table 1: published beside measured', '',
      f'Command: `{meta["command"]}`', '',
      f'Machine: {meta["machine"]}, {meta["cores"]} cores. Load (1/5/15-min) before '
      f'{_load(meta["load_before"])}, after {_load(meta["load_after"])}. Date {meta["date"]}.', '',
      'Published: PacGAN Table 1 (Lin et al., NeurIPS 2018), mean ± standard error over '
      f'{PAPER_TRIALS} trials of 400 epochs (400,000 steps). Measured: mean ± standard error '
      '(std / sqrt(seeds)) over the seeds given, after the steps given. Modes: modes with '
      'a sample within 3 std; HQ: % of 2,500 samples within 3 std of their nearest mode; '
      'reverse KL: KL(mode histogram of the high-quality samples || uniform). Settled: '
      f'the change of the measured mean over the last {1 - SETTLED_FRACTION:.0%} of the steps '
      '(modes / HQ points / reverse KL); the curves are in curves.png. Load: the 1-minute '
      'load average before and after the row; time: the row\'s wall time, all seeds '
      'together, compilation included.', '',
      '| row | preset | seeds | steps | modes: published | modes: measured | HQ %: published '
      '| HQ %: measured | reverse KL: published | reverse KL: measured | settled (Δ last '
      'quarter) | load before → after | time (s) |',
      '|' + ' --- |' * 13]
  for r in records:
    pub, mea, d = r['published'], r['measured'], r['settled']
    lines.append(
        f'| {r["row"]} | `{r["preset"]}` | {r["seeds"]} | {r["steps"]:,} '
        f'| {_cell(pub["modes"], 1)} | {_cell(mea["modes"], 1)} '
        f'| {_cell(pub["hq_percent"], 1)} | {_cell(mea["hq_percent"], 1)} '
        f'| {_cell(pub["reverse_kl"], 2)} | {_cell(mea["reverse_kl"], 2)} '
        f'| {d["modes"]:+.1f} / {d["hq_percent"]:+.1f} / {d["reverse_kl"]:+.2f} '
        f'| {r["load_before"][0]:.1f} → {r["load_after"][0]:.1f} '
        f'| {r["wall_s_under_load"]:.0f} |')
  short = [r['row'] for r in records if r['steps'] < PAPER_STEPS or r['seeds'] < PAPER_TRIALS]
  if short:
    lines += ['', f'Shorter than the paper (400,000 steps, {PAPER_TRIALS} trials): '
              + ', '.join(short) + '. Read them with their curves and the settled column.']
  return '\n'.join(lines) + '\n'


def _load(values) -> str:
  return '/'.join(f'{v:.2f}' for v in values)


def run_table(rows: list[str], seeds: int, steps: int, log_every: int, workdir: str,
              command: str) -> dict:
  """Runs (or reads back) every row; writes table1.json, table1.md and curves.png."""
  os.makedirs(workdir, exist_ok=True)
  load_before = os.getloadavg()
  records = [run_row(row, seeds, steps, log_every, workdir) for row in rows]
  meta = {'command': command, 'machine': platform.machine(), 'cores': os.cpu_count(),
          'load_before': list(load_before), 'load_after': list(os.getloadavg()),
          'date': time.strftime('%Y-%m-%d'), 'seeds': seeds, 'steps': steps}
  text = table_markdown(records, meta)
  with open(os.path.join(workdir, 'table1.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(workdir, 'table1.json'), 'w') as f:
    json.dump({'meta': meta, 'rows': records}, f, indent=1)
  plot_curves(records, os.path.join(workdir, 'curves.png'))
  print(text)
  return {'meta': meta, 'rows': records}


# ---------------------------------------------------------------------------
# 2. GAN vs conditional GAN on images.


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


def gan_vs_cgan() -> None:
  """Experiment 2: trains both variants of --config, scores them and real data, summary."""
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
      record = evaluate.evaluate(workdir, CLS_METRICS, num=FLAGS.num,
                                 num_reference=FLAGS.num_reference, classifier=FLAGS.classifier)
      summary[variant] = record
      closest_pairs_png(workdir, FLAGS.classifier, config.eval.dup_num,
                        os.path.join(workdir, 'closest_pairs.png'))
    print('== real data, scored the same way (the floor)', flush=True)
    summary['real'] = evaluate.evaluate(os.path.join(FLAGS.workdir, 'gan'), CLS_METRICS,
                                        real=True, num=FLAGS.num,
                                        num_reference=FLAGS.num_reference,
                                        classifier=FLAGS.classifier)
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')

  lines = ['| | ' + ' | '.join(CLS_SHOWN) + ' |', '|---' * (len(CLS_SHOWN) + 1) + '|']
  for name, record in summary.items():
    metrics = record['metrics']
    cells = [f'{metrics[k]["value"]:.4g}' if k in metrics else '-' for k in CLS_SHOWN]
    lines.append(f'| {name} (step {record["step"]}) | ' + ' | '.join(cells) + ' |')
  protocols = sorted({f'- {k}: {m["protocol"]}' for r in summary.values()
                      for k, m in r['metrics'].items() if k in CLS_SHOWN})
  text = '\n'.join(lines + ['', 'Protocols:'] + protocols) + '\n'
  with open(os.path.join(FLAGS.workdir, 'summary.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(FLAGS.workdir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(text)



# ---------------------------------------------------------------------------


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  if FLAGS.classifier:
    gan_vs_cgan()
    return
  try:
    check_table(FLAGS.table)
    if FLAGS.seeds < 1 or FLAGS.steps < 1 or FLAGS.log_every < 1:
      raise errors.ConfigError('--seeds, --steps and --log_every must be at least 1.')
    command = 'python -m experiments.mode_collapse ' + ' '.join(
        shlex.quote(a) for a in sys.argv[1:])
    run_table(parse_rows(FLAGS.rows), FLAGS.seeds, FLAGS.steps, FLAGS.log_every,
              FLAGS.workdir, command)
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  define_flags()
  cli.run(main)
