"""The training loop: build everything from the config, restore or initialise, step, and run the hooks.

Re-running the same command on the same workdir resumes from the newest
readable checkpoint (gan_jax.loop.TrainingRun: unreadable ones are moved
aside to `N.corrupt`): the state carries the step and rng, and the data stream is a pure
function of (seed, step), so a resumed run continues exactly where the
checkpoint left off. A config or dataset that differs from the one the
checkpoint was trained with is refused (`loop.check_resume`), and SIGTERM or SIGINT
save a checkpoint before stopping (`gan_jax.preemption`).
"""

from __future__ import annotations

import os
import shlex
import signal
import time

from absl import logging
import jax
import ml_collections
import numpy as np

from gan_jax.config import base as config_base
from gan_jax import data as data_lib
from gan_jax.parallel import hosts
from gan_jax import errors
from gan_jax.training import loop
from gan_jax.parallel import devices
from gan_jax.training import preemption
from gan_jax.training import reporting
from gan_jax.generation import sampling
from gan_jax.core import state as state_lib
from gan_jax.data import pipeline
from gan_jax.training import setup as setup_lib
from gan_jax.viz import grids


def next_steps(workdir: str, step: int) -> str:
  """The commands that show and score a finished run, printed at its end."""
  w = shlex.quote(workdir)
  return (f'Last grid:  {os.path.join(workdir, "samples", f"step_{step:07d}.png")}\n'
          f'Score it:   python -m gan_jax.evaluate --workdir={w}   '
          '(cls_fd and class coverage against the training data; --real gives the floor)\n'
          f'Sample it:  python -m gan_jax.generate --workdir={w} --num=64 '
          f'--out={shlex.quote(os.path.join(workdir, "generated.npz"))} '
          f'--grid={shlex.quote(os.path.join(workdir, "generated.png"))}')



def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> state_lib.GANState:
  """Trains (or resumes) the run described by `config` in `workdir`; returns the final state.

  Raises errors.Interrupted after saving a checkpoint when SIGTERM or SIGINT
  arrives, and errors.ConfigError when the workdir's checkpoint was trained
  with a different config (see `check_resume`) unless `allow_config_change`.
  """
  started = time.perf_counter()  # train.max_minutes counts from here
  config_base.validate(config)
  hosts.initialize(config.distributed)
  tc = config.train
  mesh = devices.make_mesh()
  devices.check_batch_size(tc.batch_size, mesh)
  is_main = jax.process_index() == 0

  source = data_lib.build_source(config.data)
  info = source.info
  setup = setup_lib.build_setup(config, info)
  replicated = devices.replicated(mesh)
  with loop.TrainingRun(config, workdir, info, setup.init_state, replicated,
                        allow_config_change=allow_config_change, is_main=is_main) as run:
    state = run.state
    say = run.say
    say(f'gan_jax: {config.model.name} on {info.description}; '
        f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
        f'{jax.process_count()} process(es); '
        f'G {loop.num_params(state.g.params):,} params, '
        f'D {loop.num_params(state.d.params):,} params')
    per_epoch = len(source) / (tc.batch_size * tc.n_disc)
    say(f'batch {tc.batch_size} x {tc.n_disc} D update(s) per step; '
        f'{per_epoch:.1f} steps per epoch; {tc.num_steps} steps = '
        f'{tc.num_steps / per_epoch:.1f} epochs')
    if run.report_resume():
      return state
    state, stop, step = _train_steps(config, workdir, run, source, setup, mesh, started)

  if stop and stop != TIME_BUDGET:
    raise errors.Interrupted(
        f'Stopped by {signal.Signals(stop).name} at step {step} of '
        f'{tc.num_steps}; saved a checkpoint in {run.ckpt.directory}. Rerun the same '
        'command to resume.', preemption.exit_code(stop))
  if is_main:
    from gan_jax.viz import curves  # pylint: disable=g-import-not-at-top  (matplotlib: slow, end only)
    path = curves.plot_curves(reporting.read_metrics(workdir),
                              os.path.join(workdir, 'loss_curve.png'),
                              f'{config.model.name} on {info.description}')
    done = (f'Stopped at the time budget (train.max_minutes={tc.max_minutes:g}) at step '
            f'{step} of {tc.num_steps}; rerun the same command to train on toward '
            f'num_steps' if stop else f'Done: {tc.num_steps} steps')
    print(f'{done}. Samples in {os.path.join(workdir, "samples")}, loss curve {path}, '
          f'checkpoints in {run.ckpt.directory}.\n' + next_steps(workdir, step), flush=True)
  logging.info('Finished training at step %d', step)
  return state


TIME_BUDGET = -1  # _train_steps' stop value when train.max_minutes ran out


def _train_steps(config, workdir: str, run: loop.TrainingRun, source, setup: setup_lib.Setup, mesh,
                 started: float):
  """The step loop from the run's start step; returns (state, stop, last step).

  stop: 0 at num_steps, the signal's number after SIGTERM/SIGINT, TIME_BUDGET
  when train.max_minutes ran out. `started`: perf_counter() at the run's start.
  """
  tc = config.train
  state, start_step, say, reporter = run.state, run.start_step, run.say, run.reporter
  is_main = jax.process_index() == 0
  replicated = devices.replicated(mesh)
  evaluate = None
  if config.eval.every:  # imported only when used: evaluation pulls in the metrics stack
    from gan_jax.evaluation import periodic  # pylint: disable=g-import-not-at-top
    # Before the first step: loads what evaluation needs, so a missing file fails now.
    evaluate = periodic.PeriodicEvaluation(config, workdir, source, setup.gan, mesh, reporter)

  batches = pipeline.batches(
      source, global_batch=tc.batch_size, n_disc=tc.n_disc, seed=config.seed,
      start_step=start_step, process_index=jax.process_index(),
      process_count=jax.process_count(), read_threads=config.data.read_threads,
      prefetch=config.data.prefetch)
  batch_sharding = devices.batch_sharded(mesh, batch_axis=1)
  train_step = jax.jit(
      setup.train_step(tc, mesh), in_shardings=(replicated, batch_sharding),
      out_shardings=(replicated, replicated), donate_argnums=0)
  batch = devices.global_batch(next(batches), mesh)
  compile_start = time.perf_counter()
  train_step = train_step.lower(state, batch).compile()
  say(f'Compiled the train step in {time.perf_counter() - compile_start:.1f}s')

  sample = sampling.make_sampler(setup.gan)
  grid_z, grid_labels, grid_cols = sampling.grid_latents(
      config.seed, setup.gan, config.sample.num, config.sample.per_class)
  grid_z, grid_labels = devices.replicate((grid_z, grid_labels), mesh)

  pending: list[dict] = []             # device metrics since the last log
  interval_start, interval_steps = time.perf_counter(), 0
  signals = preemption.StopOnSignal().install()
  stop = out_of_time = False
  budget_s = 60 * tc.max_minutes
  step = start_step
  try:
    for step in range(start_step + 1, tc.num_steps + 1):
      state, metrics = train_step(state, batch)
      pending.append(metrics)
      interval_steps += 1
      out_of_time = loop.out_of_time(started, budget_s, step, tc.log_every)
      last = step == tc.num_steps or out_of_time
      # After SIGTERM/SIGINT, this step is logged and saved as if it were the last.
      stop = not last and signals.should_stop(step)
      if not (last or stop):  # dispatch is asynchronous: read the next batch while it runs
        batch = devices.global_batch(next(batches), mesh)
      reporter.advance(1)
      run.poll()  # a background save that failed stops the run here

      if loop.due(step, tc.log_every, last or stop):
        per_step = loop.host_metrics(pending)
        loop.check_finite(per_step, step, run.ckpt)
        means = {k: float(np.mean(v)) for k, v in per_step.items() if k != 'finite'}
        elapsed = time.perf_counter() - interval_start
        rate = interval_steps / elapsed
        reporter.write(step, means, rate, rate * tc.batch_size * tc.n_disc,
                       wall_s=time.perf_counter() - started)
        pending, interval_start, interval_steps = [], time.perf_counter(), 0

      if loop.due(step, tc.checkpoint_every, last or stop):
        if pending:
          loop.check_finite(loop.host_metrics(pending), step, run.ckpt)
        run.save(step, state)

      if loop.due(step, tc.sample_every, last):  # all processes run G; process 0 writes
        images = devices.to_host(sample(state.sampling_variables(), grid_z, grid_labels))
        if is_main:
          grids.save_grid(images, os.path.join(workdir, 'samples', f'step_{step:07d}.png'),
                          grid_cols)

      if evaluate is not None and loop.due(step, config.eval.every, last):
        if pending:
          loop.check_finite(loop.host_metrics(pending), step, run.ckpt)
        interval_start += evaluate(step, state)  # keep steps/s a training rate
      if stop or out_of_time:
        break
    run.ckpt.wait()  # the last save is complete, or its failure raises here
  finally:
    try:
      if evaluate is not None:
        evaluate.close()
    finally:  # after the last save: a signal during it must not kill the process
      signals.restore()
  if out_of_time and step < tc.num_steps:
    return state, TIME_BUDGET, step
  return state, (signals.stop_signal() if stop else 0), step
