"""gan_jax against eager PyTorch on the same machine: train steps/s, alternating, with ratios.

  python -m benchmarks.compare_torch                 # dcgan28, dcgan32, dcgan64; 5 repeats
  python -m benchmarks.compare_torch --quick         # dcgan28 and dcgan32, 3 short repeats

For each model it starts two worker processes (`benchmarks/compare_torch_worker.py`,
over `benchmarks/workers.py`), one gan_jax and one PyTorch, each framework
alone in its process and this one importing neither, pinned to the same CPUs (`--threads`, default 2: `os.sched_setaffinity` for
both, which also sizes XLA's CPU thread pool, and `torch.set_num_threads`).
Each builds its train step (batch 64, Adam, one D and one G update, BCE
non-saturating: gan_jax's default config; `benchmarks.torch_reference` for
PyTorch) on a fixed synthetic uint8 batch, so the rates are the step alone.
gan_jax's compile time and PyTorch's first step are reported separately and
excluded. Then the two take turns, `--repeats` times, each timing `--steps`
steps per turn, the order flipping every repeat; a repeat's ratio is
gan_jax steps/s over PyTorch's in that repeat, and the table shows the
median with the min-max spread. The load average is printed at the start
and end of each model: on a shared machine the figures mean little without it.
On a busy machine use --threads=1: with its CPUs oversubscribed, PyTorch's
OpenMP threads spend most of their time waiting on each other (seen under
load; BENCHMARKS.md keeps only quiet-machine figures, so compare --threads=1
with the default to measure it).

With `--pipeline` (default on) it also times gan_jax's input pipeline alone
(`gan_jax.data.pipeline.batches`, batches/s): the MNIST IDX files for
dcgan28 when GAN_JAX_SHARED (or ../shared) has them, otherwise the bundled
digits; a folder of generated PNGs for 32x32 and 64x64.

Switches for the experiments in BENCHMARKS.md ("Other directions
(dcgan28)"): --conv_transpose=xla (Flax's nn.ConvTranspose instead of the
sub-pixel layer), --nodonate (no buffer donation), --sync_every_step (read
the metrics on the host after every step, as a naive loop would),
--scan_steps=K (K steps fused in one call by lax.scan), --xla_flags=...
(extra XLA_FLAGS for the gan_jax worker).

A worker that dies (a crash in native code, an out-of-memory kill) or hangs
(no answer in --worker_timeout seconds) is reported with its last lines of
output: a PyTorch worker's failure leaves gan_jax's rates (no ratio), a
gan_jax worker's ends that model's comparison; the next model goes on, and
--json_out records each failure under 'failed'.
"""

from __future__ import annotations

import json
import os
import statistics

from absl import app, flags

from benchmarks.compare_torch_worker import IMAGE_SHAPES, TORCH_TWINS  # noqa: F401  (re-exported)
from benchmarks.workers import Worker, WorkerDied, WorkerError

flags.DEFINE_list('models', ['dcgan28', 'dcgan32', 'dcgan64'], 'Models to compare.')
flags.DEFINE_integer('repeats', 5, 'Alternating timed turns per framework.')
flags.DEFINE_integer('steps', 0, 'Steps per timed turn; 0 = a per-model default.')
flags.DEFINE_bool('quick', False, 'dcgan28 and dcgan32, 3 repeats of fewer steps (~3 min).')
flags.DEFINE_integer('threads', 2, 'CPUs for each framework (affinity and thread count).')
flags.DEFINE_integer('batch_size', 64, 'Batch size.')
flags.DEFINE_enum('conv_transpose', 'subpixel', ['subpixel', 'xla'],
                  "gan_jax's transposed convolution (layers.conv_transpose impl).")
flags.DEFINE_bool('donate', True, 'Donate the state buffers to the jitted step.')
flags.DEFINE_bool('sync_every_step', False, 'Fetch the metrics to the host after every step.')
flags.DEFINE_integer('scan_steps', 0, '> 1: fuse this many steps in one call with lax.scan.')
flags.DEFINE_string('xla_flags', '', 'Extra XLA_FLAGS for the gan_jax worker.')
flags.DEFINE_bool('torch', True, 'Also time PyTorch (off: gan_jax alone).')
flags.DEFINE_bool('pipeline', True, 'Also time the input pipeline alone.')
flags.DEFINE_string('json_out', '', 'Also write the results as JSON here.')
flags.DEFINE_float('worker_timeout', 900.0, 'Seconds a worker may take to answer (a setup, '
                   'a timed turn) before it is killed and reported as failed.')
FLAGS = flags.FLAGS

DEFAULT_STEPS = {'dcgan28': 20, 'dcgan32': 6, 'dcgan64': 2, 'sngan32': 2}
QUICK_STEPS = {'dcgan28': 10, 'dcgan32': 3, 'dcgan64': 1, 'sngan32': 1}
WORKER_ERRORS = (WorkerDied, WorkerError)


def _start(kind: str) -> Worker:
  worker = Worker(kind, 'benchmarks.compare_torch_worker', [kind])
  worker.start()
  return worker


def _load() -> str:
  return '/'.join(f'{x:.2f}' for x in os.getloadavg())


def compare(model: str, opts: dict, repeats: int, steps: int) -> dict:
  result = {'model': model, 'batch_size': opts['batch_size'], 'load_start': _load()}
  timeout = opts['worker_timeout']
  workers = {}
  try:
    for name, kind in (('gan_jax', 'jax'), ('torch', 'torch')):
      if name == 'torch' and not opts['torch']:
        continue
      workers[name] = _start(kind)
      try:
        result[f'{name}_setup'] = workers[name].call('setup', timeout=timeout, model=model,
                                                     opts=opts)
      except WORKER_ERRORS as e:   # a framework that cannot start is that framework's failure
        result.setdefault('failed', {})[name] = e.record()
        workers.pop(name).close()
    if 'gan_jax' in workers:
      result['steps_per_s'] = _alternate(workers, repeats, steps, timeout, result)
  finally:
    for worker in workers.values():
      worker.close()
  rates = result.get('steps_per_s', {})
  if rates.get('gan_jax') and rates.get('torch'):
    result['ratios'] = [j / t for j, t in zip(rates['gan_jax'], rates['torch'])]
  if opts['pipeline']:
    result['pipeline'] = _pipeline(model, opts, timeout, result)
  result['load_end'] = _load()
  return result


def _alternate(workers: dict, repeats: int, steps: int, timeout: float, result: dict) -> dict:
  """Steps/s per turn of each worker, the order flipping every repeat; a worker that fails
  drops out (gan_jax's failure ends the turns), recorded in result['failed']."""
  rates = {name: [] for name in workers}
  for r in range(repeats):
    order = list(workers) if r % 2 == 0 else list(workers)[::-1]
    for name in order:
      if name in result.get('failed', {}):
        continue
      try:
        seconds, done = workers[name].call('time_chunk', timeout=timeout, steps=steps)
      except WORKER_ERRORS as e:
        result.setdefault('failed', {})[name] = e.record()
        continue
      rates[name].append(done / seconds)
    if 'gan_jax' in result.get('failed', {}):
      break
  return rates


def _pipeline(model: str, opts: dict, timeout: float, result: dict) -> dict | None:
  worker = _start('pipeline')
  try:
    return worker.call('measure', timeout=timeout, model=model, opts=opts)
  except WORKER_ERRORS as e:
    result.setdefault('failed', {})['pipeline'] = e.record()
    return None
  finally:
    worker.close()


def _spread(values) -> str:
  return f'{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})'


def report(result: dict) -> str:
  b = result['batch_size']
  jax_rates = result.get('steps_per_s', {}).get('gan_jax')
  lines = [f"{result['model']}: load {result['load_start']} -> {result['load_end']}"
           + (f"; gan_jax compile {result['gan_jax_setup']['compile_s']:.1f}s on CPUs "
              f"{result['gan_jax_setup']['cpus']}" if 'gan_jax_setup' in result else '')]
  if jax_rates:
    lines.append(f"  gan_jax  {_spread(jax_rates)} steps/s, "
                 f"{b * statistics.median(jax_rates):.0f} images/s")
  torch_rates = result.get('steps_per_s', {}).get('torch')
  if torch_rates:
    lines.append(f"  pytorch  {_spread(torch_rates)} steps/s, "
                 f"{b * statistics.median(torch_rates):.0f} images/s "
                 f"(first step {result['torch_setup']['first_step_s']:.2f}s, "
                 f"{result['torch_setup']['threads']} threads)")
  if result.get('ratios'):
    lines.append(f"  ratio gan_jax/pytorch {_spread(result['ratios'])}")
  if result.get('pipeline') and jax_rates:
    p = result['pipeline']
    lines.append(f"  input pipeline {p['batches_per_s']:.1f} batches/s on {p['data']} "
                 f"({p['batches_per_s'] / statistics.median(jax_rates):.1f}x the step)")
  for name, failure in result.get('failed', {}).items():
    lines.append(f"  {name} FAILED: {failure['reason']}")
    tail = failure.get('last_lines') or (failure.get('traceback') or '').splitlines()
    lines += [f'    | {line[:200]}' for line in tail[-20:]]
  return '\n'.join(lines)


def main(_):
  models = ['dcgan28', 'dcgan32'] if FLAGS.quick and FLAGS['models'].using_default_value \
      else FLAGS.models
  repeats = 3 if FLAGS.quick and FLAGS['repeats'].using_default_value else FLAGS.repeats
  opts = dict(threads=FLAGS.threads, batch_size=FLAGS.batch_size,
              conv_transpose=FLAGS.conv_transpose, donate=FLAGS.donate,
              sync_every_step=FLAGS.sync_every_step, scan_steps=FLAGS.scan_steps,
              xla_flags=FLAGS.xla_flags, torch=FLAGS.torch, pipeline=FLAGS.pipeline,
              pipeline_seconds=3 if FLAGS.quick else 10, worker_timeout=FLAGS.worker_timeout)
  print(f'options: {json.dumps(opts)}', flush=True)
  results = []
  for model in models:
    steps = FLAGS.steps or (QUICK_STEPS if FLAGS.quick else DEFAULT_STEPS)[model]
    results.append(compare(model, opts, repeats, steps))
    print(report(results[-1]), flush=True)
    if FLAGS.json_out:   # after every model, so a cut-short run keeps what it measured
      with open(FLAGS.json_out, 'w') as f:
        json.dump({'options': opts, 'results': results}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
