"""Writing evaluation results: WORKDIR/eval/*.json, console lines, and the best-checkpoint manager.

Each JSON file holds every metric with its protocol. The best checkpoint by
`config.eval.best_metric` lives in its own orbax CheckpointManager
(WORKDIR/checkpoints_best, `max_to_keep=1` ranked by `best_fn`), apart from
the last-K manager that resuming relies on: a best-ranked manager would delete
the latest checkpoint whenever it scored worse, and resume would then go back
in time.
"""

from __future__ import annotations

import json
import os
import time
from typing import Iterable

from gan_jax import errors
from gan_jax.evaluation.evaluators import EVALUATORS, Metric

EVAL_DIR = 'eval'
BEST_SUBDIR = 'checkpoints_best'


def metric_names(value) -> list[str]:
  """Evaluator names from a tuple or a comma-separated string, checked against the registry."""
  items = [value] if isinstance(value, str) else list(value)
  names = [p.strip() for item in items for p in str(item).split(',') if p.strip()]
  for name in names:
    EVALUATORS.get(name)   # unknown names fail here, with a suggestion
  return names


def to_record(results: dict[str, Metric]) -> dict:
  return {name: metric.to_dict() for name, metric in results.items()}


def format_results(results: dict[str, Metric]) -> str:
  lines = []
  for name, m in results.items():
    std = f' ± {m.extra["std"]:.4g}' if 'std' in m.extra else ''
    extra = ''.join(f', {k} {v:.4g}' for k, v in m.extra.items()
                    if k not in ('std', 'histogram') and isinstance(v, (int, float)))
    lines.append(f'  {name:<14} {m.value:.6g}{std}{extra}    [{m.protocol}]')
  return '\n'.join(lines)


def write_json(workdir: str, name: str, record: dict) -> str:
  """Writes WORKDIR/eval/NAME; metrics already there and not recomputed are kept.

  So `evaluate --metrics=cls_fd` then `--metrics=probe` leave both in one file
  (each metric carries its own protocol).
  """
  directory = os.path.join(workdir, EVAL_DIR)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, name)
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
      record = {**record, 'metrics': {**old.get('metrics', {}), **record['metrics']}}
    except (OSError, json.JSONDecodeError):
      pass  # an unreadable old file is replaced
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2)
    f.write('\n')
  os.replace(path + '.tmp', path)
  return path


def full_record(step, samples_description: str, results: dict[str, Metric],
                eval_config, seconds: float) -> dict:
  return {'step': step, 'samples': samples_description, 'metrics': to_record(results),
          'eval_config': eval_config.to_dict(), 'seconds': round(seconds, 2),
          'time': time.strftime('%Y-%m-%dT%H:%M:%S')}


class BestCheckpoint:
  """Keeps the single best checkpoint by one metric, in WORKDIR/checkpoints_best."""

  def __init__(self, workdir: str, metric: str, higher_is_better: bool | None = None):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    self.metric = metric
    self._mode = None if higher_is_better is None else ('max' if higher_is_better else 'min')
    self._ocp = ocp
    self.directory = os.path.join(os.path.abspath(workdir), BEST_SUBDIR)
    self._manager = None

  def _open(self, mode: str):
    if self._manager is None:
      ocp = self._ocp
      self._manager = ocp.CheckpointManager(
          self.directory, options=ocp.CheckpointManagerOptions(
              max_to_keep=1, best_fn=lambda m: m[self.metric], best_mode=mode,
              create=True, enable_async_checkpointing=False))
    return self._manager

  def update(self, step: int, state, results: dict[str, Metric]) -> bool:
    """Saves `state` if `results[metric]` beats the kept one; returns whether it is now the best."""
    if self.metric not in results:
      raise errors.ConfigError(
          f'config.eval.best_metric={self.metric!r} is not among the computed metrics '
          f'({", ".join(results)}). Add its evaluator to config.eval.metrics.')
    metric = results[self.metric]
    manager = self._open('max' if metric.higher_is_better else 'min')
    manager.save(step, args=self._ocp.args.StandardSave(state),
                 metrics={self.metric: float(metric.value)}, force=True)
    manager.wait_until_finished()
    return manager.best_step() == step

  def close(self):
    if self._manager is not None:
      self._manager.close()


def summary_line(step, results: dict[str, Metric], names: Iterable[str] | None = None) -> str:
  shown = names or results
  return f'eval at step {step}: ' + ', '.join(
      f'{n} {results[n].value:.4g}' for n in shown if n in results)
