"""The suite's output: the Markdown report of a (possibly partial) result, and its files.

The result is one JSON-ready dict, rewritten whole after every measurement
(atomically, so a run killed mid-write still leaves the previous one). A row
or part that failed has status 'failed', a one-line 'reason' and, when its
worker process died or hung, 'last_lines' (the end of its stderr; else a
'traceback'): the Markdown lists them under "## Failed".
"""

from __future__ import annotations

import json
import os
import statistics

JSON_NAME = 'accelerator_suite.json'
MD_NAME = 'accelerator_suite.md'
TABLE_HEADER = ('| model | batch | dtype | compile s | steps/s | img/s | TFLOP/s | MFU '
                '| torch eager steps/s | torch.compile steps/s | gan_jax/eager | gan_jax/compile |')
TORCH_PARTS = ('torch_eager', 'torch_compile')
MD_LAST_LINES = 20   # of a failure's last lines, in the Markdown (the JSON keeps them all)


def spread(values) -> dict | None:
  """{'median', 'min', 'max', 'all'} of the values that are not None; None if there are none."""
  values = [float(v) for v in values if v is not None]
  if not values:
    return None
  return {'median': statistics.median(values), 'min': min(values), 'max': max(values),
          'all': values}


def error_line(e: BaseException) -> str:
  """An exception as one short line, for a skipped or failed entry's reason."""
  return f'{type(e).__name__}: ' + ' '.join(str(e).split())[:300]


def _short(text: str, n: int = 70) -> str:
  return text if len(text) <= n else text[:n - 3] + '...'


def _fmt(x, digits: int = 3) -> str:
  if x is None:
    return 'n/a'
  if abs(x) >= 10 ** digits:
    return f'{x:,.0f}'
  return f'{x:.{digits}g}'


def _fmt_x(x) -> str:
  return 'n/a' if x is None else f'{_fmt(x)}x'


def _fmt_spread(s: dict | None, suffix: str = '') -> str:
  if not s:
    return 'n/a'
  if len(s['all']) == 1 or s['min'] == s['max']:
    return f"{_fmt(s['median'])}{suffix}"
  return f"{_fmt(s['median'])}{suffix} ({_fmt(s['min'])}-{_fmt(s['max'])})"


def _fmt_pct(x) -> str:
  return 'n/a' if x is None else f'{100 * x:.1f}%'


def _torch_cell(entry: dict | None, key: str = 'steps_per_s') -> str:
  """A PyTorch twin's rate, or why there is none."""
  if not entry:
    return 'n/a'
  if entry.get('status') != 'ok':
    return f"skipped ({entry.get('reason', '')})" if entry.get('status') == 'skipped' \
        else f"failed ({_short(entry.get('reason', ''))}; see Failed)"
  return _fmt_spread(entry.get(key))


def entry_line(entry: dict) -> str:
  """The progress line of one measurement."""
  head = f"{entry['model']} batch {entry['batch_size']} {entry['dtype']}: "
  if entry.get('status') != 'ok':
    return head + f"{entry.get('status')} ({entry.get('reason')})"
  text = (f"compile {entry['compile_s']:.1f}s, {_fmt_spread(entry['steps_per_s'])} steps/s, "
          f"{_fmt(entry['images_per_s'])} img/s, {_fmt(entry.get('tflops'))} TFLOP/s, "
          f"MFU {_fmt_pct(entry.get('mfu'))}")
  for part in TORCH_PARTS:
    if part in entry:
      text += f'; {part} {_torch_cell(entry[part])}'
  return head + text


def render_markdown(result: dict) -> str:
  """The Markdown report of a (possibly partial) result."""
  measured = [m for m in result.get('measurements', []) if m.get('status') == 'ok']
  lines = (_header(result) + _train_step_table(measured) + _speedup_table(measured)
           + _scaling_table(result.get('scaling') or {})
           + _sprint_section(result.get('sprint') or {}) + _failed_section(result)
           + _skipped_section(result))
  return '\n'.join(lines)


def _header(result: dict) -> list[str]:
  dev = result.get('device', {})
  peak = dev.get('peak_tflops') or {}
  chip_name = dev.get('chip') or 'unknown chip (MFU n/a)'
  lines = ['# gan_jax accelerator suite', '']
  lines.append(
      f"- device: {dev.get('device_count', '?')} x {dev.get('device_kind', '?')} "
      f"({dev.get('platform', '?')}; {chip_name}; dense peak per chip: bfloat16 "
      f"{_fmt(peak.get('bfloat16'))}, float32 {_fmt(peak.get('float32'))} TFLOP/s); "
      f"{dev.get('process_count', '?')} process(es)")
  lines.append(
      f"- versions: jax {dev.get('jax', '?')}, jaxlib {dev.get('jaxlib', '?')}, backend "
      f"{dev.get('platform_version', '?')}; torch {dev.get('torch') or 'not installed'}"
      + (f" (built for CUDA {dev.get('torch_cuda')})" if dev.get('torch_cuda') else '')
      + (f", running on {dev.get('torch_device')}" if dev.get('torch_device') else ''))
  lines.append(f"- date: {dev.get('date_utc', '?')}; status: {result.get('status', '?')}, "
               f"{_fmt(result.get('elapsed_s'))} s of a {_fmt(result.get('budget_s'))} s budget")
  lines.append(f"- command: `{result.get('command', '')}`")
  if result.get('options', {}).get('smoke'):
    lines.append('- SMOKE RUN: toy sizes on CPU; the numbers check the machinery, not speed')
  lines.append('')
  return lines


def _train_step_table(measured: list[dict]) -> list[str]:
  lines = ['## Train step', '', TABLE_HEADER, '|' + ' --- |' * 12]
  for m in measured:
    lines.append(
        f"| {m['model']} | {m['batch_size']} | {m['dtype']} | {_fmt(m.get('compile_s'))} "
        f"| {_fmt_spread(m.get('steps_per_s'))} | {_fmt(m.get('images_per_s'))} "
        f"| {_fmt(m.get('tflops'))} | {_fmt_pct(m.get('mfu'))} "
        f"| {_torch_cell(m.get('torch_eager'))} | {_torch_cell(m.get('torch_compile'))} "
        f"| {_fmt_spread(m.get('ratio_eager'), 'x')} | {_fmt_spread(m.get('ratio_compile'), 'x')} |")
  lines += ['', 'Steps/s and ratios: median (min-max) over the rounds; img/s = steps/s x '
            'batch x D updates per step; TFLOP/s from XLA\'s cost analysis of the lowered '
            'step (the model\'s FLOPs); MFU against the dense peak of the chips in the '
            'step\'s dtype. '
            'torch.compile\'s compile and gan_jax\'s are excluded from the rates.', '']
  return lines


def _speedup_table(measured: list[dict]) -> list[str]:
  pairs = _bfloat16_speedups(measured)
  if not pairs:
    return []
  lines = ['## bfloat16 over float32', '',
           '| model | batch | gan_jax float32 steps/s | gan_jax bfloat16 steps/s '
           '| gan_jax speedup | torch eager speedup | torch.compile speedup |',
           '|' + ' --- |' * 7]
  for p in pairs:
    lines.append(f"| {p['model']} | {p['batch_size']} | {_fmt(p['float32'])} "
                 f"| {_fmt(p['bfloat16'])} | {_fmt_x(p['speedup'])} "
                 f"| {_fmt_x(p.get('torch_eager_speedup'))} "
                 f"| {_fmt_x(p.get('torch_compile_speedup'))} |")
  lines.append('')
  return lines


def _bfloat16_speedups(measured: list[dict]) -> list[dict]:
  by_key = {(m['model'], m['batch_size'], m['dtype']): m for m in measured}
  out = []
  for (model, batch, dtype), m in by_key.items():
    if dtype != 'float32' or (model, batch, 'bfloat16') not in by_key:
      continue
    b = by_key[(model, batch, 'bfloat16')]
    f32, bf16 = m['steps_per_s']['median'], b['steps_per_s']['median']
    pair = {'model': model, 'batch_size': batch, 'float32': f32, 'bfloat16': bf16,
            'speedup': bf16 / f32}
    for part in TORCH_PARTS:
      x, y = m.get(part) or {}, b.get(part) or {}
      if x.get('status') == 'ok' and y.get('status') == 'ok':
        pair[f'{part}_speedup'] = y['steps_per_s']['median'] / x['steps_per_s']['median']
    out.append(pair)
  return out


def _scaling_table(scaling: dict) -> list[str]:
  if not scaling.get('entries'):
    return []
  lines = [f"## Scaling: {scaling.get('model')}, {scaling.get('dtype')}, per-device batch "
           f"{scaling.get('per_device_batch')}", '',
           '| devices | global batch | compile s | steps/s | img/s | efficiency |',
           '|' + ' --- |' * 6]
  for e in scaling['entries']:
    if e.get('status') != 'ok':
      continue
    lines.append(f"| {e['devices']} | {e['batch_size']} | {_fmt(e.get('compile_s'))} "
                 f"| {_fmt_spread(e.get('steps_per_s'))} | {_fmt(e.get('images_per_s'))} "
                 f"| {_fmt_pct(e.get('efficiency'))} |")
  lines += ['', 'Efficiency = img/s on n devices / (n x img/s on one).', '']
  return lines


def _sprint_section(sprint: dict) -> list[str]:
  if not (sprint.get('evals') or sprint.get('steps_done')):
    return []
  lines = [f"## Quality sprint: {sprint.get('config')} in {sprint.get('dtype')}", '',
           f"- {sprint.get('steps_done', 0)} of {sprint.get('num_steps')} steps in "
           f"{_fmt((sprint.get('wall_s') or 0) / 60)} min"
           + (f"; {_fmt(sprint.get('train_steps_per_s'))} steps/s while training"
              if sprint.get('train_steps_per_s') else '')
           + f"; exit status {sprint.get('returncode')}",
           f"- command: `{sprint.get('command', '')}`", '']
  names = sorted({k for e in sprint.get('evals', []) for k in e.get('metrics', {})})
  if names:
    lines += ['| step | wall min | ' + ' | '.join(names) + ' |',
              '|' + ' --- |' * (2 + len(names))]
    for e in sprint['evals']:
      values = ' | '.join(_fmt(e['metrics'].get(n), 4) for n in names)
      lines.append(f"| {e['step']} | {_fmt(e.get('wall_min'))} | {values} |")
    lines.append('')
  return lines


def _failed_section(result: dict) -> list[str]:
  failed = failed_entries(result)
  if not failed:
    return []
  lines = ['## Failed', '']
  for what, entry in failed:
    lines.append(f"- {what}: {entry.get('reason', '')}")
    tail = entry.get('last_lines') or (entry.get('traceback') or '').splitlines()
    if tail:
      label = 'last lines of its output' if entry.get('last_lines') else 'traceback'
      lines += [f'  {label}:', '  ```', *(f'  {_short(t, 200)}' for t in tail[-MD_LAST_LINES:]),
                '  ```']
  return lines + ['']


def _skipped_section(result: dict) -> list[str]:
  skipped = skipped_entries(result)
  if not skipped:
    return []
  return ['## Skipped', '', *(f'- {what}: {reason}' for what, reason in skipped), '']


def _all_entries(result: dict):
  """(what, entry) for every measurement, twin part, scaling entry, the scaling and the sprint."""
  for m in result.get('measurements', []):
    what = f"{m['model']} batch {m['batch_size']} {m['dtype']}"
    yield what, m
    for part in TORCH_PARTS:
      if m.get(part):
        yield f'{what} {part}', m[part]
  for key in ('scaling', 'sprint'):
    s = result.get(key) or {}
    if s:
      yield key, s
    for e in s.get('entries', []):
      yield f"{key} {e.get('devices')} devices", e
  if (result.get('device') or {}).get('torch_probe'):
    yield 'PyTorch probe', result['device']['torch_probe']
  if result.get('error'):
    yield 'suite', result['error']


def failed_entries(result: dict) -> list[tuple[str, dict]]:
  """(what, entry) for everything that failed: whole measurements, parts, scaling, sprint."""
  return [(what, e) for what, e in _all_entries(result) if e.get('status') == 'failed']


def skipped_entries(result: dict) -> list[tuple[str, str]]:
  """(what, reason) for everything skipped (failures are in failed_entries), and notes."""
  out = []
  for what, e in _all_entries(result):
    if e.get('status') not in (None, 'ok', 'failed', 'running'):
      out.append((what, f"{e.get('status')}: {e.get('reason', '')}"))
    elif e.get('note') and e.get('status') == 'ok' and 'model' in e:
      out.append((what, e['note']))
  return out


def write_report(out_dir: str, result: dict) -> None:
  """OUT_DIR/accelerator_suite.json and .md, each replaced whole."""
  _atomic_write(os.path.join(out_dir, JSON_NAME),
                json.dumps(result, indent=1, default=_json_default) + '\n')
  _atomic_write(os.path.join(out_dir, MD_NAME), render_markdown(result) + '\n')


def _atomic_write(path: str, text: str) -> None:
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def _json_default(value):
  """numpy scalars as numbers; anything else JSON cannot hold as its str()."""
  try:
    return float(value)
  except (TypeError, ValueError):
    return str(value)
