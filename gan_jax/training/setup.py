"""Assembling a run from its config: models, loss, optimizers, D's transforms and penalties, and the initial state.

`build_setup(config, info)` is what every consumer of a config builds first:
the trainers, and, through `restore_setup`, the commands that read a saved
run back (evaluate, generate, analyze).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from typing import Callable

import jax
import ml_collections
import optax

from gan_jax import errors
from gan_jax import families
from gan_jax import models as models_lib
from gan_jax.config import saved as saved_config
from gan_jax.core import augment
from gan_jax.core import losses as losses_lib
from gan_jax.core import optim
from gan_jax.core import ortho
from gan_jax.core import packing
from gan_jax.core import regularizers
from gan_jax.core import state as state_lib
from gan_jax.core import steps
from gan_jax.data.source import DatasetInfo
from gan_jax.generation import standing
from gan_jax.parallel import devices as devices_lib
from gan_jax.training import checkpoint as checkpoint_lib
from gan_jax.training import resume


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything the config determines besides the data: models, loss, optimizers, D's extras."""
  gan: models_lib.GANModels
  loss: losses_lib.GANLoss
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  init_state: Callable[[], state_lib.GANState]
  d_input: Callable | None = None        # config.augment: transforms of D's inputs
  regularizer: Callable | None = None    # config.reg: penalties added to D's loss
  step_maker: Callable | None = None     # config.model.family's (gan_jax.families)
  # How an EMA G with BatchNorm gets its standing statistics before it draws
  # (config.sample.standing_stats_batches; gan_jax.generation.standing).
  standing_stats: standing.StandingStats | None = None

  def train_step(self, train_config: ml_collections.ConfigDict, mesh=None):
    """The pure `step(state, batch) -> (state, metrics)` of this setup (not jitted).

    Reads `train_config` once, into a `steps.StepSpec`. With `mesh`, the
    batches the step draws itself (G's noise) are split over its devices
    like the real batch (`devices_lib.batch_constraint`). D's packs
    (`model.pack`) and minibatch-stddev groups must fit inside each device's
    share of the batch: ConfigError otherwise.
    """
    packing.check_batch(train_config.batch_size, self.gan.pack,
                        mesh.devices.size if mesh is not None else 1, self.gan.stddev_group)
    make = self.step_maker or steps.make_train_step
    shard_batch = devices_lib.batch_constraint(mesh) if mesh is not None else None
    return make(self.gan, self.loss, self.g_tx, self.d_tx,
                steps.StepSpec.from_config(train_config),
                d_input=self.d_input, regularizer=self.regularizer, shard_batch=shard_batch)


def build_setup(config: ml_collections.ConfigDict, info: DatasetInfo) -> Setup:
  """Models, loss, optimizers, D's extras and the initial state that `config` describes."""
  family = families.FAMILIES.get(config.model.family)
  family.check(config)
  gan = family.adapt(config, models_lib.build(config.model, info.image_shape,
                                              info.num_classes))
  tc = config.train
  # BigGAN's orthogonal regularisation acts on the gradient before the optimizer (core.ortho).
  g_tx, d_tx = (ortho.with_ortho(config.optim[net].ortho,
                                 optim.build(config.optim[net], optim.updates_in_run(tc, net),
                                             **schedule_clock(tc, net)),
                                 f'optim.{net}.ortho') for net in ('g', 'd'))
  images = schedule_clock(tc, 'd')['images_per_step']
  d_input = augment.build(config.augment, images_per_step=images)
  regularizer = regularizers.build(config.reg, images_per_step=images)
  init_state = functools.partial(state_lib.create, gan, g_tx, d_tx, config.seed,
                                 use_ema=steps.StepSpec.from_config(tc).has_ema,
                                 aux=initial_aux(d_input, regularizer))
  return Setup(gan, losses_lib.build(config.loss), g_tx, d_tx, init_state,
               d_input, regularizer, family.make_step(config),
               standing.StandingStats.from_config(config))


def schedule_clock(train_config: ml_collections.ConfigDict, net: str) -> dict:
  """The clock that schedules counted in images run on (gan_jax.core.schedules), for `optim.build`.

  images_per_step: the real images D sees per step (batch x n_disc);
  updates_per_step: network `net`'s ('g' or 'd') updates per step.
  """
  return {'images_per_step': train_config.batch_size * train_config.n_disc,
          'updates_per_step': train_config.n_gen if net == 'g' else train_config.n_disc,
          'key': f'optim.{net}'}


def initial_aux(d_input: augment.DInput, regularizer: regularizers.Regularize) -> dict:
  """`state.aux` at step 0: the state of the transforms and regularisers that keep one."""
  parts = {'augment': d_input.init_state(), 'reg': regularizer.init_state()}
  return {part: value for part, value in parts.items() if value}


def restore_setup(workdir: str, step: int | None = None,
                  checkpoint_subdir: str = 'checkpoints'):
  """(config, setup, state) of a finished or running training workdir, on all devices."""
  config = saved_config.load_from_workdir(workdir)
  info = resume.load_data_info(workdir)
  setup = build_setup(config, info)
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, checkpoint_subdir))
  if ckpt.latest_step() is None:
    raise errors.ConfigError(f'No checkpoint in {ckpt.directory}: the run has '
                             'not saved one yet.')
  sharding = devices_lib.replicated(devices_lib.make_mesh())
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      jax.eval_shape(setup.init_state))
  try:
    if step is None:
      state, _ = ckpt.restore_newest_readable(
          abstract, move_aside=False, say=lambda line: print(line, file=sys.stderr))
    else:
      state = ckpt.restore(abstract, step)
  finally:
    ckpt.close()
  return config, setup, state

