"""PacGAN's 2D networks, the ring/grid presets of configs/toy2d.py, and the Table 1 script's pieces."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import mode_collapse
from gan_jax import errors
from gan_jax.models import pacgan2d
from gan_jax.toy2d import sweep
from gan_jax.training import loop, trainers
from tests.conftest import repo_config

G_PARAMS = (2 * 400              # z -> 400, no bias (BatchNorm shifts)
            + 3 * 400 * 400      # three more hidden layers, no bias
            + 4 * 2 * 400        # BatchNorm scale and shift of the four layers
            + 400 * 2 + 2)       # the output layer, with its bias
D_PARAMS = ((2 * 1000 + 1000)          # LinearMaxout 2 -> 200 x 5 pieces
            + 2 * (200 * 1000 + 1000)  # two more LinearMaxout 200 -> 200 x 5
            + 200 + 1)                 # the logit


def _params(module, x, **kwargs):
  variables = module.init(jax.random.PRNGKey(0), x, **kwargs, train=False)
  return variables, loop.num_params(variables['params'])


def test_pacgan_networks_have_the_papers_shapes_and_parameter_counts():
  g, d = pacgan2d.build(image_shape=(2,))
  g_vars, g_count = _params(g, jnp.zeros((3, 2)))
  assert g_count == G_PARAMS == 484_802
  assert [k for k in g_vars['params']] == ['h1', 'bn1', 'h2', 'bn2', 'h3', 'bn3', 'h4', 'bn4',
                                           'out']
  assert all('bias' not in g_vars['params'][f'h{i}'] for i in range(1, 5))
  assert set(g_vars['batch_stats']) == {'bn1', 'bn2', 'bn3', 'bn4'}
  assert g.apply(g_vars, jnp.zeros((3, 2)), train=False).shape == (3, 2)
  d_vars, d_count = _params(d, jnp.zeros((3, 2)))
  assert d_count == D_PARAMS == 405_201
  assert d_vars['params']['h1']['linear']['kernel'].shape == (2, 1000)   # 200 units x 5 pieces
  assert d.apply(d_vars, jnp.zeros((3, 2)), train=False).shape == (3,)
  # Weights start from N(0, 0.02^2), biases from 0 (the authors' initialisation).
  kernel = np.asarray(g_vars['params']['h2']['kernel'])
  assert abs(kernel.std() - 0.02) < 0.001 and abs(kernel.mean()) < 0.001
  assert not np.any(np.asarray(d_vars['params']['h2']['linear']['bias']))


def test_pacgan_d_takes_its_input_width_from_the_data():
  """Packing m points gives D 2m input features; (B, 2m) and (B, m, 2) are the same input."""
  d = pacgan2d.PacGAN2DDiscriminator()
  for m in (2, 3, 4):
    variables, count = _params(d, jnp.zeros((5, 2 * m)))
    assert count == D_PARAMS + 2 * (m - 1) * 1000
    x = jax.random.normal(jax.random.PRNGKey(m), (5, m, 2))
    np.testing.assert_allclose(d.apply(variables, x, train=False),
                               d.apply(variables, x.reshape(5, 2 * m), train=False))


def test_linear_maxout_is_the_max_over_pieces_of_linear_maps():
  layer = pacgan2d.LinearMaxout(features=3, pieces=2)
  x = jnp.array([[1.0, -2.0]])
  variables = layer.init(jax.random.PRNGKey(0), x)
  w = np.asarray(variables['params']['linear']['kernel'])
  b = np.asarray(variables['params']['linear']['bias']) + 0.1 * np.arange(6)
  variables = {'params': {'linear': {'kernel': w, 'bias': b}}}
  y = np.asarray(x) @ w + b                        # (1, 6): piece 0 units, then piece 1 units
  np.testing.assert_allclose(layer.apply(variables, x), np.maximum(y[:, :3], y[:, 3:]),
                             rtol=1e-6)


def test_width_scale_scales_both_networks():
  g, d = pacgan2d.build(image_shape=(2,), width_scale=0.25)
  assert (g.hidden, d.hidden, g.layers, d.layers, d.pieces) == (100, 50, 4, 3, 5)


@pytest.mark.parametrize('target', ['ring', 'grid'])
def test_gan_and_pac_presets_are_pacgans_setting(target):
  gan = repo_config(f'toy2d.py:{target},gan')
  assert (gan.model.name, gan.model.latent_dim, gan.toy2d.latent, gan.model.bn_momentum,
          gan.model.pack) == ('pacgan2d', 2, 'normal', 0.95, 1)
  assert (gan.optim.g.lr, gan.optim.d.lr, gan.optim.g.b1, gan.optim.d.b1) == (
      1e-4, 1e-4, 0.8, 0.8)
  assert (gan.train.batch_size, gan.train.num_steps, gan.loss.name) == (
      100, 400_000, 'nonsaturating')
  for m in (2, 3, 4):
    pac = repo_config(f'toy2d.py:{target},pac{m}')
    # 100 packs of m points: the same setting but for the packing.
    assert (pac.model.pack, pac.train.batch_size) == (m, 100 * m)
    pac.model.pack, pac.train.batch_size = 1, 100
    assert pac == gan
  # The default and the report's GAN are other settings.
  default, report = repo_config(f'toy2d.py:{target}'), repo_config(f'toy2d.py:{target},report')
  assert default != gan and report != gan and report.model.name == 'mlp2d'
  assert report.optim.d.lr == 1e-3 and report.train.batch_size == 100
  with pytest.raises(errors.ConfigError, match='give one'):
    repo_config(f'toy2d.py:{target},gan,pac2')
  with pytest.raises(errors.ConfigError, match='ring and grid only'):
    repo_config('toy2d.py:sine,pac2')


def _tiny(config, log_every=2):
  """A preset shrunk to a few steps of narrow networks, keeping its model, packing and optimizer."""
  values = {'model.width_scale': 0.02, 'train.num_steps': 2, 'train.log_every': log_every,
            'train.sample_every': 2, 'train.checkpoint_every': 2, 'toy2d.steps_per_call': 2,
            'toy2d.eval_samples': 100, 'toy2d.mode_samples': 100, 'toy2d.plot_points': 20,
            'toy2d.plot_resolution': 6, 'toy2d.animation': 'none'}
  for key, value in values.items():
    sweep.set_value(config, key, value)
  config.train.batch_size = 8 * config.model.pack
  return config


@pytest.mark.parametrize('preset', ['ring,gan', 'grid,gan', 'ring,pac2', 'grid,pac2',
                                    'ring,pac3', 'grid,pac3', 'ring,pac4', 'grid,pac4'])
def test_each_new_preset_trains_a_few_steps(preset, tmp_path):
  config = _tiny(repo_config(f'toy2d.py:{preset}'))
  state = trainers.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 2
  with open(tmp_path / 'run' / 'final_metrics.json') as f:
    final = json.load(f)
  assert {'modes', 'hq_percent', 'reverse_kl', 'sliced_wasserstein'} <= set(final)
  # D's first layer takes the packed width: 2 features per point.
  assert state.d.params['h1']['linear']['kernel'].shape[0] == 2 * config.model.pack


def test_table_rows_statistics_and_markdown():
  assert mode_collapse.parse_rows('grid-pac4,ring-gan') == ['ring-gan', 'grid-pac4']
  assert len(mode_collapse.parse_rows('all')) == 8
  with pytest.raises(errors.ConfigError, match='unknown row'):
    mode_collapse.parse_rows('ring-pac5')
  mode_collapse.check_table('1')
  with pytest.raises(errors.ConfigError, match='Table 2.*Stacked MNIST.*not implemented'):
    mode_collapse.check_table('2')
  with pytest.raises(errors.ConfigError, match='give one of 1'):
    mode_collapse.check_table('4')
  # The published numbers: PacGAN Table 1, the best rows of each target.
  assert mode_collapse.PUBLISHED['grid-pac4']['modes'] == (24.8, 0.2)
  assert mode_collapse.PUBLISHED['ring-gan']['reverse_kl'] == (0.45, 0.09)
  stats = mode_collapse.summarize([6.0, 8.0, 7.0, 7.0])
  assert stats['mean'] == 7.0 and stats['std'] == pytest.approx(math.sqrt(2 / 3))
  assert stats['se'] == pytest.approx(math.sqrt(2 / 3) / 2)     # std / sqrt(4 seeds)
  curve = {'step': [100, 200, 300, 400], 'modes': [[1, 3], [5, 7], [6, 8], [7, 7]],
           'hq_percent': [[0, 0], [50, 60], [80, 90], [90, 90]],
           'reverse_kl': [[math.nan, math.nan], [1.0, 0.5], [0.5, 0.5], [0.25, 0.25]]}
  # 75% of 400 steps is step 300: the last quarter moved modes by 7 - 7 = 0, HQ by 5.
  assert mode_collapse.settled(curve) == pytest.approx(
      {'modes': 0.0, 'hq_percent': 5.0, 'reverse_kl': -0.25})


def test_a_table_row_runs_as_a_vmapped_sweep_and_is_tabled(tmp_path, monkeypatch):
  real_row_config = mode_collapse.row_config
  monkeypatch.setattr(mode_collapse, 'row_config',
                      lambda row, steps, log_every: _tiny(real_row_config(row, steps, log_every),
                                                          log_every))
  out = mode_collapse.run_table(['ring-pac2'], 2, 2, 1, str(tmp_path), 'cmd')
  record = out['rows'][0]
  assert (record['row'], record['seeds'], record['steps'], record['pack']) == (
      'ring-pac2', 2, 2, 2)
  assert len(record['per_seed']['modes']) == 2 and record['curve']['step'] == [1, 2]
  assert record['published']['modes'] == {'mean': 7.9, 'se': 0.1}
  text = (tmp_path / 'table1.md').read_text()
  assert '| ring-pac2 | `configs/toy2d.py:ring,pac2` | 2 | 2 | 7.9 ± 0.1 |' in text
  assert 'cores' in text and 'Load' in text and os.path.exists(tmp_path / 'curves.png')
  # Rerun with the same seeds and steps: read back, not retrained.
  monkeypatch.setattr(mode_collapse, 'row_config', None)
  again = mode_collapse.run_table(['ring-pac2'], 2, 2, 1, str(tmp_path), 'cmd')
  for metric in ('modes', 'hq_percent'):   # (reverse KL: NaN this early, and NaN != NaN)
    assert again['rows'][0]['per_seed'][metric] == record['per_seed'][metric]
