"""The Flax FID Inception against pytorch-fid's own module, on the same random weights.

No real weights are needed: random weights in the PyTorch layout are loaded
into pytorch-fid's `InceptionV3` (its download function replaced by one that
returns them) and, through the converter, into the Flax port. He-scaled
convolutions and BatchNorm statistics near the identity keep every
activation finite and of order one, so agreement to 1e-4 is a real check of
the architecture, the padding and pooling variants, and the resize.
"""

import os
import socket

import jax
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.metrics import inception, inception_weights

torch = pytest.importorskip('torch')
pytorch_fid_inception = pytest.importorskip('pytorch_fid.inception')


def _random_state_dict(seed=0):
  shapes = inception_weights.to_torch_state_dict(jax.tree.map(
      lambda s: np.zeros(s.shape, np.float32), inception.abstract_variables()))
  rng = np.random.default_rng(seed)
  state = {}
  for key, value in shapes.items():
    shape = value.shape
    if key.endswith('conv.weight'):
      state[key] = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
    elif key.endswith('bn.weight') or key.endswith('running_var'):
      state[key] = rng.uniform(0.5, 1.5, shape)
    elif key.endswith('bn.bias'):
      state[key] = rng.uniform(-0.2, 0.2, shape)
    elif key.endswith('running_mean'):
      state[key] = rng.uniform(-0.1, 0.1, shape)
    elif key == 'fc.weight':
      state[key] = rng.normal(0, 1 / np.sqrt(shape[1]), shape)
    else:
      state[key] = rng.normal(0, 0.1, shape)
  return {k: v.astype(np.float32) for k, v in state.items()}


@pytest.fixture(scope='module')
def models():
  state = _random_state_dict()
  original = pytorch_fid_inception.load_state_dict_from_url
  pytorch_fid_inception.load_state_dict_from_url = (
      lambda *a, **k: {k2: torch.from_numpy(v) for k2, v in state.items()})
  try:  # strict load_state_dict: a key or shape the port lacks would fail here
    torch_model = pytorch_fid_inception.InceptionV3([3]).eval()
  finally:
    pytorch_fid_inception.load_state_dict_from_url = original
  variables = inception_weights.from_torch_state_dict(state)
  net = jax.jit(inception.FIDInceptionV3().apply)
  return torch_model, state, variables, net


def _relative_error(a, b):
  return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize('size', [32, 299])
def test_features_and_logits_match_pytorch_fid(models, size):
  torch_model, state, variables, net = models
  images = np.random.default_rng(size).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
  with torch.no_grad():
    x = torch.from_numpy(images.transpose(0, 3, 1, 2)).float() / 255.0
    expected = torch_model(x)[0][:, :, 0, 0].numpy()
  # One compiled network at 299x299 for both sizes; the resize runs separately.
  out = jax.device_get(net(variables, jax.jit(inception.preprocess)(images)))
  assert out['pool3'].shape == (2, 2048) and out['logits'].shape == (2, 1008)
  # Activations are non-trivial: mostly positive, of order one, not saturated.
  assert np.all(np.isfinite(expected)) and 0.5 < np.abs(expected).mean() < 100
  assert _relative_error(out['pool3'], expected) < 1e-4
  expected_logits = expected @ state['fc.weight'].T + state['fc.bias']
  assert _relative_error(out['logits'], expected_logits) < 1e-4
  # Different images give different features (the comparison is not of constants).
  assert np.abs(expected[0] - expected[1]).max() > 1e-2 * np.abs(expected).max()


def test_preprocess_matches_torch_bilinear_resize():
  images = np.random.default_rng(1).integers(0, 256, (1, 17, 23, 3), dtype=np.uint8)
  ours = np.asarray(inception.preprocess(images))
  x = torch.from_numpy(images.transpose(0, 3, 1, 2)).float() / 255.0
  ref = torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear',
                                        align_corners=False) * 2 - 1
  np.testing.assert_allclose(ours, ref.numpy().transpose(0, 2, 3, 1), atol=1e-5)
  gray = np.asarray(inception.preprocess(images[..., :1]))
  assert gray.shape == (1, 299, 299, 3) and np.all(gray[..., 0] == gray[..., 2])


def test_converter_round_trip_and_pth_file(tmp_path):
  state = _random_state_dict(seed=1)
  variables = inception_weights.from_torch_state_dict(state)
  back = inception_weights.to_torch_state_dict(variables)
  assert set(back) == set(state)
  for key in state:
    np.testing.assert_array_equal(back[key], state[key])
  pth = str(tmp_path / 'weights.pth')
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
  with pytest.raises(errors.DataError, match='not the FID Inception file'):
    inception_weights.convert(pth, str(tmp_path / 'out'))
  out = inception_weights.convert(pth, str(tmp_path / 'out'), check_hash=False)
  loaded, meta = inception_weights.load(out)
  assert meta['source'] == 'weights.pth'
  np.testing.assert_array_equal(loaded['params']['Mixed_7c']['branch_pool']['conv']['kernel'],
                                state['Mixed_7c.branch_pool.conv.weight'].transpose(2, 3, 1, 0))
  bad = dict(state)
  bad.pop('fc.bias')
  bad['extra.weight'] = np.zeros(3, np.float32)
  with pytest.raises(errors.DataError, match='extra.weight'):
    inception_weights.from_torch_state_dict(bad)


def test_missing_weights_explain_how_to_get_them_without_network(tmp_path, monkeypatch):
  def no_network(*args, **kwargs):
    raise AssertionError('evaluation tried to open a network connection')
  monkeypatch.setattr(socket, 'socket', no_network)
  monkeypatch.setattr(socket, 'create_connection', no_network)
  missing = str(tmp_path / 'nowhere')
  monkeypatch.setenv(inception_weights.WEIGHTS_ENV, missing)
  path = inception_weights.resolve_path()
  assert path == missing
  with pytest.raises(errors.DataNotFoundError) as info:
    inception_weights.load(path)
  message = str(info.value)
  assert inception_weights.PTH_URL in message
  assert 'python -m gan_jax.metrics.inception_weights --pth=' in message
  assert missing in message
  assert inception_weights.resolve_path('flag', 'config') == 'flag'
  assert inception_weights.resolve_path('', 'config') == 'config'
  monkeypatch.delenv(inception_weights.WEIGHTS_ENV)
  monkeypatch.setenv('GAN_JAX_CACHE_DIR', str(tmp_path / 'cache'))
  assert inception_weights.resolve_path() == os.path.join(str(tmp_path / 'cache'), 'fid_inception')
