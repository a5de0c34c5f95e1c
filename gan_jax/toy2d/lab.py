"""The lab's compiled pieces: fused train steps on device-sampled data, snapshots of G and D, metrics.

Everything here is a pure function of the GAN state (and of the optimizers
passed in), so the trainer jits it for one run and the sweep vmaps the very
same functions over settings and seeds.

Randomness: the real points and G's noise of train step s come from
`fold_in(fold_in(state.rng, DATA_STREAM), s)` (`Lab.step_batch`), so a run
depends only on its seed and resumes exactly.
Snapshots and metrics use fixed keys, the same for every run and step, so
that differences between frames and runs come from the networks alone.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan_jax.config import base as config_base
from gan_jax.core import packing
from gan_jax.core import steps
from gan_jax.core.state import GANState
from gan_jax.data.source import DatasetInfo
from gan_jax.toy2d import distributions, metrics

DATA_STREAM = 0x5EED      # folded into the state's key for the lab's batches
POINT_SHAPE = (2,)
LATENT_KINDS = ('uniform', 'normal')
# The latent square that panel 3 shows: Unif[-1,1]^2 exactly, N(0, I) to 3 std.
LATENT_BOX = {'uniform': 1.0, 'normal': 3.0}
_EVAL_KEY, _SNAPSHOT_KEY = 1, 2


def validate(config: ml_collections.ConfigDict) -> None:
  """Rejects settings the 2D lab cannot run, naming the key and the fix."""
  t = config.toy2d
  checks = [
      (config.data.source == 'toy2d', 'data.source',
       "must be 'toy2d' for config.trainer='toy2d' (start from configs/toy2d.py)"),
      (config.model.latent_dim == 2, 'model.latent_dim',
       'must be 2 for the 2D lab (its figure maps D over the latent plane)'),
      (t.latent in LATENT_KINDS, 'toy2d.latent', f'must be one of {LATENT_KINDS}'),
      (t.steps_per_call >= 1, 'toy2d.steps_per_call', 'must be at least 1'),
      (t.eval_samples >= 2, 'toy2d.eval_samples', 'must be at least 2'),
      (t.mode_samples >= 1, 'toy2d.mode_samples', 'must be at least 1'),
      (t.plot_points >= 1, 'toy2d.plot_points', 'must be at least 1'),
      (t.plot_resolution >= 2, 'toy2d.plot_resolution', 'must be at least 2'),
      (t.animation in ('gif', 'none'), 'toy2d.animation', "must be 'gif' or 'none'"),
  ]
  config_base.raise_failed(config, checks)


def next_stop(step: int, num_steps: int, periods) -> int:
  """The first step after `step` at which an event of period p (p > 0) is due, or the end."""
  stops = [(step // p + 1) * p for p in periods if p > 0]
  return min([num_steps] + stops)


def latent_noise(kind: str, key: jax.Array, shape) -> jax.Array:
  """G's input: Unif[-1,1] (kind 'uniform', the report) or N(0, 1) ('normal') of `shape`."""
  if kind == 'uniform':
    return jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)
  return jax.random.normal(key, shape, jnp.float32)


def generate_points(gan, latent_kind: str, g_variables, key: jax.Array, n: int) -> jax.Array:
  """n points G(z) in inference mode, z drawn from `key`; (n, 2) float32."""
  z = latent_noise(latent_kind, key, (n, gan.latent_dim))
  return gan.generator.apply(g_variables, z, None, train=False)


def _grid(xmin, xmax, ymin, ymax, resolution):
  """(resolution^2, 2) cell centres, row-major from the bottom row (imshow origin='lower')."""
  xs = jnp.linspace(xmin, xmax, resolution)
  ys = jnp.linspace(ymin, ymax, resolution)
  gx, gy = jnp.meshgrid(xs, ys)
  return jnp.stack([gx.ravel(), gy.ravel()], axis=1)


@dataclasses.dataclass(frozen=True)
class Lab:
  """The static parts of a 2D-lab run: models, loss, target and noise, built from the config."""
  config: ml_collections.ConfigDict
  setup: object                        # gan_jax.train.Setup
  target: distributions.Distribution2D

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'Lab':
    from gan_jax.training import setup as setup_lib  # pylint: disable=g-import-not-at-top  (train imports the data stack)
    validate(config)
    target = distributions.build(config)
    info = DatasetInfo(POINT_SHAPE, 0, (), 0, target.description)
    # A model of images is refused by models.build, with the models of 2D points.
    return cls(config, setup_lib.build_setup(config, info), target)

  @property
  def info(self) -> DatasetInfo:
    return DatasetInfo(POINT_SHAPE, 0, (), 0, self.target.description)

  @property
  def latent_box(self) -> float:
    return LATENT_BOX[self.config.toy2d.latent]

  def step_batch(self, rng: jax.Array, step: jax.Array) -> dict:
    """Everything random in train step `step`: real points and G's noise for every update.

    Drawn from `fold_in(fold_in(rng, DATA_STREAM), step)` alone, so a step's
    batch does not depend on how steps are grouped into calls.
    """
    tc, latent_dim = self.config.train, self.setup.gan.latent_dim
    key = jax.random.fold_in(jax.random.fold_in(rng, DATA_STREAM), step)
    k_real, k_noise, k_g_noise = jax.random.split(key, 3)
    real = self.target.sample(k_real, tc.n_disc * tc.batch_size)
    return {
        'image': real.reshape(tc.n_disc, tc.batch_size, 2),
        'label': jnp.zeros((tc.n_disc, tc.batch_size), jnp.int32),
        'noise': self.latent_noise(k_noise, (tc.n_disc, tc.batch_size, latent_dim)),
        'g_noise': self.latent_noise(k_g_noise, (tc.n_gen, tc.batch_size, latent_dim)),
    }

  def latent_noise(self, key: jax.Array, shape) -> jax.Array:
    return latent_noise(self.config.toy2d.latent, key, shape)

  def train_step(self, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation):
    """`step(state, batch) -> (state, metrics)` (gan_jax.core.steps) with these optimizers."""
    return steps.make_train_step(self.setup.gan, self.setup.loss, g_tx, d_tx,
                                 steps.StepSpec.from_config(self.config.train))

  def make_step(self, g_tx: optax.GradientTransformation,
                d_tx: optax.GradientTransformation):
    """`step(state) -> (state, metrics)`: one train step on its step_batch."""
    step = self.train_step(g_tx, d_tx)
    return lambda state: step(state, self.step_batch(state.rng, state.step))

  def make_chunk(self, g_tx, d_tx, length: int, unroll: int | bool = 1):
    """`chunk(state) -> (state, metrics stacked over `length` steps)`: one lax.scan.

    The batches of all `length` steps are drawn first, in one vectorised call:
    XLA's CPU backend runs the threefry generator as a small while loop, and
    calling it a few times inside every step took a third of the step time.
    `unroll` is lax.scan's (benchmarks/toy2d_vs_torch.py measures it).
    """
    step = self.train_step(g_tx, d_tx)

    def chunk(state):
      batches = jax.vmap(self.step_batch, in_axes=(None, 0))(
          state.rng, state.step + jnp.arange(length))
      return jax.lax.scan(step, state, batches, unroll=unroll)

    return chunk

  def generate(self, g_variables, key, n: int) -> jax.Array:
    return generate_points(self.setup.gan, self.config.toy2d.latent, g_variables, key, n)

  def evaluation_points(self, g_variables) -> dict:
    """Generated points for the metrics, from fixed noise: 'distance' and 'modes' sets."""
    t = self.config.toy2d
    k_fake, k_modes = jax.random.split(jax.random.PRNGKey(_EVAL_KEY))
    return {'distance': self.generate(g_variables, k_fake, t.eval_samples),
            'modes': self.generate(g_variables, k_modes, t.mode_samples)}

  def reference(self) -> np.ndarray:
    """The fixed true sample every distance of every run is measured against, as
    `metrics.sorted_projections`."""
    key = jax.random.fold_in(jax.random.PRNGKey(_EVAL_KEY), DATA_STREAM)
    points = np.asarray(self.target.sample(key, self.config.toy2d.eval_samples))
    return metrics.sorted_projections(points)

  def score(self, points: dict, reference: np.ndarray) -> dict:
    """Host-side metrics of `evaluation_points`: the distance and, for ring/grid, the modes."""
    out = {'sliced_wasserstein': metrics.sliced_wasserstein_to(points['distance'], reference)}
    if self.target.modes is not None:
      out.update(metrics.mode_coverage(points['modes'], self.target.modes,
                                       self.target.mode_std))
    return out

  def snapshot(self, state: GANState) -> dict:
    """What the four-panel figure shows, computed on device (panel 1 comes from the logs).

    Points and maps come from the G and D being trained (not the EMA), since
    the figure shows the game between them. A D that judges packs of m points
    (PacGAN, `model.pack`) is mapped on packs of m copies of each point.
    """
    t = self.config.toy2d
    gan, g_vars, d_vars = self.setup.gan, state.g.variables, state.d.variables
    k_real, k_fake = jax.random.split(jax.random.PRNGKey(_SNAPSHOT_KEY))
    box = self.latent_box

    def d_prob(x):
      copies = packing.pack(jnp.repeat(x, gan.pack, axis=0), gan.pack)
      return jax.nn.sigmoid(gan.discriminator.apply(d_vars, copies, None, train=False))

    r = t.plot_resolution
    z_grid = _grid(-box, box, -box, box, r)
    x_grid = _grid(*self.target.bounds, r)
    return {
        'real': self.target.sample(k_real, t.plot_points),
        'fake': self.generate(g_vars, k_fake, t.plot_points),
        'd_latent': d_prob(gan.generator.apply(g_vars, z_grid, None, train=False)).reshape(r, r),
        'd_sample': d_prob(x_grid).reshape(r, r),
    }
