"""Where training metrics go: the console (progress bar, ETA), `metrics.jsonl`, and TensorBoard.

TensorBoard event files are written with tensorboardX, which needs no
TensorFlow. On resume, records after the restored step are dropped from
`metrics.jsonl` and purged from TensorBoard, so the history has no repeats.
"""

from __future__ import annotations

import json
import os
import sys

from absl import logging
import tqdm

METRICS_FILE = 'metrics.jsonl'

# Console column order and short names; other metrics go to the files only.
_CONSOLE = (('d_loss_real', 'd_real_loss'), ('d_loss_fake', 'd_fake_loss'),
            ('g_loss', 'g_loss'), ('g_similarity_loss', 'mse_sim'), ('d_acc_real', 'acc_real'),
            ('d_acc_fake', 'acc_fake'), ('d_real', 'D(x)'), ('d_fake', 'D(G(z))'),
            ('sliced_wasserstein', 'SW2'), ('modes', 'modes'), ('hq_percent', 'HQ%'),
            ('loss', 'loss'), ('recon_nll', 'recon_nll'), ('kl', 'kl'))  # VAE family


def read_metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  records = []
  with open(path) as f:
    for line in f:
      line = line.strip()
      if line:
        try:
          records.append(json.loads(line))
        except json.JSONDecodeError:
          break  # a line cut short by a crash ends the usable history
  return records


def _format_duration(seconds: float) -> str:
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s'


class Reporter:
  """Writes metrics of process 0; every other process stays quiet."""

  def __init__(self, workdir: str, start_step: int, num_steps: int,
               is_main: bool = True, progress_bar: bool | None = None):
    self.workdir = workdir
    self.num_steps = num_steps
    self.is_main = is_main
    self._bar = None
    self._tb = None
    self._jsonl = None
    if not is_main:
      return
    path = os.path.join(workdir, METRICS_FILE)
    kept = [r for r in read_metrics(workdir) if r.get('step', 0) <= start_step]
    with open(path + '.tmp', 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in kept)
    os.replace(path + '.tmp', path)
    self._jsonl = open(path, 'a')
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'),
                             purge_step=start_step + 1 if start_step else None)
    if progress_bar is None:
      progress_bar = sys.stderr.isatty()
    if progress_bar:
      self._bar = tqdm.tqdm(total=num_steps, initial=start_step, unit='step',
                            dynamic_ncols=True, smoothing=0.1)

  def advance(self, steps: int) -> None:
    if self._bar is not None:
      self._bar.update(steps)

  def write(self, step: int, metrics: dict, steps_per_sec: float | None = None,
            images_per_sec: float | None = None, console: bool = True,
            wall_s: float | None = None) -> None:
    """`wall_s`: seconds since training started in this process, kept in metrics.jsonl
    (not TensorBoard) so that quality can be read against wall time."""
    if not self.is_main:
      return
    record = {'step': step, **{k: float(v) for k, v in metrics.items()}}
    if steps_per_sec:
      record['steps_per_sec'] = steps_per_sec
      record['images_per_sec'] = images_per_sec
    if wall_s is not None:
      record['wall_s'] = round(wall_s, 3)
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()
    for key, value in record.items():
      if key not in ('step', 'wall_s'):
        self._tb.add_scalar(key, value, step)
    self._tb.flush()
    if console:
      self.message(self._console_line(record))

  def _console_line(self, r: dict) -> str:
    pct = 100 * r['step'] / self.num_steps
    parts = [f'step {r["step"]:>{len(str(self.num_steps))}}/{self.num_steps} ({pct:3.0f}%)']
    if 'steps_per_sec' in r:
      eta = (self.num_steps - r['step']) / max(r['steps_per_sec'], 1e-9)
      parts.append(f'{r["steps_per_sec"]:.2f} steps/s {r["images_per_sec"]:.0f} img/s '
                   f'eta {_format_duration(eta)}')
    parts.append(' '.join(f'{name} {r[k]:.3f}' for k, name in _CONSOLE if k in r))
    return ' | '.join(parts)

  def message(self, text: str) -> None:
    if not self.is_main:
      return
    if self._bar is not None:
      self._bar.write(text)
    else:
      print(text, flush=True)
    logging.debug(text)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
    if self._tb is not None:
      self._tb.close()
    if self._jsonl is not None:
      self._jsonl.close()
