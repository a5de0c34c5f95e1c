"""What is timed: gan_jax's train step and its PyTorch twin on a fixed synthetic batch, per model.

The runners live in the worker processes (`benchmarks/accelerator/worker.py`):
JaxRunner in the gan_jax worker, TorchRunner in a PyTorch one. JAX, PyTorch
and gan_jax are imported when first used, so that importing this module
starts neither framework (the driver imports it, and must not).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from benchmarks.accelerator import peaks
from benchmarks.accelerator.report import error_line

if TYPE_CHECKING:
  from benchmarks.accelerator.options import Options

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTYPES = ('float32', 'bfloat16')
# Config files of the models that have one; other models use the base config.
MODEL_CONFIGS = {
    'dcgan64': 'configs/dcgan_celeba.py',
    'sngan32': 'configs/gan_cifar10.py',
    'resnet18d': 'configs/gan_cifar10_resnet18d.py',
}
# Image shapes of the models that run on the base config.
BASE_IMAGE_SHAPES = {'dcgan28': (28, 28, 1), 'dcgan32': (32, 32, 3), 'dcgan64': (64, 64, 3),
                     'dcgan64_wide': (64, 64, 3), 'sngan32': (32, 32, 3),
                     'resnet18d': (32, 32, 3)}
KNOWN_MODELS = tuple(sorted(set(MODEL_CONFIGS) | set(BASE_IMAGE_SHAPES)))


def model_config(model: str, opts: Options, batch: int, dtype: str):
  """The config a model is measured with: its recipe, at this batch size and dtype."""
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
  from gan_jax.config import files as config_files  # pylint: disable=g-import-not-at-top
  if model in MODEL_CONFIGS:
    config = config_files.load_file(os.path.join(REPO_ROOT, MODEL_CONFIGS[model]))
  else:
    config = config_base.get_config()
    config.model.name = model
    shape = BASE_IMAGE_SHAPES.get(model)
    if shape is None:
      raise ValueError(f'unknown model {model!r}: one of '
                       f'{", ".join(sorted(BASE_IMAGE_SHAPES))}')
    config.data.image_size, config.data.channels = shape[0], shape[2]
  config.train.batch_size = batch
  config.train.compute_dtype = dtype
  if opts.width_scale != 1.0:
    config.model.width_scale = opts.width_scale
  if opts.n_disc:
    config.train.n_disc = opts.n_disc
  if opts.n_gen:
    config.train.n_gen = opts.n_gen
  return config


def image_shape(config) -> tuple:
  return (config.data.image_size, config.data.image_size, config.data.channels or 3)


class JaxRunner:
  """gan_jax's train step jitted as `gan_jax.train._train_steps` jits it, on a synthetic batch."""

  def __init__(self, config, devices, host_state=None):
    """`host_state`: the initial state as numpy (it depends on neither the batch nor the dtype)."""
    import jax  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    from gan_jax.parallel import devices as devices_lib  # pylint: disable=g-import-not-at-top
    from gan_jax.training import setup as setup_lib
    from gan_jax.data.source import DatasetInfo  # pylint: disable=g-import-not-at-top
    self._jax = jax
    tc = config.train
    shape = image_shape(config)
    num_classes = 10 if config.model.conditional else 0
    info = DatasetInfo(shape, num_classes, tuple(f'c{i}' for i in range(num_classes)),
                       50_000, 'synthetic uint8 batch')
    setup = setup_lib.build_setup(config, info)
    mesh = devices_lib.make_mesh(devices)
    devices_lib.check_batch_size(tc.batch_size, mesh)
    replicated = devices_lib.replicated(mesh)
    rng = np.random.default_rng(0)
    local = {'image': rng.integers(0, 256, (tc.n_disc, tc.batch_size, *shape), dtype=np.uint8),
             'label': rng.integers(0, max(num_classes, 1), (tc.n_disc, tc.batch_size),
                                   dtype=np.int32)}
    self.batch = devices_lib.global_batch(local, mesh)
    if host_state is None:   # one compile fewer per measurement when the caller keeps it
      self.state = jax.jit(setup.init_state, out_shardings=replicated)()
      self.host_state = jax.device_get(self.state)
    else:
      self.host_state = host_state
      self.state = jax.device_put(host_state, replicated)
    step = jax.jit(setup.train_step(tc, mesh), in_shardings=(replicated, devices_lib.batch_sharded(
        mesh, batch_axis=1)), out_shardings=(replicated, replicated), donate_argnums=0)
    start = time.perf_counter()
    lowered = step.lower(self.state, self.batch)
    self.step = lowered.compile()
    self.compile_s = time.perf_counter() - start
    # Two counts. The lowered (unpartitioned, unoptimised) program's FLOPs are
    # the model's: what one step asks for on the global batch. The compiled
    # program is the per-device one after SPMD partitioning and XLA's rewrites;
    # times the devices it counts the work done, replicated work included (on
    # several devices it can far exceed the model's FLOPs when parts of the step
    # are not partitioned), and on GPUs it may miss library calls. MFU uses the first.
    self.model_flops = peaks.flops_from_cost_analysis(peaks.cost_analysis(lowered))
    self.flops_per_device = peaks.flops_from_cost_analysis(peaks.cost_analysis(self.step))
    self.hardware_flops = (None if self.flops_per_device is None
                           else self.flops_per_device * len(devices))
    self.flops, self.flops_source = ((self.model_flops, 'lowered')
                                     if self.model_flops is not None
                                     else (self.hardware_flops, 'compiled x devices'))
    self.per_step_s = 1.0
    self.metrics = None

  def warmup(self) -> None:
    for _ in range(2):
      self.state, self.metrics = self.step(self.state, self.batch)
    self._jax.block_until_ready((self.state, self.metrics))
    self.per_step_s = self.run(1)

  def run(self, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
      self.state, self.metrics = self.step(self.state, self.batch)
    self._jax.block_until_ready((self.state, self.metrics))
    return time.perf_counter() - start

  def close(self) -> None:
    self.state = self.batch = self.step = self.metrics = self.host_state = None


def _torch_reference():
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  return torch_reference


def measurement_spec(opts: Options, model: str, batch: int, dtype: str) -> dict:
  """What a worker needs to build a measurement's config (JSON, sent over the pipe)."""
  return {'model': model, 'batch_size': batch, 'dtype': dtype, 'width_scale': opts.width_scale,
          'n_disc': opts.n_disc, 'n_gen': opts.n_gen, 'smoke': opts.smoke}


def spec_config(spec: dict):
  """The config of a measurement_spec, built in the worker as model_config builds it."""
  from benchmarks.accelerator.options import Options  # pylint: disable=g-import-not-at-top
  opts = Options(out='', width_scale=spec['width_scale'], n_disc=spec['n_disc'],
                 n_gen=spec['n_gen'])
  return model_config(spec['model'], opts, spec['batch_size'], spec['dtype'])


def torch_twins(platform: str | None) -> dict:
  """In a PyTorch worker: {'reason': why PyTorch is not timed} or {'device', 'twins'}."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return {'reason': 'PyTorch is not installed (pip install -e ".[bench]")'}
  try:
    ref = _torch_reference()
  except Exception as e:  # pylint: disable=broad-except
    return {'reason': f'benchmarks.torch_reference does not import: {error_line(e)}'}
  if not hasattr(ref, 'TWINS') or not hasattr(getattr(ref, 'TrainStep', None), 'from_config'):
    return {'reason': 'benchmarks.torch_reference has no TWINS / TrainStep.from_config'}
  torch_device = 'cuda' if torch.cuda.is_available() else 'cpu'
  if torch_device == 'cpu' and platform not in ('cpu', None):
    return {'reason': f"PyTorch has no CUDA here while gan_jax runs on {platform}"}
  return {'device': torch_device, 'twins': list(ref.TWINS)}


class TorchRunner:
  """A PyTorch twin's step, eager or under torch.compile, on a fixed uint8 batch on its device."""

  def __init__(self, config, device: str, dtype: str, compile_: bool):
    import torch  # pylint: disable=g-import-not-at-top
    self._torch = torch
    self.device = device
    ref = _torch_reference()
    self.step = ref.TrainStep.from_config(config, device=device, dtype=dtype,
                                          compile=compile_, seed=0)
    gen = torch.Generator().manual_seed(0)
    shape = image_shape(config)
    # One real batch per D update, as gan_jax's step gets (n_disc, B, H, W, C).
    self.real = torch.randint(0, 256, (config.train.n_disc, config.train.batch_size, *shape),
                              generator=gen, dtype=torch.uint8).to(device)
    self.compiled = compile_
    self.input_layout = getattr(self.step, 'input_layout', None)
    self.per_step_s = 1.0
    self.first_calls_s = None

  def _sync(self) -> None:
    if self.device.startswith('cuda'):
      self._torch.cuda.synchronize()

  def warmup(self) -> None:
    """The first calls (torch.compile compiles there; eager allocates), timed apart."""
    start = time.perf_counter()
    for _ in range(3 if self.compiled else 2):   # compiled: every graph variant, then steady
      out = self.step(self.real)
    self._sync()
    del out
    self.first_calls_s = time.perf_counter() - start
    self.per_step_s = self.run(1)

  def run(self, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
      out = self.step(self.real)
    self._sync()
    del out
    return time.perf_counter() - start

  def close(self) -> None:
    self.step = self.real = None
