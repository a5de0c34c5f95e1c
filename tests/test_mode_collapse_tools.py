"""Mode-collapse tools of D: PacGAN packing, minibatch stddev and discrimination, unrolled D.

Packing: shapes, refusals, the packed pipeline (losses, R1, LeCam, ADA's r_t
per pack), 1 device = 2 devices. Minibatch layers: against numpy, in every
model that declares them, refused elsewhere. Unrolled D: k = 1 against a
hand-written look-ahead. And pack = 1, k = 0 give bitwise the step of the
commit before these tools existed.
"""

import subprocess
import sys
import textwrap
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import errors, models
from gan_jax.core import packing, steps
from gan_jax.data.source import DatasetInfo
from gan_jax.models import layers
from gan_jax.training import setup as setup_lib
from tests.conftest import REPO_ROOT, make_config, run_on_simulated_devices

DIGITS = DatasetInfo((28, 28, 1), 10, tuple('0123456789'), 100, 'test')
POINTS = DatasetInfo((2,), 0, (), 0, 'points')
# The commit before packing, minibatch layers and unrolling: its steps.py is the old step.
OLD_COMMIT = 'ff1e008'


def _image_batch(batch=8, n_disc=1, seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.integers(0, 256, (n_disc, batch, 28, 28, 1), dtype=np.uint8),
          'label': rng.integers(0, 10, (n_disc, batch)).astype(np.int32)}


def _point_batch(latent, batch=8, n_disc=1, n_gen=1, seed=0):
  rng = np.random.default_rng(seed)
  normal = lambda *shape: rng.normal(size=shape).astype(np.float32)
  return {'image': normal(n_disc, batch, 2), 'label': np.zeros((n_disc, batch), np.int32),
          'noise': normal(n_disc, batch, latent), 'g_noise': normal(n_gen, batch, latent)}


def _setup(info=DIGITS, **overrides):
  config = make_config(**{'train.batch_size': 8, 'model.width_scale': 0.25, **overrides})
  setup = setup_lib.build_setup(config, info)
  return config, setup


def _leaves_equal(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ---------------------------------------------------------------- packing


def test_pack_puts_consecutive_samples_side_by_side():
  x = jnp.arange(6 * 2 * 2 * 3, dtype=jnp.float32).reshape(6, 2, 2, 3)
  packed = packing.pack(x, 3)
  assert packed.shape == (2, 2, 2, 9)
  for pack in range(2):
    for member in range(3):   # channel block i holds the pack's i-th image
      np.testing.assert_array_equal(packed[pack, ..., 3 * member:3 * member + 3],
                                    x[3 * pack + member])
  np.testing.assert_array_equal(packing.unpack(packed, 3), x)
  points = jnp.arange(8, dtype=jnp.float32).reshape(4, 2)
  np.testing.assert_array_equal(packing.pack(points, 2), [[0, 1, 2, 3], [4, 5, 6, 7]])
  assert packing.pack(x, 1) is x and packing.pack_labels(x, 1) is x
  assert packing.packed_shape((28, 28, 1), 4) == (28, 28, 4)
  assert packing.packed_shape((2,), 4) == (8,)


@pytest.mark.parametrize('name, info, first_kernel', [
    ('dcgan28', DIGITS, ('Conv_0', 'kernel')),
    ('mlp2d', POINTS, ('_MLP_0', 'Dense_0', 'kernel'))])
def test_d_is_built_for_packed_inputs(name, info, first_kernel):
  _, setup = _setup(info, **{'model.name': name, 'model.pack': 3, 'train.batch_size': 6})
  assert setup.gan.pack == 3
  assert setup.gan.d_input_shape == packing.packed_shape(info.image_shape, 3)
  kernel = setup.init_state().d.params
  for key in first_kernel:
    kernel = kernel[key]
  # D's first layer sees m*C inputs: 3 channels for 1-channel images, 6 for points.
  assert kernel.shape[-2] == 3 * info.image_shape[-1]


def test_packing_refusals():
  with pytest.raises(errors.ConfigError, match=r'pack=2 with config.model.conditional=True.*'
                                                r'same-class packs are not implemented'):
    _setup(**{'model.pack': 2, 'model.conditional': True})
  with pytest.raises(errors.ConfigError, match=r"pack=2: model 'vae' has no discriminator"):
    models.build(make_config(**{'model.name': 'vae', 'model.pack': 2}).model, (28, 28, 1), 0)
  with pytest.raises(errors.ConfigError, match=r'pack=0 must be an integer >= 1'):
    _setup(**{'model.pack': 0})
  # Per device: 8 samples over 4 devices is 2 each, which packs of 4 cannot divide.
  with pytest.raises(errors.ConfigError, match=r'batch_size=8 over 4 devices gives 2 samples '
                                               r'per device.*model.pack=4.*multiple of 16'):
    packing.check_batch(8, 4, num_devices=4)
  packing.check_batch(16, 4, num_devices=4)
  with pytest.raises(errors.ConfigError, match=r'minibatch_group=4.*D sees 6 inputs.*'
                                               r'3 per device over 2 devices'):
    packing.check_batch(12, 2, num_devices=2, stddev_group=4)
  # The step itself refuses a batch that the pack does not divide.
  config, setup = _setup(**{'model.pack': 3, 'train.batch_size': 6})
  with pytest.raises(errors.ConfigError, match=r'batch_size=8.*config.model.pack=3'):
    setup.train_step(config.train)(setup.init_state(), _image_batch(8))


def test_packed_losses_penalty_and_anchors_are_per_pack():
  """D's loss, R1 and LeCam's anchors of a packed step, recomputed from D on packed images."""
  config, setup = _setup(**{'model.pack': 2, 'reg.r1.weight': 1.0, 'reg.lecam.weight': 0.1})
  state, batch = setup.init_state(), _image_batch()
  new, metrics = jax.jit(setup.train_step(config.train))(state, batch)
  gan, loss = setup.gan, setup.loss
  real = packing.pack(steps.images_to_float(jnp.asarray(batch['image'][0])), 2)   # (4, 28, 28, 2)
  labels = jnp.zeros((4,), jnp.int32)

  def logits(x):
    return gan.discriminator.apply(state.d.variables, x, labels, train=True,
                                   mutable=['batch_stats'])[0]

  real_logits = logits(real)
  np.testing.assert_allclose(metrics['d_loss_real'], jnp.mean(loss.d_real(real_logits)),
                             rtol=1e-5)
  grads = jax.grad(lambda x: jnp.sum(logits(x)))(real)
  r1 = 0.5 * jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))   # one norm per pack
  np.testing.assert_allclose(metrics['d_r1'], r1, rtol=1e-4)
  anchor = new.aux['reg']['lecam']['real']   # 0.99 * 0 + 0.01 * mean real logit over packs
  np.testing.assert_allclose(anchor, 0.01 * jnp.mean(real_logits), rtol=1e-4, atol=1e-8)


def test_ada_rt_is_over_packs_and_p_moves_per_image():
  config, setup = _setup(**{'model.pack': 2, 'augment.transforms': ('ada',),
                            'augment.ada.p': 0.5, 'augment.ada.interval': 1,
                            'augment.ada.kimg': 1.0, 'augment.ada.ops': 'blit'})
  state = setup.init_state()
  new, metrics = jax.jit(setup.train_step(config.train))(state, _image_batch())
  # 4 packs: r_t is a mean of 4 signs, a multiple of 1/2.
  assert float(metrics['ada_rt']) * 2 == round(float(metrics['ada_rt']) * 2)
  # p moves by 8 images * interval 1 / 1000, not by 4 packs / 1000.
  np.testing.assert_allclose(abs(float(new.aux['augment']['ada']['p']) - 0.5), 0.008,
                             rtol=1e-5)


@pytest.mark.slow
def test_packed_step_on_two_devices_equals_one_device():
  script = textwrap.dedent('''
      import jax, numpy as np
      from gan_jax.parallel import devices as devices_lib
      from gan_jax.training import setup as setup_lib
      from gan_jax.data.source import DatasetInfo
      from tests.conftest import make_config

      assert jax.device_count() == 2, jax.devices()
      # SGD: see tests/test_parallel.py. Packs of 2 and stddev groups of 2
      # inside each device's 4 samples; DiffAugment before packing.
      config = make_config(**{'train.batch_size': 8, 'model.width_scale': 0.5,
                              'model.pack': 2, 'model.d_minibatch': 'stddev',
                              'model.minibatch_group': 2, 'reg.r1.weight': 1.0,
                              'augment.transforms': ('diffaugment',),
                              'optim.g.name': 'sgd', 'optim.g.lr': 0.1,
                              'optim.d.name': 'sgd', 'optim.d.lr': 0.1})
      setup = setup_lib.build_setup(config, DatasetInfo((28, 28, 1), 10, tuple('0123456789'),
                                                        64, 't'))
      rng = np.random.default_rng(0)
      batches = [{'image': rng.integers(0, 256, (1, 8, 28, 28, 1), dtype=np.uint8),
                  'label': rng.integers(0, 10, (1, 8)).astype(np.int32)} for _ in range(2)]

      def run(devices):
        mesh = devices_lib.make_mesh(devices)
        rep = devices_lib.replicated(mesh)
        step = jax.jit(setup.train_step(config.train, mesh),
                       in_shardings=(rep, devices_lib.batch_sharded(mesh, 1)),
                       out_shardings=(rep, rep))
        state = jax.jit(setup.init_state, out_shardings=rep)()
        for b in batches:
          gb = devices_lib.global_batch(b, mesh)
          hlo = step.lower(state, gb).compile().as_text()
          state, metrics = step(state, gb)
        return jax.device_get((state, metrics)), hlo

      (one, m1), _ = run(jax.devices()[:1])
      (two, m2), hlo = run(jax.devices())
      # Packs stay on their device: the images are never gathered or exchanged.
      # (BatchNorm's statistics and the gradients are all-reduced, as without packing.)
      for op in ('all-gather', 'all-to-all', 'collective-permute'):
        assert op not in hlo, op
      for a, b in zip(jax.tree.leaves((one, m1)), jax.tree.leaves((two, m2))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
      print('OK')
  ''')
  result = run_on_simulated_devices(script, 2)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout


# ---------------------------------------------------------------- the old step, bitwise


def _old_steps_module():
  """gan_jax/core/steps.py as of OLD_COMMIT, run against today's package; None if git lacks it."""
  try:
    source = subprocess.run(['git', 'show', f'{OLD_COMMIT}:gan_jax/core/steps.py'],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return None
  module = types.ModuleType('gan_jax_old_steps')
  # dataclasses look their module up in sys.modules while the classes are made.
  sys.modules[module.__name__] = module
  try:
    code = compile(source, f'{OLD_COMMIT}:gan_jax/core/steps.py', 'exec')
    exec(code, module.__dict__)  # pylint: disable=exec-used
  finally:
    del sys.modules[module.__name__]
  return module


@pytest.mark.parametrize('info, overrides', [
    (DIGITS, {'augment.transforms': ('ada',), 'augment.ada.p': 0.3,
              'augment.ada.interval': 1, 'reg.r1.weight': 1.0, 'reg.lecam.weight': 0.1,
              'train.n_disc': 2}),
    (POINTS, {'model.name': 'mlp2d', 'trainer': 'toy2d', 'data.source': 'toy2d'}),
])
def test_pack_1_and_unroll_0_are_bitwise_the_old_step(info, overrides):
  old = _old_steps_module()
  if old is None:
    pytest.skip(f'git has no commit {OLD_COMMIT} here')
  config, setup = _setup(info, **{'model.pack': 1, 'train.unroll_steps': 0,
                                  'model.d_minibatch': 'none', **overrides})
  n_disc = config.train.n_disc
  batch = (_point_batch(setup.gan.latent_dim, n_disc=n_disc) if info is POINTS
           else _image_batch(n_disc=n_disc))
  args = (setup.gan, setup.loss, setup.g_tx, setup.d_tx)
  new_step = jax.jit(setup.train_step(config.train))
  old_step = jax.jit(old.make_train_step(
      *args, old.StepSpec.from_config(config.train), d_input=setup.d_input,
      regularizer=setup.regularizer))
  state = setup.init_state()
  for _ in range(2):
    (new_state, new_metrics), (old_state, old_metrics) = (new_step(state, batch),
                                                          old_step(state, batch))
    assert _leaves_equal(new_state, old_state)
    assert new_metrics.keys() == old_metrics.keys()
    assert _leaves_equal(new_metrics, old_metrics)
    state = new_state


# ---------------------------------------------------------------- minibatch layers


def _numpy_minibatch_stddev(x, group):
  n = x.shape[0]
  g = min(group, n)
  out = []
  for start in range(0, n, g):
    members = x[start:start + g].astype(np.float64)
    std = np.sqrt(np.mean((members - members.mean(axis=0)) ** 2, axis=0) + 1e-8)
    out += [np.full(x.shape[1:-1] + (1,), std.mean())] * g
  return np.concatenate([x, np.stack(out)], axis=-1)


@pytest.mark.parametrize('shape, group', [((8, 3, 3, 5), 4), ((6, 7), 3), ((2, 4, 4, 3), 4)])
def test_minibatch_stddev_matches_numpy(shape, group):
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  np.testing.assert_allclose(layers.minibatch_stddev(jnp.asarray(x), group),
                             _numpy_minibatch_stddev(x, group), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_refuses_groups_that_do_not_divide_the_batch():
  with pytest.raises(errors.ConfigError, match=r'minibatch_group=4: D was given 6 inputs'):
    layers.minibatch_stddev(jnp.zeros((6, 3)), 4)


def _numpy_minibatch_discrimination(x, t, kernels, dims):
  flat = x.reshape(x.shape[0], -1).astype(np.float64)
  m = (flat @ t).reshape(x.shape[0], kernels, dims)
  n = x.shape[0]
  o = np.zeros((n, kernels))
  for i in range(n):
    for j in range(n):   # the paper's sum over all j, j = i included
      o[i] += np.exp(-np.abs(m[i] - m[j]).sum(axis=-1))
  extra = np.broadcast_to(o.reshape((n,) + (1,) * (x.ndim - 2) + (kernels,)),
                          x.shape[:-1] + (kernels,))
  return np.concatenate([x, extra], axis=-1)


@pytest.mark.parametrize('shape', [(5, 3, 3, 4), (6, 10)])
def test_minibatch_discrimination_matches_numpy(shape):
  x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
  layer = layers.MinibatchDiscrimination(kernels=7, dims=3)
  variables = layer.init(jax.random.PRNGKey(0), x)
  t = np.asarray(variables['params']['T'], np.float64)
  assert t.shape == (int(np.prod(shape[1:])), 7 * 3)
  out = layer.apply(variables, x)
  np.testing.assert_allclose(out, _numpy_minibatch_discrimination(x, t, 7, 3),
                             rtol=1e-4, atol=1e-5)
  # Not saturated at initialisation: D gets a gradient through the features.
  assert float(jnp.min(out[..., -7:])) > 1.0


MINIBATCH_MODELS = {'dcgan28': (28, 28, 1), 'dcgan32': (32, 32, 3), 'dcgan64': (64, 64, 3),
                    'dcgan64_wide': (64, 64, 3), 'mlp': (28, 28, 1), 'sngan32': (32, 32, 3),
                    'resnet18d': (32, 32, 3), 'mlp2d': (2,)}


@pytest.mark.parametrize('name', sorted(MINIBATCH_MODELS))
@pytest.mark.parametrize('kind', ['stddev', 'discrimination'])
def test_declared_models_insert_the_minibatch_layer(name, kind):
  shape = MINIBATCH_MODELS[name]
  assert kind in models.MODELS.get(name).d_minibatch
  build = lambda k: models.build(make_config(**{
      'model.name': name, 'model.width_scale': 0.125, 'model.d_minibatch': k,
      'model.minibatch_kernels': 6, 'model.minibatch_dims': 2}).model, shape, 0)
  x, labels = jnp.zeros((4, *shape)), jnp.zeros((4,), jnp.int32)

  def variables_and_logits(gan):
    def run():
      v = gan.discriminator.init(jax.random.PRNGKey(0), x, labels, train=False)
      return v, gan.discriminator.apply(v, x, labels, train=False)
    return jax.eval_shape(run)

  plain, plain_logits = variables_and_logits(build('none'))
  with_layer, logits = variables_and_logits(build(kind))
  assert logits.shape == plain_logits.shape == (4,)
  count = lambda v: sum(leaf.size for leaf in jax.tree.leaves(v['params']))
  # The last layer takes the appended features: 1 map (stddev) or 6 (discrimination),
  # plus T (A, 6 x 2) for discrimination; nothing else changes size.
  assert count(with_layer) > count(plain)


@pytest.mark.parametrize('overrides, message', [
    ({'model.name': 'vae', 'model.d_minibatch': 'stddev'},
     r"d_minibatch='stddev' is not implemented by the D of model 'vae', which takes none\. "
     r'Models whose D implements it: .*dcgan28.*mlp2d'),
    ({'model.d_minibatch': 'batchnorm'}, r"d_minibatch='batchnorm' is not one of none, "
                                          r'stddev, discrimination'),
    ({'model.d_minibatch': 'stddev', 'model.minibatch_group': 0},
     r'minibatch_group=0 must be an integer >= 1'),
    ({'model.d_minibatch': 'discrimination', 'model.minibatch_kernels': 0},
     r'minibatch_kernels=0 must be an integer >= 1'),
])
def test_build_refuses_unsupported_minibatch_options(overrides, message):
  config = make_config(**{'model.width_scale': 0.125, **overrides})
  with pytest.raises(errors.ConfigError, match=message):
    models.build(config.model, (28, 28, 1), 0)


def test_unrolling_needs_a_discriminator():
  config = make_config(**{'model.name': 'vae', 'model.family': 'vae', 'train.unroll_steps': 1})
  with pytest.raises(errors.ConfigError, match=r"unroll_steps=1 unrolls a discriminator, "
                                               r"which the 'vae' family does not have"):
    setup_lib.build_setup(config, DIGITS)


# ---------------------------------------------------------------- unrolled D


def _hand_unrolled_g_grad(setup, d1, g0, batch):
  """jax.grad of G's loss on D after one more D update (same optimizer), written out."""
  gan, loss = setup.gan, setup.loss
  real = steps.images_to_float(jnp.asarray(batch['image'][0]))
  z_d, z_g = jnp.asarray(batch['noise'][0]), jnp.asarray(batch['g_noise'][0])
  labels = jnp.zeros((real.shape[0],), jnp.int32)

  def run(module, params, stats, x):   # train mode, statistics dropped
    return module.apply({'params': params, 'batch_stats': stats}, x, labels, train=True,
                        mutable=['batch_stats'])[0]

  def g_loss(g_params):
    fake_d = run(gan.generator, g_params, g0.batch_stats, z_d)

    def d_loss(d_params):
      return (jnp.mean(loss.d_real(run(gan.discriminator, d_params, d1.batch_stats, real))) +
              jnp.mean(loss.d_fake(run(gan.discriminator, d_params, d1.batch_stats, fake_d))))

    updates, _ = setup.d_tx.update(jax.grad(d_loss)(d1.params), d1.opt_state, d1.params)
    d2 = optax.apply_updates(d1.params, updates)
    fake_g = run(gan.generator, g_params, g0.batch_stats, z_g)
    return jnp.mean(loss.g(run(gan.discriminator, d2, d1.batch_stats, fake_g)))

  return jax.grad(g_loss)(g0.params)


@pytest.mark.parametrize('info, overrides', [
    (POINTS, {'model.name': 'mlp2d', 'trainer': 'toy2d', 'data.source': 'toy2d'}),
    (DIGITS, {}),   # BatchNorm in G and D
])
def test_unrolled_gradient_matches_a_direct_computation(info, overrides):
  # Adam for D (the look-ahead differentiates through its update), SGD for G,
  # so G's new parameters are G's params - lr * (its gradient).
  config, setup = _setup(info, **{'train.unroll_steps': 1, 'optim.g.name': 'sgd',
                                  'optim.g.b1': 0.0, 'optim.g.lr': 0.1, **overrides})
  state = setup.init_state()
  batch = _point_batch(setup.gan.latent_dim)
  batch['image'] = (batch['image'] if info is POINTS else
                    _image_batch()['image'])
  new, metrics = jax.jit(setup.train_step(config.train))(state, batch)
  assert bool(metrics['finite'])
  # D's own update is the plain one (G's pass through the unrolled D leaves D alone).
  plain_config = config.copy_and_resolve_references()
  plain_config.train.unroll_steps = 0
  plain, _ = jax.jit(setup.train_step(plain_config.train))(state, batch)
  assert _leaves_equal(new.d.params, plain.d.params)
  assert _leaves_equal(new.d.opt_state, plain.d.opt_state)
  grads = _hand_unrolled_g_grad(setup, new.d, state.g, batch)
  expected = jax.tree.map(lambda p, g: p - 0.1 * g, state.g.params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6),
               new.g.params, expected)
  np.testing.assert_allclose(metrics['g_grad_norm'], optax.global_norm(grads), rtol=1e-4)
  # The look-ahead matters: the unrolled G update is not the plain one.
  assert not _leaves_equal(new.g.params, plain.g.params)


def test_unrolled_steps_compose_with_packing_penalties_and_several_d_updates():
  config, setup = _setup(**{'train.unroll_steps': 3, 'train.n_disc': 2, 'model.pack': 2,
                            'reg.r1.weight': 1.0, 'model.d_minibatch': 'stddev',
                            'augment.transforms': ('diffaugment',)})
  state = setup.init_state()
  new, metrics = jax.jit(setup.train_step(config.train))(state, _image_batch(n_disc=2))
  assert bool(metrics['finite'])
  assert not _leaves_equal(new.g.params, state.g.params)
