"""Data sources and the batch stream: IDX, folders (mixed modes, corrupt files), TFDS, subsets, order."""

import os

import numpy as np
import pytest
from PIL import Image
import tensorflow_datasets as tfds

from gan_jax import data, errors
from gan_jax.data import image_ops, pipeline
from gan_jax.data.source import ArraySource
from tests.conftest import make_config, write_idx


def _data_config(**overrides):
  return make_config(**{f'data.{k}': v for k, v in overrides.items()}).data


# ---------------------------------------------------------------- IDX

def test_idx_reads_images_and_labels(idx_dir):
  source = data.build_source(_data_config(source='idx', path=idx_dir))
  assert len(source) == 64
  assert source.info.image_shape == (28, 28, 1)
  assert source.info.num_classes == 10
  example = source[5]
  assert example['image'].dtype == np.uint8 and example['image'].shape == (28, 28, 1)
  assert example['label'] == 5 % 4
  # The class's bright square sits where the fixture put it.
  assert example['image'][4 + 5 * 1: 10 + 5 * 1, 8:20].min() == 255


def test_idx_resizes_and_selects_split(tmp_path, idx_dir):
  rng = np.random.default_rng(1)
  write_idx(idx_dir, 't10k', rng.integers(0, 255, (10, 28, 28)), np.arange(10),
            compress=False)
  both = data.build_source(_data_config(source='idx', path=idx_dir))
  assert len(both) == 74
  test = data.build_source(_data_config(source='idx', path=idx_dir, split='test',
                                        image_size=32, channels=3))
  assert len(test) == 10 and test[0]['image'].shape == (32, 32, 3)


def test_idx_errors_name_the_problem(tmp_path, idx_dir):
  with pytest.raises(errors.DataNotFoundError, match='not a directory'):
    data.build_source(_data_config(source='idx', path=str(tmp_path / 'nowhere')))
  with pytest.raises(errors.DataNotFoundError, match='No train2-images'):
    data.build_source(_data_config(source='idx', path=idx_dir, split='train2'))
  path = os.path.join(idx_dir, 'train-images-idx3-ubyte.gz')
  truncated = tmp_path / 'trunc'
  truncated.mkdir()
  with open(path, 'rb') as f:
    import gzip
    raw = gzip.decompress(f.read())
  (truncated / 'train-images-idx3-ubyte').write_bytes(raw[:1000])
  os.link(os.path.join(idx_dir, 'train-labels-idx1-ubyte.gz'),
          truncated / 'train-labels-idx1-ubyte.gz')
  with pytest.raises(errors.DataError, match='truncated'):
    data.build_source(_data_config(source='idx', path=str(truncated)))


def test_shared_mnist(shared_mnist):
  source = data.build_source(_data_config(source='idx', path=shared_mnist))
  assert len(source) == 10_000
  assert source.info.class_names == tuple('0123456789')
  labels = np.asarray([source[i]['label'] for i in range(0, 10_000, 50)])
  assert set(labels) == set(range(10))


# ---------------------------------------------------------------- folder

def _save(path, array, mode=None, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array, mode).save(path, **kwargs) if mode else Image.fromarray(array).save(path, **kwargs)


@pytest.fixture
def mixed_folder(tmp_path):
  """Class folders holding every image mode a user's scrape produces."""
  root = tmp_path / 'images'
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
  _save(str(root / 'cat' / 'rgb.png'), rgb)
  _save(str(root / 'cat' / 'photo.jpg'), rgb, quality=90)
  _save(str(root / 'cat' / 'gray.png'), rng.integers(0, 256, (30, 30), dtype=np.uint8))
  rgba = np.dstack([rgb, np.full((40, 50), 128, np.uint8)])
  _save(str(root / 'dog' / 'rgba.png'), rgba)
  Image.fromarray(rgb).convert('P', palette=Image.Palette.ADAPTIVE).save(root / 'dog' / 'palette.gif')
  sixteen = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
  Image.fromarray(sixteen).save(root / 'dog' / 'sixteen.png')
  assert Image.open(root / 'dog' / 'sixteen.png').mode.startswith('I')
  return root


def test_folder_converts_every_mode(mixed_folder):
  source = data.build_source(_data_config(source='folder', path=str(mixed_folder),
                                          image_size=16))
  assert len(source) == 6
  assert source.info.class_names == ('cat', 'dog')
  assert source.info.image_shape == (16, 16, 3)
  images = np.stack([source[i]['image'] for i in range(6)])
  assert images.dtype == np.uint8 and images.shape == (6, 16, 16, 3)
  assert sorted(int(source[i]['label']) for i in range(6)) == [0, 0, 0, 1, 1, 1]


def test_sixteen_bit_images_are_rescaled_not_clipped(mixed_folder):
  with Image.open(mixed_folder / 'dog' / 'sixteen.png') as img:
    gray = np.asarray(image_ops.to_mode(img, channels=1))
  assert gray.dtype == np.uint8
  assert gray.min() == 0 and gray.max() == 255
  assert np.all(np.diff(gray.reshape(-1).astype(int)) >= 0)  # still a gradient
  assert 100 < gray.mean() < 155   # a clip at 255 would make it nearly all white


def test_transparent_pixels_become_white(mixed_folder):
  with Image.open(mixed_folder / 'dog' / 'rgba.png') as img:
    rgb = np.asarray(image_ops.to_mode(img, channels=3)).astype(int)
    original = np.asarray(img)[..., :3].astype(int)
  np.testing.assert_allclose(rgb, (original * 128 + 255 * 127) / 255, atol=1.5)


def test_folder_corrupt_file_is_named_or_skipped(mixed_folder):
  bad = mixed_folder / 'dog' / 'broken.jpg'
  good_jpeg = (mixed_folder / 'cat' / 'photo.jpg').read_bytes()
  bad.write_bytes(good_jpeg[:len(good_jpeg) // 2])   # a truncated JPEG
  with pytest.raises(errors.DataError, match='broken.jpg.*skip_bad_files'):
    data.build_source(_data_config(source='folder', path=str(mixed_folder), image_size=16))
  source = data.build_source(_data_config(source='folder', path=str(mixed_folder),
                                          image_size=16, skip_bad_files=True))
  assert len(source) == 6
  assert '1 unreadable skipped' in source.info.description


def test_flat_folder_is_unlabelled(tmp_path):
  rng = np.random.default_rng(0)
  for i in range(5):
    _save(str(tmp_path / 'flat' / f'{i}.png'), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
  source = data.build_source(_data_config(source='folder', path=str(tmp_path / 'flat'),
                                          image_size=8))
  assert source.info.num_classes == 0 and len(source) == 5
  with pytest.raises(errors.ConfigError, match='no labels'):
    data.build_source(_data_config(source='folder', path=str(tmp_path / 'flat'),
                                   classes=('cat',)))


def test_empty_folder(tmp_path):
  (tmp_path / 'empty' / 'cat').mkdir(parents=True)
  with pytest.raises(errors.DataNotFoundError, match='No images in'):
    data.build_source(_data_config(source='folder', path=str(tmp_path / 'empty')))


# ---------------------------------------------------------------- subsets

def test_class_subset_by_name_and_index(idx_dir):
  by_index = data.build_source(_data_config(source='idx', path=idx_dir, classes=(3, 1)))
  assert by_index.info.class_names == ('1', '3')
  assert len(by_index) == 32
  labels = {int(by_index[i]['label']) for i in range(len(by_index))}
  assert labels == {0, 1}  # renumbered in class order
  # Class 3's square is lower than class 1's: check the relabelling kept pairs.
  for i in range(len(by_index)):
    example = by_index[i]
    original = 1 if example['label'] == 0 else 3
    assert example['image'][4 + 5 * original, 10, 0] == 255
  by_name = data.build_source(_data_config(source='idx', path=idx_dir, classes=('1,3',)))
  assert len(by_name) == 32
  with pytest.raises(errors.ConfigError, match="unknown class 'horse'"):
    data.build_source(_data_config(source='idx', path=idx_dir, classes=('horse',)))


# ---------------------------------------------------------------- TFDS

def test_tfds_mock_data_with_subset_and_resize():
  with tfds.testing.mock_data(num_examples=40):
    source = data.build_source(_data_config(source='tfds', name='cifar10', image_size=16,
                                            classes=(0, 1, 2)))
    assert source.info.image_shape == (16, 16, 3)
    assert source.info.num_classes == 3
    example = source[0]
    assert example['image'].shape == (16, 16, 3) and example['label'] in (0, 1, 2)


def test_tfds_not_prepared_says_how_to_get_it(tmp_path):
  with pytest.raises(errors.DataNotFoundError, match='tfds build mnist') as info:
    data.build_source(_data_config(source='tfds', name='mnist', path=str(tmp_path)))
  message = str(info.value)
  # That it needs a download, where it looked, and where the prepared data goes.
  assert 'needs a one-time download' in message and f'not prepared in {tmp_path}' in message
  assert '--data_dir=DIR' in message and '--config.data.path=DIR' in message


def test_unknown_source():
  with pytest.raises(errors.ConfigError, match="Unknown data source 'folders'.*'folder'"):
    data.build_source(_data_config(source='folders'))


def test_digits_is_the_default_and_needs_no_download():
  source = data.build_source(_data_config())
  assert len(source) == 1797
  assert source.info.image_shape == (28, 28, 1)
  assert source.info.num_classes == 10


# ---------------------------------------------------------------- order

def _toy_source(n=50):
  images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1)
  return ArraySource(images, np.arange(n) % 5, list('abcde'), 'toy')


def _ids(batch):
  return batch['image'][..., 0, 0, 0]


def test_every_epoch_is_a_permutation_and_epochs_differ():
  stream = pipeline.batches(_toy_source(), global_batch=10, n_disc=1, seed=3,
                            read_threads=0)
  epoch1 = np.concatenate([_ids(next(stream))[0] for _ in range(5)])
  epoch2 = np.concatenate([_ids(next(stream))[0] for _ in range(5)])
  assert sorted(epoch1) == sorted(epoch2) == list(range(50))
  assert not np.array_equal(epoch1, epoch2)


def test_order_is_a_function_of_seed_and_step():
  def first_steps(seed, start, count, threads):
    stream = pipeline.batches(_toy_source(), global_batch=10, n_disc=2, seed=seed,
                              start_step=start, read_threads=threads)
    return [_ids(next(stream)) for _ in range(count)]
  straight = first_steps(0, 0, 6, threads=2)
  resumed = first_steps(0, 4, 2, threads=0)
  np.testing.assert_array_equal(straight[4], resumed[0])
  np.testing.assert_array_equal(straight[5], resumed[1])
  assert straight[0].shape == (2, 10)
  other_seed = first_steps(1, 0, 1, threads=0)
  assert not np.array_equal(straight[0], other_seed[0])


def test_processes_read_disjoint_parts_of_the_same_global_batch():
  def stream(index, count):
    return pipeline.batches(_toy_source(), global_batch=10, n_disc=1, seed=0,
                            process_index=index, process_count=count, read_threads=0)
  whole = next(stream(0, 1))
  parts = [next(stream(i, 2)) for i in range(2)]
  np.testing.assert_array_equal(np.concatenate([_ids(p) for p in parts], axis=1), _ids(whole))
  with pytest.raises(errors.ConfigError, match='not divisible'):
    stream(0, 3)
