"""ADA's augmentation pipeline: exact identity at p = 0, gradients, each op's geometry and colour maths, p and r_t."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_jax import errors
from gan_jax.core import ada

ALL_OPS = ada.parse_ops('blit,geom,color,cutout')
# Jitted once per shape: eager dispatch compiles every primitive separately,
# which costs more on CPU than one compile of the whole function.
augment_jit = jax.jit(ada.augment, static_argnames='ops')
resample = jax.jit(ada.resample_affine)
translate = jax.jit(ada.translate_int)
color = jax.jit(ada.color_transform)
cut = jax.jit(ada.cutout)


def _images(shape=(4, 8, 8, 3), seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1, maxval=1)


def _changed(a, b):
  return np.any(np.asarray(a) != np.asarray(b), axis=(1, 2, 3))


# ---------------------------------------------------------------- pipeline


@pytest.mark.parametrize('shape', [(4, 8, 8, 3), (2, 16, 16, 1)])
def test_augment_at_p_zero_is_bitwise_identity(shape):
  x = _images(shape)
  out = augment_jit(x, jnp.float32(0.0), jax.random.PRNGKey(1), ALL_OPS)
  assert out.dtype == x.dtype
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


def test_augment_at_p_one_changes_every_example_independently():
  x = _images()
  out = augment_jit(x, jnp.float32(1.0), jax.random.PRNGKey(1), ALL_OPS)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert np.isfinite(np.asarray(out)).all() and _changed(out, x).all()
  # One image repeated: every copy must come out differently.
  same = jnp.broadcast_to(x[:1], x.shape)
  out = np.asarray(augment_jit(same, jnp.float32(1.0), jax.random.PRNGKey(2), ALL_OPS))
  distances = np.abs(out[:, None] - out[None, :]).max(axis=(2, 3, 4))
  assert (distances[~np.eye(4, dtype=bool)] > 1e-3).all()


def test_augment_is_differentiable():
  # For fixed draws the pipeline is affine in the images, so central
  # differences are exact up to rounding, which a large eps keeps small.
  x = _images(seed=2)
  def fn(im):
    # Same shapes and dtypes as the other augment_jit calls: no new forward compile.
    return augment_jit(im, jnp.float32(1.0), jax.random.PRNGKey(4), ALL_OPS)
  check_grads(fn, (x,), order=1, modes=['rev'], eps=0.1, atol=2e-2, rtol=2e-2)
  _, pullback = jax.vjp(fn, x)
  grad, = pullback(_images(seed=5))
  assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).sum() > 0


def test_each_op_is_applied_with_probability_p():
  # xflip is chosen with p and then flips with 1/2: 0.25 of the batch at p = 0.5.
  x = _images((256, 4, 4, 3))
  out = augment_jit(x, jnp.float32(0.5), jax.random.PRNGKey(7), ('xflip',))
  changed = _changed(out, x)
  assert 0.15 < changed.mean() < 0.35
  flipped = np.asarray(x)[:, :, ::-1]
  np.testing.assert_array_equal(np.asarray(out)[changed], flipped[changed])
  # rotate draws two rotations, each with 1 - sqrt(1 - p), so some rotation with p.
  out = augment_jit(x, jnp.float32(0.5), jax.random.PRNGKey(7), ('rotate',))
  assert 0.4 < _changed(out, x).mean() < 0.6


def test_augment_rejects_unknown_ops():
  with pytest.raises(errors.ConfigError, match='sharpen'):
    ada.augment(_images(), 0.5, jax.random.PRNGKey(0), ('xflip', 'sharpen'))


# ---------------------------------------------------------------- blit ops


def test_xflip_twice_is_identity_and_flips_only_selected():
  x = _images()
  flip = jnp.array([True, False, True, False])
  once = ada.xflip(x, flip)
  np.testing.assert_array_equal(np.asarray(once)[0], np.asarray(x)[0, :, ::-1])
  np.testing.assert_array_equal(np.asarray(once)[1], np.asarray(x)[1])
  np.testing.assert_array_equal(np.asarray(ada.xflip(once, flip)), np.asarray(x))


def test_rotate90_matches_np_rot90_and_inverts():
  x = _images()
  k = jnp.array([0, 1, 2, 3])
  out = np.asarray(ada.rotate90(x, k))
  for b in range(4):
    np.testing.assert_array_equal(out[b], np.rot90(np.asarray(x)[b], b, axes=(0, 1)))
  np.testing.assert_array_equal(np.asarray(ada.rotate90(ada.rotate90(x, k), (4 - k) % 4)),
                                np.asarray(x))
  ones = jnp.ones(4, jnp.int32)
  four_times = x
  for _ in range(4):
    four_times = ada.rotate90(four_times, ones)
  np.testing.assert_array_equal(np.asarray(four_times), np.asarray(x))


def test_rotate90_rejects_non_square_images():
  with pytest.raises(ValueError, match='square'):
    ada.rotate90(jnp.zeros((1, 4, 6, 1)), jnp.array([1]))


def test_translate_int_round_trip_restores_interior():
  x = _images()
  dx, dy = jnp.array([2, -1, 0, 3]), jnp.array([1, 2, -3, 0])
  back = np.asarray(translate(translate(x, dx, dy), -dx, -dy))
  for b in range(4):
    # Pixels that stayed inside the image both ways: rows/cols not within |shift| of an edge.
    ax, ay = abs(int(dx[b])), abs(int(dy[b]))
    np.testing.assert_array_equal(back[b, ay:8 - ay, ax:8 - ax], np.asarray(x)[b, ay:8 - ay, ax:8 - ax])
  zero = jnp.zeros(4, jnp.int32)
  np.testing.assert_array_equal(np.asarray(translate(x, zero, zero)), np.asarray(x))


def test_translate_int_reflects_at_the_border_like_np_pad():
  row = np.arange(8, dtype=np.float32)
  x = jnp.asarray(np.broadcast_to(row[None, :, None], (8, 8, 1))[None])
  right = np.asarray(translate(x, jnp.array([2]), jnp.array([0])))[0, 0, :, 0]
  np.testing.assert_array_equal(right, [2, 1, 0, 1, 2, 3, 4, 5])
  np.testing.assert_array_equal(right, np.pad(row, (2, 0), mode='reflect')[:8])
  left = np.asarray(translate(x, jnp.array([-3]), jnp.array([0])))[0, 0, :, 0]
  np.testing.assert_array_equal(left, np.pad(row, (0, 3), mode='reflect')[3:])
  # out[y] = in[y - dy]: a positive dy moves content down.
  col = np.asarray(translate(jnp.swapaxes(x, 1, 2), jnp.array([0]), jnp.array([1])))
  np.testing.assert_array_equal(col[0, :, 0, 0], [1, 0, 1, 2, 3, 4, 5, 6])


# ---------------------------------------------------------------- resampling


def _translation(tx, ty):
  return jnp.array([[1.0, 0.0, -tx], [0.0, 1.0, -ty], [0.0, 0.0, 1.0]])


def test_resample_identity_reproduces_input():
  x = _images((2, 8, 6, 3))
  out = resample(x, jnp.broadcast_to(jnp.eye(3), (2, 3, 3)))
  np.testing.assert_allclose(np.asarray(out), np.asarray(x), atol=1e-5)


def test_resample_integer_translation_equals_translate_int():
  x = _images()
  dx, dy = [2, -1, 0, 9], [1, 3, -2, -4]
  matrices = jnp.stack([_translation(a, b) for a, b in zip(dx, dy)])
  np.testing.assert_allclose(np.asarray(resample(x, matrices)),
                             np.asarray(translate(x, jnp.array(dx), jnp.array(dy))),
                             atol=1e-5)


def test_resample_rotation_matrix_matches_rotate90():
  x = _images()
  angles = jnp.array([0.0, 0.5, 1.0, 1.5]) * math.pi
  cos, sin = jnp.cos(angles), jnp.sin(angles)
  matrices = jnp.stack([jnp.stack([cos, -sin, 0 * cos], -1), jnp.stack([sin, cos, 0 * cos], -1),
                        jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0]), (4, 3))], 1)
  np.testing.assert_allclose(np.asarray(resample(x, matrices)),
                             np.asarray(ada.rotate90(x, jnp.arange(4))), atol=1e-5)


def test_resample_fractional_shift_moves_a_ramp_the_right_way():
  # Keys' cubic reproduces linear signals, so a ramp shifted right by 0.3
  # reads x - 0.3 wherever all four taps are inside the image.
  ramp = jnp.broadcast_to(jnp.arange(8.0)[None, None, :, None], (1, 8, 8, 1))
  out = np.asarray(resample(ramp, _translation(0.3, 0.0)[None]))[0, :, :, 0]
  np.testing.assert_allclose(out[:, 2:6], np.broadcast_to(np.arange(2, 6) - 0.3, (8, 4)), atol=1e-5)
  constant = resample(jnp.ones((1, 8, 8, 1)), _translation(0.3, -0.7)[None])
  np.testing.assert_allclose(np.asarray(constant), 1.0, atol=1e-6)


# ---------------------------------------------------------------- colour


def test_color_identity_and_full_hue_turn_are_identity():
  x = _images()
  np.testing.assert_allclose(np.asarray(color(x, jnp.broadcast_to(jnp.eye(4), (4, 4, 4)))),
                             np.asarray(x), atol=1e-6)
  full_turn = ada._hue_matrix(jnp.full((4,), 2 * math.pi))
  np.testing.assert_allclose(np.asarray(color(x, full_turn)), np.asarray(x), atol=1e-5)


def test_lumaflip_twice_is_identity_and_negates_gray():
  x = _images()
  flip = ada._lumaflip_matrix(jnp.ones((4,), bool))
  twice = color(color(x, flip), flip)
  np.testing.assert_allclose(np.asarray(twice), np.asarray(x), atol=1e-5)
  gray = jnp.full((4, 2, 2, 3), 0.4)
  np.testing.assert_allclose(np.asarray(color(gray, flip)), -0.4, atol=1e-6)


def test_hue_and_saturation_preserve_luma_and_change_colour():
  x = _images()
  luma = np.asarray(x).mean(-1)
  for matrices in (ada._hue_matrix(jnp.array([0.3, -1.0, 2.0, 3.0])),
                   ada._saturation_matrix(jnp.array([0.2, 0.5, 2.0, 4.0]))):
    out = np.asarray(color(x, matrices))
    np.testing.assert_allclose(out.mean(-1), luma, atol=1e-5)
    assert np.abs(out - np.asarray(x)).max() > 0.05


def test_gray_images_get_brightness_added():
  x = _images((2, 16, 16, 1))
  b = jnp.array([0.1, -0.3])
  out = color(x, ada._brightness_matrix(b))
  assert out.shape == x.shape
  np.testing.assert_allclose(np.asarray(out), np.asarray(x + b[:, None, None, None]), atol=1e-6)


def test_cutout_zeroes_a_quarter_of_the_area_only_where_applied():
  x = _images((4, 16, 16, 3)) + 2.0   # no pixel is 0 by chance
  out = np.asarray(cut(x, jnp.array([True, True, False, True]), jax.random.PRNGKey(0)))
  zeroed = (out == 0).all(-1)
  np.testing.assert_array_equal(out[2], np.asarray(x)[2])
  for b in (0, 1, 3):
    rows, cols = np.nonzero(zeroed[b])
    assert 0 < zeroed[b].sum() <= 64
    assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8
    np.testing.assert_array_equal(out[b][~zeroed[b]], np.asarray(x)[b][~zeroed[b]])


# ---------------------------------------------------------------- config and p


def test_parse_ops_expands_groups_in_pipeline_order():
  assert ada.parse_ops('blit') == ('xflip', 'rotate90', 'xint')
  assert ada.parse_ops('color, blit') == ada.OP_GROUPS['blit'] + ada.OP_GROUPS['color']
  assert ada.parse_ops('cutout,hue,geom,xflip,hue') == (
      'xflip', 'scale', 'rotate', 'aniso', 'xfrac', 'hue', 'cutout')


def test_parse_ops_rejects_unknown_and_empty():
  with pytest.raises(errors.ConfigError, match='sharpen') as info:
    ada.parse_ops('blit,sharpen')
  assert 'geom' in str(info.value) and 'saturation' in str(info.value)
  for spec in ('', ' , '):
    with pytest.raises(errors.ConfigError, match='empty'):
      ada.parse_ops(spec)


def test_adjust_p_moves_by_the_step_and_clips():
  step = 64 * 4 / (500 * 1000)
  kwargs = dict(target=0.6, batch_size=64, interval=4, kimg=500)
  assert float(ada.adjust_p(0.5, 0.9, **kwargs)) == pytest.approx(0.5 + step)
  assert float(ada.adjust_p(0.5, 0.1, **kwargs)) == pytest.approx(0.5 - step)
  assert float(ada.adjust_p(0.5, 0.6, **kwargs)) == pytest.approx(0.5)
  assert float(ada.adjust_p(0.0, 0.1, **kwargs)) == 0.0
  assert float(ada.adjust_p(1.0 - step / 2, 0.9, **kwargs)) == 1.0


def test_heuristic_rt_is_mean_sign_of_real_logits():
  rt = ada.heuristic_rt(jnp.array([2.0, -1.0, 3.0, 0.5]))
  assert rt.dtype == jnp.float32 and float(rt) == 0.5
