"""Steps/s of the 2D lab's train step in JAX against the same MLP GAN and step in eager PyTorch.

  pip install torch            # optional benchmark dependency
  python -m benchmarks.toy2d_vs_torch [--hidden=32,128] [--seconds=3] [--rounds=3]

Both sides train the lab's default model on the sine target: G and D are
2 -> h -> h -> {2, 1} MLPs with LeakyReLU(0.2); one step is a D update on 100
real and 100 generated points (generated detached, BCE with logits), then a G
update on fresh noise (non-saturating loss); Adam with G lr 1e-4, D lr 1e-3,
b1 0.5; real points and uniform noise drawn on the fly. JAX runs the lab's
own fused program (gan_jax.toy2d.lab.Lab.make_chunk, `steps_per_call` steps
per call in a lax.scan, which XLA runs as a while loop), the same with the
scan fully unrolled (no while loop: XLA's CPU backend runs convolutions inside
while loops slowly, docs/design.md; `python -m benchmarks.compare_torch
--scan_steps=4` measures that for dcgan28), and one jitted step per call;
PyTorch runs its usual eager loop, with its default thread count and with
one thread. The frameworks alternate round by round in one process, so a
busy machine slows both alike; the median round is reported. The machine,
its load and the versions are printed with the table.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

from absl import app
from absl import flags
import jax

from gan_jax.toy2d import lab as lab_lib
from gan_jax.toy2d.defaults import lab_config

flags.DEFINE_list('hidden', ['32', '128'], 'Hidden widths of G and D to measure.')
flags.DEFINE_float('seconds', 3.0, 'Length of a timed round (whole calls; at least one).')
flags.DEFINE_integer('rounds', 3, 'Timed rounds per framework (the median is reported).')
flags.DEFINE_integer('steps_per_call', 1000, 'JAX steps fused into one call (lax.scan).')
flags.DEFINE_integer('unrolled', 20, 'JAX steps per call in the fully unrolled variant.')
FLAGS = flags.FLAGS

BATCH = 100


def machine() -> str:
  cpu = platform.processor() or 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f if l.startswith('model name')]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  return f'{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}'


def load() -> str:
  return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def jax_runner(hidden: int, length: int, unroll: bool = False):
  config = lab_config('sine')
  config.model.hidden = hidden
  config.train.batch_size = BATCH
  lab = lab_lib.Lab.from_config(config)
  setup = lab.setup
  call = jax.jit(lab.make_chunk(setup.g_tx, setup.d_tx, length, unroll=unroll),
                 donate_argnums=0)
  holder = {'state': setup.init_state()}
  holder['state'], _ = call(holder['state'])   # compile
  jax.block_until_ready(holder['state'])

  def run(seconds: float) -> float:
    state, calls = holder['state'], 0
    start = time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
      state, _ = call(state)
      jax.block_until_ready(state)
      calls += 1
    holder['state'] = state
    return calls * length / (time.perf_counter() - start)

  return run


def torch_runner(hidden: int, threads: int):
  import torch  # pylint: disable=g-import-not-at-top  (optional dependency)
  torch.manual_seed(0)

  def mlp(out):
    return torch.nn.Sequential(
        torch.nn.Linear(2, hidden), torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(hidden, hidden), torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(hidden, out))

  generator, discriminator = mlp(2), mlp(1)
  g_opt = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
  bce = torch.nn.BCEWithLogitsLoss()
  ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)

  def step():
    u = torch.rand(BATCH, 2) * 2 - 1
    real = torch.stack([u[:, 0], torch.sin(u[:, 0]) + u[:, 1] / 4], dim=1)
    with torch.no_grad():
      fake = generator(torch.rand(BATCH, 2) * 2 - 1)
    d_opt.zero_grad()
    d_loss = bce(discriminator(real), ones) + bce(discriminator(fake), zeros)
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad()
    g_loss = bce(discriminator(generator(torch.rand(BATCH, 2) * 2 - 1)), ones)
    g_loss.backward()
    g_opt.step()

  def run(seconds: float) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
      step()   # warm up at this thread count
      done = 0
      start = time.perf_counter()
      while done == 0 or time.perf_counter() - start < seconds:
        for _ in range(10):
          step()
        done += 10
      return done / (time.perf_counter() - start)
    finally:
      torch.set_num_threads(previous)

  return run


def main(_):
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise SystemExit('This benchmark needs PyTorch: pip install torch') from None
  default_threads = torch.get_num_threads()
  print(f'machine: {machine()}; load average before: {load()}')
  print(f'jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__} '
        f'(default {default_threads} threads); batch {BATCH}; rounds of >= {FLAGS.seconds:g}s, '
        f'{FLAGS.rounds} per implementation, median round')
  rows = []
  for hidden in map(int, FLAGS.hidden):
    runners = {
        f'JAX, {FLAGS.steps_per_call} steps per call (lax.scan: a while loop)':
            jax_runner(hidden, FLAGS.steps_per_call),
        f'JAX, {FLAGS.unrolled} steps per call, unrolled (no while loop)':
            jax_runner(hidden, FLAGS.unrolled, unroll=True),
        'JAX, 1 jitted step per call': jax_runner(hidden, 1),
        f'PyTorch eager, {default_threads} threads': torch_runner(hidden, default_threads),
        'PyTorch eager, 1 thread': torch_runner(hidden, 1),
    }
    rates = {name: [] for name in runners}
    for _ in range(FLAGS.rounds):
      for name, run in runners.items():
        rates[name].append(run(FLAGS.seconds))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    best_torch = max(v for k, v in medians.items() if k.startswith('PyTorch'))
    for name, rate in medians.items():
      rows.append((hidden, name, rate, rate / best_torch))
  print(f'load average after: {load()}\n')
  print('| hidden | implementation | steps/s | vs faster PyTorch |')
  print('| --- | --- | --- | --- |')
  for hidden, name, rate, ratio in rows:
    print(f'| {hidden} | {name} | {rate:,.0f} | {ratio:.1f}x |')


if __name__ == '__main__':
  app.run(main)
