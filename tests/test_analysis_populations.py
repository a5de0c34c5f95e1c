"""The population analyses: `spectrum`, `duplicates` and `embedding` (gan_jax/analysis).

Their pure parts on synthetic inputs whose answer is known (a checkerboard's
Nyquist peak, a constant image's lone DC term, a ring's radial profile, a
planted exact copy, two separated clusters), then each analysis on the tiny
trained runs of the `analysis_runs` fixture.
"""

from __future__ import annotations

import importlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import threadpoolctl

from gan_jax.analysis import ANALYSES, Context
from gan_jax.analysis import duplicates, embedding, spectrum
from gan_jax.models import layers


@pytest.fixture(autouse=True)
def one_openmp_thread():
  """t-SNE's Barnes-Hut gradient on one thread: on a busy machine its spinning OpenMP
  threads took 5-10 s for 60 points instead of 0.3 s."""
  importlib.import_module('sklearn.manifold')   # loads the OpenMP runtime to be limited
  with threadpoolctl.threadpool_limits(1, user_api='openmp'):
    yield


# --- spectrum -----------------------------------------------------------------------------

def test_checkerboard_peaks_at_the_nyquist_corner():
  size = 16
  rows, cols = np.indices((size, size))
  checkerboard = (-1.0) ** (rows + cols)
  log_spectrum = spectrum.mean_log_spectrum(checkerboard[None])
  # After fftshift the Nyquist frequency (H/2, W/2) is the corner (0, 0).
  assert np.unravel_index(np.argmax(log_spectrum), log_spectrum.shape) == (0, 0)
  # Orthonormal FFT: all the energy (size**2 squared pixels) in one coefficient.
  np.testing.assert_allclose(log_spectrum[0, 0], np.log(size + spectrum.EPS), rtol=1e-9)
  others = np.delete(log_spectrum.ravel(), 0)
  assert others.max() < np.log(1e-5)

  # The same checkerboard over smooth images: the gap is at the highest frequencies only.
  smooth = np.random.default_rng(0).normal(size=(8, size, size)).cumsum(1).cumsum(2) / 20
  gaps = spectrum.high_frequency_gaps(spectrum.mean_log_spectrum(smooth),
                                      spectrum.mean_log_spectrum(smooth + checkerboard))
  assert gaps['nyquist_corner'] > 2.0
  assert gaps['nyquist_corner'] > gaps['nyquist_lines'] > 0
  assert gaps['outer_ring'] > 0


def test_constant_image_has_only_the_dc_term():
  """The mean is kept (not removed), so a constant image's spectrum is its DC term alone."""
  height, width = 12, 10
  images = np.full((3, height, width, 3), 0.5)
  log_spectrum = spectrum.mean_log_spectrum(images)
  assert log_spectrum.shape == (height, width)
  # DC sits at (H // 2, W // 2) after fftshift; orthonormal: 0.5 * sqrt(H * W).
  np.testing.assert_allclose(log_spectrum[height // 2, width // 2],
                             np.log(0.5 * np.sqrt(height * width) + spectrum.EPS), rtol=1e-9)
  off_dc = np.ones(log_spectrum.shape, bool)
  off_dc[height // 2, width // 2] = False
  np.testing.assert_allclose(log_spectrum[off_dc], np.log(spectrum.EPS), atol=1e-6)


def test_radial_profile_of_a_ring_and_of_plane_waves():
  size, ring = 32, 5
  radius = spectrum.frequency_radius((size, size))
  profile = spectrum.radial_profile((np.rint(radius) == ring).astype(float))
  # Out to the corner: radius 16 * sqrt(2) rounds to 23.
  assert len(profile) == 24
  expected = np.zeros(24)
  expected[ring] = 1.0
  np.testing.assert_array_equal(profile, expected)
  # A linear ramp in the radius averages to the bin's radius, within the bin's half width.
  np.testing.assert_allclose(spectrum.radial_profile(radius), np.arange(24), atol=0.5)

  # Plane waves of 4 cycles along each axis: the profile peaks at radius 4 (DC aside).
  rows, cols = np.indices((size, size))
  waves = np.cos(2 * np.pi * 4 * cols / size) + np.cos(2 * np.pi * 4 * rows / size)
  wave_profile = spectrum.radial_profile(spectrum.mean_log_spectrum(waves[None]))
  assert np.argmax(wave_profile[1:]) + 1 == 4


def test_swapped_conv_transpose_builds_the_other_implementation():
  """Inside the swap the layer is XLA's input-dilated convolution; outside, the sub-pixel one."""
  x = jnp.ones((1, 7, 7, 3))

  def jaxpr_text():
    layer = layers.conv_transpose(4, 4, 2, 1)
    variables = layer.init(jax.random.PRNGKey(0), x)
    return str(jax.make_jaxpr(lambda v: layer.apply(v, x))(variables))

  original = layers.conv_transpose
  assert 'lhs_dilation=(2, 2)' not in jaxpr_text()
  seen = []
  with spectrum._conv_transpose_swapped(seen):   # pylint: disable=protected-access
    assert 'lhs_dilation=(2, 2)' in jaxpr_text()
  assert seen == ['subpixel']
  assert layers.conv_transpose is original


# --- duplicates ---------------------------------------------------------------------------

def test_nearest_neighbour_finds_a_planted_copy_at_distance_zero():
  rng = np.random.default_rng(1)
  references = rng.normal(size=(40, 16))
  queries = rng.normal(size=(50, 16))
  queries[7] = references[23]
  indices, distances = duplicates.nearest_neighbours(queries, references)
  assert indices[7] == 23 and distances[7] == 0.0
  assert np.all(np.delete(distances, 7) > 0.1)
  full = np.linalg.norm(queries[:, None] - references[None], axis=-1)
  np.testing.assert_array_equal(indices, full.argmin(1))
  np.testing.assert_allclose(distances, full.min(1), rtol=1e-9)


def test_nearest_neighbour_within_one_set_skips_itself():
  features = np.random.default_rng(2).normal(size=(30, 8))
  features[11] = features[3]
  indices, distances = duplicates.nearest_neighbours(features, features, exclude_self=True)
  assert np.all(indices != np.arange(30))
  assert (indices[3], indices[11]) == (11, 3)
  assert distances[3] == distances[11] == 0.0
  pairs = duplicates.closest_pairs(indices, distances, 4)
  assert pairs[0] == (3, 11, 0.0)
  assert len({(i, j) for i, j, _ in pairs}) == len(pairs) == 4   # each unordered pair once
  assert [d for _, _, d in pairs] == sorted(d for _, _, d in pairs)


# --- embedding ----------------------------------------------------------------------------

def test_tsne_separates_two_clusters():
  rng = np.random.default_rng(3)
  features = np.concatenate([rng.normal(0, 1, (30, 10)), rng.normal(12, 1, (30, 10))])
  cluster = np.repeat([0, 1], 30)
  perplexity = embedding.suited_perplexity(len(features))
  assert 3 * perplexity <= len(features) - 1
  assert embedding.suited_perplexity(5000) == embedding.MAX_PERPLEXITY
  coordinates, kl = embedding.tsne_embedding(features, perplexity, seed=0)
  assert coordinates.shape == (60, 2) and np.all(np.isfinite(coordinates)) and kl > 0
  # Each point's nearest point in the plane is in its own cluster.
  planar = np.linalg.norm(coordinates[:, None] - coordinates[None], axis=-1)
  np.fill_diagonal(planar, np.inf)
  assert np.all(cluster[planar.argmin(1)] == cluster)


# --- on trained runs ----------------------------------------------------------------------

@pytest.fixture(scope='module')
def gan_context(analysis_runs, tmp_path_factory):
  """One context for the unconditional run, so the analyses share its compiled G and classifier."""
  return Context.load(analysis_runs['gan'], classifier=analysis_runs['classifier'], num=60,
                      out_dir=str(tmp_path_factory.mktemp('analysis')), heldout_split='t10k')


def _check_files(ctx, numbers, prefix):
  assert numbers['files'] and all(name.startswith(prefix + '_') for name in numbers['files'])
  for name in numbers['files']:
    assert os.path.getsize(ctx.path(name)) > 1000
  json.dumps(numbers)   # what gan_jax.analyze writes


def test_analyses_are_registered():
  for name, module in (('spectrum', spectrum), ('duplicates', duplicates),
                       ('embedding', embedding)):
    assert ANALYSES.get(name) is getattr(module, name)


def test_spectrum_on_a_trained_run(gan_context):
  numbers = spectrum.spectrum(gan_context)
  _check_files(gan_context, numbers, 'spectrum')
  assert numbers['num_real'] == numbers['num_generated'] == 60
  # 28x28: radii out to 14 * sqrt(2), rounded: 21 bins after DC.
  assert len(numbers['real_profile']) == len(numbers['generated_profile']) == 21
  assert np.all(np.isfinite(numbers['generated_profile']))
  assert set(numbers['generated_minus_real']) == {'outer_ring', 'nyquist_lines',
                                                  'nyquist_corner'}
  impls = numbers['conv_transpose_impls']
  # dcgan28's G: four transposed convolutions, all sub-pixel in the run.
  assert impls['run'] == ['subpixel'] and impls['other'] == ['xla'] and impls['layers'] == 4
  # The same function computed two ways: equal up to float rounding.
  assert impls['max_abs_image_diff'] < 1e-4
  assert impls['max_abs_spectrum_diff'] < 1e-3
  assert layers.conv_transpose.__name__ == 'conv_transpose'   # the swap is undone


def test_duplicates_on_a_trained_run(gan_context):
  numbers = duplicates.duplicates(gan_context)
  _check_files(gan_context, numbers, 'duplicates')
  # 80 training images (< TRAIN_SUBSET, so all of them); t10k is the same 80 reversed.
  assert numbers['num_train_subset'] == 80 and numbers['num_heldout'] == 60
  assert 't10k' in numbers['heldout_source']
  # Every held-out image is a copy of a training image: found at distance ~0.
  assert numbers['heldout_to_train']['median'] < 1e-4
  assert len(numbers['generated_pairs']) == len(numbers['sample_to_train_pairs']) == 8
  pair_distances = [p['distance'] for p in numbers['sample_to_train_pairs']]
  assert pair_distances == sorted(pair_distances)
  assert pair_distances[0] == pytest.approx(numbers['sample_to_train']['min'])
  assert numbers['generated_nn']['count'] == 60


def test_duplicates_without_a_heldout_split_uses_disjoint_training_images(analysis_runs,
                                                                          tmp_path):
  ctx = Context.load(analysis_runs['gan'], classifier=analysis_runs['classifier'], num=60,
                     out_dir=str(tmp_path))
  numbers = duplicates.duplicates(ctx)
  # 80 images: 40 held out, 40 searched; no image in both (they are all distinct).
  assert numbers['num_train_subset'] + numbers['num_heldout'] == 80
  assert numbers['num_heldout'] == 40
  assert 'outside the subset' in numbers['heldout_source']
  assert numbers['heldout_to_train']['min'] > 1e-3


def test_embedding_on_a_trained_run(gan_context):
  numbers = embedding.embedding(gan_context)
  _check_files(gan_context, numbers, 'embedding')
  assert numbers['num_real'] == numbers['num_generated'] == 60
  assert numbers['perplexity'] == embedding.suited_perplexity(120)
  assert numbers['generated_colour'] == "classifier's predicted class"
  counts = numbers['generated_predicted_class_counts']
  assert len(counts) == 10 and sum(counts.values()) == 60
  assert numbers['generated_empty_classes'] == [k for k, v in counts.items() if v == 0]
  assert sum(numbers['real_class_counts'].values()) == 60


def test_embedding_of_a_conditional_run_colours_by_label(analysis_runs, tmp_path):
  ctx = Context.load(analysis_runs['cgan'], classifier=analysis_runs['classifier'], num=20,
                     out_dir=str(tmp_path))
  numbers = embedding.embedding(ctx)
  _check_files(ctx, numbers, 'embedding')
  assert numbers['generated_colour'] == 'conditioning label'
  assert 0.0 <= numbers['generated_label_agreement'] <= 1.0
  assert sum(numbers['generated_predicted_class_counts'].values()) == 20
