"""The 2D lab's trainer (`config.trainer = 'toy2d'`): fused steps, snapshots, metrics, resume.

Like the image trainer it runs in gan_jax.training.loop.TrainingRun, which
owns resume, the step loop and its periodic actions (log, checkpoint, the
time budget, SIGTERM/SIGINT), so a rerun of the same command resumes
exactly. Unlike it there is no input pipeline: the target is sampled inside
the compiled step, and up to `toy2d.steps_per_call` steps run as one
`lax.scan` call, which the loop ends wherever something is due (a log, a
snapshot, a checkpoint). Metrics reach the host only when logging, where the
lab adds its distance and mode scores.

A run writes, besides the usual config.json, metrics.jsonl, tensorboard/ (with
each snapshot figure as the image lab/snapshot) and checkpoints/:
  snapshots/step_NNNNNNN.png   the four-panel figure every train.sample_every steps
  animation.gif                the snapshots in order (toy2d.animation='gif')
  final_metrics.json           the last step's metrics, distance and modes included
  timing.json                  where the wall time went: training, snapshots, metrics, GIF
"""

from __future__ import annotations

import concurrent.futures
import os
import time

import jax
import ml_collections

from gan_jax.config import base as config_base
from gan_jax.core.state import GANState
from gan_jax.toy2d import lab as lab_lib
from gan_jax.training import loop
from gan_jax.training import reporting
from gan_jax.viz import curves
from gan_jax.viz import toy2d as viz

SNAPSHOT_DIR = 'snapshots'
ANIMATION_FILE = 'animation.gif'
FINAL_METRICS_FILE = 'final_metrics.json'
TIMING_FILE = 'timing.json'
# timing.json's seconds, in the order written; then total, steps, frames, train_steps_per_sec.
TIMING_KEYS = ('compile_and_first_call', 'train', 'metrics', 'snapshots', 'snapshot_drawing',
               'waiting_for_frames', 'checkpoints', 'animation')


class Snapshots:
  """Writes the four-panel figure of a state to WORKDIR/snapshots/step_N.png, and to TensorBoard.

  The arrays are computed on device and fetched at once; drawing and PNG
  encoding run on one background thread, overlapping the next train steps.
  That thread also hands the frame to `reporter` (TensorBoard's lab/snapshot,
  and W&B when enabled), whose writes are thread-safe; `close` waits for it.
  """

  def __init__(self, lab: lab_lib.Lab, title: str, directory: str,
               reporter: reporting.Reporter | None = None):
    self.directory = directory
    self.reporter = reporter
    self.compute = jax.jit(lab.snapshot)
    self.figure = viz.SnapshotFigure(lab.target.bounds, lab.latent_box, title,
                                     lab.config.train.num_steps)
    self.drawing_seconds = 0.0       # time the background thread spent drawing
    self._worker = concurrent.futures.ThreadPoolExecutor(1, 'gan_jax-snapshots')
    self._queued: list[concurrent.futures.Future] = []

  def write(self, state: GANState, history: list[dict], step: int, extra: str = '') -> None:
    snapshot = jax.device_get(self.compute(state))
    for done in [f for f in self._queued if f.done()]:
      done.result()   # a frame that failed raises here
    self._queued = [f for f in self._queued if not f.done()]
    self._queued.append(self._worker.submit(self._draw, snapshot, list(history), step, extra))

  def _draw(self, snapshot, history, step, extra) -> str:
    start = time.perf_counter()
    self.figure.draw(snapshot, history, step, extra)
    path = self.figure.save(os.path.join(self.directory, f'step_{step:07d}.png'))
    if self.reporter is not None:
      self.reporter.images(step, {'lab/snapshot': self.figure.image()})
    self.drawing_seconds += time.perf_counter() - start
    return path

  def close(self) -> None:
    """Waits for the queued frames; a frame that failed raises here."""
    try:
      for future in self._queued:
        future.result()
    finally:
      self._worker.shutdown(wait=True)


def _metrics_line(scores: dict) -> str:
  parts = [f'sliced W2 {scores["sliced_wasserstein"]:.4f}']
  if 'modes' in scores:
    parts.append(f'modes {scores["modes"]:.0f}, high quality {scores["hq_percent"]:.1f}%, '
                 f'reverse KL {scores["reverse_kl"]:.3f}')
  return ', '.join(parts)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> GANState:
  """Trains (or resumes) the 2D-lab run described by `config` in `workdir`; returns the state.

  Resuming with a config that differs from the workdir's config.json is
  refused unless `allow_config_change` (gan_jax.training.resume.check_resume).
  Like the image trainer, it stops at train.max_minutes, and after SIGTERM or
  SIGINT saves a checkpoint and raises errors.Interrupted.
  """
  run_start = time.perf_counter()  # train.max_minutes counts from here
  config_base.validate(config)
  lab = lab_lib.Lab.from_config(config)
  # One device: the networks are tiny, and sweeps use vmap rather than devices.
  device = jax.sharding.make_single_device_sharding(jax.devices()[0])
  with loop.TrainingRun(config, workdir, lab.info, lab.setup.init_state, device,
                        allow_config_change=allow_config_change) as run:
    _describe(run, lab)
    if run.report_resume():
      return run.state
    lab_hooks = _LabHooks(lab, run)
    outcome = run.train(lab_hooks.hooks(), run_start)
  run.raise_if_signalled(outcome)
  _finish(lab, run, lab_hooks, outcome, run_start)
  return outcome.state


def _describe(run: loop.TrainingRun, lab: lab_lib.Lab) -> None:
  config, state = lab.config, run.state
  tc, t = config.train, config.toy2d
  run.say(f'gan_jax 2D lab: {config.model.name} on {lab.target.description}, '
          f'{t.latent} 2D noise; {jax.devices()[0].platform}; '
          f'G {loop.num_params(state.g.params):,} params, '
          f'D {loop.num_params(state.d.params):,} params; batch {tc.batch_size}, '
          f'up to {t.steps_per_call} steps per compiled call')


class _LabHooks:
  """The 2D lab's part of the shared loop: fused chunks, scores at log steps, snapshot figures.

  It keeps what the end of the run reports: `history` (the logged records
  with their scores), the last `scores`, `frames` and `timing`.
  """

  def __init__(self, lab: lab_lib.Lab, run: loop.TrainingRun):
    config = lab.config
    self.lab = lab
    self.snapshots = Snapshots(lab, f'{config.data.name}: {config.model.name}, '
                               f'G lr {config.optim.g.lr:g}, D lr {config.optim.d.lr:g}, '
                               f'b1 {config.optim.g.b1:g}/{config.optim.d.b1:g}',
                               os.path.join(run.workdir, SNAPSHOT_DIR), run.reporter)
    self.timing = dict.fromkeys(TIMING_KEYS, 0.0)
    self.history = reporting.read_metrics(run.workdir)  # cut back to the restored step
    self.scores: dict = {}
    self.frames = 0
    self.timed_steps = 0             # steps of calls after their first (compiling) one
    self._chunks = {}
    self._eval_points = jax.jit(lab.evaluation_points)
    self._reference = lab.reference()

  def hooks(self) -> loop.Hooks:
    # No wall_s: the lab's records never carried it (timing.json says where time went).
    return loop.Hooks(advance=self.advance, max_steps=self.lab.config.toy2d.steps_per_call,
                      log=self.log, sample=self.sample, close=self.close, wall_time=False)

  def advance(self, state: GANState, length: int):
    """`length` fused steps in one compiled call (compiled once per length)."""
    first_call = length not in self._chunks
    if first_call:
      setup = self.lab.setup
      self._chunks[length] = jax.jit(self.lab.make_chunk(setup.g_tx, setup.d_tx, length),
                                     donate_argnums=0)
    start = time.perf_counter()
    state, metrics = self._chunks[length](state)
    jax.block_until_ready(state)  # so that the timing is the steps', not their dispatch
    self.timing['compile_and_first_call' if first_call else 'train'] += (
        time.perf_counter() - start)
    self.timed_steps += 0 if first_call else length
    return state, metrics

  def log(self, step: int, state: GANState, means: dict) -> dict:
    """The distance and mode scores of G at this step, added to its record and the history."""
    start = time.perf_counter()
    points = jax.device_get(self._eval_points(state.sampling_variables()))
    self.scores = self.lab.score(points, self._reference)
    self.timing['metrics'] += time.perf_counter() - start
    self.history.append({'step': step, **means, **self.scores})
    return self.scores

  def sample(self, step: int, state: GANState) -> None:
    self.snapshots.write(state, self.history, step,
                         _metrics_line(self.scores) if self.scores else '')
    self.frames += 1

  def close(self) -> None:
    """Waits for the frames still being drawn; a frame that failed raises here."""
    start = time.perf_counter()
    try:
      self.snapshots.close()
    finally:
      self.timing['waiting_for_frames'] = time.perf_counter() - start
      self.timing['snapshot_drawing'] = self.snapshots.drawing_seconds


def _finish(lab: lab_lib.Lab, run: loop.TrainingRun, lab_hooks: _LabHooks,
            outcome: loop.Outcome, run_start: float) -> None:
  """Writes final_metrics.json, the GIF, the loss curve and timing.json, and says how it went."""
  config, workdir, timing = lab.config, run.workdir, lab_hooks.timing
  # The last step always logs, so its record holds the final metrics.
  loop.write_json(os.path.join(workdir, FINAL_METRICS_FILE),
                  {**lab_hooks.history[-1], 'distribution': lab.target.description})
  start = time.perf_counter()
  animation = None
  if config.toy2d.animation == 'gif':
    animation = viz.assemble_gif(viz.frames_in(os.path.join(workdir, SNAPSHOT_DIR)),
                                 os.path.join(workdir, ANIMATION_FILE))
  timing['animation'] = time.perf_counter() - start
  curves.plot_curves(reporting.read_metrics(workdir), os.path.join(workdir, 'loss_curve.png'),
                     f'{config.model.name} on {lab.target.description}')
  timing.update(checkpoints=outcome.seconds['checkpoint'], snapshots=outcome.seconds['sample'])
  timing.update(total=time.perf_counter() - run_start, steps=outcome.step - run.start_step,
                frames=lab_hooks.frames,
                # steps/s of the compiled calls after their first (compiling) call
                train_steps_per_sec=(lab_hooks.timed_steps / timing['train']
                                     if timing['train'] else None))
  loop.write_json(os.path.join(workdir, TIMING_FILE), timing)
  print(f'{_ended(outcome, config, lab)}: {_metrics_line(lab_hooks.scores)}.\n'
        f'Time {timing["total"]:.1f}s: compile and first call '
        f'{timing["compile_and_first_call"]:.1f}s, training {timing["train"]:.1f}s, metrics '
        f'{timing["metrics"]:.1f}s, snapshots {timing["snapshots"]:.1f}s (+ '
        f'{timing["snapshot_drawing"]:.1f}s drawing on a background thread, '
        f'{timing["waiting_for_frames"]:.1f}s of it waited for), animation '
        f'{timing["animation"]:.1f}s. {lab_hooks.frames} snapshots in '
        f'{os.path.join(workdir, SNAPSHOT_DIR)}'
        + (f', animation {animation}' if animation else '') + '.', flush=True)


def _ended(outcome: loop.Outcome, config: ml_collections.ConfigDict, lab: lab_lib.Lab) -> str:
  if outcome.reason == loop.DONE:
    return f'Done: {config.train.num_steps} steps on {lab.target.description}'
  return f'{loop.end_line(outcome, config.train)}. {lab.target.description} at that step'
