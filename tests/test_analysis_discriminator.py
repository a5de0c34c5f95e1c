"""The `discriminator` analysis: layer finders, kernel layouts, saliency, logit summary, and a run end to end."""

import json
import os
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.analysis import Context, NotApplicable
from gan_jax.analysis import discriminator as disc
from gan_jax.models import dcgan, layers
from tests.conftest import make_config


def _gan(name, shape, num_classes=0, **model):
  config = make_config(**{'model.name': name, 'model.latent_dim': 8, 'model.width_scale': 0.25,
                          'model.conditional': bool(num_classes),
                          **{f'model.{k}': v for k, v in model.items()}})
  return models.build(config.model, shape, num_classes)


def _restored_like(module, *args):
  """Random variables of `module`'s shapes, as a restored checkpoint holds them.

  Shapes come from a traced init (an eager or jitted one costs seconds per
  model on a busy CPU); jax.tree.map sorts every dict's keys, as restoring does.
  """
  rng = np.random.default_rng(0)
  abstract = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, train=False))
  return jax.tree.map(lambda leaf: rng.normal(size=leaf.shape).astype(leaf.dtype), abstract)


def _d_inputs(shape):
  return jnp.zeros((1, *shape)), jnp.zeros((1,), jnp.int32)


def _g_inputs():
  return jnp.zeros((1, 8)), jnp.zeros((1,), jnp.int32)


@pytest.mark.parametrize('name, shape, num_classes, spectral_norm', [
    ('dcgan28', (28, 28, 1), 0, 'none'),
    ('dcgan28', (28, 28, 1), 10, 'd'),     # concat label maps; spectral norm wraps every conv
    ('dcgan32', (32, 32, 3), 0, 'none'),
])
def test_first_conv_kernel_is_ds_first_conv(name, shape, num_classes, spectral_norm):
  gan, d_args = _gan(name, shape, num_classes, spectral_norm=spectral_norm), _d_inputs(shape)
  d_vars = _restored_like(gan.discriminator, *d_args)
  layer, kernel = disc.first_conv_kernel(gan.discriminator, d_vars, *d_args, train=False)
  assert layer == disc.ConvLayer(('Conv_0',), disc.CONV)
  first_width = gan.discriminator.widths[0]
  assert kernel.shape == (4, 4, shape[2] + num_classes, first_width)
  np.testing.assert_array_equal(kernel, d_vars['params']['Conv_0']['kernel'])


def test_first_conv_follows_call_order_not_sorted_names():
  # resnet18d's stem 'Conv_0' sorts after 'BasicBlock_0' in a restored tree.
  gan, d_args = _gan('resnet18d', (32, 32, 3), width_scale=0.125), _d_inputs((32, 32, 3))
  d_vars = _restored_like(gan.discriminator, *d_args)
  assert list(d_vars['params'])[0] == 'BasicBlock_0'
  layer, kernel = disc.first_conv_kernel(gan.discriminator, d_vars, *d_args, train=False)
  assert layer.path == ('Conv_0',)
  assert kernel.shape == (3, 3, 3, 8)


@pytest.mark.parametrize('name, shape, path, kind, kernel_shape', [
    ('dcgan28', (28, 28, 1), ('ConvTranspose_3',), disc.TRANSPOSE_TORCH,
     (4, 4, 1, dcgan.Generator28.widths[-1] // 4)),
    ('dcgan32', (32, 32, 3), ('Conv_0',), disc.CONV, (3, 3, dcgan.Generator32.widths[-1] // 4, 3)),
])
def test_last_conv_kernel_is_gs_last_conv(name, shape, path, kind, kernel_shape):
  gan, g_args = _gan(name, shape), _g_inputs()
  g_vars = _restored_like(gan.generator, *g_args)
  layer, kernel = disc.last_conv_kernel(gan.generator, g_vars, *g_args, train=False)
  assert layer == disc.ConvLayer(path, kind)
  assert kernel.shape == kernel_shape
  np.testing.assert_array_equal(kernel, g_vars['params'][path[0]]['kernel'])


@pytest.mark.parametrize('layer, kind', [
    (layers.conv(3, 3, 1, 1, use_bias=False), disc.CONV),
    (layers.conv_transpose(3, 4, 2, 1, use_bias=False), disc.TRANSPOSE_TORCH),
    (layers.conv_transpose(3, 4, 2, 1, use_bias=False, impl='xla'), disc.TRANSPOSE_TORCH),
    (nn.ConvTranspose(3, (4, 4), strides=(2, 2), padding='SAME', use_bias=False),
     disc.TRANSPOSE_FLAX),
])
def test_painted_patterns_are_the_impulse_response(layer, kind):
  """A unit activation of input map 1 paints exactly painted_patterns(...)[1] into the output."""
  impulse = np.zeros((1, 5, 5, 2), np.float32)
  impulse[0, 2, 2, 1] = 1.0
  variables = layer.init(jax.random.PRNGKey(0), impulse)
  [found] = disc.conv_layers(layer, variables, impulse)
  assert found.kind == kind
  output = np.asarray(layer.apply(variables, impulse))[0]
  rows, cols = np.nonzero(np.any(output != 0, axis=-1))
  painted = output[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
  expected = disc.painted_patterns(found, np.asarray(variables['params']['kernel']))[1]
  np.testing.assert_allclose(painted, expected, rtol=1e-5, atol=1e-6)


def test_filter_images_pick_rgb_or_channel_zero_and_scale_each_filter():
  patterns = np.arange(2 * 2 * 2 * 4, dtype=np.float32).reshape(2, 2, 2, 4) - 10
  rgb = disc.filter_images(patterns, image_channels=3)
  assert rgb.shape == (2, 2, 2, 3)
  np.testing.assert_allclose(np.max(np.abs(rgb), axis=(1, 2, 3)), 1.0)
  np.testing.assert_allclose(rgb[1], patterns[1, ..., :3] / np.max(np.abs(patterns[1, ..., :3])))
  gray = disc.filter_images(patterns, image_channels=1)
  np.testing.assert_allclose(gray[..., 0], patterns[..., 0] / np.max(
      np.abs(patterns[..., 0]), axis=(1, 2), keepdims=True))


@pytest.mark.parametrize('channels', [1, 3])
def test_saliency_of_a_linear_d_is_abs_weight(channels):
  rng = np.random.default_rng(0)
  weight = rng.normal(size=(6, 5, channels)).astype(np.float32)
  images = rng.normal(size=(3, 6, 5, channels)).astype(np.float32)
  labels = np.array([0, 1, 2], np.int32)

  def linear_d(x, y):
    return jnp.sum(x * weight, axis=(1, 2, 3)) + 0.5 * y

  maps = disc.saliency(linear_d, images, labels)
  assert maps.shape == (3, 6, 5)
  for saliency_map in maps:
    np.testing.assert_allclose(saliency_map, np.sum(np.abs(weight), axis=-1), rtol=1e-6)


def test_summarize_logits():
  summary = disc.summarize_logits(train=[2.0, -1.0, 3.0, 0.0], generated=[-2.0, -4.0],
                                  heldout=[1.0, -1.0, 0.5])
  assert summary['train'] == pytest.approx(
      {'count': 4, 'mean': 1.0, 'std': np.sqrt(2.5), 'fraction_real': 0.5})   # 0 is not real
  assert summary['generated'] == pytest.approx(
      {'count': 2, 'mean': -3.0, 'std': 1.0, 'fraction_real': 0.0})
  assert summary['heldout'] == pytest.approx(
      {'count': 3, 'mean': 1 / 6, 'std': np.std([1.0, -1.0, 0.5]), 'fraction_real': 2 / 3})
  assert summary['train_minus_heldout_mean'] == pytest.approx(1 - 1 / 6)
  without = disc.summarize_logits(train=[1.0], generated=[0.0])
  assert without['heldout'] is None and without['train_minus_heldout_mean'] is None


def test_not_applicable_without_a_discriminator():
  ctx = types.SimpleNamespace(has_discriminator=False, family='ddpm')
  with pytest.raises(NotApplicable, match='ddpm'):
    disc.discriminator(ctx)


@pytest.mark.parametrize('run, num_classes', [('gan', 0), ('cgan', 10)])
def test_analysis_on_a_trained_run(analysis_runs, tmp_path, run, num_classes):
  ctx = Context.load(analysis_runs[run], num=40, out_dir=str(tmp_path), heldout_split='t10k')
  result = disc.discriminator(ctx)
  assert sorted(result['files']) == sorted([
      'discriminator_d_filters.png', 'discriminator_g_filters.png',
      'discriminator_feature_maps.png', 'discriminator_saliency.png',
      'discriminator_logits.png'])
  for name in result['files']:
    assert os.path.getsize(tmp_path / name) > 0
  d_filters, g_filters = result['d_first_layer'], result['g_last_layer']
  assert (d_filters['layer'], d_filters['kernel_shape']) == ('Conv_0', [4, 4, 1 + num_classes, 16])
  assert d_filters['shown'] == 16 and d_filters['colour'] == 'channel 0'
  assert (g_filters['layer'], g_filters['kind']) == ('ConvTranspose_3', disc.TRANSPOSE_TORCH)
  assert len(g_filters['filter_norms']) == g_filters['kernel_shape'][3]
  # Conv_3, D's 3x3 -> 1x1 logit conv, has no map to show.
  assert [m['layer'] for m in result['feature_maps']['layers']] == ['Conv_0', 'Conv_1', 'Conv_2']
  assert result['feature_maps']['layers'][0]['shape'] == [14, 14, 16]
  assert len(result['saliency']['logits']) == 2 * disc.NUM_SHOWN
  assert result['saliency']['mean_real'] > 0 and result['saliency']['mean_generated'] > 0
  logits = result['logits']
  assert logits['heldout_split'] == 't10k'
  for group in ('train', 'heldout', 'generated'):
    assert logits[group]['count'] == 40
    assert 0 <= logits[group]['fraction_real'] <= 1
  assert logits['train_minus_heldout_mean'] == pytest.approx(
      logits['train']['mean'] - logits['heldout']['mean'])
  # The shown images are the first of each population: their logits agree.
  real, labels = ctx.real_images(40, name='discriminator')
  np.testing.assert_allclose(result['saliency']['logits'][:disc.NUM_SHOWN],
                             ctx.d_logits(real[:disc.NUM_SHOWN] / 127.5 - 1,
                                          labels[:disc.NUM_SHOWN]), rtol=1e-4, atol=1e-4)
  json.loads(json.dumps(result))   # the numbers are plain JSON
