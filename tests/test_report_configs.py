"""Every reference-report config (configs/*resnet18d*, dcgan_cifar10_class, dcgan64_folder, dcgan_celeba) trains and generates.

Each runs through the real training loop for two steps at tiny width on
generated data (image folders, TFDS mock data), with the config's own loss,
optimizers, n_gen, conditioning and augmentation; the CIFAR-10 ones also on
the shared CIFAR-10 JPEGs when they are there. The architectures are checked
at full width by parameter count, which needs no compute.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax import data as data_lib
from gan_jax import generate
from gan_jax import models
from gan_jax.config import base as config_base
from gan_jax.training import image as image_trainer
from gan_jax.training import reporting
from gan_jax.training import resume as resume_lib
from gan_jax.training import setup as setup_lib
from experiments import report_figures
from gan_jax.core import losses
from gan_jax.core import steps
from tests.conftest import repo_config

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
                   'horse', 'ship', 'truck')


def _write_images(directory, count, size, seed):
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(count):
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(os.path.join(directory, f'{i:03d}.png'))


@pytest.fixture(scope='module')
def cifar_like_folder(tmp_path_factory):
  """A folder laid out like the extracted CIFAR-10 JPEGs: 10 class subfolders of 32x32 images."""
  root = tmp_path_factory.mktemp('cifar_like')
  for index, name in enumerate(CIFAR10_CLASSES):
    _write_images(str(root / name), 8, 32, index)
  return str(root)


def _config(name, **data):
  config = repo_config(name)
  config.train.update(dict(batch_size=8, num_steps=2, log_every=1, sample_every=2,
                           checkpoint_every=2))
  config.data.read_threads = 0
  config.model.width_scale = 1 / 16
  config.sample.update(dict(num=4, per_class=1))
  config.data.update(data)
  return config


def _train_and_check(config, workdir, image_shape, label=None, run=None):
  """Trains `config` (with `run(config, workdir)` if given); checks finite losses, moved weights, generate."""
  (run or image_trainer.train_and_evaluate)(config, workdir)
  _, _, state = setup_lib.restore_setup(workdir)
  records = reporting.read_metrics(workdir)
  assert [r['step'] for r in records] == [1, 2]
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss'):
    assert all(np.isfinite(r[key]) for r in records), key
  setup = setup_lib.build_setup(config, resume_lib.load_data_info(workdir))
  initial = jax.device_get(setup.init_state())
  final = jax.device_get(state)
  for net in ('g', 'd'):
    before = jax.tree.leaves(getattr(initial, net).params)
    after = jax.tree.leaves(getattr(final, net).params)
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), f'{net} did not move'
  images, labels, step = generate.generate(workdir, num=3, label=label)
  assert step == 2 and images.shape == (3, *image_shape) and images.dtype == np.uint8
  if label is None:
    assert labels is None
  else:
    assert labels.dtype == np.int32 and np.all(labels == label)
  return records


def test_gan_resnet18d_trains_on_an_image_folder(tmp_path, cifar_like_folder):
  config = _config('gan_cifar10_resnet18d.py', source='folder', path=cifar_like_folder)
  assert (config.train.n_gen, config.optim.d.name, config.optim.d.lr,
          config.optim.g.lr) == (2, 'adamw', 2e-5, 5e-5)
  _train_and_check(config, str(tmp_path / 'run'), (32, 32, 3))


@pytest.mark.slow
def test_cgan_resnet18d_report_figures_similarity_loss_and_labels(
    tmp_path, cifar_like_folder):
  config = _config('cgan_cifar10_resnet18d.py', source='folder', path=cifar_like_folder)
  assert config.loss.similarity_weight > 0 and config.model.d_conditioning == 'embed'
  workdir = str(tmp_path / 'run')
  # Trained by the figure script, in two stages (a resume in between).
  records = _train_and_check(
      config, workdir, (32, 32, 3), label=7,
      run=lambda c, w: report_figures.reproduce(c, w, 'cgan_cifar10_resnet18d', steps=(1, 2)))
  assert all(np.isfinite(r['g_similarity_loss']) and r['g_similarity_loss'] > 0
             for r in records)
  figures = sorted(os.listdir(os.path.join(workdir, 'figures')))
  assert figures == ['README.txt', 'class_grid.png', 'loss_curves.png', 'real.png',
                     'samples_step_1.png', 'samples_step_2.png']
  with open(os.path.join(workdir, 'figures', 'README.txt')) as f:
    assert 'gan-cgan-cifar10-a8-report.txt' in f.read()
  # One row of per_class=1 image per class in the training grid: 10 rows.
  grid = Image.open(os.path.join(workdir, 'figures', 'samples_step_2.png'))
  assert grid.size == (2 + 34, 2 + 10 * 34)


def test_cgan_resnet18d_on_the_shared_cifar10_folder(tmp_path, shared_cifar10_folder):
  config = _config('cgan_cifar10_resnet18d.py', source='folder', path=shared_cifar10_folder)
  _train_and_check(config, str(tmp_path / 'run'), (32, 32, 3), label=3)


@pytest.mark.parametrize('name, kept', [('dcgan_cifar10_class.py:dog', 'dog'),
                                        ('dcgan_cifar10_class.py', 'dog'),
                                        ('dcgan_cifar10_class.py:airplane', 'airplane')])
def test_single_class_configs_keep_their_class(cifar_like_folder, name, kept):
  config = _config(name, source='folder', path=cifar_like_folder)
  source = data_lib.build_source(config.data)
  assert source.info.class_names == (kept,) and len(source) == 8
  expected = np.asarray(Image.open(os.path.join(cifar_like_folder, kept, '000.png')))
  assert any(np.array_equal(source[i]['image'], expected) for i in range(len(source)))


def test_dcgan_dog_trains_on_the_shared_cifar10_dogs(tmp_path, shared_cifar10_folder):
  config = _config('dcgan_cifar10_class.py:dog', source='folder', path=shared_cifar10_folder)
  _train_and_check(config, str(tmp_path / 'run'), (32, 32, 3))


def test_dcgan64_folder_trains_with_instance_noise(tmp_path):
  folder = str(tmp_path / 'cats')
  _write_images(folder, 10, 80, 0)     # not 64x64: the source centre-crops and resizes
  config = _config('dcgan64_folder.py', path=folder)
  assert config.augment.transforms == ('instance_noise',)
  assert (config.optim.d.lr, config.optim.g.lr) == (5e-5, 2e-4)
  _train_and_check(config, str(tmp_path / 'run'), (64, 64, 3))


def test_dcgan64_folder_ada_preset_trains_with_ada_in_place_of_instance_noise(tmp_path):
  folder = str(tmp_path / 'cats')
  _write_images(folder, 10, 64, 1)
  config = repo_config('dcgan64_folder.py:ada')
  small = _config('dcgan64_folder.py', path=folder)
  config.train, config.data, config.model.width_scale, config.sample = (
      small.train, small.data, small.model.width_scale, small.sample)
  assert config.augment.transforms == ('ada',)
  _train_and_check(config, str(tmp_path / 'run'), (64, 64, 3))
  records = reporting.read_metrics(str(tmp_path / 'run'))
  assert all('ada_p' in r and 'ada_rt' in r for r in records)


def test_dcgan_celeba_trains_on_mock_celeb_a(tmp_path):
  config = _config('dcgan_celeba.py')
  with tfds.testing.mock_data(num_examples=16):
    _train_and_check(config, str(tmp_path / 'run'), (64, 64, 3))


def _num_params(model, *inputs):
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *inputs, train=False))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables['params']))


def _models(name, size, **overrides):
  model_config = config_base.get_config().model
  model_config.name = name
  model_config.update(overrides)
  conditional = model_config.conditional
  gan = models.build(model_config, (size, size, 3), 10 if conditional else 0)
  z, labels = jnp.zeros((2, 100)), jnp.zeros((2,), jnp.int32)
  images = jnp.zeros((2, size, size, 3))
  return (_num_params(gan.generator, z, labels),
          _num_params(gan.discriminator, images, labels))


def _conv(k, c_in, c_out, bias=True):
  return k * k * c_in * c_out + (c_out if bias else 0)


def test_full_width_architectures_have_the_specified_parameter_counts():
  # CIFAR ResNet-18 (3x3 stem, no bias in convs) is 11,173,962 parameters with
  # its 10-way head; with a one-logit head instead: 11,168,832 + 513.
  g_r18, d_r18 = _models('resnet18d', 32)
  assert d_r18 == 11_169_345
  g_expected = (_conv(4, 100, 512) + _conv(4, 512, 256) + _conv(4, 256, 128)
                + _conv(4, 128, 64) + 2 * (512 + 256 + 128 + 64) + 4 * 4 * 64 * 3072 + 3072)
  assert g_r18 == g_expected
  # PyTorch's DCGAN tutorial networks (nz=100, ngf=ndf=64).
  assert _models('dcgan64', 64) == (3_576_704, 2_765_568)
  # The cats report's TF code; its BatchNorm after the dense layer is over
  # the 65,536 flat units, before the reshape to 8x8x1024.
  g_wide, d_wide = _models('dcgan64_wide', 64)
  assert g_wide == (100 * 65536 + 65536 + 2 * 65536 + _conv(4, 1024, 512) + _conv(4, 512, 256)
                    + _conv(4, 256, 128) + 2 * (512 + 256 + 128) + _conv(4, 128, 3))
  assert d_wide == (_conv(5, 3, 128) + _conv(5, 128, 256) + _conv(5, 256, 512)
                    + _conv(5, 512, 1024) + 2 * (128 + 256 + 512 + 1024) + 8 * 8 * 1024 + 1)


def test_embed_conditioning_adds_the_label_embeddings():
  g, d = _models('resnet18d', 32)
  g_cond, d_cond = _models('resnet18d', 32, conditional=True, g_conditioning='embed',
                           d_conditioning='embed')
  # G: dense 10 -> 100 and 100 more input channels of the first ConvT;
  # D: dense 10 -> 32*32 and one more input channel of the stem conv.
  assert g_cond - g == 10 * 100 + 100 + 100 * 512 * 16
  assert d_cond - d == 10 * 1024 + 1024 + 64 * 9


def test_embed_conditioning_is_refused_by_models_without_it():
  from gan_jax import errors  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.ConfigError, match="'embed' conditioning"):
    _models('dcgan32', 32, conditional=True, g_conditioning='embed')


def test_similarity_loss_is_the_per_example_mean_squared_error():
  a = jnp.arange(8.0).reshape(2, 2, 2, 1) / 8
  b = jnp.zeros((2, 2, 2, 1))
  np.testing.assert_allclose(losses.similarity_loss(a, b),
                             [np.mean(np.square(np.arange(4) / 8)),
                              np.mean(np.square(np.arange(4, 8) / 8))], rtol=1e-6)


def _mlp_setup(similarity_weight, conditional=True):
  config = config_base.get_config()
  config.model.update(dict(name='mlp', conditional=conditional, latent_dim=4,
                           width_scale=1 / 32))
  config.loss.similarity_weight = similarity_weight
  info = data_lib.DatasetInfo((4, 4, 1), 3, ('a', 'b', 'c'), 8, 'test')
  return config, setup_lib.build_setup(config, info)


def test_g_pairs_its_images_with_the_real_batch_and_its_labels():
  config, setup = _mlp_setup(similarity_weight=2.0)
  state = setup.init_state()
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.integers(0, 256, (1, 8, 4, 4, 1)), jnp.uint8),
           'label': jnp.asarray([[0, 1, 2, 0, 1, 2, 0, 1]], jnp.int32)}
  _, metrics = jax.jit(setup.train_step(config.train))(state, batch)
  # Recompute what the G update saw: its noise key, the real batch's labels
  # (not random ones) and the real images as the MSE target.
  key = jax.random.split(jax.random.fold_in(state.rng, state.step), 2)[1]
  z, random_labels = steps.sample_latents(key, setup.gan, 8)
  real = steps.images_to_float(batch['image'][0])

  def similarity(labels):
    fake, _ = setup.gan.generator.apply(state.g.variables, z, labels, train=True,
                                        mutable=['batch_stats'])
    return float(jnp.mean(losses.similarity_loss(fake, real)))

  logged = float(metrics['g_similarity_loss'])
  np.testing.assert_allclose(logged, similarity(batch['label'][0]), rtol=1e-5)
  assert not np.isclose(logged, similarity(random_labels), rtol=1e-5, atol=0)
  _, without = _mlp_setup(similarity_weight=0.0)
  _, plain = jax.jit(without.train_step(config.train))(without.init_state(), batch)
  assert 'g_similarity_loss' not in plain


def test_similarity_loss_needs_a_conditional_model():
  from gan_jax import errors  # pylint: disable=g-import-not-at-top
  config, setup = _mlp_setup(similarity_weight=1.0, conditional=False)
  with pytest.raises(errors.ConfigError, match='similarity_weight'):
    setup.train_step(config.train)
