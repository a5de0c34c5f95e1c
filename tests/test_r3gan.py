"""R3GAN (models r3gan32/r3gan64, loss rpgan, r1 + r2, configs/r3gan_cifar10.py): fidelity to the authors' code and training.

The parameter counts are those of the authors' networks (brownvc/R3GAN,
R3GAN/Networks.py) at their train.py presets, counted layer by layer from
that file (configs/r3gan_cifar10.py's docstring has the arithmetic); they
were not obtained by running the authors' code.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax import models
from gan_jax.core import losses
from gan_jax.core import regularizers
from gan_jax.core import steps
from gan_jax.data.source import ArraySource, DatasetInfo, MirroredSource
from gan_jax.models import r3gan
from gan_jax.training import image as image_trainer
from gan_jax.training import setup as setup_lib
from tests.conftest import assert_four_devices_equal_one, make_config, repo_config, tiny_config

# (model, conditional) -> (G, D) parameters of the authors' networks: train.py's
# CIFAR10 preset for 32 (c_dim 10, G ConditionEmbeddingDimension 64, D 768), its
# FFHQ-64 preset for 64 (the same conditioning arguments).
AUTHORS_COUNTS = {
    ('r3gan32', False): (20_732_160, 20_683_776),
    ('r3gan32', True): (20_781_952, 21_280_512),
    ('r3gan64', False): (22_429_824, 22_381_440),
    ('r3gan64', True): (22_479_616, 22_978_176),
}
CONDITIONAL = {'model.conditional': True, 'model.g_conditioning': 'embed',
               'model.d_conditioning': 'projection'}


def _gan(name: str, conditional: bool, width_scale: float = 1.0, **overrides):
  size = int(name[len('r3gan'):])
  config = make_config(**{'model.name': name, 'model.latent_dim': 64,
                          'model.width_scale': width_scale,
                          **(CONDITIONAL if conditional else {}), **overrides})
  return models.build(config.model, (size, size, 3), 10 if conditional else 0), size


def _count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name, conditional', sorted(AUTHORS_COUNTS))
def test_parameter_counts_equal_the_authors_networks(name, conditional):
  gan, size = _gan(name, conditional)
  key, z, labels = jax.random.PRNGKey(0), jnp.zeros((2, 64)), jnp.array([1, 3])
  g = jax.eval_shape(lambda: gan.generator.init(key, z, labels, train=False))
  d = jax.eval_shape(lambda: gan.discriminator.init(key, jnp.zeros((2, size, size, 3)),
                                                    labels, train=False))
  assert (_count(g['params']), _count(d['params'])) == AUTHORS_COUNTS[(name, conditional)]
  assert set(g) == {'params'} and set(d) == {'params'}   # no normalisation statistics
  assert repo_config('r3gan_cifar10.py').model.name == 'r3gan32'


def _block_outputs(module, variables, *args):
  """{block name: output shape} of every residual block, and the module's output."""
  out, state = module.apply(variables, *args, train=False, capture_intermediates=True,
                            mutable=['intermediates'])
  shapes = {name: value['__call__'][0].shape
            for name, value in state['intermediates'].items() if 'block' in name}
  return shapes, out


@pytest.mark.parametrize('name', ['r3gan32', 'r3gan64'])
@pytest.mark.parametrize('conditional', [False, True])
def test_every_stage_has_its_resolution_and_width(name, conditional):
  gan, size = _gan(name, conditional, width_scale=1 / 48)
  arch = r3gan.ARCHITECTURES[size]
  widths, cards = arch.scaled(1 / 48)
  assert cards[0] == 2 and widths[0] == 16   # the width of a group (8) is kept
  key, labels = jax.random.PRNGKey(0), jnp.array([1, 3])
  z, images = jax.random.normal(key, (2, 64)), jnp.zeros((2, size, size, 3))
  g_vars = gan.generator.init(key, z, labels, train=False)
  d_vars = gan.discriminator.init(key, images, labels, train=False)
  g_shapes, fake = _block_outputs(gan.generator, g_vars, z, labels)
  d_shapes, logits = _block_outputs(gan.discriminator, d_vars, images, labels)
  assert fake.shape == (2, size, size, 3) and logits.shape == (2,)
  for i, (width, count) in enumerate(zip(widths, arch.blocks)):
    for j in range(count):
      assert g_shapes[f'stage{i}_block{j}'] == (2, 4 * 2 ** i, 4 * 2 ** i, width)
      # D's stage i runs at size / 2^i, with G's widths in reverse.
      side = size // 2 ** i
      assert d_shapes[f'stage{i}_block{j}'] == (2, side, side, widths[::-1][i])


def test_init_follows_their_msr_scheme_and_blocks_start_as_the_identity():
  gan, _ = _gan('r3gan32', False)
  params = jax.jit(lambda: gan.generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 64)),
                                              jnp.zeros((1,), jnp.int32), train=False))()
  block = params['params']['stage1_block0']
  gain = math.sqrt(2 / (1 + 0.2 ** 2)) * 8 ** (-1 / 4)    # 8 blocks in G
  assert not np.any(block['project']['kernel'])            # the last layer starts at zero
  assert not np.any(block['act1']['bias'])
  np.testing.assert_allclose(np.std(block['expand']['kernel']), gain / math.sqrt(768),
                             rtol=0.02)
  np.testing.assert_allclose(np.std(block['grouped']['kernel']), gain / math.sqrt(16 * 9),
                             rtol=0.02)
  np.testing.assert_allclose(np.std(params['params']['basis']['basis']), 1.0, rtol=0.05)


def test_grouped_convolutions_on_cpu_equal_the_grouped_convolution():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((2, 6, 6, 12)), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((3, 3, 4, 12)), jnp.float32)   # 3 groups
  args = ((1, 1), ((1, 1), (1, 1)))
  numbers = {'dimension_numbers': ('NHWC', 'HWIO', 'NHWC')}

  def grouped(k, x):
    return jax.lax.conv_general_dilated(x, k, *args, feature_group_count=3, **numbers)

  def ours(k, x):
    return r3gan.block_diagonal_conv(x, k, *args, feature_group_count=3, **numbers)

  np.testing.assert_allclose(ours(kernel, x), grouped(kernel, x), rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda k, x: jnp.sum(jnp.sin(f(k, x)))   # pylint: disable=unnecessary-lambda-assignment
  for a, b in zip(jax.grad(loss(ours), (0, 1))(kernel, x),
                  jax.grad(loss(grouped), (0, 1))(kernel, x)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_resampling_is_their_interpolative_filter():
  torch = pytest.importorskip('torch')
  x = np.random.default_rng(0).standard_normal((2, 6, 8, 3)).astype(np.float32)
  # [1, 2, 1] * [1, 1] = [1, 3, 3, 1], outer product, normalised (their CreateLowpassKernel).
  taps = np.convolve([1, 2, 1], [1, 1])
  kernel = torch.tensor(np.outer(taps, taps) / np.outer(taps, taps).sum(), dtype=torch.float32)
  per_channel = torch.tensor(x.transpose(0, 3, 1, 2).reshape(6, 1, 6, 8))
  up = torch.nn.functional.conv_transpose2d(per_channel, 4 * kernel[None, None], stride=2,
                                            padding=1)
  down = torch.nn.functional.conv2d(per_channel, kernel[None, None], stride=2, padding=1)
  for ours, theirs in ((r3gan.upsample(x), up), (r3gan.downsample(x), down)):
    theirs = theirs.numpy().reshape(2, 3, *theirs.shape[2:]).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-6)


def test_the_conditional_variant_embeds_the_class_in_g_and_projects_in_d():
  gan, _ = _gan('r3gan32', True, width_scale=1 / 48)
  key = jax.random.PRNGKey(0)
  z, labels = jax.random.normal(key, (2, 64)), jnp.array([1, 1])
  g_vars = gan.generator.init(key, z, labels, train=False)
  embed = g_vars['params']['class_embed']['kernel']
  assert embed.shape == (10, 64)              # as wide as z (their NoiseDimension)
  same = gan.generator.apply(g_vars, z[:1].repeat(2, 0), jnp.array([1, 1]), train=False)
  other = gan.generator.apply(g_vars, z[:1].repeat(2, 0), jnp.array([1, 7]), train=False)
  np.testing.assert_array_equal(same[0], same[1])
  assert not np.allclose(other[0], other[1])
  images = jax.random.normal(key, (3, 32, 32, 3))
  d_vars = gan.discriminator.init(key, images, jnp.array([0, 1, 2]), train=False)
  d_embed = d_vars['params']['class_embed']['kernel']
  assert d_embed.shape == (10, 16)            # as wide as D's last stage
  # The logit is linear in the class: the one-hot rows pick the class embedding.
  logits = [gan.discriminator.apply(d_vars, images, jnp.full((3,), c), train=False)
            for c in range(3)]
  blend = jnp.array([[0.5, 0.5] + [0.0] * 8] * 3)
  mixed = gan.discriminator.apply(d_vars, images, blend, train=False)
  np.testing.assert_allclose(mixed, (logits[0] + logits[1]) / 2, rtol=1e-5, atol=1e-6)
  config = make_config(**{'model.name': 'r3gan32', 'model.conditional': True,
                          'model.g_conditioning': 'cbn'})
  with pytest.raises(errors.ConfigError, match="'cbn' conditioning is not implemented"):
    models.build(config.model, (32, 32, 3), 10)


def test_rpgan_is_softplus_of_the_logit_differences():
  loss = losses.build(make_config(**{'loss.name': 'rpgan'}).loss)
  rng = np.random.default_rng(0)
  real, fake = (jnp.asarray(rng.standard_normal(16) * 3, jnp.float32) for _ in range(2))
  # Their Trainer.py: D softplus(-(real - fake)), G softplus(-(fake - real)).
  np.testing.assert_allclose(loss.d_pair(real, fake), np.log1p(np.exp(-(real - fake))),
                             rtol=1e-6)
  np.testing.assert_allclose(loss.g_pair(real, fake), np.log1p(np.exp(-(fake - real))),
                             rtol=1e-6)
  parts = steps._adversarial_d(loss, real, fake)   # pylint: disable=protected-access
  assert set(parts) == {'d_loss_pair'}
  np.testing.assert_allclose(parts['d_loss_pair'], np.mean(jax.nn.softplus(fake - real)),
                             rtol=1e-6)
  assert loss.paired and not losses.build(make_config().loss).paired
  with pytest.raises(errors.ConfigError, match='label_smoothing'):
    losses.build(make_config(**{'loss.name': 'rpgan', 'loss.label_smoothing': 0.1}).loss)
  with pytest.raises(ValueError, match='either d_real, d_fake and g, or d_pair'):
    losses.GANLoss(d_real=jnp.abs, d_pair=lambda r, f: r)


def test_r1_and_r2_are_gamma_half_the_squared_input_gradients():
  rng = np.random.default_rng(1)
  real, fake = (jnp.asarray(rng.standard_normal((4, 3, 3, 2)), jnp.float32) for _ in range(2))
  w = jnp.asarray(rng.standard_normal((3, 3, 2)), jnp.float32)

  def d_logits(x, labels):   # l(x) = sum(w x^3): grad = 3 w x^2
    del labels
    return jnp.sum(w * x ** 3, axis=(1, 2, 3))

  def direct(x, scale=1.0):   # gamma / 2 E||grad||^2, through x -> scale x
    grads = 3 * w * (scale * x) ** 2 * scale
    return 0.5 * np.mean(np.sum(np.square(grads), axis=(1, 2, 3)))

  config = make_config(**{'reg.r1.weight': 0.05, 'reg.r2.weight': 0.05})
  total, metrics = regularizers.build(config.reg)(d_logits, real, fake, None,
                                                  jax.random.PRNGKey(0), jnp.asarray(0))
  np.testing.assert_allclose(metrics['d_r1'], 0.05 * direct(real), rtol=1e-5)
  np.testing.assert_allclose(metrics['d_r2'], 0.05 * direct(fake), rtol=1e-5)
  np.testing.assert_allclose(total, metrics['d_r1'] + metrics['d_r2'], rtol=1e-6)
  # Before the augmentation (their code): the gradient through D's input transform.
  config.reg.r1.before_augment = config.reg.r2.before_augment = True
  twice = lambda x: 2 * x   # pylint: disable=unnecessary-lambda-assignment
  _, metrics = regularizers.build(config.reg)(
      d_logits, twice(real), twice(fake), None, jax.random.PRNGKey(0), jnp.asarray(0),
      raw_real=real, raw_fake=fake, to_d_real=twice, to_d_fake=twice)
  np.testing.assert_allclose(metrics['d_r1'], 0.05 * direct(real, 2.0), rtol=1e-5)
  np.testing.assert_allclose(metrics['d_r2'], 0.05 * direct(fake, 2.0), rtol=1e-5)


def test_a_paired_loss_gives_g_the_real_batch_classes():
  gan, _ = _gan('r3gan32', True, width_scale=1 / 96)
  nets = steps.Nets.build(gan, losses.build(make_config(**{'loss.name': 'rpgan'}).loss),
                          steps.StepSpec())
  real = {'label': jnp.array([3, 1, 4])}
  np.testing.assert_array_equal(nets.paired_labels(jnp.array([0, 0, 0]), real), [3, 1, 4])
  unpaired = steps.Nets.build(gan, losses.build(make_config().loss), steps.StepSpec())
  np.testing.assert_array_equal(unpaired.paired_labels(jnp.array([0, 0, 0]), real), [0, 0, 0])


def test_mirror_doubles_the_data_with_flipped_copies():
  images = np.arange(2 * 2 * 3 * 1, dtype=np.uint8).reshape(2, 2, 3, 1)
  source = MirroredSource(ArraySource(images, np.array([0, 1]), ('a', 'b'), 'two'))
  assert len(source) == 4 and source.info.num_examples == 4
  np.testing.assert_array_equal(source[3]['image'], images[1][:, ::-1])
  assert source[3]['label'] == 1
  batch = source.get_batch(np.array([[0, 2], [3, 1]]))
  np.testing.assert_array_equal(batch['image'][0, 1], images[0][:, ::-1])
  np.testing.assert_array_equal(batch['image'][1, 1], images[1])
  np.testing.assert_array_equal(batch['label'], [[0, 0], [1, 1]])


def _tiny_r3gan(folder: str, **overrides):
  """configs/r3gan_cifar10.py:conditional at width 8 on `folder`, schedules over 6 steps."""
  config = repo_config('r3gan_cifar10.py:conditional')
  for key in ('batch_size', 'num_steps', 'log_every', 'sample_every', 'checkpoint_every'):
    config.train[key] = tiny_config().train[key]
  config.data.source, config.data.path, config.data.read_threads = 'folder', folder, 0
  config.model.width_scale = 1 / 96
  config.sample.num, config.sample.per_class = 4, 2
  for spec in (config.optim.g.schedule.lr, config.optim.g.schedule.b2,
               config.optim.d.schedule.lr, config.optim.d.schedule.b2,
               config.reg.r1.schedule.weight, config.reg.r2.schedule.weight,
               config.augment.ada.schedule.p, config.train.schedule.ema_half_life):
    spec.unit, spec.length = 'steps', 6.0
  config.train.schedule.ema_half_life.end = 64.0
  for key, value in overrides.items():
    node, *path = key.split('.')
    target = config[node]
    for part in path[:-1]:
      target = target[part]
    target[path[-1]] = value
  return config


@pytest.mark.slow
def test_r3gan_trains_in_the_real_trainer_and_resumes_exactly(tmp_path, rgb32_folder):
  overrides = {'train.num_steps': 6, 'train.checkpoint_every': 3, 'train.log_every': 1,
               'train.sample_every': 0}
  straight = image_trainer.train_and_evaluate(_tiny_r3gan(rgb32_folder, **overrides),
                                              str(tmp_path / 'a'))
  resumed_dir = str(tmp_path / 'b')
  image_trainer.train_and_evaluate(
      _tiny_r3gan(rgb32_folder, **{**overrides, 'train.num_steps': 3}), resumed_dir)
  resumed = image_trainer.train_and_evaluate(_tiny_r3gan(rgb32_folder, **overrides),
                                             resumed_dir)
  assert int(resumed.step) == 6 and resumed.ema
  for a, b in zip(jax.tree.leaves(jax.device_get(straight)),
                  jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)
  from gan_jax.training import reporting  # pylint: disable=g-import-not-at-top
  records = reporting.read_metrics(resumed_dir)
  assert [r['step'] for r in records] == [1, 2, 3, 4, 5, 6]
  last = records[-1]
  for key in ('d_loss_pair', 'g_loss', 'd_r1', 'd_r2', 'ada_p'):
    assert np.isfinite(last[key]), key
  # The schedules reached their ends: p 0.55, gamma 0.005.
  assert last['ada_p'] == pytest.approx(0.55 * (1 - math.cos(math.pi * 5 / 6)) / 2, rel=1e-4)
  assert last['d_r1_weight'] == pytest.approx(
      0.05 + (0.005 - 0.05) * (1 - math.cos(math.pi * 5 / 6)) / 2, rel=1e-4)


def parallel_config():
  """Conditional r3gan32 at width 8 with rpgan, R1 + R2 and their schedules; SGD (linear updates)."""
  config = make_config(**{'model.name': 'r3gan32', 'model.latent_dim': 64,
                          'model.width_scale': 1 / 96, **CONDITIONAL, 'loss.name': 'rpgan',
                          'reg.r1.weight': 0.05, 'reg.r2.weight': 0.05,
                          'reg.r1.before_augment': True, 'reg.r2.before_augment': True,
                          'train.batch_size': 8, 'optim.g.name': 'sgd', 'optim.g.lr': 0.01,
                          'optim.d.name': 'sgd', 'optim.d.lr': 0.01,
                          'train.ema_half_life': 100.0})
  for name in ('r1', 'r2'):
    config.reg[name].schedule.weight.update(kind='cosine', end=0.005, length=2, unit='steps')
  config.optim.g.schedule.lr.update(kind='linear', end=0.001, length=2, unit='steps')
  return config


@pytest.mark.slow
def test_four_devices_equal_one_device():
  assert_four_devices_equal_one('tests.test_r3gan:parallel_config', atol=1e-6)


def test_setup_builds_the_config_schedules_on_the_training_clock():
  config = repo_config('r3gan_cifar10.py:conditional')
  config.model.width_scale = 1 / 96
  setup = setup_lib.build_setup(config, DatasetInfo((32, 32, 3), 10, tuple('0123456789'),
                                                    50_000, 't'))
  state = jax.eval_shape(setup.init_state)
  assert state.ema   # the EMA by half-life is on, though its half-life starts at 0
  spec = steps.StepSpec.from_config(config.train)
  assert spec.images_per_step == 512
  assert spec.ema_half_life.at(20_000_000 / 512) == pytest.approx(5_000_000)
  assert config.data.mirror and config.augment.ada.ops == 'blit,geom,color:0.5,cutout'
  with pytest.raises(errors.ConfigError, match="Unknown preset 'gpu'"):
    repo_config('r3gan_cifar10.py:gpu')
