"""Where a train step's time goes: an XLA op-level profile grouped by network and pass.

  python -m benchmarks.profile_step --config=configs/dcgan_mnist.py [--steps=10]

Runs the real jitted train step on synthetic uint8 batches (no data loading)
under jax.profiler, then groups the device ops by the Flax module that issued
them (Generator / Discriminator), by pass (forward or backward), and by op
kind (convolution or the rest). Prints ms per step for each group.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import tempfile
import time

from absl import app, flags
import jax
import numpy as np
from ml_collections import config_flags

from gan_jax.core import steps
from gan_jax.data.source import DatasetInfo
from gan_jax.training import setup as setup_lib

config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
flags.DEFINE_integer('steps', 10, 'Profiled steps.')
flags.DEFINE_integer('num_classes', 10, 'Classes of the synthetic data.')
FLAGS = flags.FLAGS


def _op_metadata(hlo_text: str) -> dict:
  """HLO instruction name -> the op_name metadata JAX attached to it."""
  table = {}
  for match in re.finditer(r'%(\S+) = .*?metadata=\{op_name="([^"]+)"', hlo_text):
    table[match.group(1)] = match.group(2)
  return table


_NOT_OPS = ('$', 'ThunkExecutor', 'PjitFunction', 'CommonPjRt', 'PjRt')


def _group(op: str, meta: dict) -> str | None:
  """A readable group for one profiled op, or None for host-side events."""
  if op.startswith(_NOT_OPS):
    return None
  kind = re.sub(r'\.\d+$', '', op)
  if op not in meta:
    if kind.startswith('convolution-base-dilated'):
      return 'input-dilated convs (stride-2 ConvT fwd, strided conv input grads)'
    return f'unattributed {kind}'
  name = meta[op]
  net = 'G' if 'Generator' in name else 'D' if 'Discriminator' in name else None
  if net is None:
    return 'optimizer, losses, rng, misc'
  direction = 'backward' if 'transpose(' in name else 'forward'
  return f'{net} {direction} {"conv" if kind.startswith("conv") else "other ops"}'


def main(_):
  config = FLAGS.config
  size, channels = config.data.image_size, config.data.channels or 1
  info = DatasetInfo((size, size, channels), FLAGS.num_classes,
                     tuple(str(i) for i in range(FLAGS.num_classes)), 1000, 'synthetic')
  setup = setup_lib.build_setup(config, info)
  step = jax.jit(steps.make_train_step(setup.gan, setup.loss, setup.g_tx, setup.d_tx,
                                       steps.StepSpec.from_config(config.train)),
                 donate_argnums=0)
  tc = config.train
  rng = np.random.default_rng(0)
  batch = jax.device_put({
      'image': rng.integers(0, 256, (tc.n_disc, tc.batch_size, size, size, channels),
                            dtype=np.uint8),
      'label': rng.integers(0, FLAGS.num_classes, (tc.n_disc, tc.batch_size)).astype(np.int32)})
  state = setup.init_state()
  hlo = step.lower(state, batch).compile().as_text()
  state, _ = step(state, batch)
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, _ = step(state, batch)
  jax.block_until_ready(state)
  wall = (time.perf_counter() - start) / FLAGS.steps
  trace_dir = tempfile.mkdtemp()
  with jax.profiler.trace(trace_dir):
    for _ in range(FLAGS.steps):
      state, _ = step(state, batch)
    jax.block_until_ready(state)
  events = json.load(gzip.open(glob.glob(f'{trace_dir}/**/*.trace.json.gz', recursive=True)[0]))
  meta = _op_metadata(hlo)
  totals = collections.Counter()
  for event in events['traceEvents']:
    group = _group(event.get('name', ''), meta) if event.get('ph') == 'X' else None
    if group:
      totals[group] += event['dur'] / 1000 / FLAGS.steps
  print(f'{config.model.name}, batch {tc.batch_size}, {jax.devices()[0].device_kind} '
        f'x{jax.device_count()}: {wall * 1000:.1f} ms per step ({1 / wall:.2f} steps/s) '
        'without profiling')
  covered = sum(totals.values())
  print(f'  device ops account for {covered:.1f} ms per step:')
  for group, ms in totals.most_common(12):
    print(f'  {group:68s} {ms:6.1f} ms  {100 * ms / covered:5.1f}%')


if __name__ == '__main__':
  app.run(main)
