"""BigGAN (models biggan32/64/128, configs/biggan_cifar10.py, orthogonal regularisation): fidelity to the authors' code and training.

The parameter counts are those of BigGAN-PyTorch's Generator and
Discriminator (BigGAN.py, layers.py) at scripts/launch_cifar_ema.sh's
setting, counted layer by layer (the arithmetic is in the config's
docstring); they were not obtained by running the authors' code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax import models
from gan_jax.core import ortho
from gan_jax.models import biggan
from gan_jax.training import image as image_trainer
from tests.conftest import assert_four_devices_equal_one, make_config, repo_config

# PyTorch's .parameters() of G and D at the CIFAR-10 script's setting (G_ch = D_ch
# = 64, dim_z 128, 10 classes, no shared embedding, no attention, SN in both).
AUTHORS_COUNTS = (4_304_387, 4_207_361)
CONDITIONAL = {'model.conditional': True, 'model.g_conditioning': 'cbn',
               'model.d_conditioning': 'projection'}


def _gan(size: int, conditional: bool = True, width_scale: float = 1 / 16, **overrides):
  config = make_config(**{'model.name': f'biggan{size}', 'model.latent_dim': 20,
                          'model.width_scale': width_scale,
                          **(CONDITIONAL if conditional else {}), **overrides})
  return models.build(config.model, (size, size, 3), 10 if conditional else 0)


def _count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


def test_parameter_counts_equal_the_authors_networks_at_the_cifar10_setting():
  config = repo_config('biggan_cifar10.py')
  gan = models.build(config.model, (32, 32, 3), 10)
  key, z, labels = jax.random.PRNGKey(0), jnp.zeros((2, 128)), jnp.array([1, 3])
  g = jax.eval_shape(lambda: gan.generator.init(key, z, labels, train=False))
  d = jax.eval_shape(lambda: gan.discriminator.init(key, jnp.zeros((2, 32, 32, 3)), labels,
                                                    train=False))
  assert (_count(g['params']), _count(d['params'])) == AUTHORS_COUNTS
  # Per-class ccbn tables (no shared embedding at CIFAR-10), 256 wide.
  assert g['params']['block_0']['bn1']['gain']['embedding'].shape == (10, 256)
  assert d['params']['embed']['embedding'].shape == (10, 256)


def _block_activations(module, variables, *args):
  """({module name: output} of every block and attention layer, the module's output)."""
  out, state = module.apply(variables, *args, train=False, capture_intermediates=True,
                            mutable=['intermediates'])
  return {name: value['__call__'][0] for name, value in state['intermediates'].items()
          if name.startswith(('block', 'attention'))}, out


def _block_outputs(module, variables, *args):
  """{module name: output shape} of every block and attention layer, and the output."""
  blocks, out = _block_activations(module, variables, *args)
  return {name: x.shape for name, x in blocks.items()}, out


def _block_shapes(module, *args) -> tuple[dict, tuple]:
  """`_block_outputs`' shapes and the output's shape, traced (`jax.eval_shape`), not computed."""
  def run():
    return _block_activations(module, module.init(jax.random.PRNGKey(0), *args, train=False),
                              *args)
  blocks, out = jax.eval_shape(run)
  return {name: x.shape for name, x in blocks.items()}, out.shape


@pytest.mark.parametrize('size', sorted(biggan.ARCHITECTURES))
def test_every_block_has_the_architecture_tables_resolution_and_width(size):
  gan = _gan(size)
  arch, ch = biggan.ARCHITECTURES[size], 4
  labels = jnp.array([1, 3])
  z, images = jnp.zeros((2, 20)), jnp.zeros((2, size, size, 3))
  g_shapes, fake_shape = _block_shapes(gan.generator, z, labels)
  d_shapes, logits_shape = _block_shapes(gan.discriminator, images, labels)
  assert fake_shape == (2, size, size, 3) and logits_shape == (2,)
  for i, (side, mult) in enumerate(zip(arch.g_resolution(biggan.BOTTOM), arch.g_out)):
    assert g_shapes[f'block_{i}'] == (2, side, side, ch * mult)
  side = size
  for i, (mult, down) in enumerate(zip(arch.d_out, arch.d_down)):
    side //= 2 if down else 1
    assert d_shapes[f'block_{i}'] == (2, side, side, ch * mult)


def test_generated_images_lie_in_minus_one_to_one():
  gan = _gan(32)
  key, labels = jax.random.PRNGKey(0), jnp.array([1, 3])
  z = jax.random.normal(key, (2, 20))
  g_vars = gan.generator.init(key, z, labels, train=False)
  fake = jax.jit(lambda v: gan.generator.apply(v, z, labels, train=False))(g_vars)
  assert fake.shape == (2, 32, 32, 3) and float(jnp.max(jnp.abs(fake))) <= 1.0


def test_attention_goes_after_the_block_at_its_resolution_and_starts_as_the_identity():
  gan = _gan(64, **{'model.biggan.attention': 32})
  key, labels = jax.random.PRNGKey(0), jnp.array([1, 3])
  z, images = jax.random.normal(key, (2, 20)), jax.random.normal(key, (2, 64, 64, 3))
  g_vars = gan.generator.init(key, z, labels, train=False)
  d_vars = gan.discriminator.init(key, images, labels, train=False)
  g_shapes, _ = _block_outputs(gan.generator, g_vars, z, labels)
  d_shapes, _ = _block_outputs(gan.discriminator, d_vars, images, labels)
  assert g_shapes['attention_2'] == (2, 32, 32, 16)     # G's block 2 ends at 32x32
  assert d_shapes['attention_0'] == (2, 32, 32, 4)      # D_arch's resolution 32: block 0
  assert set(g_shapes) == {'block_0', 'block_1', 'block_2', 'block_3', 'attention_2'}
  attention = g_vars['params']['attention_2']
  assert float(attention['gamma']) == 0.0
  assert attention['theta']['kernel'].shape == (1, 1, 16, 2)   # ch // 8 keys
  assert attention['g']['kernel'].shape == (1, 1, 16, 8)       # ch // 2 values
  with pytest.raises(errors.ConfigError, match='attention=24 matches no block of biggan64'):
    _gan(64, **{'model.biggan.attention': 24})


def test_g_conditions_every_batchnorm_on_the_class_and_d_projects():
  gan = _gan(32)
  key = jax.random.PRNGKey(0)
  z = jax.random.normal(key, (1, 20)).repeat(2, 0)
  g_vars = gan.generator.init(key, z, jnp.array([0, 1]), train=False)
  # N(0, 0.02) gains: at init the classes differ only slightly; move one class's row.
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: x.at[7].add(1.0) if 'gain' in jax.tree_util.keystr(p) else x,
      g_vars['params'])
  g_vars = {**g_vars, 'params': params}
  same = gan.generator.apply(g_vars, z, jnp.array([1, 1]), train=False)
  other = gan.generator.apply(g_vars, z, jnp.array([1, 7]), train=False)
  np.testing.assert_array_equal(same[0], same[1])
  assert not np.allclose(other[0], other[1])
  images = jax.random.normal(key, (3, 32, 32, 3))
  d_vars = gan.discriminator.init(key, images, jnp.array([0, 1, 2]), train=False)
  logits = [gan.discriminator.apply(d_vars, images, jnp.full((3,), c), train=False)
            for c in range(3)]
  assert not np.allclose(logits[0], logits[1])
  # The class enters D only through its embedding row: equal rows, equal logits.
  table = d_vars['params']['embed']['embedding']
  tied = {**d_vars, 'params': {**d_vars['params'],
                               'embed': {'embedding': table.at[1].set(table[0])}}}
  tied_logits = [gan.discriminator.apply(tied, images, jnp.full((3,), c), train=False)
                 for c in range(2)]
  np.testing.assert_allclose(tied_logits[0], tied_logits[1], rtol=1e-6)


def test_shared_embedding_and_hierarchical_z_feed_each_block_its_own_chunk():
  gan = _gan(32, **{'model.biggan.shared_dim': 8, 'model.biggan.hier': True})
  key, labels = jax.random.PRNGKey(0), jnp.array([2, 2])
  z = jax.random.normal(key, (2, 20))            # 4 chunks of 5: the linear layer, 3 blocks
  g_vars = gan.generator.init(key, z, labels, train=False)
  params = g_vars['params']
  assert params['shared']['embedding'].shape == (10, 8)
  assert params['linear']['kernel'].shape == (5, 16 * 16)
  assert params['block_0']['bn1']['gain']['kernel'].shape == (8 + 5, 16)
  assert 'embedding' not in params['block_0']['bn1']['gain']
  # The last chunk reaches G only through the last block's ccbn.
  def blocks_of(z):
    state = gan.generator.apply(g_vars, z, labels, train=False, capture_intermediates=True,
                                mutable=['intermediates'])[1]['intermediates']
    return [state[f'block_{i}']['__call__'][0] for i in range(3)]
  before, after = blocks_of(z), blocks_of(z.at[:, 15:].add(1.0))
  np.testing.assert_array_equal(before[0], after[0])
  np.testing.assert_array_equal(before[1], after[1])
  assert not np.allclose(before[2], after[2])
  with pytest.raises(errors.ConfigError, match='hier=True joins z chunks'):
    _gan(32, **{'model.biggan.hier': True})
  with pytest.raises(errors.ConfigError, match='multiple of 4'):
    _gan(32, **{'model.biggan.shared_dim': 8, 'model.biggan.hier': True,
                'model.latent_dim': 18})


def test_spectral_norm_and_init_follow_the_authors_code():
  gan = _gan(32, width_scale=1.0)
  key, labels = jax.random.PRNGKey(0), jnp.array([1, 3])
  g_vars = jax.jit(lambda: gan.generator.init(key, jnp.zeros((2, 20)), labels,
                                              train=False))()
  kernel = g_vars['params']['block_1']['conv1']['kernel']
  np.testing.assert_allclose(np.std(kernel), 0.02, rtol=0.02)     # N02
  bias = g_vars['params']['block_1']['conv1']['bias']
  assert np.max(np.abs(bias)) <= 1 / np.sqrt(256 * 9)              # PyTorch's default
  names = [jax.tree_util.keystr(p) for p, _ in
           jax.tree_util.tree_leaves_with_path(g_vars['batch_stats']['block_1'])]
  assert any('conv1/kernel/u' in name for name in names)   # SN's power-iteration vector
  plain = _gan(32, **{'model.spectral_norm': 'none'})
  plain_vars = plain.generator.init(key, jnp.zeros((2, 20)), labels, train=False)
  assert set(plain_vars['batch_stats']['block_0']) == {'bn1', 'bn2'}


def test_ortho_adds_the_gradient_of_bigans_penalty_to_matrices_only():
  rng = np.random.default_rng(0)
  params = {'conv': {'kernel': jnp.asarray(rng.standard_normal((3, 3, 4, 5)), jnp.float32),
                     'bias': jnp.ones(5)},
            'shared': {'embedding': jnp.asarray(rng.standard_normal((10, 6)), jnp.float32)}}

  def penalty(kernel):   # 1/2 ||W W^T (1 - I)||^2, W = PyTorch's (out, in x k x k)
    rows = kernel.reshape(-1, kernel.shape[-1]).T
    gram = rows @ rows.T
    return 0.5 * jnp.sum(jnp.square(gram * (1 - jnp.eye(gram.shape[0]))))

  grads = jax.tree.map(jnp.zeros_like, params)
  tx = ortho.with_ortho(1e-4, ortho.add_ortho_gradient(0.0), 'optim.g.ortho')
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates['conv']['kernel'],
                             1e-4 * jax.grad(penalty)(params['conv']['kernel']), rtol=1e-4)
  assert not np.any(updates['conv']['bias']) and not np.any(updates['shared']['embedding'])
  assert ortho.with_ortho(0.0, tx, 'optim.g.ortho') is tx
  with pytest.raises(errors.ConfigError, match='optim.d.ortho=-1'):
    ortho.with_ortho(-1, tx, 'optim.d.ortho')


def test_the_config_is_the_launch_scripts_setting():
  config = repo_config('biggan_cifar10.py')
  tc, g, d = config.train, config.optim.g, config.optim.d
  assert (tc.batch_size, tc.n_disc, tc.n_gen, tc.num_steps) == (50, 4, 1, 125_000)
  assert (g.lr, g.b1, g.b2, d.lr, d.b1, d.b2) == (2e-4, 0.0, 0.999, 2e-4, 0.0, 0.999)
  assert (tc.ema_decay, tc.ema_start) == (0.9999, 1_000)
  assert config.loss.name == 'hinge' and config.model.spectral_norm == 'gd'
  assert config.sample.standing_stats_batches > 0
  cpu = repo_config('biggan_cifar10.py:cpu')
  assert cpu.model.width_scale == 0.25 and cpu.data.source == 'folder'
  with pytest.raises(errors.ConfigError, match="Unknown preset 'gpu'"):
    repo_config('biggan_cifar10.py:gpu')


@pytest.mark.slow
def test_biggan_trains_in_the_real_trainer_and_resumes_exactly(tmp_path, rgb32_folder):
  def config(steps):
    c = repo_config('biggan_cifar10.py:cpu')
    c.data.path, c.data.read_threads = rgb32_folder, 0
    c.model.width_scale = 1 / 16
    c.train.update(batch_size=8, num_steps=steps, checkpoint_every=2, log_every=1,
                   sample_every=0, ema_start=2)
    c.sample.update(num=4, per_class=2, standing_stats_batches=2)
    return c
  straight = image_trainer.train_and_evaluate(config(4), str(tmp_path / 'a'))
  image_trainer.train_and_evaluate(config(2), str(tmp_path / 'b'))
  resumed = image_trainer.train_and_evaluate(config(4), str(tmp_path / 'b'))
  assert int(resumed.step) == 4 and resumed.ema
  for a, b in zip(jax.tree.leaves(jax.device_get(straight)),
                  jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)


def parallel_config():
  """Conditional biggan32 at width 4 with hinge, 2 D steps, ortho and an EMA; SGD (linear updates)."""
  config = repo_config('biggan_cifar10.py')
  config.model.width_scale = 1 / 16
  config.train.update(batch_size=8, n_disc=2, ema_start=0)
  for opt in (config.optim.g, config.optim.d):
    opt.update(name='sgd', lr=0.01, ortho=1e-4)
  return config


@pytest.mark.slow
def test_four_devices_equal_one_device():
  assert_four_devices_equal_one('tests.test_biggan:parallel_config', atol=1e-5)
