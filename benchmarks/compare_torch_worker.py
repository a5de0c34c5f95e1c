"""`benchmarks.compare_torch`'s worker processes: gan_jax's step, the PyTorch twin's, or the input pipeline.

  python -m benchmarks.compare_torch_worker jax|torch|pipeline

started and driven by compare_torch over a pipe (`benchmarks/workers.py`),
one framework per process: the jax worker never imports PyTorch, the torch
worker never imports JAX, so a crash in one is reported as that worker's
failure with its last lines, not the end of the comparison. Each pins itself
to the first `threads` CPUs before its framework starts (XLA sizes its CPU
pool by the CPUs the process may use).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time

from benchmarks import workers

IMAGE_SHAPES = {'dcgan28': (28, 28, 1), 'dcgan32': (32, 32, 3), 'dcgan64': (64, 64, 3),
                'sngan32': (32, 32, 3)}
# The PyTorch twin of each model (benchmarks.torch_reference): 'dcgan64' here is
# the JAX stand-in benchmarks/dcgan64.py, the wide model, zoo name dcgan64_wide.
TORCH_TWINS = {'dcgan64': 'dcgan64_wide'}


def _pin(threads: int) -> list[int]:
  cpus = sorted(os.sched_getaffinity(0))[:threads]
  os.sched_setaffinity(0, cpus)
  return cpus


def _build_jax_step(model: str, opts: dict):
  """(jitted step, initial state, batch, steps per call) of gan_jax's default config."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from benchmarks import dcgan64  # pylint: disable=g-import-not-at-top
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
  from gan_jax.core import losses, optim, steps  # pylint: disable=g-import-not-at-top
  from gan_jax.core import state as state_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.models import layers  # pylint: disable=g-import-not-at-top

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
    fn = lambda state, batch: jax.lax.scan(step, state, batch)  # pylint: disable=unnecessary-lambda-assignment
  else:
    batch, fn = one_batch(), step
  jitted = jax.jit(fn, donate_argnums=0 if opts['donate'] else ())
  state = jax.jit(functools.partial(state_lib.create, gan, g_tx, d_tx, 0, use_ema=False))()
  return jitted, state, jax.device_put(batch), k


class JaxStep:
  """gan_jax's train step (default config, batch `batch_size`) on a fixed synthetic batch."""

  def setup(self, model: str, opts: dict) -> dict:
    cpus = _pin(opts['threads'])
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + opts['xla_flags']).strip()
    import jax  # pylint: disable=g-import-not-at-top  (after pinning and XLA_FLAGS)
    self.jax, self.opts = jax, opts
    jitted, self.state, self.batch, self.k = _build_jax_step(model, opts)
    start = time.perf_counter()
    self.compiled = jitted.lower(self.state, self.batch).compile()
    compile_s = time.perf_counter() - start
    for _ in range(2):
      self.state, self.metrics = self.compiled(self.state, self.batch)
    jax.block_until_ready(self.state)
    self.model = model
    return {'compile_s': compile_s, 'cpus': cpus, 'device': jax.devices()[0].device_kind,
            'xla_flags': os.environ['XLA_FLAGS'], 'jax': jax.__version__}

  def time_chunk(self, steps: int) -> list:
    """[seconds, steps done] for about `steps` steps (whole calls of `scan_steps`)."""
    workers.inject_fault('jax', self.model)
    calls = max(1, steps // self.k)
    start = time.perf_counter()
    for _ in range(calls):
      self.state, self.metrics = self.compiled(self.state, self.batch)
      if self.opts['sync_every_step']:
        self.jax.device_get(self.metrics)
    self.jax.block_until_ready((self.state, self.metrics))
    return [time.perf_counter() - start, calls * self.k]


class TorchStep:
  """The PyTorch twin's train step (benchmarks.torch_reference) on a fixed uint8 batch."""

  def setup(self, model: str, opts: dict) -> dict:
    cpus = _pin(opts['threads'])
    import torch  # pylint: disable=g-import-not-at-top

    from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(opts['threads'])
    self.step = torch_reference.TrainStep(TORCH_TWINS.get(model, model))
    self.real = torch.randint(0, 256, (opts['batch_size'], *IMAGE_SHAPES[model]),
                              dtype=torch.uint8)
    self.model = model
    start = time.perf_counter()
    self.step(self.real)
    first_s = time.perf_counter() - start
    self.step(self.real)
    return {'first_step_s': first_s, 'cpus': cpus, 'threads': torch.get_num_threads(),
            'torch': torch.__version__, 'input_layout': self.step.input_layout}

  def time_chunk(self, steps: int) -> list:
    workers.inject_fault('torch', self.model)
    start = time.perf_counter()
    for _ in range(steps):
      self.step(self.real)
    return [time.perf_counter() - start, steps]


class Pipeline:
  """Batches/s of gan_jax's input pipeline alone, on real or generated files."""

  def measure(self, model: str, opts: dict) -> dict:
    _pin(opts['threads'])
    from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
    from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
    from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    shape = IMAGE_SHAPES[model]
    config = config_base.get_config()
    config.data.image_size, config.data.channels = shape[0], shape[2]
    with tempfile.TemporaryDirectory() as tmp:
      what = _pipeline_data(config, model, shape, tmp)
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
      return {'batches_per_s': n / (time.perf_counter() - start), 'data': what,
              'read_threads': config.data.read_threads}


def _pipeline_data(config, model: str, shape: tuple, tmp: str) -> str:
  """Points config.data at the MNIST IDX files (dcgan28, when present) or generated PNGs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  shared = os.environ.get('GAN_JAX_SHARED', os.path.join(os.getcwd(), '..', 'shared'))
  mnist = os.path.join(shared, 'data', 'mnist')
  if model == 'dcgan28' and os.path.isdir(mnist):
    config.data.source, config.data.path = 'idx', mnist
    return f'MNIST IDX files ({mnist})'
  if model == 'dcgan28':
    return 'bundled digits'
  rng = np.random.default_rng(0)
  for i in range(512):   # PNGs of noise: decoding cost like real photos
    os.makedirs(f'{tmp}/c{i % 2}', exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(f'{tmp}/c{i % 2}/{i}.png')
  config.data.source, config.data.path = 'folder', tmp
  return f'a folder of 512 generated {shape[0]}x{shape[1]} PNGs'


SERVICES = {'jax': JaxStep, 'torch': TorchStep, 'pipeline': Pipeline}


if __name__ == '__main__':
  if len(sys.argv) != 2 or sys.argv[1] not in SERVICES:
    sys.exit(f'usage: python -m benchmarks.compare_torch_worker {"|".join(SERVICES)}')
  workers.serve(SERVICES[sys.argv[1]]())
