"""What a run sends to TensorBoard and W&B: scalars and images, read back with the tools' own readers.

TensorBoard's event files are read with TensorBoard's EventAccumulator (the
reader behind its UI); W&B's offline run with its protobuf records. The W&B
tests skip when wandb is not installed (it is an optional extra).
"""

import glob
import io
import json
import os
import shutil
import struct
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from gan_jax import errors
from gan_jax.config import base as config_base
from gan_jax.config import saved as saved_config
from gan_jax.metrics import classifier
from gan_jax.training import image as image_trainer
from gan_jax.training import reporting
from gan_jax.training import trainers
from gan_jax.training import wandb_run
from gan_jax.viz import grids
from tests.conftest import tiny_config
from tests.test_toy2d import tiny_lab_config

# Before a run, rather than after it: tensorboard is a test requirement, not a runtime one.
requires_tensorboard = pytest.mark.skipif(not config_base.module_installed('tensorboard'),
                                          reason='tensorboard is not installed')
TRAINING_SCALARS = {'d_loss_real', 'd_loss_fake', 'g_loss', 'd_acc_real', 'd_acc_fake',
                    'steps_per_sec', 'images_per_sec'}


def read_events(workdir: str):
  """The run's TensorBoard events, as TensorBoard loads them (all of them: no sampling)."""
  # pylint: disable-next=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator
  events = event_accumulator.EventAccumulator(os.path.join(workdir, 'tensorboard'),
                                        size_guidance={'images': 0, 'scalars': 0})
  events.Reload()
  return events


def image_steps(events, tag: str) -> list[int]:
  return [e.step for e in events.Images(tag)]


def decoded(events, tag: str, step: int) -> np.ndarray:
  """The image of `tag` at `step` as uint8 (H, W, C)."""
  [event] = [e for e in events.Images(tag) if e.step == step]
  return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))


@requires_tensorboard
def test_conditional_ema_run_writes_scalars_grids_class_rows_and_eval(tmp_path):
  """An EMA-keeping conditional run with periodic evaluation: every tag, at every sample step."""
  cls_dir = str(tmp_path / 'classifier')
  classifier.train_and_save(tiny_config().data, cls_dir, steps=10, batch_size=32, lr=3e-3,
                            log=lambda *_: None)
  workdir = str(tmp_path / 'run')
  image_trainer.train_and_evaluate(tiny_config(**{
      'train.ema_decay': 0.9, 'model.conditional': True, 'eval.every': 4,
      'eval.metrics': ('cls_fd',), 'eval.classifier': cls_dir, 'eval.num': 64,
      'eval.num_reference': 64, 'eval.batch_size': 32,
      'eval.cache_dir': str(tmp_path / 'cache')}), workdir)
  events = read_events(workdir)
  tags = events.Tags()
  assert TRAINING_SCALARS | {'eval/cls_fd'} <= set(tags['scalars'])
  assert [e.step for e in events.Scalars('g_loss')] == [2, 4]
  assert [e.step for e in events.Scalars('eval/cls_fd')] == [4]
  logged = [r for r in reporting.read_metrics(workdir) if 'eval/cls_fd' in r]
  assert events.Scalars('eval/cls_fd')[0].value == pytest.approx(logged[0]['eval/cls_fd'])
  classes = {f'samples/class_{k}' for k in range(10)}   # the digits' 10 classes
  assert set(tags['images']) == {'samples/grid', 'samples/grid_ema'} | classes
  for tag in tags['images']:
    assert image_steps(events, tag) == [2, 4], tag

  # The PNG grid is the EMA G's, unchanged; TensorBoard has it (as RGB) and the raw G's beside it.
  png = np.asarray(Image.open(os.path.join(workdir, 'samples', 'step_0000004.png')))
  ema, raw = decoded(events, 'samples/grid_ema', 4), decoded(events, 'samples/grid', 4)
  assert ema.shape == raw.shape == png.shape + (3,) and ema.dtype == np.uint8
  np.testing.assert_array_equal(ema[..., 0], png)
  assert not np.array_equal(raw, ema)
  # Each class image is that class's row of the grid: per_class=2 samples, the grid's padding.
  row = 28 + 2
  for k in (0, 9):
    np.testing.assert_array_equal(decoded(events, f'samples/class_{k}', 4)[..., 0],
                                  png[k * row:k * row + row + 2])


@requires_tensorboard
def test_resume_purges_images_and_scalars_after_the_restored_step(tmp_path):
  """A crash after step 4's events but before its checkpoint: the rerun writes step 4 once."""
  workdir = str(tmp_path / 'run')
  config = tiny_config()
  image_trainer.train_and_evaluate(config, workdir)
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '4'))   # as if killed before saving it
  image_trainer.train_and_evaluate(config, workdir)           # resumes from step 2
  events = read_events(workdir)
  assert set(events.Tags()['images']) == {'samples/grid'}      # no EMA, unconditional
  assert image_steps(events, 'samples/grid') == [2, 4]
  assert [e.step for e in events.Scalars('g_loss')] == [2, 4]
  png = np.asarray(Image.open(os.path.join(workdir, 'samples', 'step_0000004.png')))
  np.testing.assert_array_equal(decoded(events, 'samples/grid', 4)[..., 0], png)


@requires_tensorboard
def test_lab_run_writes_its_snapshot_figure_from_the_drawing_thread(tmp_path):
  workdir = str(tmp_path / 'ring')
  trainers.train_and_evaluate(tiny_lab_config('ring'), workdir)
  events = read_events(workdir)
  assert {'d_loss', 'g_loss', 'sliced_wasserstein', 'modes'} <= set(events.Tags()['scalars'])
  assert events.Tags()['images'] == ['lab/snapshot']
  assert image_steps(events, 'lab/snapshot') == [3, 6]
  png = np.asarray(Image.open(os.path.join(workdir, 'snapshots', 'step_0000006.png')))
  np.testing.assert_array_equal(decoded(events, 'lab/snapshot', 6), png)


@requires_tensorboard
def test_reporter_images_from_several_threads_and_after_close(tmp_path):
  """Concurrent writers lose nothing; a frame after close is dropped, not a new event file."""
  reporter = reporting.Reporter(str(tmp_path), 0, 100, progress_bar=False)
  image = np.zeros((4, 6, 1), np.uint8)

  def frames(thread: int):
    for step in range(10):
      reporter.images(step, {f'thread_{thread}': image + thread})

  threads = [threading.Thread(target=frames, args=(t,)) for t in range(3)]
  for t in threads:
    t.start()
  for step in range(10):
    reporter.write(step, {'loss': step}, console=False)
  for t in threads:
    t.join()
  with pytest.raises(ValueError, match='uint8'):
    reporter.images(10, {'bad': image.astype(np.float32)})
  reporter.close()
  reporter.images(11, {'late': image})
  reporter.write(11, {'loss': 11.0}, console=False)
  assert len(os.listdir(tmp_path / 'tensorboard')) == 1
  events = read_events(str(tmp_path))
  assert sorted(events.Tags()['images']) == ['thread_0', 'thread_1', 'thread_2']
  for t in range(3):
    assert image_steps(events, f'thread_{t}') == list(range(10))
    assert decoded(events, f'thread_{t}', 9).shape == (4, 6, 3)
  assert [e.step for e in events.Scalars('loss')] == list(range(10))
  # Another process of a multi-host run writes nothing.
  quiet = reporting.Reporter(str(tmp_path / 'other'), 0, 100, is_main=False)
  quiet.images(1, {'x': image})
  quiet.close()
  assert not os.path.exists(tmp_path / 'other')


def test_wandb_is_off_by_default_resumable_and_named_when_missing(monkeypatch):
  config = tiny_config()
  assert not config.logging.wandb.enabled and config.logging.wandb.mode == 'offline'
  on = tiny_config(**{'logging.wandb.enabled': True, 'logging.wandb.project': 'x'})
  assert saved_config.resume_conflicts(config, on) == []       # may be switched on to resume
  monkeypatch.setitem(sys.modules, 'wandb', None)               # `import wandb` fails
  message = ("config.logging.wandb.enabled needs the wandb package: "
             "pip install -e '.[wandb]'")
  with pytest.raises(errors.ConfigError) as raised:
    config_base.validate(on)
  assert str(raised.value) == message
  with pytest.raises(errors.ConfigError, match='pip install -e'):
    wandb_run.import_wandb()
  config_base.validate(config)                                  # off: wandb is not needed
  with pytest.raises(errors.ConfigError, match='logging.wandb.mode'):
    config_base.validate(tiny_config(**{'logging.wandb.mode': 'cloud'}))


BLOCK = 32 * 1024  # the .wandb file: a W&B header, then LevelDB-log records of 32 KiB blocks


def wandb_records(path: str) -> list:
  """The protobuf records of an offline run's .wandb file (wandb's reader of it is in Go)."""
  pb = pytest.importorskip('wandb.proto.wandb_internal_pb2')
  with open(path, 'rb') as f:
    data = f.read()
  if data[:4] != b':W&B' or data[6] != 0:
    pytest.skip(f'a .wandb file format this test does not know: {data[:7]!r}')
  pos, pending, records = 7, b'', []
  while pos + 7 <= len(data):
    if BLOCK - pos % BLOCK < 7:           # a block's tail too short for a header is padding
      pos += BLOCK - pos % BLOCK
      continue
    _, length, kind = struct.unpack('<IHB', data[pos:pos + 7])
    if kind == 0:                         # zeros: the end of what was written
      break
    pending += data[pos + 7:pos + 7 + length]
    pos += 7 + length
    if kind in (1, 4):                    # a FULL record, or the LAST piece of one
      record = pb.Record()
      record.ParseFromString(pending)
      records.append(record)
      pending = b''
  return records


def wandb_history(run_dir: str) -> list[dict]:
  """The logged rows of one offline run directory, {key: value} with JSON values decoded."""
  [path] = glob.glob(os.path.join(run_dir, 'run-*.wandb'))
  return [{item.key or '/'.join(item.nested_key): json.loads(item.value_json)
           for item in record.history.item}
          for record in wandb_records(path) if record.WhichOneof('record_type') == 'history']


def test_wandb_offline_run_logs_scalars_and_images_and_resumes_the_same_run(tmp_path, monkeypatch):
  pytest.importorskip('wandb')
  for name, value in (('WANDB_MODE', 'offline'), ('WANDB_DIR', str(tmp_path / 'wandb_dir')),
                      ('WANDB_SILENT', 'true'), ('WANDB_CONSOLE', 'off')):
    monkeypatch.setenv(name, value)
  workdir = str(tmp_path / 'run')
  overrides = {'logging.wandb.enabled': True, 'train.ema_decay': 0.9,
               'train.num_steps': 2, 'train.checkpoint_every': 2}
  image_trainer.train_and_evaluate(tiny_config(**overrides), workdir)
  overrides['train.num_steps'] = 4                               # resume to step 4
  image_trainer.train_and_evaluate(tiny_config(**overrides), workdir)
  image_trainer.train_and_evaluate(tiny_config(**overrides), workdir)   # done: no W&B segment

  with open(os.path.join(workdir, wandb_run.RUN_ID_FILE)) as f:
    run_id = f.read().strip()
  run_dirs = sorted(glob.glob(os.path.join(workdir, 'wandb', 'offline-run-*')))
  assert len(run_dirs) == 2 and all(f'-{run_id}' in os.path.basename(d) for d in run_dirs)
  for run_dir, step in zip(run_dirs, (2, 4)):
    rows = wandb_history(run_dir)
    scalars = [r for r in rows if 'g_loss' in r]
    assert [r['step'] for r in scalars] == [step]
    assert TRAINING_SCALARS <= set(scalars[0])
    [images] = [r for r in rows if 'samples/grid/path' in r]
    assert images['step'] == step and images['samples/grid_ema/_type'] == 'image-file'
    for tag in ('samples/grid', 'samples/grid_ema'):
      png = os.path.join(run_dir, 'files', images[f'{tag}/path'])
      assert Image.open(png).size == (images[f'{tag}/width'], images[f'{tag}/height'])
  # The grid W&B holds is the PNG grid's pixels.
  png = np.asarray(Image.open(os.path.join(workdir, 'samples', 'step_0000004.png')))
  logged = np.asarray(Image.open(os.path.join(run_dirs[1], 'files',
                                              images['samples/grid_ema/path'])))
  np.testing.assert_array_equal(logged, png)


def test_sample_images_without_ema_or_classes_is_the_png_grid():
  grid = np.arange(4 * 3 * 3 * 1, dtype=np.uint8).reshape(4, 3, 3, 1)
  out = image_trainer.sample_images(grid, None, 2, num_classes=0)
  assert list(out) == ['samples/grid']
  np.testing.assert_array_equal(out['samples/grid'], grids.tile(grid, 2))
  many = image_trainer.sample_images(
      np.zeros((2 * 40, 3, 3, 1), np.uint8), None, 2,
      num_classes=image_trainer.MAX_CLASS_IMAGES + 8)
  assert list(many) == ['samples/grid']       # too many classes for an image each
