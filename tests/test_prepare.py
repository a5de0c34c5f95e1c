"""`python -m gan_jax.data.prepare`: each dataset prepared from tiny files of its distributed format.

The tests write those files themselves: a cifar-10-binary.tar.gz with two
records per batch file, MNIST-style IDX .gz files, a zip of 178x218 JPEGs
laid out as img_align_celeba.zip, and a folder with a corrupt image.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
from PIL import Image
import pytest

from gan_jax import errors
from gan_jax.data import archives, check, folder, idx, image_ops, prepare
from tests.conftest import REPO_ROOT, repo_config, subprocess_env, tiny_config, write_idx

CIFAR10_NAMES = ('airplane automobile bird cat deer dog frog horse ship truck').split()
RECORDS = 2   # per batch file


def cifar10_records(file_index: int, records: int = RECORDS) -> tuple[np.ndarray, np.ndarray]:
  """Labels and images of one batch file: constant R, G and B planes that name the record."""
  labels = (np.arange(records) + 3 * file_index) % 10
  images = np.zeros((records, 32, 32, 3), np.uint8)
  for i in range(records):
    images[i] = (10 * file_index + i, 100 + i, 200 + file_index)
  return labels.astype(np.uint8), images


def cifar10_bytes(labels, images) -> bytes:
  planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # R plane, G plane, B plane
  return np.concatenate([labels[:, None], planes], axis=1).astype(np.uint8).tobytes()


def write_cifar10_tarball(path, files=None, meta=None) -> str:
  """A cifar-10-binary.tar.gz: test_batch.bin first (the real archive's order differs too)."""
  names = ['test_batch.bin'] + [f'data_batch_{i}.bin' for i in range(1, 6)]
  files = files or {n: cifar10_bytes(*cifar10_records(k)) for k, n in enumerate(names)}
  files[archives.CIFAR10_META] = meta if meta is not None else \
      ('\n'.join(CIFAR10_NAMES) + '\n\n').encode()
  with tarfile.open(path, 'w:gz') as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(f'cifar-10-batches-bin/{name}')
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return str(path)


@pytest.fixture
def cifar10_tarball(tmp_path):
  return write_cifar10_tarball(tmp_path / 'cifar-10-binary.tar.gz')


def quiet(**options):
  return dict(progress=False, log=lambda *_: None, **options)


def test_cifar10_is_written_in_the_folder_layout_with_the_right_pixels(tmp_path, cifar10_tarball):
  out = str(tmp_path / 'cifar10')
  manifest = prepare.prepare('cifar10', cifar10_tarball, out, **quiet())
  assert sorted(os.listdir(out)) == ['prepare.json', 'test', 'train']
  assert not os.path.exists(out + '.partial')
  present = [name for name, count in manifest['counts']['train'].items() if count]
  assert sorted(os.listdir(os.path.join(out, 'train'))) == present   # 8 of the 10 classes
  assert sum(manifest['counts']['train'].values()) == 5 * RECORDS
  assert sum(manifest['counts']['test'].values()) == RECORDS
  # data_batch_2 (file 2 of the fixture) holds train records 2 and 3.
  labels, images = cifar10_records(2)
  path = os.path.join(out, 'train', CIFAR10_NAMES[labels[1]], '00003.png')
  np.testing.assert_array_equal(np.asarray(Image.open(path)), images[1])
  labels, images = cifar10_records(0)
  path = os.path.join(out, 'test', CIFAR10_NAMES[labels[0]], '00000.png')
  np.testing.assert_array_equal(np.asarray(Image.open(path)), images[0])
  with open(os.path.join(out, 'prepare.json')) as f:
    assert json.load(f)['class_names'] == CIFAR10_NAMES


def test_cifar10_from_the_extracted_folder_and_with_a_limit(tmp_path, cifar10_tarball):
  with tarfile.open(cifar10_tarball) as tar:
    tar.extractall(tmp_path / 'x', filter='data')
  manifest = prepare.prepare('cifar10', str(tmp_path / 'x'), str(tmp_path / 'out'),
                             **quiet(limit=3))
  assert {s: sum(c.values()) for s, c in manifest['counts'].items()} == {'train': 3, 'test': 2}


def test_a_prepared_cifar10_folder_trains(tmp_path, cifar10_tarball):
  from gan_jax.training import image as image_trainer  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / 'cifar10')
  prepare.prepare('cifar10', cifar10_tarball, out, **quiet())
  config = repo_config('gan_cifar10_cpu.py')
  tiny = tiny_config(**{'train.batch_size': 4, 'train.num_steps': 2})
  for key in ('batch_size', 'num_steps', 'log_every', 'sample_every', 'checkpoint_every'):
    config.train[key] = tiny.train[key]
  config.train.max_minutes = 0.0
  config.model.width_scale = 1 / 16
  config.sample.num = 4
  config.data.path = os.path.join(out, 'train')   # the documented --config.data.path=DIR/train
  state = image_trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 2


@pytest.mark.parametrize('damage, message', [
    ('truncated', 'data_batch_3.bin holds 6,145 bytes, not a whole number of 3,073-byte'),
    ('python', 'Python version of CIFAR-10'),
    ('label', 'data_batch_3.bin, record 0: label 12'),
    ('meta', 'should hold one class name a line'),
])
def test_damaged_cifar10_is_one_clear_error_and_leaves_nothing(tmp_path, damage, message):
  files = {n: cifar10_bytes(*cifar10_records(0)) for n in
           ['test_batch.bin'] + [f'data_batch_{i}.bin' for i in range(1, 6)]}
  meta = None
  if damage == 'truncated':
    files['data_batch_3.bin'] = files['data_batch_3.bin'][:-1]
  elif damage == 'python':
    files = {'data_batch_1': b'\x80\x04pickle', 'batches.meta': b'pickle'}
  elif damage == 'label':
    files['data_batch_3.bin'] = b'\x0c' + files['data_batch_3.bin'][1:]
  else:
    meta = b'air/plane\n'
  src = write_cifar10_tarball(tmp_path / 'c.tar.gz', files, meta)
  out = tmp_path / 'out'
  with pytest.raises(errors.DataError, match=message):
    prepare.prepare('cifar10', src, str(out), **quiet())
  assert not out.exists() and not os.path.exists(f'{out}.partial')


def test_missing_or_wrong_sources_and_a_nonempty_out(tmp_path, cifar10_tarball):
  with pytest.raises(errors.DataNotFoundError, match='cifar-10-binary.tar.gz'):
    prepare.prepare('cifar10', str(tmp_path / 'nothing.tar.gz'), str(tmp_path / 'o'), **quiet())
  (tmp_path / 'not.tar.gz').write_bytes(b'hello')
  with pytest.raises(errors.DataError, match='not a readable tar archive'):
    prepare.prepare('cifar10', str(tmp_path / 'not.tar.gz'), str(tmp_path / 'o'), **quiet())
  (tmp_path / 'full').mkdir()
  (tmp_path / 'full' / 'x').write_text('x')
  with pytest.raises(errors.ConfigError, match='already exists and is not empty'):
    prepare.prepare('cifar10', cifar10_tarball, str(tmp_path / 'full'), **quiet())
  with pytest.raises(errors.ConfigError, match='Unknown dataset'):
    prepare.prepare('cifar100', cifar10_tarball, str(tmp_path / 'o'), **quiet())
  (tmp_path / 'empty').mkdir()   # an empty --out is fine
  prepare.prepare('cifar10', cifar10_tarball, str(tmp_path / 'empty'), **quiet())
  assert os.path.isdir(tmp_path / 'empty' / 'train')


def write_mnist(directory, train=12, test=4, dotted=False):
  rng = np.random.default_rng(0)
  for prefix, n in (('train', train), ('t10k', test)):
    write_idx(str(directory), prefix, rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
              np.arange(n) % 10, compress=not dotted)
  if dotted:   # a mirror's naming: train-images.idx3-ubyte
    for name in os.listdir(directory):
      os.rename(directory / name, directory / name.replace('-idx', '.idx'))
  return str(directory)


@pytest.mark.parametrize('dataset', ['mnist', 'fashion_mnist'])
def test_idx_files_are_checked_and_copied_for_the_idx_source(tmp_path, dataset):
  lines = []
  src = write_mnist(tmp_path / 'src')
  out = str(tmp_path / 'out')
  manifest = prepare.prepare(dataset, src, out, progress=False, log=lines.append)
  assert sorted(os.listdir(out)) == sorted(
      ['prepare.json', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
       't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'])
  assert sum(manifest['counts']['train'].values()) == 12
  assert manifest['counts']['t10k'][manifest['class_names'][3]] == 1
  assert any('60,000' in line for line in lines)   # the tiny files are not the real counts
  data = idx.load(tiny_config(**{'data.path': out, 'data.split': 'train'}).data)
  assert len(data) == 12


def test_idx_files_with_a_mirrors_names_get_the_idx_sources_names(tmp_path):
  src = write_mnist(tmp_path / 'src', dotted=True)
  prepare.prepare('mnist', src, str(tmp_path / 'out'), **quiet())
  assert 'train-images-idx3-ubyte' in os.listdir(tmp_path / 'out')


def test_bad_idx_files_are_one_clear_error(tmp_path):
  src = tmp_path / 'src'
  write_mnist(src)
  os.remove(src / 't10k-labels-idx1-ubyte.gz')
  with pytest.raises(errors.DataNotFoundError, match='lacks t10k-labels-idx1-ubyte.gz'):
    prepare.prepare('mnist', str(src), str(tmp_path / 'o'), **quiet())
  write_mnist(src, test=5)
  os.replace(src / 'train-labels-idx1-ubyte.gz', src / 'keep.gz')
  write_idx(str(tmp_path / 'other'), 'train', np.zeros((3, 28, 28), np.uint8), np.zeros(3))
  os.replace(tmp_path / 'other' / 'train-labels-idx1-ubyte.gz', src / 'train-labels-idx1-ubyte.gz')
  with pytest.raises(errors.DataError, match='has 12 images but .* has 3 labels'):
    prepare.prepare('mnist', str(src), str(tmp_path / 'o'), **quiet())
  shutil.copyfile(src / 'train-images-idx3-ubyte.gz', src / 'train-labels-idx1-ubyte.gz')
  with pytest.raises(errors.DataError, match='magic number 2051, expected 2049'):
    prepare.prepare('mnist', str(src), str(tmp_path / 'o'), **quiet())
  (src / 'train-labels-idx1-ubyte.gz').write_bytes(b'\x1f\x8b not really gzip')
  with pytest.raises(errors.DataError, match='Cannot read IDX file'):
    prepare.prepare('mnist', str(src), str(tmp_path / 'o'), **quiet())
  assert not (tmp_path / 'o').exists()


def jpeg(rng, size=(178, 218)) -> bytes:
  pixels = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).resize(size).save(buffer, 'JPEG', quality=90)
  return buffer.getvalue()


def write_celeba_zip(path, n=3, corrupt=None):
  rng = np.random.default_rng(0)
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('img_align_celeba/', '')
    for i in range(1, n + 1):
      data = jpeg(rng) if i != corrupt else b'\xff\xd8 not a jpeg'
      z.writestr(f'img_align_celeba/{i:06d}.jpg', data)
  return str(path)


def test_celeba_is_cropped_and_resized_as_the_sources_read_it(tmp_path):
  src = write_celeba_zip(tmp_path / 'img_align_celeba.zip')
  out = str(tmp_path / 'celeba')
  manifest = prepare.prepare('celeba', src, out, **quiet())
  assert sorted(os.listdir(out)) == ['000001.png', '000002.png', '000003.png', 'prepare.json']
  assert manifest['original_sizes'] == {'178x218': 3}
  with zipfile.ZipFile(src) as z:
    z.extractall(tmp_path / 'raw')
  raw = tiny_config(**{'data.source': 'folder', 'data.image_size': 64, 'data.channels': 3,
                       'data.path': str(tmp_path / 'raw' / 'img_align_celeba')}).data
  prepared = np.asarray(Image.open(os.path.join(out, '000002.png')))
  assert prepared.shape == (64, 64, 3)
  np.testing.assert_array_equal(prepared, folder.FolderSource(raw)[1]['image'])
  # Read back through the folder source at the same size, nothing changes.
  again = folder.FolderSource(tiny_config(**{'data.source': 'folder', 'data.image_size': 64,
                                             'data.path': out}).data)
  np.testing.assert_array_equal(again[1]['image'], prepared)


def test_celeba_limit_and_a_damaged_member(tmp_path):
  src = write_celeba_zip(tmp_path / 'a.zip', n=4, corrupt=4)
  manifest = prepare.prepare('celeba', src, str(tmp_path / 'two'), **quiet(limit=2, size=32))
  assert manifest['counts']['all'][''] == 2 and manifest['image_size'] == 32
  assert Image.open(tmp_path / 'two' / '000001.png').size == (32, 32)
  with pytest.raises(errors.DataError, match='img_align_celeba/000004.jpg cannot be read'):
    prepare.prepare('celeba', src, str(tmp_path / 'o'), **quiet())
  assert not (tmp_path / 'o').exists() and not (tmp_path / 'o.partial').exists()
  (tmp_path / 'b.zip').write_bytes(b'PK not a zip')
  with pytest.raises(errors.DataError, match='not a readable zip archive'):
    prepare.prepare('celeba', str(tmp_path / 'b.zip'), str(tmp_path / 'o'), **quiet())


@pytest.fixture
def messy_folder(tmp_path):
  """Two classes: RGB 32x32, an L 40x30 and an RGBA image, and one truncated PNG."""
  root = tmp_path / 'messy'
  rng = np.random.default_rng(0)
  for c in ('cats', 'dogs'):
    (root / c).mkdir(parents=True)
    for i in range(3):
      Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / c / f'{i}.png')
  Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(root / 'dogs' / 'gray.png')
  Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)).save(root / 'cats' / 'a.png')
  good = (root / 'cats' / '0.png').read_bytes()
  (root / 'dogs' / 'broken.png').write_bytes(good[:len(good) // 2])
  (root / 'dogs' / 'notes.txt').write_text('not an image')
  return str(root)


def test_folder_report_names_counts_sizes_modes_and_unreadable_files(messy_folder):
  report = check.inspect_folder(messy_folder, progress=False)
  assert report.counts == {'cats': 4, 'dogs': 4}
  assert report.sizes.most_common(2) == [((32, 32), 7), ((40, 30), 1)]
  assert dict(report.modes) == {'RGB': 6, 'L': 1, 'RGBA': 1}
  assert [os.path.basename(p) for p, _ in report.unreadable] == ['broken.png']
  text = '\n'.join(check.format_folder_report(report))
  assert 'cats 4, dogs 4' in text and '32x32 7' in text and 'broken.png: ' in text


def test_folder_without_out_fails_on_unreadable_files_and_with_out_writes_a_clean_copy(
    tmp_path, messy_folder):
  lines = []
  with pytest.raises(errors.DataError, match='1 unreadable image file'):
    prepare.prepare('folder', messy_folder, progress=False, log=lines.append)
  assert any('broken.png' in line for line in lines)
  out = str(tmp_path / 'clean')
  manifest = prepare.prepare('folder', messy_folder, out, **quiet(size=16))
  assert manifest['copied'] == 8 and len(manifest['left_out']) == 1
  assert sorted(os.listdir(os.path.join(out, 'dogs'))) == ['0.png', '1.png', '2.png', 'gray.png']
  source = folder.FolderSource(tiny_config(**{'data.source': 'folder', 'data.image_size': 16,
                                              'data.path': out}).data)
  assert len(source) == 8 and source.info.class_names == ('cats', 'dogs')
  gray = np.asarray(Image.open(os.path.join(messy_folder, 'dogs', 'gray.png')))
  np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(out, 'dogs', 'gray.png'))),
                                image_ops.normalise_array(gray, 16, 3))


def test_a_readable_folder_reports_and_exits_zero(rgb32_folder):
  report = prepare.prepare('folder', rgb32_folder, **quiet())
  assert sum(report['counts'].values()) == 64 and report['unreadable'] == []


def test_the_command_line(tmp_path):
  src = write_mnist(tmp_path / 'src')
  command = [sys.executable, '-m', 'gan_jax.data.prepare']
  run = lambda *args: subprocess.run(command + list(args), cwd=REPO_ROOT, env=subprocess_env(),
                                     capture_output=True, text=True, timeout=120)
  ok = run('mnist', f'--src={src}', f'--out={tmp_path / "out"}')
  assert ok.returncode == 0, ok.stderr
  assert 'train: 12 images' in ok.stdout and '--config.data.source=idx' in ok.stdout
  again = run('mnist', f'--src={src}', f'--out={tmp_path / "out"}')
  assert again.returncode == 1
  assert again.stderr.strip().splitlines()[-1].startswith('error: --out=')
  assert 'not empty' in again.stderr and 'Traceback' not in again.stderr
  usage = run(f'--src={src}')
  assert usage.returncode != 0 and 'Give one DATASET: celeba, cifar10' in usage.stderr
