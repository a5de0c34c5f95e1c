"""The device: the report header's record of it (asked of the workers), and PyTorch's settings for a fair race.

JAX's part runs in the gan_jax worker and PyTorch's in a PyTorch worker
(`benchmarks/accelerator/worker.py`): the driver imports neither framework.
"""

from __future__ import annotations

import datetime
import gc
import os
import sys

from benchmarks.accelerator import peaks


def utc_now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def jax_device_info() -> dict:
  """Platform, kind, counts, versions and peaks, as JAX sees them (in the gan_jax worker)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  d = jax.devices()[0]
  info = {'platform': d.platform, 'device_kind': d.device_kind,
          'device_count': jax.device_count(), 'local_device_count': jax.local_device_count(),
          'process_count': jax.process_count(), 'jax': jax.__version__,
          'jaxlib': jaxlib.__version__, 'date_utc': utc_now(),
          'xla_flags': os.environ.get('XLA_FLAGS', ''),
          'compilation_cache': os.environ.get('JAX_COMPILATION_CACHE_DIR', '')}
  try:
    info['platform_version'] = d.client.platform_version
  except Exception:  # pylint: disable=broad-except
    info['platform_version'] = None
  found = peaks.chip(d.device_kind)
  info['chip'], info['peak_tflops'] = (found if found else (None, {}))
  info['python'] = sys.version.split()[0]
  return info


def configure_torch(smoke: bool) -> dict:
  """PyTorch's settings in this (PyTorch worker) process, and what they are, for the report."""
  import torch  # pylint: disable=g-import-not-at-top
  info = {'torch': torch.__version__, 'torch_cuda': torch.version.cuda}
  if torch.cuda.is_available():
    # XLA computes float32 convolutions and matmuls in TF32 on NVIDIA tensor
    # cores by default; PyTorch allows it for convolutions only. Same rules for both.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True   # autotuned convolutions, as XLA's
    info['torch_device'] = f'cuda ({torch.cuda.get_device_name(0)})'
    info['torch_tf32'] = info['torch_cudnn_benchmark'] = True
  else:
    info['torch_device'] = 'cpu'
    if smoke:   # OpenMP threads on a busy 2-core CPU made one toy step take 1-13 s
      torch.set_num_threads(1)
    info['torch_threads'] = torch.get_num_threads()
    info['torch_cpu_capability'] = torch.backends.cpu.get_cpu_capability()
  return info


def free_memory() -> None:
  """Drops the last measurement's buffers, so the next one (and the other workers) find the memory free."""
  gc.collect()
  if 'torch' in sys.modules:
    torch = sys.modules['torch']
    if torch.cuda.is_available():
      torch.cuda.empty_cache()
