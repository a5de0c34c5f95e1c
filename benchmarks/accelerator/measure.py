"""The train-step measurements, each checked against the budget.

Every model x batch size x dtype, gan_jax and its PyTorch twins timed in
alternating rounds; then the scaling runs on the first 1, 2, 4, ... devices.
Each framework runs in its own worker process (`remote.WorkerPool`): a worker
that dies or hangs fails its part of the row (the row, for gan_jax's), with
its last lines of output, and the next row gets a fresh one.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Callable

from benchmarks.accelerator.budget import Budget, Stopped
from benchmarks.accelerator.peaks import achieved_tflops, mfu
from benchmarks.accelerator.remote import RemoteRunner, WorkerPool, failure
from benchmarks.accelerator.report import entry_line, error_line, spread
from benchmarks.accelerator.runners import measurement_spec
from benchmarks.accelerator.sprint import SPRINT_MODEL
from benchmarks.workers import WorkerDied, WorkerError

if TYPE_CHECKING:
  from benchmarks.accelerator.options import Options

WORKER_ERRORS = (WorkerDied, WorkerError)


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

  def __init__(self, opts: Options, budget: Budget, result: dict, write: Callable[[], None],
               pool: WorkerPool, torch_state: dict):
    """`torch_state`: {'reason'} when PyTorch is not timed, else {'device', 'twins'} (device.py)."""
    self.opts = opts
    self.budget = budget
    self.result = result
    self.write = write
    self.pool = pool
    self.torch_state = torch_state

  def remote(self, name: str) -> RemoteRunner:
    """A runner in worker `name`; its waits end where the budget does (less half the write margin)."""
    return RemoteRunner(self.pool.get(name),
                        lambda: self.budget.remaining() + self.budget.write_margin / 2)

  def spec(self, model: str, batch: int, dtype: str, **extra) -> dict:
    return {**measurement_spec(self.opts, model, batch, dtype),
            'platform': self.result['device'].get('platform'), **extra}

  # --- every model x batch x dtype ----------------------------------------------------
  def measure_all(self) -> None:
    opts = self.opts
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
          self.measure_entry(entry)
          self.budget.progress(entry_line(entry))
          self.write()

  def measure_entry(self, entry: dict) -> None:
    """One row; a failure (a worker's death or error, or any exception) is the row's, not the run's."""
    try:
      self.measure(entry)
    except (KeyboardInterrupt, Stopped):
      if 'status' not in entry:
        entry.update(status='skipped', reason='interrupted')
      raise
    except WORKER_ERRORS as e:
      entry.update(failure(e))
    except Exception as e:  # pylint: disable=broad-except  (one failure must not end the suite)
      entry.update(status='failed', reason=error_line(e),
                   traceback=traceback.format_exc()[-3000:])

  def measure(self, entry: dict) -> None:
    """One model x batch x dtype: compile, start the twins that fit, time the rounds."""
    opts = self.opts
    model, batch = entry['model'], entry['batch_size']
    n_dev = self.result['device'].get('device_count') or 1
    if batch % n_dev:
      entry.update(status='skipped', reason=f'batch {batch} does not divide over {n_dev} devices')
      return
    per_chunk = opts.chunk_seconds if not opts.fixed_chunk_steps else 0.5
    over_budget = self.budget.budget_reason(
        self.budget.estimate_compile(model) + (opts.repeats + 2) * per_chunk,
        self.budget.sprint_reserve)
    if over_budget:
      entry.update(status='skipped', reason=over_budget)
      return
    runners = {'gan_jax': self.remote('gan_jax')}
    try:
      self._setup_jax(entry, runners['gan_jax'])
      for part, compiled in (('torch_eager', False), ('torch_compile', True)):
        self.budget.check_stop()
        if compiled and not opts.torch_compile:
          continue
        torch_runner = self._start_torch_runner(entry, part, compiled, len(runners), per_chunk)
        if torch_runner is not None:
          runners[part] = torch_runner
      rates, rounds, steps = self._timed_rounds(entry, runners)
    finally:
      for runner in runners.values():
        runner.close()
    self._fill(entry, rates, rounds, steps)

  def _setup_jax(self, entry: dict, runner: RemoteRunner) -> None:
    model = entry['model']
    info = runner.setup(self.spec(model, entry['batch_size'], entry['dtype']),
                        self.budget.estimate_compile(model))
    self.budget.note('jax_compile', model, info['compile_s'])
    entry.update(n_disc=info['n_disc'], n_gen=info['n_gen'], compile_s=info['compile_s'],
                 flops_per_step=info['flops'], flops_source=info['flops_source'],
                 model_flops_per_step=info['model_flops'],
                 compiled_flops_per_device=info['flops_per_device'],
                 compiled_flops_x_devices=info['hardware_flops'], devices=info['devices'])

  def _fill(self, entry: dict, rates: dict, rounds: int, steps: dict) -> None:
    """The row's figures from the rounds' rates (twins that failed keep their failure)."""
    batch, n_disc = entry['batch_size'], entry['n_disc']
    entry.update(status='ok', rounds=rounds, chunk_steps=steps)
    entry['steps_per_s'] = spread(rates['gan_jax'])
    median = entry['steps_per_s']['median']
    entry['images_per_s'] = median * batch * n_disc
    entry['tflops'] = achieved_tflops(entry['flops_per_step'], median)
    peak = (self.result['device'].get('peak_tflops') or {}).get(entry['dtype'])
    entry['mfu'] = mfu(entry['tflops'], peak, entry['devices'])
    for part, ratio_key in (('torch_eager', 'ratio_eager'), ('torch_compile', 'ratio_compile')):
      if part in rates and entry[part].get('status') == 'ok':
        entry[part]['steps_per_s'] = spread(rates[part])
        entry[part]['images_per_s'] = entry[part]['steps_per_s']['median'] * batch * n_disc
        entry[ratio_key] = spread([j / t for j, t in zip(rates['gan_jax'], rates[part])])

  def _start_torch_runner(self, entry: dict, part: str, compiled: bool, runners_so_far: int,
                          per_chunk: float) -> RemoteRunner | None:
    """The twin, warmed up in its worker, if its setup fits; else None, with why in entry[part]."""
    opts, torch_state = self.opts, self.torch_state
    model, dtype = entry['model'], entry['dtype']
    if torch_state.get('reason'):
      entry[part] = {'status': 'skipped', 'reason': torch_state['reason']}
      return None
    if model not in torch_state['twins']:
      entry[part] = {'status': 'skipped', 'reason': f'no PyTorch twin of {model}'}
      return None
    kind = 'torch_compile' if compiled else 'torch_setup'
    expected = self.budget.estimate(kind, model, 60.0 if compiled else 5.0)
    over_budget = self.budget.budget_reason(
        expected + (opts.repeats + 1) * per_chunk * (runners_so_far + 1), self.budget.sprint_reserve)
    if over_budget:
      entry[part] = {'status': 'skipped', 'reason': over_budget}
      return None
    start = time.time()
    runner = self.remote(part)
    try:
      info = runner.setup(self.spec(model, entry['batch_size'], dtype), expected)
    except WORKER_ERRORS as e:   # a twin that fails (or whose worker dies) is that part's failure
      entry[part] = failure(e)
      return None
    finally:
      self.budget.note(kind, model, time.time() - start)
    entry[part] = {'status': 'ok', 'first_calls_s': info['first_calls_s'],
                   'input_layout': info.get('input_layout')}
    if compiled:
      entry[part]['compile_s'] = info['first_calls_s']
    return runner

  def _timed_rounds(self, entry: dict, runners: dict) -> tuple[dict, int, dict]:
    """(steps/s per round of each runner, rounds done, steps per chunk): one chunk of each per
    round, the order rotated every round so that none always runs first. A twin whose worker
    dies or fails mid-round drops out (its part failed); gan_jax's failure is the row's."""
    opts = self.opts
    names = list(runners)
    steps = {n: (opts.fixed_chunk_steps or chunk_steps(runners[n].per_step_s, opts.chunk_seconds))
             for n in names}
    rates = {n: [] for n in names}
    out: set = set()
    rounds = 0
    for r in range(opts.repeats):
      order = names[r % len(names):] + names[:r % len(names)]
      needed = sum(steps[n] * runners[n].per_step_s for n in names if n not in out) * 1.2
      if r and needed > self.budget.remaining(self.budget.sprint_reserve):
        entry['note'] = f'budget: {r} of {opts.repeats} rounds'
        break
      for n in (n for n in order if n not in out):
        self.budget.check_stop()
        try:
          seconds = runners[n].run(steps[n])
        except WORKER_ERRORS as e:
          if n == 'gan_jax':
            raise
          entry[n] = {**failure(e), 'first_calls_s': entry[n].get('first_calls_s'),
                      'rounds_done': len(rates[n])}
          out.add(n)
          continue
        rates[n].append(steps[n] / seconds)
        runners[n].per_step_s = seconds / steps[n]
      rounds += 1
    return rates, rounds, steps

  # --- scaling --------------------------------------------------------------------------
  def scaling(self) -> None:
    """One model on the first 1, 2, 4, ... N devices, the per-device batch fixed."""
    opts, dev = self.opts, self.result['device']
    n_all = dev.get('device_count') or 1
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
    if (dev.get('process_count') or 1) > 1:
      info.update(status='skipped', reason='several processes: sub-meshes of the first '
                  'devices would leave processes without a device')
      return
    info['status'] = 'ok'
    for n in _scaling_device_counts(n_all):
      self.budget.check_stop()
      e = {'devices': n, 'batch_size': opts.scaling_batch * n}
      info['entries'].append(e)
      self.scaling_entry(e, model, dtype, n == n_all)
      one = info['entries'][0]
      if one.get('status') == 'ok' and e.get('status') == 'ok':
        e['efficiency'] = e['images_per_s'] / (n * one['images_per_s'])
      self.budget.progress(f"scaling {model} {dtype} on {n} device(s), batch {e['batch_size']}: "
                           + (f"{e['steps_per_s']['median']:.3g} steps/s, "
                              f"{e['images_per_s']:.4g} img/s" if e.get('status') == 'ok'
                              else f"{e['status']} ({e.get('reason')})"))
      self.write()

  def scaling_entry(self, e: dict, model: str, dtype: str, all_devices: bool) -> None:
    """One device count: reused from the measurements when they ran it, else measured."""
    same = [m for m in self.result['measurements'] if all_devices and m.get('status') == 'ok'
            and (m['model'], m['dtype'], m['batch_size']) == (model, dtype, e['batch_size'])]
    if same:   # measured already, on all the devices: no second compile
      m = same[0]
      e.update(status='ok', compile_s=m['compile_s'], steps_per_s=m['steps_per_s'],
               images_per_s=m['images_per_s'], chunk_steps=m['chunk_steps'].get('gan_jax'),
               from_measurement=f"{model} batch {m['batch_size']} {dtype}")
      return
    over_budget = self.budget.budget_reason(
        self.budget.estimate_compile(model) + (self.opts.repeats + 2) * self.opts.chunk_seconds,
        self.budget.sprint_reserve)
    if over_budget:
      e.update(status='skipped', reason=over_budget)
    else:
      self.scale_one(e, model, dtype, e['devices'])

  def scale_one(self, e: dict, model: str, dtype: str, n: int) -> None:
    opts = self.opts
    runner = self.remote('gan_jax')
    try:
      info = runner.setup(self.spec(model, e['batch_size'], dtype, devices=n),
                          self.budget.estimate_compile(model))
      steps = opts.fixed_chunk_steps or chunk_steps(runner.per_step_s, opts.chunk_seconds)
      rates = [steps / runner.run(steps) for _ in range(opts.repeats)]
      e.update(status='ok', compile_s=info['compile_s'], steps_per_s=spread(rates),
               chunk_steps=steps)
      e['images_per_s'] = e['steps_per_s']['median'] * e['batch_size'] * info['n_disc']
    except (KeyboardInterrupt, Stopped):
      e.setdefault('status', 'skipped')
      e.setdefault('reason', 'interrupted')
      raise
    except WORKER_ERRORS as ex:
      e.update(failure(ex))
    except Exception as ex:  # pylint: disable=broad-except
      e.update(status='failed', reason=error_line(ex))
    finally:
      runner.close()
