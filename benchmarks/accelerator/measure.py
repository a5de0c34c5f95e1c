"""The train-step measurements, each checked against the budget.

Every model x batch size x dtype, gan_jax and its PyTorch twins timed in
alternating rounds; then the scaling runs on the first 1, 2, 4, ... devices.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Callable

from benchmarks.accelerator.budget import Budget, Stopped
from benchmarks.accelerator.device import free_memory
from benchmarks.accelerator.peaks import achieved_tflops, mfu
from benchmarks.accelerator.report import entry_line, error_line, spread
from benchmarks.accelerator.runners import JaxRunner, TorchRunner, model_config, torch_availability
from benchmarks.accelerator.sprint import SPRINT_MODEL

if TYPE_CHECKING:
  from benchmarks.accelerator.options import Options


def chunk_steps(per_step_s: float, chunk_seconds: float, min_steps: int = 1,
                max_steps: int = 100_000) -> int:
  """Steps in one timed chunk of about `chunk_seconds`, given one step's time."""
  if per_step_s <= 0:
    return max_steps
  return int(min(max_steps, max(min_steps, round(chunk_seconds / per_step_s))))


def _scaling_device_counts(n_all: int) -> list[int]:
  """1, 2, 4, ... below n_all, then n_all."""
  counts, n = [], 1
  while n < n_all:
    counts.append(n)
    n *= 2
  return counts + [n_all]


class Measurer:
  """Fills result['measurements'] and result['scaling'], calling `write` after each entry."""

  def __init__(self, opts: Options, budget: Budget, result: dict, write: Callable[[], None]):
    self.opts = opts
    self.budget = budget
    self.result = result
    self.write = write
    self.initial_states: dict[str, object] = {}   # model -> its initial state, as numpy

  def jax_runner(self, model: str, config, devices) -> JaxRunner:
    runner = JaxRunner(config, devices, self.initial_states.get(model))
    self.initial_states.setdefault(model, runner.host_state)
    self.budget.note('jax_compile', model, runner.compile_s)
    return runner

  # --- every model x batch x dtype ----------------------------------------------------
  def measure_all(self) -> None:
    opts = self.opts
    torch_state = torch_availability(opts, self.result['device'])
    models = list(opts.models)
    if opts.sprint_data and SPRINT_MODEL in models:   # its rate sizes the sprint: measure it first
      models.remove(SPRINT_MODEL)
      models.insert(0, SPRINT_MODEL)
    for batch in opts.batch_sizes:
      for model in models:
        for dtype in opts.dtypes:
          self.budget.check_stop()
          entry = {'model': model, 'batch_size': batch, 'dtype': dtype}
          self.result['measurements'].append(entry)
          try:
            self.measure(entry, torch_state)
          except (KeyboardInterrupt, Stopped):
            if 'status' not in entry:
              entry.update(status='skipped', reason='interrupted')
            raise
          except Exception as e:  # pylint: disable=broad-except  (one failure must not end the suite)
            entry.update(status='failed', reason=error_line(e),
                         traceback=traceback.format_exc()[-3000:])
          finally:
            free_memory()
          self.budget.progress(entry_line(entry))
          self.write()

  def measure(self, entry: dict, torch_state: dict) -> None:
    """One model x batch x dtype: compile, start the twins that fit, time the rounds."""
    import jax  # pylint: disable=g-import-not-at-top
    opts = self.opts
    model, batch, dtype = entry['model'], entry['batch_size'], entry['dtype']
    n_dev = jax.device_count()
    if batch % n_dev:
      entry.update(status='skipped', reason=f'batch {batch} does not divide over {n_dev} devices')
      return
    config = model_config(model, opts, batch, dtype)
    entry['n_disc'], entry['n_gen'] = config.train.n_disc, config.train.n_gen
    per_chunk = opts.chunk_seconds if not opts.fixed_chunk_steps else 0.5
    over_budget = self.budget.budget_reason(
        self.budget.estimate_compile(model) + (opts.repeats + 2) * per_chunk,
        self.budget.sprint_reserve)
    if over_budget:
      entry.update(status='skipped', reason=over_budget)
      return

    jax_runner = self.jax_runner(model, config, jax.devices())
    runners = {'gan_jax': jax_runner}
    entry.update(compile_s=jax_runner.compile_s, flops_per_step=jax_runner.flops,
                 flops_source=jax_runner.flops_source,
                 model_flops_per_step=jax_runner.model_flops,
                 compiled_flops_per_device=jax_runner.flops_per_device,
                 compiled_flops_x_devices=jax_runner.hardware_flops, devices=n_dev)
    jax_runner.warmup()
    for part, compiled in (('torch_eager', False), ('torch_compile', True)):
      self.budget.check_stop()
      if compiled and not opts.torch_compile:
        continue
      torch_runner = self._start_torch_runner(entry, part, compiled, config, torch_state,
                                              len(runners), per_chunk)
      if torch_runner is not None:
        runners[part] = torch_runner

    rates, rounds, steps = self._timed_rounds(entry, runners)
    entry.update(status='ok', rounds=rounds, chunk_steps=steps)
    entry['steps_per_s'] = spread(rates['gan_jax'])
    median = entry['steps_per_s']['median']
    entry['images_per_s'] = median * batch * config.train.n_disc
    entry['tflops'] = achieved_tflops(jax_runner.flops, median)
    peak = (self.result['device'].get('peak_tflops') or {}).get(dtype)
    entry['mfu'] = mfu(entry['tflops'], peak, n_dev)
    for part, ratio_key in (('torch_eager', 'ratio_eager'), ('torch_compile', 'ratio_compile')):
      if part in runners:
        entry[part]['steps_per_s'] = spread(rates[part])
        entry[part]['images_per_s'] = entry[part]['steps_per_s']['median'] * batch * \
            config.train.n_disc
        entry[ratio_key] = spread([j / t for j, t in zip(rates['gan_jax'], rates[part])])
    for runner in runners.values():
      runner.close()

  def _start_torch_runner(self, entry: dict, part: str, compiled: bool, config,
                          torch_state: dict, runners_so_far: int,
                          per_chunk: float) -> TorchRunner | None:
    """The twin, warmed up, if its setup fits; else None, with why in entry[part]."""
    opts = self.opts
    model, dtype = entry['model'], entry['dtype']
    if torch_state.get('reason'):
      entry[part] = {'status': 'skipped', 'reason': torch_state['reason']}
      return None
    if model not in torch_state['twins']:
      entry[part] = {'status': 'skipped', 'reason': f'no PyTorch twin of {model}'}
      return None
    kind = 'torch_compile' if compiled else 'torch_setup'
    over_budget = self.budget.budget_reason(
        self.budget.estimate(kind, model, 60.0 if compiled else 5.0)
        + (opts.repeats + 1) * per_chunk * (runners_so_far + 1), self.budget.sprint_reserve)
    if over_budget:
      entry[part] = {'status': 'skipped', 'reason': over_budget}
      return None
    start = time.time()
    try:
      runner = TorchRunner(config, torch_state['device'], dtype, compiled)
      runner.warmup()
    except (KeyboardInterrupt, Stopped):
      raise
    except Exception as e:  # pylint: disable=broad-except  (a twin that fails is skipped)
      runner = None
      entry[part] = {'status': 'failed', 'reason': error_line(e),
                     'traceback': traceback.format_exc()[-3000:]}
    self.budget.note(kind, model, time.time() - start)
    if runner is not None:
      entry[part] = {'status': 'ok', 'first_calls_s': runner.first_calls_s}
      if compiled:
        entry[part]['compile_s'] = runner.first_calls_s
    return runner

  def _timed_rounds(self, entry: dict, runners: dict) -> tuple[dict, int, dict]:
    """(steps/s per round of each runner, rounds done, steps per chunk): one chunk of each per
    round, the order rotated every round so that none always runs first."""
    opts = self.opts
    names = list(runners)
    steps = {n: (opts.fixed_chunk_steps or chunk_steps(runners[n].per_step_s, opts.chunk_seconds))
             for n in names}
    rates = {n: [] for n in names}
    rounds = 0
    for r in range(opts.repeats):
      order = names[r % len(names):] + names[:r % len(names)]
      needed = sum(steps[n] * runners[n].per_step_s for n in names) * 1.2
      if r and needed > self.budget.remaining(self.budget.sprint_reserve):
        entry['note'] = f'budget: {r} of {opts.repeats} rounds'
        break
      for n in order:
        self.budget.check_stop()
        seconds = runners[n].run(steps[n])
        rates[n].append(steps[n] / seconds)
        runners[n].per_step_s = seconds / steps[n]
      rounds += 1
    return rates, rounds, steps

  # --- scaling --------------------------------------------------------------------------
  def scaling(self) -> None:
    """One model on the first 1, 2, 4, ... N devices, the per-device batch fixed."""
    import jax  # pylint: disable=g-import-not-at-top
    opts = self.opts
    n_all = jax.device_count()
    model = opts.scaling_model or (SPRINT_MODEL if SPRINT_MODEL in opts.models and not opts.smoke
                                   else opts.models[0])
    dtype = 'bfloat16' if 'bfloat16' in opts.dtypes and not opts.smoke else opts.dtypes[0]
    info = {'model': model, 'dtype': dtype, 'per_device_batch': opts.scaling_batch,
            'entries': []}
    self.result['scaling'] = info
    if not opts.scaling:
      info.update(status='skipped', reason='--noscaling')
      return
    if n_all < 2:
      info.update(status='skipped', reason=f'one device ({n_all})')
      return
    if jax.process_count() > 1:
      info.update(status='skipped', reason='several processes: sub-meshes of the first '
                  'devices would leave processes without a device')
      return
    info['status'] = 'ok'
    for n in _scaling_device_counts(n_all):
      self.budget.check_stop()
      e = {'devices': n, 'batch_size': opts.scaling_batch * n}
      info['entries'].append(e)
      same = [m for m in self.result['measurements'] if n == n_all and m.get('status') == 'ok'
              and (m['model'], m['dtype'], m['batch_size']) == (model, dtype, e['batch_size'])]
      if same:   # measured already, on all the devices: no second compile
        m = same[0]
        e.update(status='ok', compile_s=m['compile_s'], steps_per_s=m['steps_per_s'],
                 images_per_s=m['images_per_s'], chunk_steps=m['chunk_steps'].get('gan_jax'),
                 from_measurement=f"{model} batch {m['batch_size']} {dtype}")
      else:
        over_budget = self.budget.budget_reason(
            self.budget.estimate_compile(model) + (opts.repeats + 2) * opts.chunk_seconds,
            self.budget.sprint_reserve)
        if over_budget:
          e.update(status='skipped', reason=over_budget)
        else:
          self.scale_one(e, model, dtype, n)
      one = info['entries'][0]
      if one.get('status') == 'ok' and e.get('status') == 'ok':
        e['efficiency'] = e['images_per_s'] / (n * one['images_per_s'])
      self.budget.progress(f"scaling {model} {dtype} on {n} device(s), batch {e['batch_size']}: "
                           + (f"{e['steps_per_s']['median']:.3g} steps/s, "
                              f"{e['images_per_s']:.4g} img/s" if e.get('status') == 'ok'
                              else f"{e['status']} ({e.get('reason')})"))
      self.write()

  def scale_one(self, e: dict, model: str, dtype: str, n: int) -> None:
    import jax  # pylint: disable=g-import-not-at-top
    opts = self.opts
    try:
      config = model_config(model, opts, e['batch_size'], dtype)
      runner = self.jax_runner(model, config, jax.devices()[:n])
      runner.warmup()
      steps = opts.fixed_chunk_steps or chunk_steps(runner.per_step_s, opts.chunk_seconds)
      rates = [steps / runner.run(steps) for _ in range(opts.repeats)]
      runner.close()
      e.update(status='ok', compile_s=runner.compile_s, steps_per_s=spread(rates),
               chunk_steps=steps)
      e['images_per_s'] = e['steps_per_s']['median'] * e['batch_size'] * config.train.n_disc
    except (KeyboardInterrupt, Stopped):
      e.setdefault('status', 'skipped')
      e.setdefault('reason', 'interrupted')
      raise
    except Exception as ex:  # pylint: disable=broad-except
      e.update(status='failed', reason=error_line(ex))
    finally:
      free_memory()
