"""The image trainer: build everything from the config, restore or initialise, and train in the shared loop.

Re-running the same command on the same workdir resumes from the newest
readable checkpoint (gan_jax.training.loop.TrainingRun: unreadable ones are
moved aside to `N.corrupt`): the state carries the step and rng, and the
data stream is a pure function of (seed, step), so a resumed run continues
exactly where the checkpoint left off. A config or dataset that differs from
the one the checkpoint was trained with is refused (`resume.check_resume`),
and SIGTERM or SIGINT save a checkpoint before stopping
(gan_jax.training.preemption).

What is particular to images: one compiled step per call on a batch read
while the previous step runs, a grid of samples from fixed noise (a PNG,
and images in TensorBoard and W&B: `sample_images`), periodic evaluation
(gan_jax.evaluation.periodic), and a loss curve at the end.
"""

from __future__ import annotations

import os
import shlex
import time

from absl import logging
import jax
import ml_collections
import numpy as np

from gan_jax import data as data_lib
from gan_jax.config import base as config_base
from gan_jax.core import state as state_lib
from gan_jax.data import pipeline
from gan_jax.generation import sampling
from gan_jax.generation import standing
from gan_jax.parallel import devices
from gan_jax.parallel import hosts
from gan_jax.training import loop
from gan_jax.training import reporting
from gan_jax.training import setup as setup_lib
from gan_jax.viz import grids


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> state_lib.GANState:
  """Trains (or resumes) the run described by `config` in `workdir`; returns the final state.

  Raises errors.Interrupted after saving a checkpoint when SIGTERM or SIGINT
  arrives, and errors.ConfigError when the workdir's checkpoint was trained
  with a different config (see `resume.check_resume`) unless `allow_config_change`.
  """
  started = time.perf_counter()  # train.max_minutes counts from here
  config_base.validate(config)
  hosts.initialize(config.distributed)
  mesh = devices.make_mesh()
  devices.check_batch_size(config.train.batch_size, mesh)
  source = data_lib.build_source(config.data)
  setup = setup_lib.build_setup(config, source.info)
  with loop.TrainingRun(config, workdir, source.info, setup.init_state, devices.replicated(mesh),
                        allow_config_change=allow_config_change,
                        is_main=jax.process_index() == 0) as run:
    _describe(run, config, source)
    if run.report_resume():
      return run.state
    outcome = run.train(_hooks(config, workdir, run, source, setup, mesh), started)
  run.raise_if_signalled(outcome)
  if run.is_main:
    _say_done(config, workdir, run, outcome)
  logging.info('Finished training at step %d', outcome.step)
  return outcome.state


def next_steps(workdir: str, step: int) -> str:
  """The commands that show and score a finished run, printed at its end."""
  w = shlex.quote(workdir)
  return (f'Last grid:  {os.path.join(workdir, "samples", f"step_{step:07d}.png")}\n'
          f'Score it:   python -m gan_jax.evaluate --workdir={w}   '
          '(cls_fd and class coverage against the training data; --real gives the floor)\n'
          f'Sample it:  python -m gan_jax.generate --workdir={w} --num=64 '
          f'--out={shlex.quote(os.path.join(workdir, "generated.npz"))} '
          f'--grid={shlex.quote(os.path.join(workdir, "generated.png"))}')


def _describe(run: loop.TrainingRun, config: ml_collections.ConfigDict, source) -> None:
  """The run's first lines: model, data, devices, sizes, and what a step is in epochs."""
  tc, state = config.train, run.state
  run.say(f'gan_jax: {config.model.name} on {source.info.description}; '
          f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
          f'{jax.process_count()} process(es); '
          f'G {loop.num_params(state.g.params):,} params, '
          f'D {loop.num_params(state.d.params):,} params')
  per_epoch = len(source) / (tc.batch_size * tc.n_disc)
  run.say(f'batch {tc.batch_size} x {tc.n_disc} D update(s) per step; '
          f'{per_epoch:.1f} steps per epoch; {tc.num_steps} steps = '
          f'{tc.num_steps / per_epoch:.1f} epochs')


def _hooks(config: ml_collections.ConfigDict, workdir: str, run: loop.TrainingRun, source,
           setup: setup_lib.Setup, mesh) -> loop.Hooks:
  """The image trainer's part of the loop: its step, grid and evaluation."""
  evaluate = None
  if config.eval.every:  # imported only when used: evaluation pulls in the metrics stack
    from gan_jax.evaluation import periodic  # pylint: disable=g-import-not-at-top
    # Before the first step: loads what evaluation needs, so a missing file fails now.
    evaluate = periodic.PeriodicEvaluation(config, workdir, source, setup.gan, mesh,
                                           run.reporter)
  steps = _Steps(config, run, source, setup, mesh)
  return loop.Hooks(advance=steps.advance, prefetch=steps.prefetch,
                    sample=_grid_writer(config, workdir, setup, mesh, run.reporter),
                    evaluate=evaluate,
                    close=evaluate.close if evaluate is not None else None)


class _Steps:
  """One compiled train step per `advance`, on the batch that `prefetch` read while the last step ran."""

  def __init__(self, config: ml_collections.ConfigDict, run: loop.TrainingRun, source,
               setup: setup_lib.Setup, mesh):
    tc = config.train
    self._mesh = mesh
    self._batches = pipeline.batches(
        source, global_batch=tc.batch_size, n_disc=tc.n_disc, seed=config.seed,
        start_step=run.start_step, process_index=jax.process_index(),
        process_count=jax.process_count(), read_threads=config.data.read_threads,
        prefetch=config.data.prefetch)
    replicated = devices.replicated(mesh)
    train_step = jax.jit(
        setup.train_step(tc, mesh),
        in_shardings=(replicated, devices.batch_sharded(mesh, batch_axis=1)),
        out_shardings=(replicated, replicated), donate_argnums=0)
    self.prefetch()
    compile_start = time.perf_counter()
    self._step = train_step.lower(run.state, self._batch).compile()
    run.say(f'Compiled the train step in {time.perf_counter() - compile_start:.1f}s')

  def prefetch(self) -> None:
    self._batch = devices.global_batch(next(self._batches), self._mesh)

  def advance(self, state, k: int):
    assert k == 1, k  # Hooks.max_steps is 1: one batch per step
    return self._step(state, self._batch)


# Conditional runs with more classes than this get no per-class images: one
# tag per class would bury the rest in TensorBoard's list (the grid still
# shows every class, a row each).
MAX_CLASS_IMAGES = 32


def sample_images(grid: np.ndarray, raw: np.ndarray | None, ncols: int,
                  num_classes: int) -> dict[str, np.ndarray]:
  """The images of one sample step for TensorBoard and W&B, by tag, as uint8 HWC.

  `grid`: the (N, H, W, C) images of the PNG grid (the EMA G's when kept),
  `raw`: the raw G's on the same noise when an EMA is kept, else None.
  samples/grid is the raw G's grid and samples/grid_ema the EMA's, so the
  two can be compared; without an EMA, samples/grid is the PNG's grid. A
  conditional grid has one row of `ncols` per class; each row is also its
  own image, samples/class_K (from the PNG's G), up to MAX_CLASS_IMAGES classes.
  """
  out = {'samples/grid': grids.tile(grid if raw is None else raw, ncols)}
  if raw is not None:
    out['samples/grid_ema'] = grids.tile(grid, ncols)
  if 0 < num_classes <= MAX_CLASS_IMAGES:
    for k in range(num_classes):
      out[f'samples/class_{k}'] = grids.tile(grid[k * ncols:(k + 1) * ncols], ncols)
  return out


def _grid_writer(config: ml_collections.ConfigDict, workdir: str, setup: setup_lib.Setup, mesh,
                 reporter: reporting.Reporter):
  """(step, state) -> None: every process runs G on the fixed grid noise; process 0 writes.

  It writes the PNG grid and, through the reporter, its images in
  TensorBoard and W&B (`sample_images`).
  """
  sample = sampling.make_sampler(setup.gan)
  grid_z, grid_labels, grid_cols = sampling.grid_latents(
      config.seed, setup.gan, config.sample.num, config.sample.per_class)
  grid_z, grid_labels = devices.replicate((grid_z, grid_labels), mesh)
  is_main = jax.process_index() == 0

  def write(step: int, state) -> None:
    # The EMA G with standing BatchNorm statistics (generation.standing), once per grid.
    variables = standing.sampling_variables(setup.gan, state, setup.standing_stats)
    images = devices.to_host(sample(variables, grid_z, grid_labels))
    # With an EMA the PNG shows its G; the raw G's grid goes beside it in TensorBoard.
    # Every process samples: the sampler is one program over all of them.
    raw = (devices.to_host(sample(state.g.variables, grid_z, grid_labels)) if state.ema
           else None)
    if is_main:
      grids.save_grid(images, os.path.join(workdir, 'samples', f'step_{step:07d}.png'), grid_cols)
      reporter.images(step, sample_images(images, raw, grid_cols, setup.gan.num_classes))
  return write


def _say_done(config: ml_collections.ConfigDict, workdir: str, run: loop.TrainingRun,
              outcome: loop.Outcome) -> None:
  """Draws the loss curve and prints where everything is and what to run next."""
  from gan_jax.viz import curves  # pylint: disable=g-import-not-at-top  (matplotlib: slow, end only)
  path = curves.plot_curves(reporting.read_metrics(workdir),
                            os.path.join(workdir, 'loss_curve.png'),
                            f'{config.model.name} on {run.info.description}')
  print(f'{loop.end_line(outcome, config.train)}. Samples in {os.path.join(workdir, "samples")}, '
        f'loss curve {path}, checkpoints in {run.ckpt.directory}.\n'
        + next_steps(workdir, outcome.step), flush=True)
