"""Scores every point of a quality-per-time run, gan_jax or PyTorch, with the same gan_jax metrics.

Writes OUT/quality.json: one row per point (step, minutes, metric values) and
each metric's protocol, rewritten after every point so that an interrupted
scoring keeps what it finished.
"""

from __future__ import annotations

import os

import numpy as np

from benchmarks.quality import baseline

QUALITY = 'quality.json'
SAMPLE_SEED = 0


def _torch_config(timeline: dict):
  """A gan_jax config whose data is the PyTorch run's folder: the metrics' reference.

  With the gan_jax run it was matched to, that run's data config, so that both
  are scored against the same cached reference.
  """
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
  from gan_jax.config import saved as saved_config
  config = config_base.get_config()
  if timeline.get('match') and os.path.exists(os.path.join(timeline['match'], 'config.json')):
    config.data = saved_config.load_from_workdir(timeline['match']).data
  else:
    config.data.source, config.data.split = 'folder', ''
    config.data.image_size, config.data.channels = 32, 3
  config.data.path = timeline['data_path']
  return config


def _kind(out: str, config) -> str:
  path = os.path.join(out, 'benchmark.json')
  config_file = baseline.read_json(path).get('config_file') if os.path.exists(path) else ''
  return f'gan_jax {config_file or config.model.name}'


def _metric_names(config) -> list[str]:
  return ['cls_fd', 'cls_cov'] + (['cls_acc'] if config.model.conditional else [])


def score(out: str, *, num: int, num_reference: int, fid_stats: str = '', fid_num: int = 10_000,
          fid_points: str = 'last', torch_bn: str = 'eval', log=print) -> dict:
  from gan_jax.config import saved as saved_config
  from gan_jax.parallel import devices
  from gan_jax.training import setup as setup_lib
  from gan_jax.metrics import fid  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation import evaluators  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation.context import Evaluation, SampleSet  # pylint: disable=g-import-not-at-top
  timeline_path = os.path.join(out, baseline.TIMELINE)
  is_torch = os.path.exists(timeline_path)
  if is_torch:
    timeline = baseline.read_json(timeline_path)
    points, config = timeline['points'], _torch_config(timeline)
    kind = f'PyTorch DCGAN-32 (eager), BatchNorm {torch_bn}'
  else:
    points, config = baseline.gan_jax_timeline(out), saved_config.load_from_workdir(out)
    kind = _kind(out, config)
  config.eval.num, config.eval.num_reference, config.eval.seed = num, num_reference, SAMPLE_SEED
  evaluation = Evaluation(config, None, devices.make_mesh(), log=log)
  names = _metric_names(config)
  sets = fid.FeatureSets(log=log) if fid_stats else None
  reference = sets.statistics(fid_stats) if sets else None
  record = {'run': out, 'kind': kind, 'torch_bn': torch_bn if is_torch else None,
            'points': [], 'protocols': {}}
  path = os.path.join(out, QUALITY if not is_torch or torch_bn == 'eval'
                      else f'quality_bn_{torch_bn}.json')
  for i, point in enumerate(points):
    if is_torch:
      g = baseline.generator(out, point['file'], torch_bn)
      images = baseline.draw(g, max(num, fid_num if sets else 0), SAMPLE_SEED)
      samples = SampleSet(lambda n, images=images: (images[:n], None),
                          f'PyTorch DCGAN-32 at step {point["step"]}')
    else:
      _, setup, state = setup_lib.restore_setup(out, point['step'])
      samples = evaluation.generator_samples(setup.gan, state, point['step'])
    results = evaluators.run(evaluation, samples, names)
    row = {'step': point['step'], 'minutes': point['wall_s'] / 60,
           **{k: m.value for k, m in results.items()}}
    if 'cls_classes' in results:
      row['class_histogram'] = results['cls_classes'].extra['histogram']
    record['protocols'].update({k: m.protocol for k, m in results.items()})
    if sets and (fid_points == 'all' or i == len(points) - 1):
      from gan_jax.metrics import frechet  # pylint: disable=g-import-not-at-top
      images, _ = samples.take(fid_num)
      stats = frechet.statistics(sets.features(images, f'step {point["step"]}'))
      row['fid'] = frechet.frechet_distance(stats, reference[0])
      record['protocols']['fid'] = (
          f'{fid_num} samples vs {reference[1]["num"]} images of {reference[1]["path"]} '
          f'({reference[1].get("subset", "")}); {sets.protocol["weights"]}, '
          f'{sets.protocol["preprocessing"]}')
    if is_torch and i == len(points) - 1:  # gan_jax runs write their own grids
      from gan_jax.viz import grids  # pylint: disable=g-import-not-at-top
      record['grid'] = grids.save_grid(
          samples.take(64)[0], os.path.join(out, f'samples_bn_{torch_bn}_step_{point["step"]}.png'), 8)
    record['points'].append(row)
    baseline.write_json(path, record)
    log(f'{kind} step {row["step"]} ({row["minutes"]:.1f} min): '
        + ', '.join(f'{k} {v:.4g}' for k, v in row.items()
                    if k not in ('step', 'minutes') and np.isscalar(v)))
  return record
