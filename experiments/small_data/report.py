"""The study's report: the Markdown table and page, and the figure of ADA's p and r_t."""

from __future__ import annotations

import os

RESULTS_MD, ADA_FIGURE = 'RESULTS.md', 'ada_p.png'
TABLE_HEADER = ('| variant | steps | FID | cls_fd | cls_fd at the kept checkpoints | '
                'classes covered (rarest %) | D(train) | D(held-out) | gap | AUC | final p | '
                'wall s | load |')


def _num(value, fmt: str) -> str:
  return '–' if value is None else format(value, fmt)


def markdown_table(results: dict) -> str:
  """One row per variant: quality against the full data, D's memorisation, ADA's p, cost."""
  lines = [TABLE_HEADER, '|' + ' --- |' * TABLE_HEADER.count(' | ') + ' --- |']
  for variant, r in results['variants'].items():
    m, mem, t = r.get('metrics', {}), r.get('d_memorisation', {}), r.get('train', {})
    covered = '–'
    if m.get('cls_classes') is not None:
      covered = f'{m["cls_classes"]:.0f}'
      if m.get('cls_min_class') is not None:
        covered += f' ({100 * m["cls_min_class"]:.1f}%)'
    load = '–'
    if t.get('load_before') and t.get('load_after'):
      load = f'{t["load_before"][0]:.2f} → {t["load_after"][0]:.2f}'
    curve = ' / '.join(f'{c["cls_fd"]:.0f}' for c in r.get('curve', []) if 'cls_fd' in c)
    lines.append(
        f'| {variant} | {r.get("step", "–")} | {_num(m.get("fid"), ".1f")} | '
        f'{_num(m.get("cls_fd"), ".2f")} | {curve or "–"} | {covered} | {_num(mem.get("d_train"), ".3f")} | '
        f'{_num(mem.get("d_heldout"), ".3f")} | {_num(mem.get("d_gap"), "+.3f")} | '
        f'{_num(mem.get("auc"), ".3f")} | {_num(r.get("ada_p"), ".3f")} | '
        f'{_num(t.get("wall_s"), ".0f")} | {load} |')
  return '\n'.join(lines) + '\n'


def markdown_report(results: dict) -> str:
  s = results['settings']
  first = next(iter(results['variants'].values()), {})
  protocols = '\n'.join(f'- {k}: {v}' for k, v in first.get('protocols', {}).items())
  grids = '\n'.join(f'{v}:\n\n![{v}]({r["grid"]})\n' for v, r in results['variants'].items()
                    if r.get('grid'))
  figure = (f'\nADA\'s p and r_t over training (target {s["ada_target"]:g}):\n\n'
            f'![ADA p]({ADA_FIGURE})\n' if results.get('ada_figure') else '')
  return (
      f'# Small-data GANs: {results["num_train"]} training images of '
      f'{results["data"]["description"]}\n\n'
      f'Every variant: {s["config"]}, {s["steps"]} steps of batch {s["batch_size"]}, seed '
      f'{s["seed"]}, on the same {results["num_train"]} images (balanced over the classes). '
      f'Quality is measured against the full data; D(.) is the mean sigmoid of D\'s logit '
      f'(inference-mode BatchNorm) on the training images and on '
      f'{first.get("d_memorisation", {}).get("num_heldout", "?")} held-out real images; gap = '
      f'D(train) - D(held-out); AUC: telling them apart by the logit (0.5 = not at all). '
      f'Load: 1-minute load average before → after training.\n\n'
      f'{markdown_table(results)}\n'
      f'Protocols:\n\n{protocols or "- (no sample metrics)"}\n{figure}\n'
      f'Last sample grids:\n\n{grids}\n'
      f'Wall-clock of this invocation: {results.get("wall_seconds", 0):.0f}s.\n\n'
      f'Command:\n\n    {results.get("command", "")}\n')


def ada_curves(workdir: str, variants) -> dict[str, list[dict]]:
  """{variant: its metrics.jsonl records with ada_p} for the variants that log it."""
  from gan_jax.training import reporting  # pylint: disable=g-import-not-at-top
  curves = {}
  for variant in variants:
    records = [r for r in reporting.read_metrics(os.path.join(workdir, variant)) if 'ada_p' in r]
    if records:
      curves[variant] = records
  return curves


def write_ada_figure(curves: dict[str, list[dict]], target: float, path: str) -> str | None:
  """ADA's p (top) and r_t with the target (bottom) against the step; None without curves."""
  if not curves:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax_p, ax_r) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True)
  for variant, records in curves.items():
    step = [r['step'] for r in records]
    ax_p.plot(step, [r['ada_p'] for r in records], label=variant)
    rt = [(r['step'], r['ada_rt']) for r in records if 'ada_rt' in r]
    if rt:
      ax_r.plot(*zip(*rt), label=variant)
  ax_p.set_ylim(0, max(0.05, 1.1 * max(r['ada_p'] for rs in curves.values() for r in rs)))
  ax_r.axhline(target, color='k', ls='--', lw=1, label=f'target {target:g}')
  ax_p.set_ylabel('ADA p')
  ax_r.set_ylabel('r_t = E[sign D(x_real)]')
  ax_r.set_xlabel('step')
  ax_p.legend(loc='best')
  ax_r.legend(loc='best')
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
