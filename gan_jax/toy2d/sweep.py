"""Hyperparameter sweeps of the 2D lab: every setting x seed trained side by side with vmap.

Settings that differ only in optimizer numbers (learning rate, Adam's b1, b2,
eps) and the seed share one program: the optimizers are built inside the
vmapped function from traced hyperparameters, so one compiled `lax.scan`
advances every run at once. Settings that change shapes or code (the model
width, the distribution, the batch size, the loss, an optimizer's name...)
form separate groups, each compiled once and vmapped over its own runs.

Outputs in the sweep's workdir:
  results.csv, results.md  final metrics per setting: mean and std over seeds
  runs.csv                 final metrics of every run
  final_panels.png         the four-panel figure of every setting's first seed, side by side
  panels/setting_NN.png    the same, one file per setting
  histories.json           the logged means of every run (what panel 1 draws)
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import difflib
import itertools
import json
import os
import time
import types
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.config import saved as saved_config
from gan_jax.core import optim
from gan_jax.core import state as state_lib
from gan_jax.toy2d import lab as lab_lib
from gan_jax.training import setup as setup_lib
from gan_jax.viz import toy2d as viz

# Optimizer fields that may be traced (vmapped); b1 is SGD's momentum, which
# optax needs as a Python number, so it is traced for adam/adamw only.
_TRACEABLE_FIELDS = ('lr', 'b1', 'b2', 'eps')
TABLE_METRICS = ('sliced_wasserstein', 'modes', 'hq_percent', 'reverse_kl', 'd_loss', 'g_loss',
                 'd_acc_real', 'd_acc_fake')


def _flat_keys(config: ml_collections.ConfigDict, prefix: str = '') -> list[str]:
  keys = []
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      keys += _flat_keys(value, f'{prefix}{key}.')
    else:
      keys.append(prefix + key)
  return keys


def get_value(config: ml_collections.ConfigDict, key: str):
  node = config
  for part in key.split('.'):
    node = node[part]
  return node


def set_value(config: ml_collections.ConfigDict, key: str, value) -> None:
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value


def _coerce(key: str, text: str, current):
  try:
    if isinstance(current, bool):
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(text)
      return text.lower() in ('true', '1')
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, str):
      return text
  except ValueError:
    raise errors.ConfigError(f'--grid {key}: {text!r} is not a valid '
                             f'{type(current).__name__}.') from None
  raise errors.ConfigError(f'--grid {key}: keys of type {type(current).__name__} cannot be '
                           'swept; sweep numbers, booleans or strings.')


def parse_grid(specs: Sequence[str], config: ml_collections.ConfigDict) -> list[tuple]:
  """['optim.g.b1=0.5,0.7', ...] -> [(('optim.g.b1',), (0.5, 0.7)), ...], typed like the config.

  Keys joined by '+' take the same values together (one axis of the grid):
  'optim.g.b1+optim.d.b1=0.5,0.8' sets both betas to 0.5, then both to 0.8.
  """
  known = _flat_keys(config)
  grid, seen = [], set()
  for spec in specs:
    names, sep, values = spec.partition('=')
    if not sep or not values.strip() or not names.strip():
      raise errors.ConfigError(f'--grid {spec!r}: expected KEY=V1,V2,... e.g. '
                               '--grid optim.d.lr=1e-3,5e-2.')
    keys = tuple(k.strip().removeprefix('config.') for k in names.split('+'))
    for key in keys:
      if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        raise errors.ConfigError(f'--grid: unknown config key {key!r}.'
                                 + (f' Did you mean {close[0]!r}?' if close else ''))
      if key in seen:
        raise errors.ConfigError(f'--grid: key {key!r} is given twice.')
      seen.add(key)
    texts = [v.strip() for v in values.split(',')]
    typed = [tuple(_coerce(k, t, get_value(config, k)) for k in keys) for t in texts]
    grid.append((keys, tuple(t[0] for t in typed) if len(keys) == 1 else tuple(typed)))
  return grid


def _axis_settings(keys: tuple, values: tuple) -> list[dict]:
  """One grid axis as {key: value} per point; tied keys get their own typed copies."""
  if len(keys) == 1:
    return [{keys[0]: v} for v in values]
  return [dict(zip(keys, v)) for v in values]


def _traceable(config: ml_collections.ConfigDict, key: str) -> bool:
  parts = key.split('.')
  if len(parts) != 3 or parts[0] != 'optim' or parts[2] not in _TRACEABLE_FIELDS:
    return False
  return parts[2] != 'b1' or config.optim[parts[1]].name in ('adam', 'adamw')


@dataclasses.dataclass
class Group:
  """Runs that share one compiled program: same static config, traced values may differ."""
  config: ml_collections.ConfigDict    # the first setting's config (static values are shared)
  traced_keys: list[str]
  runs: list[tuple[int, int]]          # (setting index, seed)


def plan(config: ml_collections.ConfigDict, grid: Sequence[tuple], num_seeds: int):
  """Every setting's config and the groups of runs that can share one vmapped program."""
  if num_seeds < 1:
    raise errors.ConfigError(f'--seeds={num_seeds} must be at least 1.')
  keys = [k for axis_keys, _ in grid for k in axis_keys]
  settings, configs = [], []
  for point in itertools.product(*[_axis_settings(*axis) for axis in grid]):
    setting = {k: v for part in point for k, v in part.items()}
    cfg = ml_collections.ConfigDict(config.to_dict())
    for key, value in setting.items():
      set_value(cfg, key, value)
    config_base.validate(cfg)
    lab_lib.validate(cfg)
    for net in ('g', 'd'):   # bad optimizer values fail here
      optim.build(cfg.optim[net], optim.updates_in_run(cfg.train, net))
    settings.append(setting)
    configs.append(cfg)
  groups: dict = {}
  for i, cfg in enumerate(configs):
    static = tuple((k, settings[i][k]) for k in keys if not _traceable(cfg, k))
    traced = [k for k in keys if _traceable(cfg, k)]
    group = groups.setdefault(static, Group(cfg, traced, []))
    group.runs += [(i, config.seed + s) for s in range(num_seeds)]
  return settings, configs, list(groups.values())


def _optimizer(cfg: ml_collections.ConfigDict, net: str, traced: dict):
  """optim's optimizer for `net` with the traced hyperparameters of one run substituted."""
  fields = dict(cfg.optim[net].to_dict())
  fields.update({k.split('.')[2]: v for k, v in traced.items() if k.split('.')[1] == net})
  tx = optim.OPTIMIZERS.get(fields['name'])(types.SimpleNamespace(**fields))
  return optim.with_schedule(tx, fields['lr_schedule'], optim.updates_in_run(cfg.train, net))


def _programs(lab: lab_lib.Lab, group: Group):
  """Jitted, vmapped (init, chunk(length)) for the runs of `group`."""
  cfg = group.config
  use_ema = cfg.train.ema_decay > 0

  def txs(hp):
    return _optimizer(cfg, 'g', hp), _optimizer(cfg, 'd', hp)

  def init(seed, hp):
    g_tx, d_tx = txs(hp)
    return state_lib.create(lab.setup.gan, g_tx, d_tx, seed, use_ema,
                            aux=setup_lib.initial_aux(lab.setup.d_input, lab.setup.regularizer))

  cache = {}

  def chunk(length):
    if length not in cache:
      def run(state, hp):
        g_tx, d_tx = txs(hp)
        return lab.make_chunk(g_tx, d_tx, length)(state)
      cache[length] = jax.jit(jax.vmap(run), donate_argnums=0)
    return cache[length]

  return jax.jit(jax.vmap(init)), chunk


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def run_sweep(config: ml_collections.ConfigDict, grid: Sequence[tuple], num_seeds: int,
              workdir: str, say: Callable[[str], None] = print) -> dict:
  """Trains every setting x seed, writes the tables and figures, returns {'runs', 'settings'}."""
  if config.trainer != 'toy2d':
    raise errors.ConfigError(f"Sweeps run the 2D lab (config.trainer='toy2d'); this config's "
                             f'trainer is {config.trainer!r}. Start from configs/toy2d.py.')
  settings, configs, groups = plan(config, grid, num_seeds)
  os.makedirs(workdir, exist_ok=True)
  saved_config.save_to_workdir(config, workdir)
  results = {}   # (setting, seed) -> final metrics
  histories = {}
  figures = {}
  for g, group in enumerate(groups):
    cfg, tc = group.config, group.config.train
    lab = lab_lib.Lab.from_config(cfg)
    init, chunk = _programs(lab, group)
    hp = {k: jnp.asarray([settings[i][k] for i, _ in group.runs], jnp.float32)
          for k in group.traced_keys}
    seeds = jnp.asarray([seed for _, seed in group.runs], jnp.int32)
    say(f'group {g + 1}/{len(groups)}: {len(group.runs)} runs in one vmapped program '
        f'({", ".join(group.traced_keys) or "seeds"} traced), {tc.num_steps} steps each')
    start = time.perf_counter()
    states = init(seeds, hp)
    reference = lab.reference()
    evaluate = jax.jit(jax.vmap(lambda s: lab.evaluation_points(s.sampling_variables())))
    run_histories = [[] for _ in group.runs]
    scoring = []   # (record, future): NumPy scores computed while training goes on
    step, pending = 0, []
    next_report = tc.num_steps // 10
    with concurrent.futures.ThreadPoolExecutor(1, 'gan_jax-sweep-metrics') as scorer:
      while step < tc.num_steps:
        stop = lab_lib.next_stop(step, tc.num_steps, (tc.log_every, cfg.toy2d.steps_per_call))
        states, metrics = chunk(stop - step)(states, hp)
        pending.append(metrics)
        step = stop
        if step % tc.log_every == 0 or step == tc.num_steps:
          host = jax.device_get(pending)
          points = jax.device_get(evaluate(states))
          for r in range(len(group.runs)):
            record = {k: float(np.mean(np.concatenate([m[k][r] for m in host])))
                      for k in host[0] if k != 'finite'}
            record['finite'] = bool(np.all(np.concatenate([m['finite'][r] for m in host])))
            run_histories[r].append({'step': step, **record})
            one = jax.tree.map(lambda x, r=r: x[r], points)
            scoring.append((run_histories[r][-1], scorer.submit(lab.score, one, reference)))
          pending = []
        if step >= next_report:
          say(f'  step {step}/{tc.num_steps}, {time.perf_counter() - start:.0f}s')
          next_report += max(tc.num_steps // 10, 1)
      for record, future in scoring:
        record.update(future.result())
    elapsed = time.perf_counter() - start
    say(f'  {len(group.runs)} x {tc.num_steps} steps in {elapsed:.1f}s (compile and metrics '
        f'included): {len(group.runs) * tc.num_steps / elapsed:.0f} run-steps/s')

    snaps = jax.device_get(jax.jit(jax.vmap(lab.snapshot))(states))
    for r, (i, seed) in enumerate(group.runs):
      results[(i, seed)] = {k: v for k, v in run_histories[r][-1].items() if k != 'step'}
      histories[(i, seed)] = run_histories[r]
      if i not in figures:   # the first seed of each setting
        figures[i] = (configs[i], lab, jax.tree.map(lambda x, r=r: x[r], snaps), seed)
  _write_outputs(workdir, grid, settings, results, histories, figures)
  return {'settings': settings, 'runs': results}


def _setting_name(setting: dict) -> str:
  return ', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in setting.items()) or 'base config'


def _write_outputs(workdir, grid, settings, results, histories, figures) -> None:
  keys = [k for axis_keys, _ in grid for k in axis_keys]
  metrics = [m for m in TABLE_METRICS if any(m in r for r in results.values())]
  rows = []
  for i, setting in enumerate(settings):
    runs = [r for (s, _), r in sorted(results.items()) if s == i]
    row = {**setting, 'seeds': len(runs),
           'diverged': sum(not r.get('finite', True) for r in runs)}
    for m in metrics:
      row[f'{m}_mean'], row[f'{m}_std'] = _mean_std([r[m] for r in runs])
    rows.append(row)
  with open(os.path.join(workdir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  with open(os.path.join(workdir, 'runs.csv'), 'w', newline='') as f:
    fields = keys + ['seed'] + metrics + ['finite']
    writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
    writer.writeheader()
    for (i, seed), r in sorted(results.items()):
      writer.writerow({**settings[i], 'seed': seed, **r})
  header = keys + ['seeds'] + metrics
  lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
  for row in rows:
    cells = [f'{row[k]:g}' if isinstance(row[k], float) else str(row[k]) for k in keys]
    cells.append(str(row['seeds']) + (f' ({row["diverged"]} diverged)' if row['diverged'] else ''))
    cells += [f'{row[m + "_mean"]:.4g} ± {row[m + "_std"]:.2g}' for m in metrics]
    lines.append('| ' + ' | '.join(cells) + ' |')
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write('Final metrics, mean ± std over seeds (sliced_wasserstein: SW2 between 10,000 '
            'generated and 10,000 true points; modes / hq_percent: the VEEGAN/PacGAN rule '
            'over 2,500 samples; reverse_kl: PacGAN\'s reverse KL of their mode '
            'histogram).\n\n' + '\n'.join(lines) + '\n')
  with open(os.path.join(workdir, 'histories.json'), 'w') as f:
    json.dump([{'setting': settings[i], 'seed': seed, 'history': h}
               for (i, seed), h in sorted(histories.items())], f)

  images = []
  for i in sorted(figures):
    cfg, lab, snap, seed = figures[i]
    figure = viz.SnapshotFigure(lab.target.bounds, lab.latent_box,
                                f'{cfg.data.name}: {_setting_name(settings[i])}, seed {seed}',
                                cfg.train.num_steps)
    r = results[(i, seed)]
    extra = f'sliced W2 {r["sliced_wasserstein"]:.4f}' + (
        f', modes {r["modes"]:.0f}, HQ {r["hq_percent"]:.1f}%' if 'modes' in r else '')
    figure.draw(snap, histories[(i, seed)], cfg.train.num_steps, extra)
    figure.save(os.path.join(workdir, 'panels', f'setting_{i:02d}.png'))
    images.append(figure.image())
  viz.side_by_side(images, os.path.join(workdir, 'final_panels.png'),
                   columns=min(len(images), 4))
