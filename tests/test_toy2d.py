"""The 2D lab: distributions, metrics with known answers, the figure, fused steps, the trainer, sweeps."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from gan_jax import errors
from gan_jax import generate
from gan_jax.config import base as config_base
from gan_jax.toy2d import distributions, lab as lab_lib, metrics, sweep
from gan_jax.toy2d.defaults import lab_config
from gan_jax.training import reporting
from gan_jax.training import trainers
from gan_jax.viz import toy2d as viz


def tiny_lab_config(name='ring', **overrides):
  config = lab_config(name)
  # Every period is 3 so that all tests compile the same 3-step program (and
  # hit the persistent compilation cache).
  values = {'model.hidden': 8, 'train.batch_size': 8, 'train.num_steps': 6,
            'train.log_every': 3, 'train.sample_every': 3, 'train.checkpoint_every': 3,
            'toy2d.steps_per_call': 3, 'toy2d.eval_samples': 200, 'toy2d.mode_samples': 100,
            'toy2d.plot_points': 50, 'toy2d.plot_resolution': 8}
  values.update(overrides)
  for key, value in values.items():
    sweep.set_value(config, key, value)
  return config


def _sample(name, n=4000, **overrides):
  config = tiny_lab_config(name, **overrides)
  return np.asarray(distributions.build(config).sample(jax.random.PRNGKey(0), n))


def test_report_distributions_have_their_shape_and_range():
  sine = _sample('sine', **{'toy2d.sine_frequency': 3.0})
  assert sine.shape == (4000, 2) and sine.dtype == np.float32
  assert np.all(np.abs(sine[:, 0]) <= 1)
  band = sine[:, 1] - np.sin(3.0 * sine[:, 0])
  assert np.all(np.abs(band) <= 0.25 + 1e-6) and band.std() > 0.1   # y/4 fills the band

  circle = _sample('circle')
  radius = np.linalg.norm(circle, axis=1)
  assert circle.shape == (4000, 2) and radius.max() <= 0.5 + 1e-6
  # radius = |x|/2 with x uniform: uniform radius, hence densest at the centre.
  assert abs(np.mean(radius < 0.25) - 0.5) < 0.05

  wing = _sample('wing')
  r = np.linalg.norm(wing, axis=1)
  assert wing.shape == (4000, 2) and r.max() <= 0.5 + 1e-6
  # Each point is (x/2 cos 3 pi x, x/2 sin 3 pi x) for x = +2r or -2r.
  fits = [np.hypot(wing[:, 0] - x / 2 * np.cos(3 * np.pi * x),
                   wing[:, 1] - x / 2 * np.sin(3 * np.pi * x)) for x in (2 * r, -2 * r)]
  assert np.all(np.minimum(*fits) < 1e-4)


@pytest.mark.parametrize('name, modes, std', [('ring', 8, 0.01), ('grid', 25, 0.05)])
def test_mixtures_sample_every_mode_with_its_std(name, modes, std):
  points = _sample(name, n=10_000)
  target = distributions.build(tiny_lab_config(name))
  assert target.modes.shape == (modes, 2) and target.mode_std == std
  d = np.linalg.norm(points[:, None] - target.modes[None], axis=-1)
  nearest = d.argmin(axis=1)
  assert len(np.unique(nearest)) == modes
  offsets = points - target.modes[nearest]
  np.testing.assert_allclose(offsets.std(axis=0), [std, std], rtol=0.05)
  if name == 'ring':
    np.testing.assert_allclose(np.linalg.norm(target.modes, axis=1), 1.0, rtol=1e-6)
  else:
    assert sorted(set(target.modes[:, 0].round(6))) == [-4, -2, 0, 2, 4]


def test_points_from_npy_and_csv(tmp_path):
  data = np.array([[0.0, 1.0], [2.0, 3.0], [-1.5, 0.5]], np.float32)
  np.save(tmp_path / 'p.npy', data)
  (tmp_path / 'p.csv').write_text('x,y\n0,1\n2,3\n-1.5,0.5\n')
  for path in (tmp_path / 'p.npy', tmp_path / 'p.csv'):
    points = _sample('points', n=300, **{'data.path': str(path)})
    assert points.shape == (300, 2)
    assert {tuple(p) for p in points.tolist()} == {tuple(p) for p in data.tolist()}
  np.save(tmp_path / 'bad.npy', np.zeros((4, 3)))
  with pytest.raises(errors.DataError, match='N x 2'):
    _sample('points', **{'data.path': str(tmp_path / 'bad.npy')})
  with pytest.raises(errors.DataNotFoundError, match='no such file'):
    _sample('points', **{'data.path': str(tmp_path / 'missing.csv')})
  with pytest.raises(errors.ConfigError, match="Did you mean 'ring'"):
    _sample('rnig')


def test_mode_metric_known_answers():
  angles = 2 * np.pi * np.arange(8) / 8
  centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
  exact = np.repeat(centres[[0, 2, 3, 5, 7]], 100, axis=0)      # 5 of 8 centres
  assert metrics.mode_coverage(exact, centres, 0.01) == pytest.approx(
      {'modes': 5.0, 'hq_percent': 100.0, 'reverse_kl': np.log(8 / 5)})
  # 0.029 from a centre is high quality (< 3 std), 0.031 is not; the second
  # kind does not cover its mode, and far points (the origin) neither.
  near = centres[[1]] + [[0.029, 0.0]]
  off = np.concatenate([centres[[4]] + [[0.031, 0.0]], np.zeros((3, 2))])
  result = metrics.mode_coverage(np.concatenate([exact, near, off]), centres, 0.01)
  assert result['modes'] == 6.0
  assert result['hq_percent'] == pytest.approx(100 * 501 / 505)


def test_reverse_kl_of_a_hand_counted_histogram():
  # Four modes; high-quality points counted 2, 1, 1, 0 (one more point is far
  # from every mode and counts nowhere). q = (1/2, 1/4, 1/4, 0), p = 1/4 each:
  # KL(q || p) = 1/2 log(2) + 1/4 log(1) + 1/4 log(1) + 0 = log(2) / 2.
  centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
  points = np.array([[0.0, 0.1], [0.1, 0.0], [2.0, 0.05], [0.0, 1.9], [1.0, 1.0]])
  assert list(metrics.mode_histogram(points, centres, 0.05)) == [2, 1, 1, 0]
  result = metrics.mode_coverage(points, centres, 0.05)
  assert result['reverse_kl'] == pytest.approx(0.5 * np.log(2))
  assert result['modes'] == 3.0 and result['hq_percent'] == pytest.approx(80.0)
  # Even spread over every mode: 0; all on one of K: log K; nothing high quality: NaN.
  assert metrics.reverse_kl([3, 3, 3, 3]) == 0.0
  assert metrics.reverse_kl([0, 7, 0, 0]) == pytest.approx(np.log(4))
  assert np.isnan(metrics.reverse_kl([0, 0, 0, 0]))


def test_sliced_wasserstein_is_small_for_the_same_distribution_and_exact_for_a_shift():
  target = distributions.build(tiny_lab_config('sine'))
  a = np.asarray(target.sample(jax.random.PRNGKey(1), 10_000))
  b = np.asarray(target.sample(jax.random.PRNGKey(2), 10_000))
  same = metrics.sliced_wasserstein(a, b)
  assert 0 < same < 0.02
  assert metrics.sliced_wasserstein(a, a) == 0.0
  shift = np.array([0.3, -0.4])   # |t| = 0.5: SW2 = 0.5 / sqrt(2), exactly
  assert metrics.sliced_wasserstein(a, a + shift) == pytest.approx(0.5 / np.sqrt(2), rel=1e-6)
  assert metrics.sliced_wasserstein(a, b + shift) > 0.3


def test_snapshot_figure_renders_the_report_colours(tmp_path):
  r = 10
  snapshot = {'real': np.zeros((5, 2)), 'fake': np.ones((5, 2)),
              'd_latent': np.ones((r, r)),      # D(G(z)) = 1: surely real, blue
              'd_sample': np.zeros((r, r))}     # D(x) = 0: surely fake, red
  figure = viz.SnapshotFigure((-2, 2, -2, 2), 1.0, 'test', num_steps=100)
  history = [{'step': s, 'd_loss': 1.2, 'g_loss': 0.8, 'd_acc_real': 0.6, 'd_acc_fake': 0.5}
             for s in (10, 20)]
  figure.draw(snapshot, history, 20)
  path = figure.save(str(tmp_path / 'frame.png'))
  image = np.asarray(Image.open(path).convert('RGB')).astype(int)
  h, w, _ = image.shape
  assert (w, h) == (648, 576)
  latent = image[int(h * 0.72), int(w * 0.28)]     # centre of panel 3
  sample = image[int(h * 0.72), int(w * 0.66)]     # centre of panel 4
  assert latent[2] > 150 and latent[0] < 80, latent     # blue
  assert sample[0] > 150 and sample[2] < 80, sample     # red
  # A second frame reuses the figure; the GIF holds both.
  figure.draw({**snapshot, 'd_sample': np.full((r, r), 0.5)}, history, 30)
  second = figure.save(str(tmp_path / 'frame2.png'))
  gif = viz.assemble_gif([path, second], str(tmp_path / 'run.gif'))
  assert Image.open(gif).n_frames == 2


@pytest.fixture(scope='module')
def ring_run(tmp_path_factory):
  """A 6-step run of the ring config (tiny networks), shared by the tests below."""
  workdir = str(tmp_path_factory.mktemp('toy2d') / 'ring')
  return workdir, trainers.train_and_evaluate(tiny_lab_config('ring'), workdir)


def test_lab_run_writes_every_artifact(ring_run):
  workdir, state = ring_run
  assert int(state.step) == 6
  assert sorted(os.listdir(os.path.join(workdir, 'snapshots'))) == [
      'step_0000003.png', 'step_0000006.png']
  assert Image.open(os.path.join(workdir, 'animation.gif')).n_frames == 2
  records = reporting.read_metrics(workdir)
  assert [r['step'] for r in records] == [3, 6]
  for key in ('d_loss', 'g_loss', 'd_acc_real', 'sliced_wasserstein', 'modes', 'hq_percent'):
    assert all(np.isfinite(r[key]) for r in records), key
  with open(os.path.join(workdir, 'final_metrics.json')) as f:
    final = json.load(f)
  assert final['step'] == 6 and 0 <= final['modes'] <= 8 and final['sliced_wasserstein'] > 0
  with open(os.path.join(workdir, 'timing.json')) as f:
    assert json.load(f)['frames'] == 2


def test_lab_run_resumes_exactly(ring_run, tmp_path):
  _, state = ring_run
  workdir = str(tmp_path / 'resumed')
  trainers.train_and_evaluate(tiny_lab_config('ring', **{'train.num_steps': 3}), workdir)
  resumed = trainers.train_and_evaluate(tiny_lab_config('ring'), workdir)
  for a, b in zip(jax.tree.leaves(jax.device_get(state)), jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)
  assert [r['step'] for r in reporting.read_metrics(workdir)] == [3, 6]


def test_generate_writes_points_for_a_2d_run(ring_run, tmp_path):
  workdir, _ = ring_run
  out = str(tmp_path / 'out' / 'points.npz')
  generate.FLAGS(['generate', f'--workdir={workdir}', '--num=300', f'--out={out}',
                  '--batch_size=128'])
  try:
    generate.main(['generate'])
  finally:
    generate.FLAGS.unparse_flags()
  with np.load(out) as npz:
    assert set(npz.files) == {'points'}
    assert npz['points'].dtype == np.float32 and npz['points'].shape == (300, 2)
    points, step = generate.generate_points(workdir, num=300, batch_size=128)
    np.testing.assert_array_equal(points, npz['points'])
  assert step == 6
  with pytest.raises(errors.ConfigError, match='2D-lab run'):
    generate.generate(workdir, num=2)


def test_fused_steps_equal_single_steps():
  lab = lab_lib.Lab.from_config(tiny_lab_config('ring'))
  setup = lab.setup
  # Jitted as the trainer jits it, so the ring_run fixture's 3-step program
  # comes from the persistent compilation cache when the tests run in order.
  fused = jax.jit(lab.make_chunk(setup.g_tx, setup.d_tx, 3), donate_argnums=0)
  single = jax.jit(lab.make_step(setup.g_tx, setup.d_tx))
  state = setup.init_state()
  one_by_one, losses = state, []
  for _ in range(3):
    one_by_one, m = single(one_by_one)
    losses.append(float(m['g_loss']))
  fused_state, fused_metrics = fused(state)
  assert int(fused_state.step) == int(one_by_one.step) == 3
  for a, b in zip(jax.tree.leaves(fused_state), jax.tree.leaves(one_by_one)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(fused_metrics['g_loss'], losses, rtol=1e-5)
  # Each step saw other data and noise: the losses differ.
  assert len(set(losses)) == 3


def test_mismatched_trainer_and_data_are_named(tmp_path):
  image_config = config_base.get_config()
  image_config.data.source = 'toy2d'
  with pytest.raises(errors.ConfigError, match="config.trainer='toy2d'"):
    trainers.train_and_evaluate(image_config, str(tmp_path / 'image'))
  with pytest.raises(errors.ConfigError, match='mlp2d'):
    lab_lib.Lab.from_config(tiny_lab_config('ring', **{'model.name': 'dcgan28'}))
  with pytest.raises(errors.ConfigError, match='toy2d.latent'):
    lab_lib.Lab.from_config(tiny_lab_config('ring', **{'toy2d.latent': 'cauchy'}))


def test_tiny_sweep_vmaps_settings_and_seeds_and_matches_a_single_run(ring_run, tmp_path):
  config = tiny_lab_config('ring')
  grid = sweep.parse_grid(['optim.d.lr=1e-3,5e-2', 'optim.g.b1+optim.d.b1=0.5'], config)
  assert grid == [(('optim.d.lr',), (1e-3, 5e-2)), (('optim.g.b1', 'optim.d.b1'), ((0.5, 0.5),))]
  settings, _, groups = sweep.plan(config, grid, num_seeds=2)
  assert settings[1] == {'optim.d.lr': 5e-2, 'optim.g.b1': 0.5, 'optim.d.b1': 0.5}
  assert len(groups) == 1 and len(groups[0].runs) == 4
  out = sweep.run_sweep(config, grid, 2, str(tmp_path / 'sweep'), say=lambda _: None)
  assert sorted(out['runs']) == [(0, 0), (0, 1), (1, 0), (1, 1)]
  for name in ('results.csv', 'results.md', 'runs.csv', 'final_panels.png', 'histories.json'):
    assert os.path.exists(tmp_path / 'sweep' / name), name
  rows = (tmp_path / 'sweep' / 'results.csv').read_text().splitlines()
  assert len(rows) == 3 and 'sliced_wasserstein_mean' in rows[0] and 'modes_std' in rows[0]
  assert '±' in (tmp_path / 'sweep' / 'results.md').read_text()
  # Setting 0, seed 0 of the vmapped program is the ring_run fixture: same config.
  with open(os.path.join(ring_run[0], 'final_metrics.json')) as f:
    single = json.load(f)
  for key in ('g_loss', 'd_loss', 'd_acc_real', 'sliced_wasserstein', 'modes', 'hq_percent'):
    assert out['runs'][(0, 0)][key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
  assert out['runs'][(1, 0)]['d_loss'] != out['runs'][(0, 0)]['d_loss']
  with pytest.raises(errors.ConfigError, match="Did you mean 'optim.d.lr'"):
    sweep.parse_grid(['optim.d.lrr=1'], config)


def test_sweep_follows_a_linear_lr_schedule_like_a_single_run(tmp_path):
  """The vmapped sweep decays the learning rates over the run as the trainer does."""
  linear = {'optim.g.lr_schedule': 'linear', 'optim.d.lr_schedule': 'linear'}
  config = tiny_lab_config('ring', **linear)
  trainers.train_and_evaluate(config, str(tmp_path / 'single'))
  with open(tmp_path / 'single' / 'final_metrics.json') as f:
    single = json.load(f)
  grid = sweep.parse_grid([f'optim.d.lr={config.optim.d.lr},{config.optim.d.lr * 10}'], config)
  out = sweep.run_sweep(config, grid, 1, str(tmp_path / 'sweep'), say=lambda _: None)
  for key in ('g_loss', 'd_loss', 'sliced_wasserstein'):
    assert out['runs'][(0, 0)][key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
  constant = sweep.run_sweep(tiny_lab_config('ring'), grid, 1, str(tmp_path / 'constant'),
                             say=lambda _: None)
  assert constant['runs'][(0, 0)]['d_loss'] != out['runs'][(0, 0)]['d_loss']
