"""The PyTorch twins of `benchmarks/torch_reference.py` against gan_jax's model zoo and step."""

import os

import pytest

torch = pytest.importorskip('torch')

import flax.linen as fnn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import torch_reference as tr  # noqa: E402
from gan_jax import models
from gan_jax.config import base as config_base  # noqa: E402
from tests.conftest import REPO_ROOT, load_config_file  # noqa: E402

LATENT = 24
SCALES = {'dcgan28': 1.0}     # the rest at 1/8 width
BATCH = 4


@pytest.fixture(autouse=True, scope='module')
def _one_torch_thread():
  """Tiny networks: one thread is fastest, and far faster on a loaded machine (OpenMP spins)."""
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


def _scale(name: str) -> float:
  return SCALES.get(name, 0.125)


def _config(name: str):
  config = config_base.get_config()
  config.model.name = name
  config.model.width_scale = _scale(name)
  config.model.latent_dim = LATENT
  return config


def _sizes(tree, keep=lambda path: True) -> list[int]:
  """Sorted numels of the leaves of a pytree of ShapeDtypeStructs whose key path passes `keep`."""
  leaves = jax.tree_util.tree_leaves_with_path(tree)
  return sorted(int(x.size) for path, x in leaves if keep(jax.tree_util.keystr(path)))


def _is_sn_vector(path: str) -> bool:
  return path.endswith("/u']")


def _zoo(name: str):
  """gan_jax's G and D variables and G's output, as shapes (initialised as state.create does)."""
  image_shape = tr.MODELS[name][2]
  gan = models.build(_config(name).model, image_shape, 0)
  key = jax.random.PRNGKey(0)
  z = jnp.zeros((BATCH, LATENT), jnp.float32)
  labels = jnp.zeros((BATCH,), jnp.int32)
  images = jnp.zeros((BATCH, *image_shape), jnp.float32)
  g_vars = jax.eval_shape(lambda k, z, y: gan.generator.init(k, z, y, train=False),
                          key, z, labels)
  d_vars = jax.eval_shape(lambda k, x, y: gan.discriminator.init(k, x, y, train=False),
                          key, images, labels)
  g_out = jax.eval_shape(lambda v, z, y: gan.generator.apply(v, z, y, train=False),
                         g_vars, z, labels)
  d_out = jax.eval_shape(lambda v, x, y: gan.discriminator.apply(v, x, y, train=False),
                         d_vars, images, labels)
  return g_vars, d_vars, g_out.shape, d_out.shape


def _twins(name: str):
  g_cls, d_cls, image_shape = tr.MODELS[name]
  torch.manual_seed(0)
  return (g_cls(latent_dim=LATENT, channels=image_shape[2], width_scale=_scale(name)),
          d_cls(channels=image_shape[2], width_scale=_scale(name)))


def test_twins_are_the_zoo_names():
  assert tr.TWINS == ('dcgan28', 'dcgan32', 'dcgan64', 'dcgan64_wide', 'sngan32', 'resnet18d')
  assert set(tr.TWINS) <= set(models.MODELS.names())


@pytest.mark.parametrize('name', tr.TWINS)
def test_twin_matches_zoo(name):
  g_vars, d_vars, g_shape, d_shape = _zoo(name)
  G, D = _twins(name)
  for jax_vars, twin in ((g_vars, G), (d_vars, D)):
    torch_sizes = sorted(p.numel() for p in twin.parameters())
    assert torch_sizes == _sizes(jax_vars['params'])
    assert tr.count_parameters(twin) == sum(torch_sizes)
    # Spectral norm on the same layers: gan_jax's u vectors (in batch_stats) and PyTorch's _u.
    torch_u = sorted(b.numel() for n, b in twin.named_buffers() if n.endswith('._u'))
    assert torch_u == _sizes(jax_vars.get('batch_stats', {}), _is_sn_vector)
  if name == 'sngan32':   # gan_jax's default for sngan32: every D layer
    assert sum(n.endswith('._u') for n, _ in D.named_buffers()) == 11

  G.train()
  D.train()
  with torch.no_grad():
    images = G(torch.randn(BATCH, LATENT))
    logits = D(images)
  b, h, w, c = g_shape
  assert tuple(images.shape) == (b, c, h, w)
  assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
  assert tuple(logits.shape) == tuple(d_shape) == (BATCH,)


def _params(module):
  return [p.detach().clone() for p in module.parameters()]


def _changed(before, module) -> int:
  return sum(not torch.equal(a, b.detach()) for a, b in zip(before, module.parameters()))


def _real(step, batch=BATCH):
  return torch.randint(0, 256, (batch, *step.image_shape), dtype=torch.uint8)


def _check_two_steps(step):
  g0, d0 = _params(step.G), _params(step.D)
  real = _real(step)
  for _ in range(2):
    out = step(real)
    assert set(out) == {'d_loss', 'g_loss'}
    for value in out.values():
      assert isinstance(value, torch.Tensor) and value.dim() == 0
      assert value.dtype == torch.float32 and torch.isfinite(value)
  # Most tensors move (a bias right before a BatchNorm has no gradient to speak of).
  assert _changed(g0, step.G) > len(g0) // 2
  assert _changed(d0, step.D) > len(d0) // 2
  for p in list(step.G.parameters()) + list(step.D.parameters()):
    assert p.dtype == torch.float32 and bool(torch.isfinite(p).all())


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
@pytest.mark.parametrize('name', [n for n in tr.TWINS if n != 'sngan32'])
def test_from_config_trains(name, dtype):
  config = _config(name)
  step = tr.TrainStep.from_config(config, dtype=dtype)
  assert step.loss == 'bce' and (step.n_disc, step.n_gen) == (1, 1)
  assert step.ema is None
  _check_two_steps(step)


def _sngan_config():
  config = load_config_file(os.path.join(REPO_ROOT, 'configs', 'gan_cifar10.py')).get_config()
  config.model.width_scale = 0.125
  config.train.batch_size = BATCH
  config.train.n_disc = 2
  return config


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_sngan32_cifar10_recipe_hinge(dtype):
  step = tr.TrainStep.from_config(_sngan_config(), dtype=dtype)
  assert step.loss == 'hinge' and (step.n_disc, step.n_gen) == (2, 1)
  assert step.latent_dim == 128
  for opt in (step.g_opt, step.d_opt):
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.Adam)
    assert (group['lr'], group['betas']) == (2e-4, (0.0, 0.9))
  assert step.ema is not None and step.ema_decay == 0.9999 and step.ema_start == 1000
  _check_two_steps(step)
  # Before ema_start the EMA is a copy of G.
  for e, g in zip(step.ema.state_dict().values(), step.G.state_dict().values()):
    assert torch.equal(e, g)


def test_ema_averages_after_every_step():
  config = _sngan_config()
  config.train.ema_start = 0
  config.train.ema_decay = 0.9
  step = tr.TrainStep.from_config(config)
  g0 = _params(step.G)
  step(_real(step))
  ema = list(step.ema.parameters())
  assert _changed(g0, step.G) > 0
  assert any(not torch.equal(e, g) for e, g in zip(ema, step.G.parameters()))
  for e, before, after in zip(ema, g0, step.G.parameters()):
    torch.testing.assert_close(e, 0.9 * before + 0.1 * after.detach())
  for name, buf in step.ema.named_buffers():   # BatchNorm statistics are averaged too
    if name.endswith('running_mean'):
      assert not torch.equal(buf, dict(step.G.named_buffers())[name])


def test_resnet18d_recipe_optimizers():
  path = os.path.join(REPO_ROOT, 'configs', 'gan_cifar10_resnet18d.py')
  config = load_config_file(path).get_config()
  config.model.width_scale = 0.125
  step = tr.TrainStep.from_config(config)
  assert (step.n_disc, step.n_gen) == (1, 2)
  for opt, lr in ((step.g_opt, 5e-5), (step.d_opt, 2e-5)):
    assert isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert (group['lr'], group['betas'], group['weight_decay']) == (lr, (0.9, 0.999), 0.01)


def test_default_train_step_is_gan_jax_default():
  step = tr.TrainStep('dcgan28')
  assert (step.loss, step.n_disc, step.n_gen, step.ema) == ('bce', 1, 1, None)
  for opt in (step.g_opt, step.d_opt):
    assert type(opt) is torch.optim.Adam
    assert (opt.param_groups[0]['lr'], opt.param_groups[0]['betas']) == (2e-4, (0.5, 0.999))
  # G's running statistics move with its own update only, not when it makes D's batch.
  bn = next(m for m in step.G.modules() if isinstance(m, torch.nn.BatchNorm2d))
  out = step(_real(step, 8))
  assert int(bn.num_batches_tracked) == 1
  assert torch.isfinite(out['d_loss']) and torch.isfinite(out['g_loss'])


def test_from_config_rejects_what_has_no_twin():
  config = _config('dcgan28')
  config.model.name = 'mlp'
  with pytest.raises(ValueError, match='mlp') as error:
    tr.TrainStep.from_config(config)
  for name in tr.TWINS:
    assert name in str(error.value)
  config = _config('dcgan28')
  config.loss.name = 'wasserstein'
  with pytest.raises(ValueError, match='wasserstein'):
    tr.TrainStep.from_config(config)
  config = _config('dcgan32')
  config.model.spectral_norm = 'd'
  with pytest.raises(ValueError, match='spectral_norm'):
    tr.TrainStep.from_config(config)


@pytest.mark.parametrize('kernel,stride', [(4, 1), (5, 1), (5, 2)])
def test_tf_same_conv_matches_flax(kernel, stride):
  """The wide 64x64 twin's 'SAME' convs pad as Flax does (asymmetrically for an odd total)."""
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
  conv = fnn.Conv(5, (kernel, kernel), strides=(stride, stride), padding='SAME')
  params = conv.init(jax.random.PRNGKey(0), x)
  expected = np.asarray(conv.apply(params, x)).transpose(0, 3, 1, 2)
  twin = tr._tf_conv(3, 5, kernel, stride)
  layer = twin if isinstance(twin, torch.nn.Conv2d) else twin[1]
  with torch.no_grad():
    layer.weight.copy_(torch.from_numpy(np.array(params['params']['kernel']).transpose(3, 2, 0, 1)))
    layer.bias.copy_(torch.from_numpy(np.array(params['params']['bias'])))
    got = twin(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_same_conv_transpose_is_torch_padding_one_flipped():
  """Flax's ConvTranspose(k4, s2, 'SAME') of dcgan64_wide = PyTorch's (k4, s2, p1), kernel flipped."""
  x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
  conv = fnn.ConvTranspose(5, (4, 4), strides=(2, 2), padding='SAME')
  params = conv.init(jax.random.PRNGKey(0), x)
  expected = np.asarray(conv.apply(params, x)).transpose(0, 3, 1, 2)
  twin = torch.nn.ConvTranspose2d(3, 5, 4, 2, 1)
  kernel = np.asarray(params['params']['kernel'])[::-1, ::-1].transpose(2, 3, 0, 1)
  with torch.no_grad():
    twin.weight.copy_(torch.from_numpy(kernel.copy()))
    twin.bias.zero_()
    got = twin(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_spectral_norm_estimates_the_top_singular_value():
  torch.manual_seed(0)
  layer = torch.nn.Linear(12, 7)
  top = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
  tr._spectrally_normalise(layer)
  for _ in range(50):              # one power iteration per training call
    weight = layer.weight
  assert abs(float(torch.linalg.matrix_norm(weight.detach(), ord=2)) - 1.0) < 1e-3
  torch.testing.assert_close(layer.parametrizations.weight.original.detach() / weight.detach(),
                             torch.full_like(weight, float(top)), rtol=1e-3, atol=0)
  u = layer.parametrizations.weight[0]._u.clone()
  layer.eval()
  layer(torch.ones(1, 12))
  assert torch.equal(layer.parametrizations.weight[0]._u, u)   # eval reads u, never writes it


def test_one_real_batch_per_d_update():
  step = tr.TrainStep('dcgan28', width_scale=0.5, n_disc=2)
  reals = torch.randint(0, 256, (2, BATCH, 28, 28, 1), dtype=torch.uint8)
  assert torch.isfinite(step(reals)['d_loss'])
  with pytest.raises(ValueError, match='n_disc=2'):
    step(reals[:1])
