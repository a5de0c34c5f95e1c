"""The suite's worker processes: gan_jax's step (JAX only) or a PyTorch twin (PyTorch only).

  python -m benchmarks.accelerator.worker gan_jax|torch_eager|torch_compile

started by the driver (`benchmarks/accelerator/remote.py`) and spoken to over
a pipe (`benchmarks/workers.py`). One framework per process: the gan_jax
worker never imports PyTorch, the PyTorch workers never import JAX, so an
abort in one (PyTorch's oneDNN corrupting the heap, an out-of-memory kill)
costs one row's part, not the run. Ops: setup(spec) builds and warms up the
step (returns its compile time, FLOPs, one step's time), time_chunk(steps)
times that many steps (returns seconds), release() frees it; the gan_jax
worker also answers device_info() and doctor(kwargs), the PyTorch ones probe().
"""

from __future__ import annotations

import sys

from benchmarks import workers
from benchmarks.accelerator import device, runners


class _Service:
  """What both frameworks' services share: timing a chunk of steps and freeing the runner."""
  name = ''
  runner = None
  spec: dict

  def time_chunk(self, steps: int) -> float:
    workers.inject_fault(self.name, self.spec.get('model', ''), self.spec.get('dtype', ''))
    return self.runner.run(steps)

  def release(self) -> None:
    if self.runner is not None:
      self.runner.close()
    self.runner = None
    device.free_memory()

  def close(self) -> None:
    self.release()


class JaxService(_Service):
  """gan_jax's train step, built as gan_jax.train builds it, on the first `devices` devices."""
  name = 'gan_jax'

  def __init__(self):
    self.runner = None
    self.spec: dict = {}
    self.initial_states: dict = {}   # model -> its initial state, as numpy: one compile fewer

  def device_info(self) -> dict:
    info = device.jax_device_info()
    info['frameworks_in_gan_jax_worker'] = sorted({'jax', 'torch'} & set(sys.modules))
    return info

  def doctor(self, kwargs: dict) -> dict:
    """gan_jax.doctor's check of this host (devices, bfloat16, data, weights), here where JAX is."""
    from gan_jax import doctor as doctor_lib  # pylint: disable=g-import-not-at-top
    report = doctor_lib.check(**kwargs)
    return {'problems': report['problems'], 'notes': report.get('notes', [])}

  def setup(self, spec: dict) -> dict:
    """Builds, compiles and warms up one measurement's step; what the report needs of it."""
    import jax  # pylint: disable=g-import-not-at-top
    self.release()
    config = runners.spec_config(spec)
    devices = jax.devices()[:spec.get('devices') or jax.device_count()]
    model = spec['model']
    runner = runners.JaxRunner(config, devices, self.initial_states.get(model))
    self.initial_states.setdefault(model, runner.host_state)
    self.runner, self.spec = runner, spec
    runner.warmup()
    return {'compile_s': runner.compile_s, 'flops': runner.flops,
            'flops_source': runner.flops_source, 'model_flops': runner.model_flops,
            'flops_per_device': runner.flops_per_device, 'hardware_flops': runner.hardware_flops,
            'devices': len(devices), 'n_disc': config.train.n_disc, 'n_gen': config.train.n_gen,
            'per_step_s': runner.per_step_s}


class TorchService(_Service):
  """A PyTorch twin's step, eager or under torch.compile, on its device."""

  def __init__(self, name: str):
    self.name = name
    self.compiled = name == 'torch_compile'
    self.runner = None
    self.spec: dict = {}

  def probe(self, platform: str | None, smoke: bool) -> dict:
    """{'state': {'device', 'twins'} or {'reason'}, 'info': PyTorch's versions and settings}."""
    state = runners.torch_twins(platform)
    info = device.configure_torch(smoke) if 'torch' in sys.modules else {}
    info['frameworks_in_torch_worker'] = sorted({'jax', 'torch'} & set(sys.modules))
    return {'state': state, 'info': info}

  def setup(self, spec: dict) -> dict:
    """Builds the twin and makes its first calls (torch.compile compiles there), timed apart."""
    self.release()
    state = self.probe(spec.get('platform'), spec.get('smoke', False))['state']
    if state.get('reason'):
      raise RuntimeError(state['reason'])
    config = runners.spec_config(spec)
    runner = runners.TorchRunner(config, state['device'], spec['dtype'], self.compiled)
    self.runner, self.spec = runner, spec
    runner.warmup()
    return {'first_calls_s': runner.first_calls_s, 'per_step_s': runner.per_step_s,
            'input_layout': runner.input_layout}


def main(argv: list[str]) -> None:
  name = argv[1] if len(argv) > 1 else ''
  if name == JaxService.name:
    service = JaxService()
  elif name in ('torch_eager', 'torch_compile'):
    service = TorchService(name)
  else:
    sys.exit(f'usage: python -m benchmarks.accelerator.worker gan_jax|torch_eager|torch_compile '
             f'(not {name!r})')
  workers.serve(service)


if __name__ == '__main__':
  main(sys.argv)
