"""Times one stride-2 transposed convolution, forward and both gradients, by every route.

  python -m benchmarks.conv_transpose_probe                  # dcgan32's middle layer
  python -m benchmarks.conv_transpose_probe --size=4 --cin=512 --cout=256

Routes: 'xla' (Flax's nn.ConvTranspose: an input-dilated convolution),
'subpixel' (gan_jax's layer: one stride-1 conv per output phase, then
depth-to-space), 'one_conv' (all phases in one 3x3 conv to 4x the channels,
zeros for the missing taps; tried and dropped) and PyTorch's ConvTranspose2d.
Times are the best of `--repeats` calls, in ms, batch `--batch`, on the CPUs
this process may use (pin it with taskset; PyTorch gets that many threads).
"""

from __future__ import annotations

import os
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models import layers

flags.DEFINE_integer('batch', 64, 'Batch size.')
flags.DEFINE_integer('size', 8, 'Input height and width.')
flags.DEFINE_integer('cin', 256, 'Input channels.')
flags.DEFINE_integer('cout', 128, 'Output channels.')
flags.DEFINE_integer('repeats', 3, 'Timed calls; the best is reported.')
flags.DEFINE_list('routes', ['xla', 'subpixel', 'one_conv', 'torch'], 'Routes to time.')
FLAGS = flags.FLAGS


def one_conv(x, kernel, stride, padding):
  """The sub-pixel transposed conv as a single conv to stride**2 phases (zeros for absent taps)."""
  k, s, p = kernel.shape[0], stride, padding
  batch, height, width, _ = x.shape
  features = kernel.shape[2]
  offsets, taps = layers._subpixel_taps(k, s, p)   # pylint: disable=protected-access
  n = len(offsets)
  valid = jnp.asarray(taps >= 0, kernel.dtype)
  index = np.maximum(taps, 0)
  w = kernel[index[:, None, :, None], index[None, :, None, :]]
  w = w * (valid[:, None, :, None] * valid[None, :, None, :])[..., None, None]
  w = w.transpose(0, 1, 5, 2, 3, 4).reshape(n, n, kernel.shape[3], s * s * features)
  out_h, out_w = (height - 1) * s - 2 * p + k, (width - 1) * s - 2 * p + k
  rows, cols = -(-out_h // s), -(-out_w // s)
  pad = ((0, 0, 0), (-offsets[0], rows - 1 + offsets[-1] - (height - 1), 0),
         (-offsets[0], cols - 1 + offsets[-1] - (width - 1), 0), (0, 0, 0))
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), pad)
  y = jax.lax.conv_general_dilated(x, w, (1, 1), 'VALID',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  y = y.reshape(batch, rows, cols, s, s, features).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(batch, rows * s, cols * s, features)[:, :out_h, :out_w]


def _best_ms(fn, *args) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1000 * min(times)


def _jax_route(route: str, x):
  if route == 'one_conv':
    kernel = jax.random.normal(jax.random.PRNGKey(1), (4, 4, FLAGS.cout, FLAGS.cin)) * 0.02
    apply = lambda k, x: one_conv(x, k, 2, 1)
    params = kernel
  else:
    layer = layers.conv_transpose(FLAGS.cout, 4, 2, 1, use_bias=False, impl=route)
    params = layer.init(jax.random.PRNGKey(1), x)
    apply = layer.apply
  loss = lambda p, x: jnp.sum(apply(p, x) ** 2)
  return (_best_ms(jax.jit(apply), params, x),
          _best_ms(jax.jit(jax.grad(loss)), params, x),
          _best_ms(jax.jit(jax.grad(loss, argnums=1)), params, x))


def _torch_route():
  import torch
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  conv = torch.nn.ConvTranspose2d(FLAGS.cin, FLAGS.cout, 4, 2, 1, bias=False)
  x = torch.randn(FLAGS.batch, FLAGS.cin, FLAGS.size, FLAGS.size, requires_grad=True)

  def best(fn):
    fn()
    times = []
    for _ in range(FLAGS.repeats):
      start = time.perf_counter()
      fn()
      times.append(time.perf_counter() - start)
    return 1000 * min(times)

  with torch.no_grad():
    fwd = best(lambda: conv(x))
  wgrad = best(lambda: torch.autograd.grad((conv(x) ** 2).sum(), conv.weight))
  xgrad = best(lambda: torch.autograd.grad((conv(x) ** 2).sum(), x))
  return fwd, wgrad, xgrad


def main(_):
  x = jax.random.normal(jax.random.PRNGKey(0), (FLAGS.batch, FLAGS.size, FLAGS.size, FLAGS.cin))
  print(f'ConvTranspose k4 s2 p1, {FLAGS.size}x{FLAGS.size}x{FLAGS.cin} -> '
        f'{2 * FLAGS.size}x{2 * FLAGS.size}x{FLAGS.cout}, batch {FLAGS.batch}, '
        f'CPUs {sorted(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.2f}')
  print(f'{"route":10s} {"forward":>10s} {"fwd+dW":>10s} {"fwd+dx":>10s}  (ms, best of {FLAGS.repeats})')
  for route in FLAGS.routes:
    times = _torch_route() if route == 'torch' else _jax_route(route, x)
    print(f'{route:10s} ' + ' '.join(f'{t:10.1f}' for t in times), flush=True)


if __name__ == '__main__':
  app.run(main)
