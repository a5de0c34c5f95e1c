"""The metric formulas against direct reference computations (FD vs scipy sqrtm, KID vs numpy, IS,
PR, modes), and sharded over 4 devices against 1."""

import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics import frechet, inception_score, kid, modes, precision_recall
from tests.conftest import run_on_simulated_devices


def _scipy_frechet(mu1, s1, mu2, s2):
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_matches_scipy_sqrtm():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(500, 64)) @ rng.normal(size=(64, 64)) * 0.3
  b = rng.normal(size=(400, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 0.2
  sa, sb = frechet.statistics(a.astype(np.float32)), frechet.statistics(b.astype(np.float32))
  np.testing.assert_allclose(sa['mu'], a.mean(0), atol=1e-4)
  np.testing.assert_allclose(sa['sigma'], np.cov(a, rowvar=False), rtol=1e-4, atol=1e-4)
  expected = _scipy_frechet(sa['mu'], sa['sigma'], sb['mu'], sb['sigma'])
  assert expected > 1
  assert frechet.frechet_distance(sa, sb) == pytest.approx(expected, rel=1e-6)
  assert frechet.frechet_distance(sa, sa) == pytest.approx(0, abs=1e-6)
  # Rank-deficient covariances (fewer samples than dimensions), as with small sample counts.
  c = rng.normal(size=(20, 64))
  sc = frechet.statistics(c)
  assert frechet.frechet_distance(sa, sc) == pytest.approx(
      _scipy_frechet(sa['mu'], sa['sigma'], sc['mu'], sc['sigma']), rel=1e-5)


def _mmd2_numpy(x, y):
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1) ** 3
  m = len(x)
  kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
          + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


def test_kid_matches_direct_numpy():
  rng = np.random.default_rng(1)
  fake = rng.normal(size=(300, 16)).astype(np.float32)
  real = (rng.normal(size=(250, 16)) * 1.2 + 0.3).astype(np.float32)
  mean, std, m = kid.kernel_inception_distance(fake, real, num_subsets=7, subset_size=100,
                                               seed=3)
  assert m == 100
  # The same subsets, drawn the same way, computed directly in float64.
  draw = np.random.default_rng(3)
  fi = [draw.choice(300, 100, replace=False) for _ in range(7)]
  ri = [draw.choice(250, 100, replace=False) for _ in range(7)]
  values = [_mmd2_numpy(fake[i].astype(np.float64), real[j].astype(np.float64))
            for i, j in zip(fi, ri)]
  assert mean == pytest.approx(np.mean(values), rel=1e-4)
  assert std == pytest.approx(np.std(values), rel=1e-3)
  assert mean > 0.05
  # Unbiased: two samples of one distribution score near 0, far below the shifted pair.
  other = (rng.normal(size=(250, 16)) * 1.2 + 0.3).astype(np.float32)
  same, _, _ = kid.kernel_inception_distance(other, real, num_subsets=50, subset_size=200)
  assert abs(same) < 0.25 * mean


def test_inception_score_formula():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(103, 10)) * 3
  mean, std = inception_score.inception_score(logits, num_splits=10)
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for i in range(10):
    part = p[i * 103 // 10:(i + 1) * 103 // 10]
    py = part.mean(0)
    scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), 1))))
  assert mean == pytest.approx(np.mean(scores), rel=1e-5)
  assert std == pytest.approx(np.std(scores), rel=1e-4)
  # Known extremes: confident and balanced -> K; identical predictions -> 1.
  confident = np.eye(10)[np.arange(100) % 10] * 50
  assert inception_score.inception_score(confident)[0] == pytest.approx(10, rel=1e-4)
  assert inception_score.inception_score(np.tile(logits[:1], (100, 1)))[0] == pytest.approx(1)


def test_precision_recall_known_answer_and_brute_force():
  rng = np.random.default_rng(3)
  a = rng.normal(size=(50, 8)).astype(np.float32)
  b = (rng.normal(size=(50, 8)) + 100).astype(np.float32)
  real = np.concatenate([a, b])
  # The generator reproduces cluster A exactly and misses B: every sample is a
  # real point (precision 1), and exactly the A half of the real data is covered.
  precision, recall = precision_recall.precision_recall(a, real, k=3)
  assert (precision, recall) == (1.0, 0.5)
  far = a + 1000
  assert precision_recall.precision_recall(far, real, k=3) == (0.0, 0.0)

  fake = rng.normal(size=(70, 8)).astype(np.float32) * 1.3
  got = precision_recall.precision_recall(fake, real[:60], k=3)

  def brute(support, queries, k):
    d_ss = np.linalg.norm(support[:, None] - support[None], axis=-1)
    radii = np.sort(d_ss, 1)[:, k]
    d_qs = np.linalg.norm(queries[:, None] - support[None], axis=-1)
    return np.mean(np.any(d_qs <= radii[None], axis=1))
  expected = (brute(real[:60], fake, 3), brute(fake, real[:60], 3))
  assert got == pytest.approx(expected)
  assert 0 < got[0] < 1 and 0 < got[1] <= 1


def test_class_coverage_and_near_duplicates():
  present, kl, counts = modes.class_coverage(np.array([0, 0, 1, 1]), 4)
  assert present == 2 and kl == pytest.approx(np.log(2)) and counts.tolist() == [2, 2, 0, 0]
  present, kl, _ = modes.class_coverage(np.arange(1000) % 10, 10)
  assert present == 10 and kl == pytest.approx(0, abs=1e-12)
  assert modes.class_coverage(np.zeros(5, int), 1000)[1] == pytest.approx(np.log(1000))

  rng = np.random.default_rng(4)
  points = rng.normal(size=(40, 5)).astype(np.float32) * 10
  with_dups = np.concatenate([points, points[:3] + 1e-3, points[:1] + 2e-3])
  # Copies of point 0 form 3 pairs among themselves, points 1 and 2 one each.
  assert modes.near_duplicate_pairs(with_dups, 0.1) == 5
  assert modes.near_duplicate_pairs(points, 0.1) == 0
  threshold = modes.pair_distance_quantile(points, 0.5)
  d = np.linalg.norm(points[:, None] - points[None], axis=-1)[np.triu_indices(40, 1)]
  assert threshold == pytest.approx(np.quantile(d, 0.5), rel=1e-4)
  assert modes.near_duplicate_pairs(points, threshold) == pytest.approx(len(d) / 2, abs=2)


FOUR_DEVICES = '''
import jax, numpy as np
from gan_jax.metrics import batching, kid, modes, precision_recall
from gan_jax.parallel import devices as devices_lib
assert jax.device_count() == 4
rng = np.random.default_rng(0)
a = rng.normal(size=(103, 8)).astype(np.float32)
b = (rng.normal(size=(77, 8)) + 0.3).astype(np.float32)
four, one = devices_lib.make_mesh(), devices_lib.make_mesh(jax.devices()[:1])
for mesh in (four, one):
  fn = batching.jit_batched(lambda x: x * 2, mesh)
  assert len(fn.lower(jax.ShapeDtypeStruct((8, 8), np.float32)).compile()
             .input_shardings[0][0].device_set) == mesh.devices.size
assert precision_recall.precision_recall(a, b, 3, four) == precision_recall.precision_recall(a, b, 3, one)
k4, k1 = kid.kernel_inception_distance(a, b, four, 10, 50), kid.kernel_inception_distance(a, b, one, 10, 50)
assert np.allclose(k4, k1, rtol=1e-5), (k4, k1)
assert modes.near_duplicate_pairs(a, 2.0, four, 16) == modes.near_duplicate_pairs(a, 2.0, one, 16)
print('OK')
'''


def test_metrics_on_four_devices_equal_one_device():
  result = run_on_simulated_devices(FOUR_DEVICES, 4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout
