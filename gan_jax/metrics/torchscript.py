"""The tensors of a TorchScript archive (`torch.jit.save`), read without PyTorch and without a free unpickle.

A TorchScript file is a zip: `<root>/data.pkl` pickles the module tree, whose
tensors point (through pickle's persistent ids) at raw little-endian storages
in `<root>/data/<key>`. The unpickler here resolves only the names such a
file needs: TorchScript module classes (`__torch__.*`, kept as plain records
of their attributes), `torch._utils._rebuild_tensor_v2`, storage types,
`OrderedDict` and `build_intlist`. Any other global is refused, so a crafted
file cannot run code. Tensors come back as numpy arrays keyed by their dotted
attribute path (`net.layers.mixed_10.tower_2_conv.weight`).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from typing import BinaryIO

import numpy as np

from gan_jax import errors

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


class ScriptModule:
  """A TorchScript module from the pickle: its class name and its attributes."""

  def __init__(self, class_name: str):
    self.class_name = class_name
    self.attributes: dict = {}

  def __setstate__(self, state):
    self.attributes = dict(state)


def _module_class(name: str):
  return type(name.rsplit('.', 1)[-1], (ScriptModule,),
              {'__init__': lambda self: ScriptModule.__init__(self, name)})


def _rebuild_tensor(storage, offset, size, stride, *unused):
  itemsize = storage.dtype.itemsize
  if not size:
    return np.array(storage[offset])
  needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
  if needed > len(storage):
    raise errors.DataError(f'A tensor of shape {tuple(size)} reaches past its storage '
                           f'({needed} > {len(storage)} elements): the file is damaged.')
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride),
      writeable=False)
  return np.ascontiguousarray(view)


class _Unpickler(pickle.Unpickler):
  """Resolves only what a TorchScript module's data.pkl needs; refuses any other global."""

  def __init__(self, file, archive: zipfile.ZipFile, root: str):
    super().__init__(file)
    self._archive = archive
    self._root = root
    self._classes: dict = {}

  def find_class(self, module, name):
    if module.startswith('__torch__.') or module == '__torch__':
      key = f'{module}.{name}'
      return self._classes.setdefault(key, _module_class(key))
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch.jit._pickle', 'build_intlist'):
      return list
    raise errors.DataError(f'The TorchScript archive refers to {module}.{name}, which a '
                           'file of weights has no need for; it is not read (untrusted '
                           'pickle).')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'):
      raise errors.DataError(f'Unexpected persistent id {pid!r} in the TorchScript archive.')
    _, dtype, key, _, numel = pid
    name = f'{self._root}/data/{key}'
    try:
      raw = self._archive.read(name)
    except KeyError as e:
      raise errors.DataError(f'The TorchScript archive lacks the storage {name}.') from e
    dtype = np.dtype(dtype).newbyteorder('<')
    if len(raw) != numel * dtype.itemsize:
      raise errors.DataError(f'Storage {name} holds {len(raw)} bytes, not the '
                             f'{numel * dtype.itemsize} of {numel} {dtype} values.')
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder('='))


def _walk(node, prefix: str, out: dict) -> None:
  if isinstance(node, np.ndarray):
    out[prefix] = node
  elif isinstance(node, ScriptModule):
    for key, value in node.attributes.items():
      _walk(value, f'{prefix}.{key}' if prefix else key, out)


def read_tensors(file: str | BinaryIO) -> dict[str, np.ndarray]:
  """{dotted attribute path: array} of every tensor held by a TorchScript module file."""
  try:
    archive = zipfile.ZipFile(file)
  except (zipfile.BadZipFile, OSError) as e:
    raise errors.DataError(f'{file} is not a TorchScript archive (a zip file): {e}') from e
  with archive:
    roots = sorted({n.split('/', 1)[0] for n in archive.namelist()
                    if n.endswith('/data.pkl') and n.count('/') == 1})
    if len(roots) != 1:
      raise errors.DataError(f'{file} holds {len(roots)} TorchScript data.pkl files; '
                             'expected exactly one.')
    data = archive.read(f'{roots[0]}/data.pkl')
    try:
      module = _Unpickler(io.BytesIO(data), archive, roots[0]).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
      raise errors.DataError(f'{file}: its data.pkl cannot be read ({e}).') from e
  tensors: dict = {}
  _walk(module, '', tensors)
  return tensors
