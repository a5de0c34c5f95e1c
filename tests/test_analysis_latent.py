"""Latent-space analyses: slerp/lerp, vector arithmetic, SeFa directions, class-weight labels."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.analysis import Context
from gan_jax.analysis import latent
from tests.conftest import make_config


# --- pure functions ----------------------------------------------------------------

def test_slerp_keeps_the_norm_of_unit_and_equal_norm_vectors():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 5, 16))
  ts = np.linspace(0, 1, 7)
  unit = latent.slerp(a / np.linalg.norm(a, axis=1, keepdims=True),
                      b / np.linalg.norm(b, axis=1, keepdims=True), ts)
  assert unit.shape == (5, 7, 16)
  np.testing.assert_allclose(np.linalg.norm(unit, axis=-1), 1.0, atol=1e-12)
  b_same_norm = b / np.linalg.norm(b, axis=1, keepdims=True) * np.linalg.norm(a, axis=1,
                                                                              keepdims=True)
  path = latent.slerp(a, b_same_norm, ts)
  np.testing.assert_allclose(np.linalg.norm(path, axis=-1),
                             np.repeat(np.linalg.norm(a, axis=1)[:, None], 7, 1), rtol=1e-12)
  # Endpoints exactly, and a real arc: lerp's chord would shrink in the middle.
  np.testing.assert_array_equal(path[:, 0], a)
  np.testing.assert_allclose(path[:, -1], b_same_norm, rtol=1e-12)
  chord = latent.lerp(a, b_same_norm, ts)
  assert np.all(np.linalg.norm(chord[:, 3], axis=-1) < 0.99 * np.linalg.norm(a, axis=1))


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
  a = np.array([[1.0, 2.0, -1.0]])
  ts = np.linspace(0, 1, 5)
  np.testing.assert_allclose(latent.slerp(a, 3 * a, ts), latent.lerp(a, 3 * a, ts))
  assert np.all(np.isfinite(latent.slerp(a, -a, ts)))


def test_lerp_is_affine():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(2, 4, 6))
  ts = np.array([0.0, 0.25, 0.5, 1.0])
  path = latent.lerp(a, b, ts)
  np.testing.assert_allclose(path, a[:, None] + ts[None, :, None] * (b - a)[:, None], atol=1e-12)
  # An affine map of the endpoints maps the whole path.
  matrix, shift = rng.normal(size=(6, 6)), rng.normal(size=6)
  np.testing.assert_allclose(latent.lerp(a @ matrix.T + shift, b @ matrix.T + shift, ts),
                             path @ matrix.T + shift, atol=1e-10)


def test_arithmetic_z_is_a_minus_b_plus_c_of_the_group_means():
  z_a = np.array([[1.0, 0.0], [3.0, 0.0]])
  z_b = np.array([[0.0, 1.0]])
  z_c = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
  np.testing.assert_allclose(latent.arithmetic_z(z_a, z_b, z_c), [2.0, 1.0])
  rng = np.random.default_rng(2)
  groups = [rng.normal(size=(n, 8)) for n in (5, 3, 7)]
  expected = groups[0].sum(0) / 5 - groups[1].sum(0) / 3 + groups[2].sum(0) / 7
  np.testing.assert_allclose(latent.arithmetic_z(*groups), expected, atol=1e-12)


def _probs(predicted, confidence, num_classes=4):
  """Softmax-like rows: `confidence` on the predicted class, the rest spread evenly."""
  probs = np.tile(((1 - confidence) / (num_classes - 1))[:, None], (1, num_classes))
  probs[np.arange(len(predicted)), predicted] = confidence
  return probs


def test_choose_groups_ranks_predicted_classes_by_their_confident_samples():
  predicted = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3])
  confidence = np.array([.9, .8, .2, 1.0, .9, .9, .5, .4, .3])
  groups = latent.choose_groups(_probs(predicted, confidence), group_size=2)
  # Class 1's single sure sample scores 1.0, below class 2's 1.8 and class 0's 1.7.
  assert [c for c, _, _ in groups] == [2, 0, 1]
  np.testing.assert_array_equal(groups[1][1], [0, 1])   # the two most confident of class 0
  assert all(by_prediction for _, _, by_prediction in groups)


def test_choose_groups_fills_up_when_few_classes_are_predicted():
  probs = np.array([[.7, .1, .1, .1], [.6, .3, .05, .05], [.5, .1, .35, .05],
                    [.55, .25, .1, .1], [.9, .05, .03, .02]])
  groups = latent.choose_groups(probs, group_size=2)
  assert [c for c, _, _ in groups] == [0, 1, 2]
  assert [by_prediction for _, _, by_prediction in groups] == [True, False, False]
  np.testing.assert_array_equal(groups[0][1], [4, 0])
  # Class 1 takes the free samples most likely of it; class 2 what is left.
  np.testing.assert_array_equal(groups[1][1], [1, 3])
  np.testing.assert_array_equal(groups[2][1], [2])


def test_sefa_directions_are_unit_eigenvectors_in_descending_order():
  rng = np.random.default_rng(3)
  kernel = rng.normal(size=(6, 20)) * np.array([3, 1, 2, 0.5, 1.5, 0.1])[:, None]
  eigenvalues, directions = latent.sefa_directions(kernel, 4)
  assert directions.shape == (4, 6) and eigenvalues.shape == (6,)
  assert np.all(np.diff(eigenvalues) <= 0)
  np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, atol=1e-12)
  a = kernel.T                                     # the layer's matrix, (out, in)
  for value, vector in zip(eigenvalues, directions):
    np.testing.assert_allclose(a.T @ a @ vector, value * vector, atol=1e-9)
  np.testing.assert_allclose(eigenvalues, np.linalg.svd(a, compute_uv=False) ** 2, rtol=1e-10)
  assert latent.sefa_directions(kernel, 50)[1].shape == (6, 6)


# --- class weights in place of labels ------------------------------------------------

@pytest.mark.parametrize('name, shape, conditioning', [('mlp', (8, 8, 1), 'concat'),
                                                       ('mlp', (8, 8, 1), 'cbn'),
                                                       ('resnet18d', (32, 32, 3), 'embed')])
def test_one_hot_weights_give_the_int_labels_output(name, shape, conditioning):
  config = make_config(**{'model.name': name, 'model.conditional': True,
                          'model.width_scale': 1 / 16, 'model.latent_dim': 8,
                          'model.g_conditioning': conditioning,
                          'model.d_conditioning': 'embed' if conditioning == 'embed' else 'concat'})
  gan = models.build(config.model, shape, 10)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 8))
  labels = jnp.array([0, 4, 9])
  variables = gan.generator.init(jax.random.PRNGKey(1), z, labels, train=False)
  # Per-class parameters start equal (cbn: scale 1, shift 0); make the class matter.
  rng = np.random.default_rng(2)
  params = jax.tree.map(lambda v: v + 0.3 * rng.normal(size=v.shape).astype(np.float32),
                        variables['params'])
  variables = {**variables, 'params': params}
  def apply(y):
    return gan.generator.apply(variables, z, y, train=False)
  by_id = apply(labels)
  by_weights = apply(jax.nn.one_hot(labels, 10))
  np.testing.assert_array_equal(np.asarray(by_weights), np.asarray(by_id))
  other = apply(jnp.array([1, 5, 8]))
  assert not np.allclose(other, by_id, atol=1e-4), 'the label does not change the output'
  half = apply(0.5 * jax.nn.one_hot(labels, 10) + 0.5 * jax.nn.one_hot(jnp.array([1, 5, 8]), 10))
  assert not np.allclose(half, by_id, atol=1e-4) and not np.allclose(half, other, atol=1e-4)


# --- the analyses on trained runs ----------------------------------------------------

@pytest.fixture(scope='module')
def contexts(analysis_runs, tmp_path_factory):
  out = tmp_path_factory.mktemp('latent_out')
  return {name: Context.load(analysis_runs[name], classifier=analysis_runs['classifier'],
                             num=200, out_dir=str(out / name), log=lambda *_: None)
          for name in ('gan', 'cgan')}


@pytest.mark.parametrize('run', ['gan', 'cgan'])
def test_interpolation_endpoints_are_the_endpoint_samples(contexts, run):
  ctx = contexts[run]
  draw, _ = latent.image_maker(ctx)
  z, labels = ctx.latents(4, 'test/endpoints')
  path = latent.slerp(z[:2], z[2:], np.linspace(0, 1, 5)).reshape(-1, z.shape[1])
  images = draw(path.astype(np.float32), np.repeat(labels[:2], 5)).reshape(2, 5, -1)
  ends = ctx.generate(z, np.concatenate([labels[:2], labels[:2]])).reshape(4, -1)
  np.testing.assert_allclose(images[:, 0], ends[:2], atol=1e-5)
  np.testing.assert_allclose(images[:, -1], ends[2:], atol=1e-5)
  assert not np.allclose(images[:, 2], ends[:2], atol=1e-3)


def test_class_morph_endpoints_are_the_two_classes(contexts):
  ctx = contexts['cgan']
  assert latent.blend_method(ctx)[0] == 'one-hot mixture'
  z, _ = ctx.latents(2, 'test/morph')
  eye = np.eye(ctx.gan.num_classes, dtype=np.float32)
  weights = np.stack([eye[3], eye[7], 0.5 * eye[3] + 0.5 * eye[7]])
  blended = ctx.generate(np.repeat(z[:1], 3, 0), weights)
  by_id = ctx.generate(np.repeat(z[:1], 2, 0), np.array([3, 7]))
  np.testing.assert_allclose(blended[:2], by_id, atol=1e-5)
  assert not np.allclose(blended[2], by_id[0], atol=1e-4)


def _check_written(ctx, name, numbers):
  assert numbers['files'] and all(f.startswith(name + '_') for f in numbers['files'])
  for f in numbers['files']:
    assert os.path.getsize(ctx.path(f)) > 0
  ctx.save_json(f'{name}.json', numbers)   # the numbers are JSON-writable


@pytest.mark.parametrize('run', ['gan', 'cgan'])
def test_interpolate_runs(contexts, run):
  ctx = contexts[run]
  numbers = latent.interpolate(ctx)
  _check_written(ctx, 'interpolate', numbers)
  assert {'interpolate_slerp.png', 'interpolate_lerp.png'} <= set(numbers['files'])
  slerp_norms, lerp_norms = numbers['slerp']['norm_profile'], numbers['lerp']['norm_profile']
  assert len(slerp_norms) == latent.STEPS
  assert lerp_norms[latent.STEPS // 2] < slerp_norms[latent.STEPS // 2]   # the chord dips
  if run == 'cgan':
    assert {'interpolate_classes.png', 'interpolate_morph.png'} <= set(numbers['files'])
    assert numbers['morph']['method'] == 'one-hot mixture'
    assert len(numbers['class_grid']['rows']) == ctx.gan.num_classes
  else:
    assert 'morph' not in numbers


@pytest.mark.parametrize('run', ['gan', 'cgan'])
def test_arithmetic_runs(contexts, run):
  ctx = contexts[run]
  numbers = latent.arithmetic(ctx)
  _check_written(ctx, 'arithmetic', numbers)
  assert numbers['population'] >= latent.MIN_POPULATION
  classes = {numbers[g]['class_id'] for g in 'ABC'}
  assert len(classes) == 3
  assert 'not implemented' in numbers['attribute_groups']
  if run == 'cgan':
    assert numbers['C']['class'] in numbers['labels']


@pytest.mark.parametrize('run', ['gan', 'cgan'])
def test_directions_runs(contexts, run):
  ctx = contexts[run]
  numbers = latent.directions(ctx)
  _check_written(ctx, 'directions', numbers)
  latent_dim = ctx.gan.latent_dim
  # dcgan28's first layer: a 3x3 transposed conv of z (+ the one-hot under concat).
  assert numbers['kernel_shape'][0] == latent_dim + (ctx.gan.num_classes if run == 'cgan' else 0)
  assert numbers['rows_for_z'] == latent_dim
  directions = np.asarray(numbers['directions'])
  assert directions.shape == (latent.SEFA_K, latent_dim)
  np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, atol=1e-6)
  assert np.all(np.diff(numbers['eigenvalues']) <= 0)


def test_first_layer_kernel_is_the_first_layers_jacobian_on_z(contexts):
  ctx = contexts['cgan']   # dcgan28: a 3x3 transposed conv of the 1x1 map (z, one-hot)
  layer = latent.first_layer_on_z(ctx)
  latent_dim = ctx.gan.latent_dim
  z, labels = ctx.latents(1, 'test/jacobian')

  def first_output(z_row):
    outputs = []

    def record(next_fun, args, kwargs, context):
      output = next_fun(*args, **kwargs)
      if not outputs and isinstance(context.module, latent.LINEAR_LAYERS):
        outputs.append(output)
      return output
    with nn.intercept_methods(record):
      ctx.g_apply(z_row[None], labels)
    return outputs[0].reshape(-1)

  jacobian = np.asarray(jax.jit(jax.jacobian(first_output))(jnp.asarray(z[0])))   # (outputs, z)
  kernel = layer['kernel'][:latent_dim]
  # Equal Gram matrices: the same linear map on z, whatever the order of its outputs.
  np.testing.assert_allclose(kernel @ kernel.T, jacobian.T @ jacobian, rtol=1e-4, atol=1e-6)
