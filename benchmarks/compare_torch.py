"""gan_jax against eager PyTorch on the same machine: train steps/s, alternating, with ratios.

  python -m benchmarks.compare_torch                 # dcgan28, dcgan32, dcgan64; 5 repeats
  python -m benchmarks.compare_torch --quick         # dcgan28 and dcgan32, 3 short repeats

For each model it starts two worker processes, one gan_jax and one PyTorch,
pinned to the same CPUs (`--threads`, default 2: `os.sched_setaffinity` for
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
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time

from absl import app, flags

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
FLAGS = flags.FLAGS

DEFAULT_STEPS = {'dcgan28': 20, 'dcgan32': 6, 'dcgan64': 2, 'sngan32': 2}
QUICK_STEPS = {'dcgan28': 10, 'dcgan32': 3, 'dcgan64': 1, 'sngan32': 1}
IMAGE_SHAPES = {'dcgan28': (28, 28, 1), 'dcgan32': (32, 32, 3), 'dcgan64': (64, 64, 3),
                'sngan32': (32, 32, 3)}
# The PyTorch twin of each model (benchmarks.torch_reference): 'dcgan64' here is
# the JAX stand-in benchmarks/dcgan64.py, the wide model, zoo name dcgan64_wide.
TORCH_TWINS = {'dcgan64': 'dcgan64_wide'}


def _pin(threads: int) -> list[int]:
  cpus = sorted(os.sched_getaffinity(0))[:threads]
  os.sched_setaffinity(0, cpus)
  return cpus


# ----------------------------------------------------------------- workers

def _jax_worker(conn, model: str, opts: dict):
  cpus = _pin(opts['threads'])
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + opts['xla_flags']).strip()
  import jax
  import numpy as np
  from gan_jax.config import base as config_base
  from gan_jax.core import losses
  from gan_jax import models
  from gan_jax.core import optim
  from gan_jax.core import state as state_lib
  from gan_jax.core import steps
  from gan_jax.models import layers
  from benchmarks import dcgan64

  # A benchmark-only switch: the models call layers.conv_transpose by name.
  layers.conv_transpose = functools.partial(layers.conv_transpose, impl=opts['conv_transpose'])
  config = config_base.get_config()
  shape = IMAGE_SHAPES[model]
  config.model.name = model
  config.data.image_size, config.data.channels = shape[0], shape[2]
  config.train.batch_size = opts['batch_size']
  tc = config.train
  gan = dcgan64.build(config.model.latent_dim) if model == 'dcgan64' else models.build(
      config.model, shape, 0)
  g_tx = optim.build(config.optim.g, tc.num_steps * tc.n_gen)
  d_tx = optim.build(config.optim.d, tc.num_steps * tc.n_disc)
  step = steps.make_train_step(gan, losses.build(config.loss), g_tx, d_tx,
                               steps.StepSpec.from_config(tc))
  rng = np.random.default_rng(0)
  k = max(opts['scan_steps'], 1)

  def one_batch():
    return {'image': rng.integers(0, 256, (tc.n_disc, tc.batch_size, *shape), dtype=np.uint8),
            'label': np.zeros((tc.n_disc, tc.batch_size), np.int32)}

  if k > 1:
    batch = jax.tree.map(lambda *xs: np.stack(xs), *[one_batch() for _ in range(k)])
    fn = lambda state, batch: jax.lax.scan(step, state, batch)
  else:
    batch, fn = one_batch(), step
  batch = jax.device_put(batch)
  jitted = jax.jit(fn, donate_argnums=0 if opts['donate'] else ())
  state = jax.jit(functools.partial(state_lib.create, gan, g_tx, d_tx, 0, use_ema=False))()
  start = time.perf_counter()
  compiled = jitted.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  for _ in range(2):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(state)
  conn.send({'compile_s': compile_s, 'cpus': cpus, 'device': jax.devices()[0].device_kind,
             'xla_flags': os.environ['XLA_FLAGS'], 'jax': jax.__version__})
  while (n := conn.recv()) is not None:
    calls = max(1, n // k)
    start = time.perf_counter()
    for _ in range(calls):
      state, metrics = compiled(state, batch)
      if opts['sync_every_step']:
        jax.device_get(metrics)
    jax.block_until_ready((state, metrics))
    conn.send((time.perf_counter() - start, calls * k))


def _torch_worker(conn, model: str, opts: dict):
  cpus = _pin(opts['threads'])
  import torch
  from benchmarks import torch_reference
  torch.set_num_threads(opts['threads'])
  step = torch_reference.TrainStep(TORCH_TWINS.get(model, model))
  real = torch.randint(0, 256, (opts['batch_size'], *IMAGE_SHAPES[model]), dtype=torch.uint8)
  start = time.perf_counter()
  step(real)
  first_s = time.perf_counter() - start
  step(real)
  conn.send({'first_step_s': first_s, 'cpus': cpus, 'threads': torch.get_num_threads(),
             'torch': torch.__version__})
  while (n := conn.recv()) is not None:
    start = time.perf_counter()
    for _ in range(n):
      step(real)
    conn.send((time.perf_counter() - start, n))


def _pipeline_worker(conn, model: str, opts: dict):
  """Batches/s of gan_jax's input pipeline alone, on real or generated files."""
  _pin(opts['threads'])
  import numpy as np
  from PIL import Image
  from gan_jax.config import base as config_base
  from gan_jax import data as data_lib
  from gan_jax.data import pipeline
  shape = IMAGE_SHAPES[model]
  config = config_base.get_config()
  config.data.image_size, config.data.channels = shape[0], shape[2]
  shared = os.environ.get('GAN_JAX_SHARED', os.path.join(os.getcwd(), '..', 'shared'))
  mnist = os.path.join(shared, 'data', 'mnist')
  with tempfile.TemporaryDirectory() as tmp:
    if model == 'dcgan28' and os.path.isdir(mnist):
      config.data.source, config.data.path = 'idx', mnist
      what = f'MNIST IDX files ({mnist})'
    elif model == 'dcgan28':
      what = 'bundled digits'
    else:
      rng = np.random.default_rng(0)
      for i in range(512):   # PNGs of noise: decoding cost like real photos
        os.makedirs(f'{tmp}/c{i % 2}', exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(f'{tmp}/c{i % 2}/{i}.png')
      config.data.source, config.data.path = 'folder', tmp
      what = f'a folder of 512 generated {shape[0]}x{shape[1]} PNGs'
    source = data_lib.build_source(config.data)
    batches = pipeline.batches(source, global_batch=opts['batch_size'], n_disc=1, seed=0,
                               read_threads=config.data.read_threads,
                               prefetch=config.data.prefetch)
    for _ in range(3):
      next(batches)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < opts['pipeline_seconds']:
      next(batches)
      n += 1
    conn.send({'batches_per_s': n / (time.perf_counter() - start), 'data': what,
               'read_threads': config.data.read_threads})


def _start(target, model, opts):
  ctx = mp.get_context('spawn')
  parent, child = ctx.Pipe()
  proc = ctx.Process(target=target, args=(child, model, opts), daemon=True)
  proc.start()
  return proc, parent


# ----------------------------------------------------------------- driver

def _load() -> str:
  return '/'.join(f'{x:.2f}' for x in os.getloadavg())


def compare(model: str, opts: dict, repeats: int, steps: int) -> dict:
  result = {'model': model, 'batch_size': opts['batch_size'], 'load_start': _load()}
  workers = {'gan_jax': _start(_jax_worker, model, opts)}
  result['gan_jax_setup'] = workers['gan_jax'][1].recv()
  if opts['torch']:
    workers['torch'] = _start(_torch_worker, model, opts)
    result['torch_setup'] = workers['torch'][1].recv()
  rates = {name: [] for name in workers}
  for r in range(repeats):
    order = list(workers) if r % 2 == 0 else list(workers)[::-1]
    for name in order:
      conn = workers[name][1]
      conn.send(steps)
      seconds, done = conn.recv()
      rates[name].append(done / seconds)
  for proc, conn in workers.values():
    conn.send(None)
    proc.join()
  result['steps_per_s'] = rates
  if opts['torch']:
    result['ratios'] = [j / t for j, t in zip(rates['gan_jax'], rates['torch'])]
  if opts['pipeline']:
    proc, conn = _start(_pipeline_worker, model, opts)
    result['pipeline'] = conn.recv()
    proc.join()
  result['load_end'] = _load()
  return result


def _spread(values) -> str:
  return f'{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})'


def report(result: dict) -> str:
  b = result['batch_size']
  jax_rates = result['steps_per_s']['gan_jax']
  lines = [f"{result['model']}: load {result['load_start']} -> {result['load_end']}; "
           f"gan_jax compile {result['gan_jax_setup']['compile_s']:.1f}s on CPUs "
           f"{result['gan_jax_setup']['cpus']}",
           f"  gan_jax  {_spread(jax_rates)} steps/s, "
           f"{b * statistics.median(jax_rates):.0f} images/s"]
  if 'ratios' in result:
    torch_rates = result['steps_per_s']['torch']
    lines += [f"  pytorch  {_spread(torch_rates)} steps/s, "
              f"{b * statistics.median(torch_rates):.0f} images/s "
              f"(first step {result['torch_setup']['first_step_s']:.2f}s, "
              f"{result['torch_setup']['threads']} threads)",
              f"  ratio gan_jax/pytorch {_spread(result['ratios'])}"]
  if 'pipeline' in result:
    p = result['pipeline']
    lines.append(f"  input pipeline {p['batches_per_s']:.1f} batches/s on {p['data']} "
                 f"({p['batches_per_s'] / statistics.median(jax_rates):.1f}x the step)")
  return '\n'.join(lines)


def main(_):
  models = ['dcgan28', 'dcgan32'] if FLAGS.quick and FLAGS['models'].using_default_value \
      else FLAGS.models
  repeats = 3 if FLAGS.quick and FLAGS['repeats'].using_default_value else FLAGS.repeats
  opts = dict(threads=FLAGS.threads, batch_size=FLAGS.batch_size,
              conv_transpose=FLAGS.conv_transpose, donate=FLAGS.donate,
              sync_every_step=FLAGS.sync_every_step, scan_steps=FLAGS.scan_steps,
              xla_flags=FLAGS.xla_flags, torch=FLAGS.torch, pipeline=FLAGS.pipeline,
              pipeline_seconds=3 if FLAGS.quick else 10)
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
