"""What this machine offers a run: package versions, devices and their memory, whether bfloat16 runs, free disk.

`python -m gan_jax.doctor` reports these; nothing here changes the machine.
Versions are read from the installed packages' metadata, not by importing
them: importing torch takes seconds and loads its CUDA libraries into the
JAX process.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy',
            'tensorflow-datasets', 'grain', 'tensorboardX', 'tensorboard', 'wandb', 'torch')
# JAX's accelerator plugins: which one is installed says which hardware JAX can use.
PLUGINS = ('jax-cuda13-plugin', 'jax-cuda12-plugin', 'jax-rocm60-plugin', 'libtpu')
BF16_TOLERANCE = 0.05   # relative to the float32 result's largest value; bfloat16 keeps 8 bits


def package_versions(names=PACKAGES + PLUGINS) -> dict[str, str | None]:
  """{distribution: version, or None when not installed}; plugins only when installed."""
  versions = {'python': sys.version.split()[0]}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      if name not in PLUGINS:
        versions[name] = None
  return versions


def device_report() -> dict:
  """The devices JAX sees: platform, count, processes, and each device's kind and memory.

  `memory_gb` is `device.memory_stats()['bytes_limit']` where the backend
  reports it (GPUs), else None (CPUs report none).
  """
  devices = jax.devices()
  listed = []
  for d in devices:
    try:
      stats = d.memory_stats() or {}
    except Exception:  # pylint: disable=broad-except  (unimplemented on some backends)
      stats = {}
    limit = stats.get('bytes_limit')
    listed.append({'id': d.id, 'kind': d.device_kind, 'process': d.process_index,
                   'memory_gb': round(limit / 2**30, 1) if limit else None})
  kinds: dict[str, int] = {}
  for d in listed:
    kinds[d['kind']] = kinds.get(d['kind'], 0) + 1
  return {'platform': devices[0].platform, 'count': len(devices),
          'local_count': jax.local_device_count(), 'process_count': jax.process_count(),
          'kinds': kinds, 'devices': listed}


def _relative_error(low, high) -> float:
  high = np.asarray(high, np.float32)
  return float(np.max(np.abs(np.asarray(low, np.float32) - high)) / max(np.max(np.abs(high)), 1e-12))


def bfloat16_check() -> dict:
  """Runs a tiny jitted matmul and convolution in bfloat16 and compares them with float32.

  {'runs': bool, 'matmul_error', 'conv_error' (relative to the float32
  result's largest value), 'emulated': True on a CPU (it runs, slower than
  float32), 'error': why it failed, or None}.
  """
  platform = jax.devices()[0].platform
  result = {'runs': False, 'matmul_error': None, 'conv_error': None,
            'emulated': platform == 'cpu', 'error': None}
  # numpy's generator, not jax.random: compiling the random programs took 7 s on a CPU.
  rng = np.random.default_rng(0)
  x, w = rng.standard_normal((64, 128), np.float32), rng.standard_normal((128, 64), np.float32)
  images = rng.standard_normal((2, 16, 16, 8), np.float32)
  kernel = rng.standard_normal((3, 3, 8, 16), np.float32)
  matmul = jax.jit(lambda a, b: a @ b)
  conv = jax.jit(lambda a, b: jax.lax.conv_general_dilated(
      a, b, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  try:
    low = [matmul(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)),
           conv(images.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))]
    high = [matmul(x, w), conv(images, kernel)]
    jax.block_until_ready(low + high)
  except Exception as e:  # pylint: disable=broad-except  (whatever the backend raises is the answer)
    result['error'] = f'{type(e).__name__}: {" ".join(str(e).split())[:300]}'
    return result
  if any(a.dtype != jnp.bfloat16 for a in low):
    result['error'] = f'the results came back as {low[0].dtype}, not bfloat16'
    return result
  result['matmul_error'], result['conv_error'] = (_relative_error(a, b) for a, b in zip(low, high))
  result['runs'] = max(result['matmul_error'], result['conv_error']) < BF16_TOLERANCE
  if not result['runs']:
    result['error'] = (f'bfloat16 results differ from float32 by up to '
                       f'{max(result["matmul_error"], result["conv_error"]):.3f} (relative)')
  return result


def disk_report(path: str) -> dict:
  """Free space and write access of `path`, or of its nearest existing parent (a workdir yet to be made)."""
  path = os.path.abspath(os.path.expanduser(path))
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  usage = shutil.disk_usage(existing)
  return {'path': path, 'checked': existing, 'exists': existing == path,
          'free_gb': round(usage.free / 2**30, 2), 'total_gb': round(usage.total / 2**30, 1),
          'writable': os.access(existing, os.W_OK | os.X_OK)}
