"""The whole study: the split, then every variant trained, scored and recorded; results.json and RESULTS.md."""

from __future__ import annotations

import dataclasses
import os
import time

from experiments.small_data.report import (ADA_FIGURE, RESULTS_MD, ada_curves, markdown_report,
                                           write_ada_figure)
from experiments.small_data.scoring import FidReference, cached_scores, write_json
from experiments.small_data.settings import Settings
from experiments.small_data.split import full_data_config, prepare_split
from experiments.small_data.variants import VARIANTS, train_variant, variant_config
from gan_jax import errors

RESULTS_JSON = 'results.json'


def run_study(s: Settings, command: str = '', log=print) -> dict:
  """Runs (or resumes) the whole study; writes and returns the results."""
  started = time.perf_counter()
  for variant in s.variants:
    if variant not in VARIANTS:
      raise errors.ConfigError(f'Unknown variant {variant!r}: --variants takes some of '
                               f'{", ".join(VARIANTS)}.')
  if not os.path.exists(s.config):
    raise errors.ConfigError(f'--config={s.config} does not exist.')
  if s.fid_stats and not os.path.exists(s.fid_stats):
    raise errors.DataNotFoundError(f'--fid_stats={s.fid_stats} does not exist; compute it '
                                   'with python -m gan_jax.metrics.fid, or leave it empty.')
  os.makedirs(s.workdir, exist_ok=True)
  data_config = full_data_config(s)
  split = prepare_split(s, data_config, log)
  configs = {v: variant_config(s, v, split['train_dir']) for v in s.variants}  # errors first
  fid_reference = FidReference(s.fid_stats, log) if s.fid_stats else None
  results = {'command': command, 'settings': dataclasses.asdict(s), 'data': split['info'],
             'reference': {k: v for k, v in data_config.to_dict().items()
                           if k not in ('read_threads', 'prefetch')},
             'train_dir': split['train_dir'], 'num_train': len(split['train_idx']),
             'num_heldout': len(split['heldout_idx']), 'variants': {}}
  for variant, config in configs.items():
    workdir = os.path.join(s.workdir, variant)
    log(f'[{variant}] training {s.steps} steps on {len(split["train_idx"])} images '
        f'({", ".join(f"{k}={v!r}" for k, v in VARIANTS[variant](s).items()) or "no overrides"})')
    trained = train_variant(config, workdir, log)
    log(f'[{variant}] ' + ('finished before: not retrained' if trained['skipped'] else
                           f'trained in {trained["wall_s"]:.0f}s, load '
                           f'{trained["load_before"][0]:.2f} -> {trained["load_after"][0]:.2f}'))
    scored = cached_scores(s, workdir, data_config, split, fid_reference, log)
    curves = ada_curves(s.workdir, [variant]).get(variant, [])
    grid = os.path.join(variant, 'samples', f'step_{scored["step"]:07d}.png')
    record = {'workdir': workdir, 'overrides': VARIANTS[variant](s), 'train': trained,
              **scored, 'grid': grid if os.path.exists(os.path.join(s.workdir, grid)) else None,
              'ada_p': curves[-1]['ada_p'] if curves else None,
              'ada_rt': curves[-1].get('ada_rt') if curves else None}
    results['variants'][variant] = record
    m, mem = record['metrics'], record['d_memorisation']
    log(f'[{variant}] step {record["step"]}: '
        + ''.join(f'{k} {v:.4g}, ' for k, v in m.items())
        + f'D(train) {mem["d_train"]:.3f}, D(held-out) {mem["d_heldout"]:.3f}, '
        f'gap {mem["d_gap"]:+.3f}, AUC {mem["auc"]:.3f}')
    results['wall_seconds'] = time.perf_counter() - started
    write_json(os.path.join(s.workdir, RESULTS_JSON), results)   # after every variant
  results['ada_figure'] = write_ada_figure(ada_curves(s.workdir, s.variants), s.ada_target,
                                           os.path.join(s.workdir, ADA_FIGURE))
  results['wall_seconds'] = time.perf_counter() - started
  write_json(os.path.join(s.workdir, RESULTS_JSON), results)
  with open(os.path.join(s.workdir, RESULTS_MD), 'w') as f:
    f.write(markdown_report(results))
  log(f'Wrote {os.path.join(s.workdir, RESULTS_MD)} and {RESULTS_JSON}'
      + (f', {ADA_FIGURE}' if results['ada_figure'] else ''))
  return results
