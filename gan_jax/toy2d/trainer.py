"""The 2D lab's training loop (`config.trainer = 'toy2d'`): fused steps, snapshots, metrics, resume.

Like gan_jax.train, it runs inside gan_jax.loop.TrainingRun (pre-flight
checks, resume from the newest readable checkpoint, clean exits) and logs
through reporting.Reporter, so a rerun of the same command resumes exactly.
Unlike it there is no input pipeline: the target is sampled inside the
compiled step, and `toy2d.steps_per_call` steps run as one
`lax.scan` call. The loop stops only where something is due (a log, a
snapshot, a checkpoint), and metrics reach the host only when logging.

A run writes, besides the usual config.json, metrics.jsonl, tensorboard/ and
checkpoints/:
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
import numpy as np

from gan_jax.config import base as config_base
from gan_jax.training import loop
from gan_jax.training import reporting
from gan_jax.core.state import GANState
from gan_jax.toy2d import lab as lab_lib
from gan_jax.viz import curves
from gan_jax.viz import toy2d as viz

SNAPSHOT_DIR = 'snapshots'
ANIMATION_FILE = 'animation.gif'
FINAL_METRICS_FILE = 'final_metrics.json'
TIMING_FILE = 'timing.json'


class Snapshots:
  """Writes the four-panel figure of a state to WORKDIR/snapshots/step_N.png.

  The arrays are computed on device and fetched at once; drawing and PNG
  encoding run on one background thread, overlapping the next train steps.
  """

  def __init__(self, lab: lab_lib.Lab, title: str, directory: str):
    self.directory = directory
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
    parts.append(f'modes {scores["modes"]:.0f}, high quality {scores["hq_percent"]:.1f}%')
  return ', '.join(parts)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> GANState:
  """Trains (or resumes) the 2D-lab run described by `config` in `workdir`; returns the state.

  Resuming with a config that differs from the workdir's config.json is
  refused unless `allow_config_change` (gan_jax.loop.check_resume).
  """
  run_start = time.perf_counter()
  config_base.validate(config)
  lab = lab_lib.Lab.from_config(config)
  setup, tc, t = lab.setup, config.train, config.toy2d
  # One device: the networks are tiny, and sweeps use vmap rather than devices.
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  with loop.TrainingRun(config, workdir, lab.info, setup.init_state, device,
                        allow_config_change=allow_config_change) as run:
    state = run.state
    run.say(f'gan_jax 2D lab: {config.model.name} on {lab.target.description}, '
            f'{t.latent} 2D noise; {jax.devices()[0].platform}; '
            f'G {loop.num_params(state.g.params):,} params, '
            f'D {loop.num_params(state.d.params):,} params; batch {tc.batch_size}, '
            f'up to {t.steps_per_call} steps per compiled call')
    if run.report_resume():
      return state
    snapshots = Snapshots(lab, f'{config.data.name}: {config.model.name}, '
                          f'G lr {config.optim.g.lr:g}, D lr {config.optim.d.lr:g}, '
                          f'b1 {config.optim.g.b1:g}/{config.optim.d.b1:g}',
                          os.path.join(workdir, SNAPSHOT_DIR))
    timing = dict.fromkeys(('compile_and_first_call', 'train', 'metrics', 'snapshots',
                            'snapshot_drawing', 'waiting_for_frames', 'checkpoints',
                            'animation'), 0.0)
    try:
      state, history, scores, frames, timed_steps = _train_chunks(
          config, lab, run, snapshots, timing)
      start = time.perf_counter()
      run.ckpt.wait()
      timing['checkpoints'] += time.perf_counter() - start
    finally:
      start = time.perf_counter()
      snapshots.close()
      timing['waiting_for_frames'] = time.perf_counter() - start
      timing['snapshot_drawing'] = snapshots.drawing_seconds
  step = tc.num_steps

  # The last step always logs, so its record holds the final metrics.
  loop.write_json(os.path.join(workdir, FINAL_METRICS_FILE),
                  {**history[-1], 'distribution': lab.target.description})
  start = time.perf_counter()
  animation = None
  if t.animation == 'gif':
    animation = viz.assemble_gif(viz.frames_in(os.path.join(workdir, SNAPSHOT_DIR)),
                                 os.path.join(workdir, ANIMATION_FILE))
  timing['animation'] = time.perf_counter() - start
  curves.plot_curves(reporting.read_metrics(workdir), os.path.join(workdir, 'loss_curve.png'),
                     f'{config.model.name} on {lab.target.description}')
  timing.update(total=time.perf_counter() - run_start, steps=step - run.start_step, frames=frames,
                # steps/s of the compiled calls after their first (compiling) call
                train_steps_per_sec=timed_steps / timing['train'] if timing['train'] else None)
  loop.write_json(os.path.join(workdir, TIMING_FILE), timing)
  print(f'Done: {tc.num_steps} steps on {lab.target.description}: {_metrics_line(scores)}.\n'
        f'Time {timing["total"]:.1f}s: compile and first call '
        f'{timing["compile_and_first_call"]:.1f}s, training {timing["train"]:.1f}s, metrics '
        f'{timing["metrics"]:.1f}s, snapshots {timing["snapshots"]:.1f}s (+ '
        f'{timing["snapshot_drawing"]:.1f}s drawing on a background thread, '
        f'{timing["waiting_for_frames"]:.1f}s of it waited for), animation '
        f'{timing["animation"]:.1f}s. {frames} snapshots in '
        f'{os.path.join(workdir, SNAPSHOT_DIR)}'
        + (f', animation {animation}' if animation else '') + '.', flush=True)
  return state


def _train_chunks(config, lab: lab_lib.Lab, run: loop.TrainingRun, snapshots: Snapshots,
                  timing: dict):
  """Fused chunks of steps from the run's start to the end; returns (state, history, scores, frames, timed steps)."""
  setup, tc, t = lab.setup, config.train, config.toy2d
  state, step, reporter = run.state, run.start_step, run.reporter
  chunks = {}

  def chunk(length):
    if length not in chunks:
      chunks[length] = jax.jit(lab.make_chunk(setup.g_tx, setup.d_tx, length),
                               donate_argnums=0)
    return chunks[length]

  eval_points = jax.jit(lab.evaluation_points)
  reference = lab.reference()
  history = reporting.read_metrics(run.workdir)
  frames = timed_steps = 0
  scores: dict = {}
  pending: list[dict] = []
  interval_start, interval_steps = time.perf_counter(), 0
  periods = (tc.log_every, tc.sample_every, tc.checkpoint_every, t.steps_per_call)
  while step < tc.num_steps:
    stop = lab_lib.next_stop(step, tc.num_steps, periods)
    length = stop - step
    start = time.perf_counter()
    first_call = length not in chunks
    state, metrics = chunk(length)(state)
    jax.block_until_ready(state)
    timing['compile_and_first_call' if first_call else 'train'] += time.perf_counter() - start
    timed_steps += 0 if first_call else length
    pending.append(metrics)
    interval_steps += length
    step = stop
    reporter.advance(length)
    run.poll()
    last = step == tc.num_steps

    if loop.due(step, tc.log_every, last):
      per_step = loop.host_metrics(pending)
      loop.check_finite(per_step, step, run.ckpt)
      means = {k: float(np.mean(v)) for k, v in per_step.items() if k != 'finite'}
      start = time.perf_counter()
      scores = lab.score(jax.device_get(eval_points(state.sampling_variables())), reference)
      timing['metrics'] += time.perf_counter() - start
      rate = interval_steps / (time.perf_counter() - interval_start)
      reporter.write(step, {**means, **scores}, rate, rate * tc.batch_size * tc.n_disc)
      history.append({'step': step, **means, **scores})
      pending, interval_start, interval_steps = [], time.perf_counter(), 0

    if loop.due(step, tc.checkpoint_every, last):
      if pending:
        loop.check_finite(loop.host_metrics(pending), step, run.ckpt)
      start = time.perf_counter()
      run.save(step, state)
      timing['checkpoints'] += time.perf_counter() - start

    if loop.due(step, tc.sample_every, last):
      start = time.perf_counter()
      snapshots.write(state, history, step, _metrics_line(scores) if scores else '')
      timing['snapshots'] += time.perf_counter() - start
      frames += 1
  return state, history, scores, frames, timed_steps
