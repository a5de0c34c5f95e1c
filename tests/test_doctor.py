"""`python -m gan_jax.doctor`: the report, its JSON line, and the exit status when a config's needs are missing."""

import json
import subprocess
import sys
import tarfile

import pytest

from gan_jax import doctor, errors
from gan_jax.parallel import machine
from tests.conftest import REPO_ROOT, repo_config, subprocess_env


def run_doctor(*args) -> tuple[subprocess.CompletedProcess, dict]:
  """The doctor on CPU in a subprocess; returns (the process, its last line parsed as JSON)."""
  env = subprocess_env()
  env['JAX_PLATFORMS'] = 'cpu'
  done = subprocess.run([sys.executable, '-m', 'gan_jax.doctor', *args], cwd=REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=300)
  lines = done.stdout.strip().splitlines()
  assert lines, done.stderr
  return done, json.loads(lines[-1])


def test_without_flags_it_reports_the_machine_and_exits_zero(tmp_path):
  done, report = run_doctor(f'--workdir={tmp_path / "new" / "run"}')
  assert done.returncode == 0, done.stdout + done.stderr
  assert report['ok'] and report['problems'] == []
  assert report['packages']['jax'] and 'flax' in report['packages']
  assert report['devices']['platform'] == 'cpu' and report['devices']['count'] >= 1
  assert report['bfloat16']['runs'] and report['bfloat16']['emulated']
  assert set(report['inception']) >= {'path', 'ready', 'convertible'}
  assert report['workdir']['checked'] == str(tmp_path) and report['workdir']['writable']
  assert 'devices: ' in done.stdout and 'bfloat16: runs' in done.stdout


def test_a_missing_data_path_exits_nonzero_with_a_problem_naming_it(tmp_path):
  missing = tmp_path / 'no_such_cifar'
  done, report = run_doctor('--config=configs/gan_cifar10_cpu.py',
                            f'--config.data.path={missing}')
  assert done.returncode == 1
  assert not report['ok'] and report['data']['ok'] is False
  assert len(report['problems']) == 1 and str(missing) in report['problems'][0]
  assert f"PROBLEM: data: config.data.path='{missing}' is not a directory" in done.stdout


def test_a_good_tiny_folder_config_exits_zero(rgb32_folder):
  done, report = run_doctor('--config=configs/gan_cifar10_cpu.py', f'--data_path={rgb32_folder}',
                            '--json_only')
  assert done.returncode == 0, done.stdout + done.stderr
  assert len(done.stdout.strip().splitlines()) == 1   # --json_only: the JSON line alone
  assert report['data']['ok'] and report['data']['num_examples'] == 64
  assert report['data']['num_classes'] == 3 and report['data']['example_shape'] == [32, 32, 3]
  assert report['config'] == 'configs/gan_cifar10_cpu.py'


def test_metrics_that_need_missing_inception_weights_are_a_problem(tmp_path):
  config = repo_config('gan_cifar10_cpu.py')
  config.eval.metrics = ('fid', 'cls_fd')
  config.eval.inception_weights = str(tmp_path / 'nowhere')
  report = doctor.check(config, data_path=str(tmp_path))   # an empty folder: a second problem
  assert report['inception']['needed_by'] == ['fid']
  assert any('fid need(s) the FID Inception weights' in p and 'nowhere' in p
             for p in report['problems'])
  assert any(p.startswith('data: No images in') for p in report['problems'])
  with pytest.raises(errors.NotReady, match=r'not ready: .*fid need.*\| data: No images'):
    doctor.require(config=config, data_path=str(tmp_path))


def test_unknown_metrics_bf16_that_does_not_run_and_a_batch_that_does_not_split(monkeypatch,
                                                                               rgb32_folder):
  monkeypatch.setattr(machine, 'bfloat16_check', lambda: {
      'runs': False, 'error': 'XlaRuntimeError: UNIMPLEMENTED', 'emulated': False,
      'matmul_error': None, 'conv_error': None})
  monkeypatch.setattr(machine, 'device_report', lambda: {
      'platform': 'gpu', 'count': 4, 'local_count': 4, 'process_count': 1,
      'kinds': {'H100': 4}, 'devices': []})
  config = repo_config('gan_cifar10_cpu.py')
  config.train.compute_dtype = 'bfloat16'
  config.train.batch_size = 66
  config.data.path = rgb32_folder
  report = doctor.check(config, metrics='fdi')
  problems = '\n'.join(report['problems'])
  assert 'does not run here: XlaRuntimeError' in problems and 'compute_dtype=float32' in problems
  assert 'batch_size=66 does not divide over the 4 devices' in problems
  assert "Unknown evaluator 'fdi'" in problems


def test_the_accelerator_suite_checks(tmp_path, rgb32_folder):
  tarball = tmp_path / 'data.tar.gz'
  with tarfile.open(tarball, 'w:gz') as tar:
    tar.add(rgb32_folder, arcname='train')
  report = doctor.require(bf16=True, data_path=str(tarball), data_archive_ok=True)
  assert report['data']['source'] == 'tarball'
  assert doctor.require(data_path=rgb32_folder)['data']['num_examples'] == 64
  with pytest.raises(errors.NotReady, match='JAX sees only CPUs'):
    doctor.require(accelerator=True)
  (tmp_path / 'bad.tar.gz').write_bytes(b'not a tarball')
  with pytest.raises(errors.NotReady, match='not a readable tar archive'):
    doctor.require(data_path=str(tmp_path / 'bad.tar.gz'), data_archive_ok=True)
