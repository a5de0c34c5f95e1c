"""The quality-per-time baseline: DCGAN-32 in eager PyTorch, trained for a wall-clock budget with G snapshots.

The model and step are `benchmarks.torch_reference`'s twin of gan_jax's
`dcgan32` (Radford et al.'s recipe: Adam 2e-4, b1 0.5, non-saturating BCE,
latent 100, no EMA), on uniformly shuffled batches of the same image folder.
The clock starts before the images are read, as gan_jax's starts before its
data source opens, and snapshots are taken at the first step that ends past
each point, so a snapshot and the gan_jax checkpoint it is compared with are
at most one step apart in wall time.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

LATENT_DIM = 100
SNAPSHOTS = 'snapshots'
TIMELINE = 'timeline.json'


def write_json(path: str, value) -> None:
  from gan_jax.training import loop  # pylint: disable=g-import-not-at-top  (JAX: only when writing)
  loop.write_json(path, value)


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


def gan_jax_timeline(workdir: str) -> list[dict]:
  """[{step, wall_s}] of a gan_jax run's checkpoints, from the wall time logged at each."""
  from gan_jax.training import checkpoint  # pylint: disable=g-import-not-at-top
  from gan_jax import errors
  from gan_jax.training import reporting
  walls = {r['step']: r['wall_s'] for r in reporting.read_metrics(workdir) if 'wall_s' in r}
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'))
  try:
    steps = ckpt.all_steps()
  finally:
    ckpt.close()
  missing = [s for s in steps if s not in walls]
  if not steps or missing:
    raise errors.ConfigError(
        f'{workdir}: no logged wall time for checkpoint step(s) {missing or "(none saved)"}. '
        'Train it with `python -m benchmarks.quality_per_time train`, which logs one at '
        'every checkpoint.')
  return [{'step': s, 'wall_s': walls[s]} for s in sorted(steps)]


def train(out: str, data: str, *, match: str = '', minutes: float = 30.0, every: float = 5.0,
          batch_size: int = 64, seed: int = 0, command: str = '') -> dict:
  """Trains the baseline; writes OUT/snapshots/step_N.pt and OUT/timeline.json."""
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  from gan_jax import errors  # pylint: disable=g-import-not-at-top
  from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  if not data:
    raise errors.ConfigError('`torch` needs --data=FOLDER, the images the gan_jax run '
                             'trained on (e.g. /tmp/cifar10/train).')
  if match:
    points = [p['wall_s'] for p in gan_jax_timeline(match)]
  else:
    points = list(np.arange(every, minutes + 1e-9, every) * 60.0)
  budget = points[-1]
  os.makedirs(os.path.join(out, SNAPSHOTS), exist_ok=True)
  load_before = os.getloadavg()

  started = time.perf_counter()
  images, description = pipeline.read_all_images('folder', data, 32, 3)
  real = torch.from_numpy(images)
  step_fn = torch_reference.TrainStep('dcgan32', LATENT_DIM, lr=2e-4, betas=(0.5, 0.999),
                                      seed=seed, loss='bce')
  order = torch.Generator().manual_seed(seed)
  timeline, pending, step = [], list(points), 0
  print(f'PyTorch DCGAN-32 baseline on {description}: {budget / 60:.1f} minutes, '
        f'snapshots at {", ".join(f"{p / 60:.1f}" for p in points)} min', flush=True)
  while pending:
    perm = torch.randperm(len(real), generator=order)
    for i in range(0, len(perm) - batch_size + 1, batch_size):
      step_fn(real[perm[i:i + batch_size]])
      step += 1
      wall = time.perf_counter() - started
      if wall >= pending[0]:
        path = os.path.join(out, SNAPSHOTS, f'step_{step}.pt')
        torch.save(step_fn.G.state_dict(), path)
        timeline.append({'step': step, 'wall_s': round(wall, 3), 'target_s': pending.pop(0),
                         'file': os.path.relpath(path, out)})
        print(f'  step {step}: {wall / 60:.2f} min, {step / wall:.2f} steps/s', flush=True)
        if not pending:
          break
  record = {'kind': 'torch', 'model': 'dcgan32 (benchmarks.torch_reference)',
            'recipe': 'Adam 2e-4 b1 0.5 b2 0.999, BCE, latent 100, no EMA',
            'batch_size': batch_size, 'seed': seed, 'data': description,
            'data_path': os.path.abspath(data), 'match': match and os.path.abspath(match),
            'torch': torch.__version__, 'threads': torch.get_num_threads(),
            'points': timeline, 'steps_per_sec': step / timeline[-1]['wall_s'],
            'command': command, 'load_before': load_before, 'load_after': os.getloadavg()}
  write_json(os.path.join(out, TIMELINE), record)
  return record


def generator(out: str, snapshot: str, bn: str):
  """The baseline's G from a snapshot (read with weights_only=True), in eval or batch-stat mode."""
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  g = torch_reference.Generator32(latent_dim=LATENT_DIM, channels=3)
  g.load_state_dict(torch.load(os.path.join(out, snapshot), weights_only=True))
  return g.train() if bn == 'batch' else g.eval()


def draw(g, n: int, seed: int, batch: int = 500) -> np.ndarray:
  """n uint8 NHWC samples of a PyTorch G, rounded as gan_jax.sampling.to_uint8 rounds."""
  import torch  # pylint: disable=g-import-not-at-top
  # All the noise at once: torch.randn's stream depends on the sizes it is drawn in.
  noise = torch.randn(n, LATENT_DIM, generator=torch.Generator().manual_seed(seed))
  parts = []
  with torch.no_grad():
    for i in range(0, n, batch):
      x = g(noise[i:i + batch]).permute(0, 2, 3, 1)
      parts.append(torch.clamp(torch.round((x + 1.0) * 127.5), 0, 255).to(torch.uint8).numpy())
  return np.concatenate(parts)
