"""The training loop: build everything from the config, restore or initialise, step, and run the hooks.

Re-running the same command on the same workdir resumes from the latest
checkpoint: the state carries the step and rng, and the data stream is a pure
function of (seed, step), so a resumed run continues exactly where the
checkpoint left off. A config or dataset that differs from the one the
checkpoint was trained with is refused (`check_resume`), and SIGTERM or SIGINT
save a checkpoint before stopping (`gan_jax.preemption`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import signal
import time
from typing import Callable

from absl import logging
import jax
import ml_collections
import numpy as np
import optax

from gan_jax import augment
from gan_jax import checkpoint as checkpoint_lib
from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import distributed
from gan_jax import errors
from gan_jax import families
from gan_jax import losses as losses_lib
from gan_jax import models as models_lib
from gan_jax import optim
from gan_jax import parallel
from gan_jax import preemption
from gan_jax import regularizers
from gan_jax import reporting
from gan_jax import sampling
from gan_jax import state as state_lib
from gan_jax import steps
from gan_jax.data import pipeline
from gan_jax.data.source import DatasetInfo
from gan_jax.viz import grids

DATA_INFO_FILE = 'data_info.json'


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything the config determines besides the data: models, loss, optimizers, D's extras."""
  gan: models_lib.GANModels
  loss: losses_lib.GANLoss
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  init_state: Callable[[], state_lib.GANState]
  d_input: Callable | None = None        # config.augment: transforms of D's inputs
  regularizer: Callable | None = None    # config.reg: penalties added to D's loss
  step_maker: Callable | None = None     # config.model.family's (gan_jax.families)

  def train_step(self, train_config: ml_collections.ConfigDict):
    """The pure `step(state, batch) -> (state, metrics)` of this setup (not jitted)."""
    make = self.step_maker or steps.make_train_step
    return make(self.gan, self.loss, self.g_tx, self.d_tx, train_config,
                                 d_input=self.d_input, regularizer=self.regularizer)


def build_setup(config: ml_collections.ConfigDict, info: DatasetInfo) -> Setup:
  gan = families.adapt_models(
      config, models_lib.build(config.model, info.image_shape, info.num_classes))
  tc = config.train
  g_tx = optim.build(config.optim.g, optim.updates_in_run(tc, 'g'))
  d_tx = optim.build(config.optim.d, optim.updates_in_run(tc, 'd'))
  init_state = functools.partial(state_lib.create, gan, g_tx, d_tx, config.seed,
                                 use_ema=config.train.ema_decay > 0)
  return Setup(gan, losses_lib.build(config.loss), g_tx, d_tx, init_state,
               augment.build(config.augment), regularizers.build(config.reg),
               families.step_maker(config))


def next_steps(workdir: str, step: int) -> str:
  """The commands that show and score a finished run, printed at its end."""
  w = shlex.quote(workdir)
  return (f'Last grid:  {os.path.join(workdir, "samples", f"step_{step:07d}.png")}\n'
          f'Score it:   python -m gan_jax.evaluate --workdir={w}   '
          '(cls_fd and class coverage against the training data; --real gives the floor)\n'
          f'Sample it:  python -m gan_jax.generate --workdir={w} --num=64 '
          f'--out={shlex.quote(os.path.join(workdir, "generated.npz"))} '
          f'--grid={shlex.quote(os.path.join(workdir, "generated.png"))}')


def restore_setup(workdir: str, step: int | None = None,
                  checkpoint_subdir: str = 'checkpoints'):
  """(config, setup, state) of a finished or running training workdir, on all devices."""
  config = config_lib.load_from_workdir(workdir)
  info = load_data_info(workdir)
  setup = build_setup(config, info)
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, checkpoint_subdir))
  if ckpt.latest_step() is None:
    raise errors.ConfigError(f'No checkpoint in {ckpt.directory}: the run has '
                             'not saved one yet.')
  sharding = parallel.replicated(parallel.make_mesh())
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      jax.eval_shape(setup.init_state))
  state = ckpt.restore(abstract, step)
  ckpt.close()
  return config, setup, state


def load_data_info(workdir: str) -> DatasetInfo:
  with open(os.path.join(workdir, DATA_INFO_FILE)) as f:
    return DatasetInfo.from_dict(json.load(f))


def _write_json(path: str, value) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, indent=2)
    f.write('\n')
  os.replace(path + '.tmp', path)


def check_resume(config: ml_collections.ConfigDict, info: DatasetInfo, workdir: str,
                 allow_config_change: bool = False) -> list[str]:
  """Refuses to resume a checkpoint with a config or dataset that would silently change the run.

  Only keys in `config.RESUMABLE_KEYS` may differ from the workdir's
  config.json; `allow_config_change` accepts any other change (the run then
  continues with the new values, from the checkpoint's weights). Returns the
  accepted changes, one line each.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return []
  saved = config_lib.load_from_workdir(workdir)
  changes = [f'  {key}: {old!r} -> {new!r}'
             for key, old, new in config_lib.resume_conflicts(saved, config)]
  data_path = os.path.join(workdir, DATA_INFO_FILE)
  if os.path.exists(data_path):
    old_info = load_data_info(workdir)
    for field in ('num_examples', 'image_shape', 'num_classes', 'class_names'):
      old, new = getattr(old_info, field), getattr(info, field)
      if old != new:
        changes.append(f'  data {field}: {old!r} -> {new!r} ({DATA_INFO_FILE})')
  if not changes or allow_config_change:
    return changes
  raise errors.ConfigError(
      f'{workdir} holds a checkpoint of a run with a different config or dataset '
      f'({path}); resuming it with this one would silently change the experiment:\n'
      + '\n'.join(changes) + '\n'
      'Use a new --workdir for a new experiment, or pass --allow_config_change '
      '(train_and_evaluate(..., allow_config_change=True)) to resume with the new '
      'values. The checkpoints and config.json were left as they are. Keys that may '
      'change on resume: '
      f'{", ".join(config_lib.RESUMABLE_KEYS)}.')


def report_resume(say: Callable[[str], None], ckpt: checkpoint_lib.Checkpointer,
                  restored: bool, start_step: int, num_steps: int,
                  changes: list[str]) -> bool:
  """Says what resuming found (checkpoint, accepted config changes); True when the run is already done."""
  if restored:
    say(f'Resumed from the checkpoint at step {start_step} in {ckpt.directory}')
  if changes:
    say('Resuming with a changed config (--allow_config_change):\n' + '\n'.join(changes))
  if start_step >= num_steps:
    say(f'Nothing to do: the run is already at step {start_step} of {num_steps}.')
    return True
  return False


def _num_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _check_finite(pending: list[dict], first_step: int, ckpt) -> None:
  """Raises TrainingDiverged if any step in `pending` had a non-finite loss or gradient."""
  flags = jax.device_get([m['finite'] for m in pending])
  bad = [i for i, ok in enumerate(flags) if not ok]
  if not bad:
    return
  step = first_step + bad[0] + 1
  values = jax.device_get({k: v for k, v in pending[bad[0]].items() if k != 'finite'})
  shown = ', '.join(f'{k}={float(v):.4g}' for k, v in sorted(values.items()))
  last = ckpt.latest_step()
  kept = (f'The last good checkpoint (step {last}) in {ckpt.directory} is kept; '
          'rerunning the command resumes from it' if last is not None else
          'No checkpoint had been saved yet')
  raise errors.TrainingDiverged(
      f'Training diverged at step {step}: a loss or gradient is NaN or infinite '
      f'({shown}). {kept}. Lower the learning rates (config.optim.g.lr, '
      'config.optim.d.lr) and resume with --allow_config_change, or change the '
      'loss or model in a new workdir.')


def _due(step: int, every: int, last: bool) -> bool:
  return last or (every > 0 and step % every == 0)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> state_lib.GANState:
  """Trains (or resumes) the run described by `config` in `workdir`; returns the final state.

  Raises errors.Interrupted after saving a checkpoint when SIGTERM or SIGINT
  arrives, and errors.ConfigError when the workdir's checkpoint was trained
  with a different config (see `check_resume`) unless `allow_config_change`.
  """
  config_lib.validate(config)
  distributed.initialize(config.distributed)
  tc = config.train
  mesh = parallel.make_mesh()
  parallel.check_batch_size(tc.batch_size, mesh)
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  source = data_lib.build_source(config.data)
  info = source.info
  setup = build_setup(config, info)
  replicated = parallel.replicated(mesh)
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                     tc.keep_checkpoints, remove_partial_saves=True)
  resuming = ckpt.latest_step() is not None
  changes = check_resume(config, info, workdir, allow_config_change) if resuming else []
  try:
    state, restored = ckpt.restore_or_init(setup.init_state, replicated)
  except (ValueError, KeyError, TypeError) as e:  # orbax: tree or shape mismatch
    if not resuming:
      raise
    raise errors.ConfigError(
        f'The checkpoint in {ckpt.directory} does not fit the model and optimizers '
        f'of this config ({type(e).__name__}: {str(e)[:500]}). A changed model, '
        'optimizer or EMA setting cannot resume: use a new --workdir.') from e
  start_step = int(state.step)
  parallel.sync_processes('workdir checked')  # every process read config.json
  if is_main:
    config_lib.save_to_workdir(config, workdir)
    _write_json(os.path.join(workdir, DATA_INFO_FILE), info.to_dict())

  reporter = reporting.Reporter(workdir, start_step, tc.num_steps, is_main)
  say = reporter.message
  say(f'gan_jax: {config.model.name} on {info.description}; '
      f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
      f'{jax.process_count()} process(es); '
      f'G {_num_params(state.g.params):,} params, D {_num_params(state.d.params):,} params')
  per_epoch = len(source) / (tc.batch_size * tc.n_disc)
  say(f'batch {tc.batch_size} x {tc.n_disc} D update(s) per step; '
      f'{per_epoch:.1f} steps per epoch; {tc.num_steps} steps = '
      f'{tc.num_steps / per_epoch:.1f} epochs')
  if report_resume(say, ckpt, restored, start_step, tc.num_steps, changes):
    reporter.close()
    ckpt.close()
    return state

  batches = pipeline.batches(
      source, global_batch=tc.batch_size, n_disc=tc.n_disc, seed=config.seed,
      start_step=start_step, process_index=jax.process_index(),
      process_count=jax.process_count(), read_threads=config.data.read_threads,
      prefetch=config.data.prefetch)
  batch_sharding = parallel.batch_sharded(mesh, batch_axis=1)
  train_step = jax.jit(
      setup.train_step(tc), in_shardings=(replicated, batch_sharding),
      out_shardings=(replicated, replicated), donate_argnums=0)
  batch = parallel.global_batch(next(batches), mesh)
  compile_start = time.perf_counter()
  train_step = train_step.lower(state, batch).compile()
  say(f'Compiled the train step in {time.perf_counter() - compile_start:.1f}s')

  evaluate = None
  if config.eval.every:  # imported only when used: evaluation pulls in the metrics stack
    from gan_jax.metrics import hook  # pylint: disable=g-import-not-at-top
    evaluate = hook.PeriodicEvaluation(config, workdir, source, setup.gan, mesh, reporter)

  sample = sampling.make_sampler(setup.gan)
  grid_z, grid_labels, grid_cols = sampling.grid_latents(
      config.seed, setup.gan, config.sample.num, config.sample.per_class)
  grid_z, grid_labels = parallel.replicate((grid_z, grid_labels), mesh)

  pending: list[dict] = []             # device metrics since the last log
  interval_start, interval_steps = time.perf_counter(), 0
  signals = preemption.StopOnSignal().install()
  stop = False
  try:
    for step in range(start_step + 1, tc.num_steps + 1):
      state, metrics = train_step(state, batch)
      pending.append(metrics)
      interval_steps += 1
      last = step == tc.num_steps
      # After SIGTERM/SIGINT, this step is logged and saved as if it were the last.
      stop = not last and signals.should_stop(step)
      if not (last or stop):  # dispatch is asynchronous: read the next batch while it runs
        batch = parallel.global_batch(next(batches), mesh)
      reporter.advance(1)

      if _due(step, tc.log_every, last or stop):
        _check_finite(pending, step - len(pending), ckpt)
        means = jax.tree.map(lambda *xs: float(np.mean(xs)),
                             *parallel.to_host(pending))
        means.pop('finite')
        elapsed = time.perf_counter() - interval_start
        rate = interval_steps / elapsed
        reporter.write(step, means, rate, rate * tc.batch_size * tc.n_disc)
        pending, interval_start, interval_steps = [], time.perf_counter(), 0

      if _due(step, tc.checkpoint_every, last or stop):
        _check_finite(pending, step - len(pending), ckpt)
        ckpt.save(step, state)

      if _due(step, tc.sample_every, last):  # all processes run G; process 0 writes
        images = parallel.to_host(sample(state.sampling_variables(), grid_z, grid_labels))
        if is_main:
          grids.save_grid(images, os.path.join(workdir, 'samples', f'step_{step:07d}.png'),
                          grid_cols)

      if evaluate is not None and _due(step, config.eval.every, last):
        _check_finite(pending, step - len(pending), ckpt)
        interval_start += evaluate(step, state)  # keep steps/s a training rate
      if stop:
        break
  finally:
    try:
      if evaluate is not None:
        evaluate.close()
      ckpt.wait()
      ckpt.close()
      reporter.close()
    finally:  # after the last save: a signal during it must not kill the process
      signals.restore()

  if stop:
    signum = signals.stop_signal()
    raise errors.Interrupted(
        f'Stopped by {signal.Signals(signum).name} at step {step} of '
        f'{tc.num_steps}; saved a checkpoint in {ckpt.directory}. Rerun the same '
        'command to resume.', preemption.exit_code(signum))
  if is_main:
    from gan_jax.viz import curves  # pylint: disable=g-import-not-at-top  (matplotlib: slow, end only)
    path = curves.plot_curves(reporting.read_metrics(workdir),
                              os.path.join(workdir, 'loss_curve.png'),
                              f'{config.model.name} on {info.description}')
    print(f'Done: {tc.num_steps} steps. Samples in {os.path.join(workdir, "samples")}, '
          f'loss curve {path}, checkpoints in {ckpt.directory}.\n'
          + next_steps(workdir, tc.num_steps), flush=True)
  logging.info('Finished training at step %d', tc.num_steps)
  return state
