"""Where training metrics and images go: the console (progress bar, ETA), `metrics.jsonl`, TensorBoard, and W&B.

TensorBoard event files are written with tensorboardX, which needs no
TensorFlow: scalars by `Reporter.write`, images (sample grids, the 2D lab's
figure) by `Reporter.images`. On resume, records after the restored step are
dropped from `metrics.jsonl` and purged from TensorBoard (scalars and images
alike: tensorboardX's purge_step writes a session-start event at the
restored step + 1, and TensorBoard's reader drops every event of every tag
from that step on that an earlier file holds), so the history has no repeats.
With config.logging.wandb.enabled, the same scalars and images also go to a
W&B run (gan_jax.training.wandb_run). Only process 0 writes.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from absl import logging
import ml_collections
import numpy as np
import tqdm

METRICS_FILE = 'metrics.jsonl'

# Console column order and short names; other metrics go to the files only.
_CONSOLE = (('d_loss_real', 'd_real_loss'), ('d_loss_fake', 'd_fake_loss'),
            ('d_loss_pair', 'd_pair_loss'),   # a paired loss's (rpgan)
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
  """Writes metrics and images of process 0; every other process stays quiet.

  `write` and `images` may be called from several threads (the 2D lab draws
  its figure on a background thread): a lock keeps their records whole and
  in one order in every sink, and none is written after `close`.
  """

  def __init__(self, workdir: str, start_step: int, num_steps: int,
               is_main: bool = True, progress_bar: bool | None = None,
               config: ml_collections.ConfigDict | None = None):
    """`config`: the run's, for config.logging (W&B); None writes no W&B run."""
    self.workdir = workdir
    self.num_steps = num_steps
    self.is_main = is_main
    self._lock = threading.Lock()
    self._bar = None
    self._tb = None
    self._jsonl = None
    self._wandb = None
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
    # Not for a rerun of a finished run: an empty offline segment could replace its history on sync.
    if config is not None and config.logging.wandb.enabled and start_step < num_steps:
      # Imported only when enabled: wandb is an optional extra.
      from gan_jax.training import wandb_run  # pylint: disable=g-import-not-at-top
      try:
        self._wandb = wandb_run.WandbRun.start(config, workdir)
      except BaseException:
        self.close()  # the caller never gets this Reporter to close
        raise
      self.message(self._wandb.description())

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
    scalars = {k: v for k, v in record.items() if k not in ('step', 'wall_s')}
    with self._lock:
      if self._jsonl is None:  # closed
        return
      self._jsonl.write(json.dumps(record) + '\n')
      self._jsonl.flush()
      for key, value in scalars.items():
        self._tb.add_scalar(key, value, step)
      self._tb.flush()
      if self._wandb is not None:
        self._wandb.log_scalars(step, scalars)
    if console:
      self.message(self._console_line(record))

  def images(self, step: int, images: dict[str, np.ndarray]) -> None:
    """Writes uint8 HWC images (C = 1, 3 or 4) to TensorBoard and W&B under their tags, at `step`.

    Images of one step go in one call: TensorBoard is flushed once, and W&B
    gets them in one record.
    """
    if not self.is_main or not images:
      return
    for tag, image in images.items():
      if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f'{tag}: images are uint8 (H, W, C) with C in 1, 3, 4; got '
                         f'{image.dtype} {image.shape}')
    with self._lock:
      if self._tb is None:  # closed: a late frame of a failed run
        return
      for tag, image in images.items():
        self._tb.add_image(tag, image, step, dataformats='HWC')
      self._tb.flush()
      if self._wandb is not None:
        self._wandb.log_images(step, images)

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

  def close(self, failed: bool = False) -> None:
    """Closes every sink; `failed` marks the W&B run as failed (exit code 1)."""
    if self._bar is not None:
      self._bar.close()
    with self._lock:
      tb, jsonl, wandb = self._tb, self._jsonl, self._wandb
      self._tb = self._jsonl = self._wandb = None
    if tb is not None:
      tb.close()
    if jsonl is not None:
      jsonl.close()
    if wandb is not None:
      wandb.finish(failed)
