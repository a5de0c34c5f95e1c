"""The FID Inception weights: conversion from pytorch-fid's file, and loading without any network access.

One-time set-up, on any machine (torch is needed for this step only):

  # 1. fetch the published file (from a machine with internet access):
  #    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  # 2. convert it to a Flax checkpoint:
  python -m gan_jax.metrics.inception_weights --pth=pt_inception-2015-12-05-6726825d.pth

The checkpoint goes to `CACHE/fid_inception` (see `gan_jax.metrics.cache`)
unless `--out` says otherwise. Evaluation finds it through, in order, the
`--inception_weights` flag, `config.eval.inception_weights`,
`$GAN_JAX_INCEPTION_WEIGHTS`, and that default location. Nothing here ever
downloads: a missing file is an error that repeats these instructions.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Mapping

import numpy as np

from gan_jax import errors
from gan_jax.metrics import cache, weights_dir

WEIGHTS_ENV = 'GAN_JAX_INCEPTION_WEIGHTS'
PTH_NAME = 'pt_inception-2015-12-05-6726825d.pth'
PTH_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
           + PTH_NAME)
PTH_SHA256_PREFIX = '6726825d'   # torch.hub's convention: the name ends in the sha256 prefix
META_FILE = 'gan_jax_inception.json'


def default_path(cache_dir: str = '') -> str:
  return os.path.join(cache.cache_dir(cache_dir), 'fid_inception')


def resolve_path(flag_value: str = '', config_value: str = '', cache_dir: str = '') -> str:
  return (flag_value or config_value or os.environ.get(WEIGHTS_ENV, '')
          or default_path(cache_dir))


def how_to_obtain(where: str) -> str:
  return (
      f'The FID Inception weights are not at {where}. gan_jax never downloads '
      'them (evaluation must work offline). To set them up once:\n'
      f'  1. On a machine with internet access, download\n     {PTH_URL}\n'
      '     (pytorch-fid\'s port of TensorFlow\'s 2015-12-05 Inception graph, '
      '~91 MB) and copy it to this machine.\n'
      '  2. Convert it (needs `pip install torch`, for this step only):\n'
      f'     python -m gan_jax.metrics.inception_weights --pth=/path/to/{PTH_NAME} '
      f'--out={where}\n'
      f'Then point evaluation at it with --inception_weights=DIR, '
      f'--config.eval.inception_weights=DIR or ${WEIGHTS_ENV}=DIR (default: '
      f'{default_path()}). Metrics that need no Inception (cls_fd, cls_acc, '
      'cls_cov, cls_pr, ...) work without it.')


# --- PyTorch state dict <-> Flax variables --------------------------------------------

_BN_PARAMS = {'weight': 'scale', 'bias': 'bias'}
_BN_STATS = {'running_mean': 'mean', 'running_var': 'var'}


def from_torch_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict:
  """pytorch-fid's FID Inception state dict -> Flax {'params', 'batch_stats'} (numpy).

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
  _check_shapes(variables, inception.abstract_variables())
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


# --- Flax checkpoint on disk (gan_jax.metrics.weights_dir) ----------------------------

def load(path: str) -> tuple[dict, dict]:
  """(variables, metadata) of a converted checkpoint directory; a clear error if absent."""
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(os.path.expanduser(path))
  if path.endswith('.pth') and os.path.isfile(path):
    raise errors.ConfigError(
        f'{path} is the PyTorch file; convert it first:\n  python -m '
        f'gan_jax.metrics.inception_weights --pth={path} --out=DIR\nand pass DIR.')
  if not weights_dir.exists(path, META_FILE):
    raise errors.DataNotFoundError(how_to_obtain(path))
  variables, meta = weights_dir.load(path, META_FILE)
  _check_shapes(variables, inception.abstract_variables())
  return variables, meta


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def convert(pth_path: str, out_dir: str, check_hash: bool = True) -> str:
  """Converts pytorch-fid's .pth file into a Flax checkpoint directory; returns it."""
  if not os.path.isfile(pth_path):
    raise errors.DataNotFoundError(f'{pth_path} does not exist. ' + how_to_obtain(out_dir))
  digest = sha256(pth_path)
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
  return weights_dir.save(out_dir, variables, {'source': os.path.basename(pth_path),
                                                'source_sha256': digest}, META_FILE)


def main(argv=None):
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('pth', None, f'Path to {PTH_NAME}.')
  flags.DEFINE_string('out', None, f'Output directory (default: {default_path()}).')
  flags.DEFINE_bool('check_hash', True, 'Check the file\'s sha256 prefix.')
  flags.mark_flag_as_required('pth')

  def run(args):
    if len(args) > 1:
      raise app.UsageError(f'Unexpected arguments: {" ".join(args[1:])}')
    fl = flags.FLAGS
    try:
      out = convert(fl.pth, fl.out or default_path(), fl.check_hash)
    except errors.GanJaxError as e:
      sys.exit(f'error: {e}')
    print(f'Wrote the FID Inception weights to {out}')
  app.run(run, argv)


if __name__ == '__main__':
  main()
