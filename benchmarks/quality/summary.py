"""The quality-per-time table (Markdown) and figure (metrics against wall-clock minutes) of scored runs."""

from __future__ import annotations

import os

from benchmarks.quality import baseline, scoring


def _load(run: str) -> tuple[dict, dict]:
  """(quality.json, training record) of a scored run."""
  quality = baseline.read_json(os.path.join(run, scoring.QUALITY))
  timeline = os.path.join(run, baseline.TIMELINE)
  trained = baseline.read_json(timeline if os.path.exists(timeline)
                               else os.path.join(run, 'benchmark.json'))
  return quality, trained


def _steps_per_sec(run: str, quality: dict, trained: dict) -> float:
  if 'steps_per_sec' in trained:
    return trained['steps_per_sec']
  last = quality['points'][-1]
  return last['step'] / (60 * last['minutes'])


def _fmt(value, digits: int = 1) -> str:
  return '–' if value is None else f'{value:.{digits}f}'


def table(runs: list[str]) -> str:
  """One row per run at its last point; the load during training beside it."""
  lines = ['| run | minutes | steps | steps/s | FID | cls_fd | classes (rarest share) '
           '| class accuracy | load before → after |',
           '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
  for run in runs:
    quality, trained = _load(run)
    last = quality['points'][-1]
    load = trained.get('load_before'), trained.get('load_after')
    load_text = (f'{load[0][0]:.2f} → {load[1][0]:.2f}' if all(load) else '–')
    classes = (f'{last["cls_classes"]:.0f} ({last["cls_min_class"]:.3f})'
               if 'cls_classes' in last else '–')
    lines.append(
        f'| {quality["kind"]} (`{run}`) | {last["minutes"]:.1f} | {last["step"]} '
        f'| {_steps_per_sec(run, quality, trained):.2f} | {_fmt(last.get("fid"))} '
        f'| {_fmt(last.get("cls_fd"), 2)} | {classes} | {_fmt(last.get("cls_acc"), 3)} '
        f'| {load_text} |')
  quality, _ = _load(runs[0])
  lines.append('')
  for name, protocol in sorted(quality['protocols'].items()):
    if name in ('fid', 'cls_fd', 'cls_acc', 'cls_classes'):
      lines.append(f'- {name}: {protocol}')
  return '\n'.join(lines)


def figure(runs: list[str], path: str) -> None:
  """cls_fd (every point) and FID (the points that have one) against wall-clock minutes."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)  # FID may exist at one point only
  for run in runs:
    quality, _ = _load(run)
    points = quality['points']
    label = quality['kind']
    axes[0].plot([p['minutes'] for p in points], [p['cls_fd'] for p in points], 'o-',
                 label=label)
    fid = [p for p in points if 'fid' in p]
    axes[1].plot([p['minutes'] for p in fid], [p['fid'] for p in fid], 's-', label=label)
  axes[0].set_ylabel('domain-classifier FD (lower is better)')
  axes[1].set_ylabel('FID (lower is better)')
  for ax in axes:
    ax.set_xlabel('wall-clock minutes of training (2-core CPU)')
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=90)
  plt.close(fig)
