"""Weights & Biases, optional (config.logging.wandb): the Reporter's scalars and images, also in a W&B run.

Off by default; `wandb` is an optional extra (pip install -e '.[wandb]') and
is imported only when enabled. One workdir is one W&B run: its id is written
to WORKDIR/wandb_run_id at the first start and read back on resume, so a
resumed run logs into the same W&B run. mode='offline' (the default) writes
to WORKDIR/wandb/offline-run-*/ and needs no network; each start of the run
(each resume) is one such directory, all with the run's id. Upload the first
with `wandb sync DIR` and each later one, in order, with `wandb sync --append
DIR`: a plain sync of a later one replaces the run's history instead
(W&B cannot resume a run offline; wandb/wandb#3841). Online runs resume in
place.

Every record carries the training step as the metric `step`, the x-axis of
every chart (`define_metric`), rather than as W&B's own `_step`: W&B drops a
`log(step=...)` below the last one, and the 2D lab's snapshot images arrive
from a background thread after later scalars. W&B's history is append-only:
after a resume, the steps between the restored checkpoint and the crash are
logged again (TensorBoard and metrics.jsonl drop them instead).
"""

from __future__ import annotations

import os
import uuid

import ml_collections
import numpy as np

from gan_jax import errors
from gan_jax.config import base as config_base

RUN_ID_FILE = 'wandb_run_id'


def import_wandb():
  """The wandb module, or errors.ConfigError saying how to install it."""
  try:
    import wandb  # pylint: disable=g-import-not-at-top  (optional extra)
  except ImportError as e:
    raise errors.ConfigError(config_base.WANDB_MISSING) from e
  return wandb


def run_id(workdir: str) -> tuple[str, bool]:
  """This workdir's W&B run id, and whether an earlier start of the run made it.

  Read from WORKDIR/wandb_run_id, or made and written there.
  """
  path = os.path.join(workdir, RUN_ID_FILE)
  if os.path.exists(path):
    with open(path) as f:
      text = f.read().strip()
    if text:
      return text, True
  new_id = uuid.uuid4().hex[:12]  # W&B ids: letters and digits, at most 128
  with open(path + '.tmp', 'w') as f:
    f.write(new_id + '\n')
  os.replace(path + '.tmp', path)
  return new_id, False


class WandbRun:
  """A workdir's W&B run, started on process 0 by `start`; the Reporter logs to it and finishes it."""

  def __init__(self, wandb, run, continued: bool):
    self._wandb = wandb
    self._run = run
    self._continued = continued   # an earlier start of this workdir's run logged to it

  @classmethod
  def start(cls, config: ml_collections.ConfigDict, workdir: str) -> WandbRun:
    """Starts (or resumes) the workdir's W&B run as config.logging.wandb says."""
    wandb = import_wandb()
    wc = config.logging.wandb
    rid, continued = run_id(workdir)
    try:
      run = wandb.init(project=wc.project, entity=wc.entity or None,
                       name=wc.name or os.path.basename(os.path.abspath(workdir)),
                       group=wc.group or None, tags=list(wc.tags) or None, mode=wc.mode,
                       dir=workdir, id=rid, resume='allow')
    except Exception as e:  # pylint: disable=broad-except  (wandb raises its own kinds)
      raise errors.ConfigError(
          f'W&B could not start a run (config.logging.wandb.mode={wc.mode!r}): '
          f'{type(e).__name__}: {e}. mode=offline needs no account or network.') from e
    # After init, not in it: a resumed run may carry changed values (resumable keys).
    run.config.update(config.to_dict(), allow_val_change=True)
    run.define_metric('step', summary='max')
    run.define_metric('*', step_metric='step')
    return cls(wandb, run, continued)

  def description(self) -> str:
    """One line saying where the run goes, for the console; offline, how to upload it."""
    mode = self._run.settings.mode
    if mode != 'offline':
      return f'W&B: run {self._run.id} ({mode}) {getattr(self._run, "url", None) or ""}'.rstrip()
    directory = os.path.dirname(self._run.dir)  # run.dir is its files/
    upload = (f'after the earlier directories of this run with: wandb sync --append {directory}'
              if self._continued else f'with: wandb sync {directory}')
    return f'W&B: run {self._run.id}, offline, in {directory}; upload it {upload}'

  def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
    self._run.log({'step': step, **scalars})

  def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
    """uint8 HWC images; one channel goes as a greyscale (HW) image, which W&B wants 2D."""
    self._run.log({'step': step, **{tag: self._wandb.Image(image[..., 0] if image.shape[-1] == 1
                                                           else image)
                                    for tag, image in images.items()}})

  def finish(self, failed: bool = False) -> None:
    self._run.finish(exit_code=1 if failed else 0)
