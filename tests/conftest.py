"""Shared fixtures: tiny configs, synthetic datasets on disk, and the path to ../shared data."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import tarfile
import types

import jax
import numpy as np
import pytest

from gan_jax.config import base as config_base
from gan_jax.config import files as config_files

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _shared_root() -> str:
  """../shared next to the repo, else $GAN_JAX_SHARED (for checkouts elsewhere, e.g. worktrees)."""
  beside = os.path.join(REPO_ROOT, '..', 'shared')
  if os.path.isdir(beside) or not os.environ.get('GAN_JAX_SHARED'):
    return beside
  return os.environ['GAN_JAX_SHARED']


SHARED = _shared_root()
SHARED_MNIST = os.path.join(SHARED, 'data', 'mnist')
SHARED_CIFAR10_TAR = os.path.join(SHARED, 'data', 'cifar10', 'cifar10-train-jpeg.tar.gz')

# Tests compile many small programs; a persistent cache shares them between
# tests that build the same step, and with the subprocesses of `subprocess_env`.
JAX_CACHE_DIR = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'gan_jax_test_jax_cache')
jax.config.update('jax_compilation_cache_dir', JAX_CACHE_DIR)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)


def subprocess_env(devices: int | None = None) -> dict:
  """Environment for a child Python that imports this checkout's gan_jax and shares the compilation cache.

  `devices` forces that many CPU devices.
  """
  env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
             JAX_COMPILATION_CACHE_DIR=JAX_CACHE_DIR,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0.5')
  if devices is not None:
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  return env


def run_on_simulated_devices(script: str, num_devices: int = 4) -> subprocess.CompletedProcess:
  """Runs `script` in a fresh Python with `num_devices` CPU devices (fixed when JAX starts)."""
  return subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT,
                        env=subprocess_env(devices=num_devices),
                        capture_output=True, text=True, timeout=600)


ONE_VS_FOUR_DEVICES = '''
import jax, numpy as np
from gan_jax.parallel import devices as devices_lib
from gan_jax.training import setup as setup_lib
from gan_jax.data.source import DatasetInfo
from MODULE import FUNCTION

assert jax.device_count() == 4, jax.devices()
config = FUNCTION()
n_disc = config.train.n_disc
setup = setup_lib.build_setup(config, DatasetInfo((32, 32, 3), 10, tuple('0123456789'), 64, 't'))
rng = np.random.default_rng(0)
batches = [{'image': rng.integers(0, 256, (n_disc, 8, 32, 32, 3), dtype=np.uint8),
            'label': rng.integers(0, 10, (n_disc, 8)).astype(np.int32)} for _ in range(2)]

def run(devices):
  mesh = devices_lib.make_mesh(devices)
  rep = devices_lib.replicated(mesh)
  step = jax.jit(setup.train_step(config.train, mesh),
                 in_shardings=(rep, devices_lib.batch_sharded(mesh, 1)), out_shardings=(rep, rep))
  state = jax.jit(setup.init_state, out_shardings=rep)()
  for b in batches:
    state, metrics = step(state, devices_lib.global_batch(b, mesh))
    assert bool(metrics['finite'])
  return jax.device_get(state)

one, four = run(jax.devices()[:1]), run(jax.devices())
for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=ATOL)
print('OK')
'''


def assert_four_devices_equal_one(config_function: str, atol: float = 1e-6) -> None:
  """Two steps of a conditional 32x32 config on 1 and on 4 simulated CPU devices agree.

  `config_function` ('tests.MODULE:FUNCTION') returns the config, batch 8.
  """
  module, function = config_function.split(':')
  script = (ONE_VS_FOUR_DEVICES.replace('MODULE', module).replace('FUNCTION', function)
            .replace('ATOL', repr(atol)))
  result = run_on_simulated_devices(script, 4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout


def make_config(**overrides):
  """The base config with dotted-key overrides, e.g. make_config(**{'train.num_steps': 2})."""
  config = config_base.get_config()
  for dotted, value in overrides.items():
    node = config
    *parents, leaf = dotted.split('.')
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config


def repo_config(spec: str):
  """The config of configs/SPEC, e.g. 'toy2d.py:grid,report', as `--config=configs/SPEC` loads it."""
  return config_files.load_file(os.path.join(REPO_ROOT, 'configs', spec))


def load_config_file(path: str) -> types.SimpleNamespace:
  """The config file at `path` as an object with its `get_config(preset='')`, loaded by gan_jax.config.files.

  For older tests; new ones call repo_config or config_files.load_file.
  """
  return types.SimpleNamespace(
      get_config=lambda preset='': config_files.load_file(f'{path}:{preset}' if preset else path))


def tiny_config(**overrides):
  """A config that trains dcgan28 for a few steps on small batches."""
  base = {'train.batch_size': 8, 'train.num_steps': 4, 'train.log_every': 2,
          'train.sample_every': 2, 'train.checkpoint_every': 2,
          'sample.num': 4, 'sample.per_class': 2, 'data.read_threads': 0}
  base.update(overrides)
  return make_config(**base)


def write_idx(directory: str, prefix: str, images: np.ndarray, labels: np.ndarray,
              compress: bool = True) -> None:
  """Writes MNIST-format IDX files for `images` (N, H, W) uint8 and `labels` (N,)."""
  os.makedirs(directory, exist_ok=True)
  opener = gzip.open if compress else open
  suffix = '.gz' if compress else ''
  n, h, w = images.shape
  with opener(os.path.join(directory, f'{prefix}-images-idx3-ubyte{suffix}'), 'wb') as f:
    f.write(struct.pack('>IIII', 2051, n, h, w) + images.astype(np.uint8).tobytes())
  with opener(os.path.join(directory, f'{prefix}-labels-idx1-ubyte{suffix}'), 'wb') as f:
    f.write(struct.pack('>II', 2049, n) + labels.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
  """64 synthetic 28x28 'digits' (a bright square whose position is the class) in IDX files."""
  rng = np.random.default_rng(0)
  labels = np.arange(64) % 4
  images = rng.integers(0, 40, (64, 28, 28)).astype(np.uint8)
  for i, label in enumerate(labels):
    images[i, 4 + 5 * label: 10 + 5 * label, 8:20] = 255
  write_idx(str(tmp_path / 'idx'), 'train', images, labels)
  return str(tmp_path / 'idx')


@pytest.fixture(scope='session')
def rgb32_folder(tmp_path_factory):
  """64 random 32x32 RGB PNGs in three class subfolders (`folder` source layout)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('rgb32') / 'train'
  rng = np.random.default_rng(0)
  for i in range(64):
    directory = root / ('abc'[i % 3])
    directory.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        directory / f'{i}.png')
  return str(root)


@pytest.fixture(scope='session')
def shared_cifar10_folder(tmp_path_factory):
  """The shared CIFAR-10 training JPEGs, `per_class` of each class, extracted to a temp dir.

  Returns the folder with one subfolder per class (the `folder` source's layout).
  """
  if not os.path.exists(SHARED_CIFAR10_TAR):
    pytest.skip('../shared/data/cifar10 is not available on this machine')
  per_class, counts = 40, {}
  root = tmp_path_factory.mktemp('cifar10')
  with tarfile.open(SHARED_CIFAR10_TAR) as tar:
    for member in tar:
      parts = member.name.split('/')
      if not member.isfile() or len(parts) != 3:
        continue
      if counts.get(parts[1], 0) < per_class:
        counts[parts[1]] = counts.get(parts[1], 0) + 1
        tar.extract(member, root, filter='data')
  return str(root / 'train')


@pytest.fixture
def shared_mnist():
  if not os.path.exists(os.path.join(SHARED_MNIST, 't10k-images-idx3-ubyte.gz')):
    pytest.skip('../shared/data/mnist is not available on this machine')
  return SHARED_MNIST


@pytest.fixture(scope='session')
def analysis_runs(tmp_path_factory):
  """Tiny trained workdirs for the analyses, and a tiny domain classifier of their data.

  {'gan': unconditional dcgan28 (EMA on), 'cgan': conditional dcgan28 (concat),
   'classifier': classifier dir, 'data': IDX dir with 'train' and 't10k' splits}.
  12 training steps each: the analyses must run, not look good.
  """
  from gan_jax.training import image as image_trainer  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('analysis_runs')
  rng = np.random.default_rng(0)
  labels = np.arange(80) % 10
  images = rng.integers(0, 40, (80, 28, 28)).astype(np.uint8)
  for i, label in enumerate(labels):
    images[i, 2 + 2 * label: 8 + 2 * label, 6:22] = 255
  data = str(root / 'idx')
  write_idx(data, 'train', images, labels)
  write_idx(data, 't10k', images[::-1].copy(), labels[::-1].copy())
  base = {'data.source': 'idx', 'data.path': data, 'data.split': 'train',
          'train.num_steps': 12, 'train.log_every': 6, 'train.sample_every': 0,
          'train.checkpoint_every': 12}
  runs = {'data': data}
  for name, extra in (('gan', {'train.ema_decay': 0.9}),
                      ('cgan', {'model.conditional': True})):
    runs[name] = str(root / name)
    image_trainer.train_and_evaluate(tiny_config(**base, **extra), runs[name])
  runs['classifier'] = str(root / 'classifier')
  classifier.train_and_save(tiny_config(**base).data, runs['classifier'], steps=20,
                            batch_size=32, lr=3e-3, log=lambda *_: None)
  return runs
