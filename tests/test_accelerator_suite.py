"""benchmarks/accelerator_suite.py: the smoke suite end to end on two simulated CPU devices, the budget, the arithmetic.

The smoke run (`--smoke`: toy widths, batch 4, one step per chunk, a 4-step
sprint on a generated folder) is one subprocess shared by the checks below;
it takes about a minute and a half on the 2-core development CPU (compiles
dominate). No timing is asserted: the figures of a toy run on a shared CPU mean nothing.
The fault-injection test makes the workers abort mid-measurement
($GAN_JAX_BENCH_FAULT) and checks that the suite reports it and goes on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from benchmarks import workers
from benchmarks.accelerator import measure, peaks, report, runners, sprint
from tests.conftest import REPO_ROOT, subprocess_env

TORCH = importlib.util.find_spec('torch') is not None


def _run(args: list[str], devices: int | None = None,
         fault: str = '') -> subprocess.CompletedProcess:
  env = subprocess_env(devices=devices)
  env.pop(workers.FAULT_ENV, None)
  if fault:
    env[workers.FAULT_ENV] = fault
  return subprocess.run([sys.executable, '-m', 'benchmarks.accelerator_suite', *args],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def _load(out) -> tuple[dict, str]:
  with open(os.path.join(out, report.JSON_NAME)) as f:
    result = json.load(f)
  with open(os.path.join(out, report.MD_NAME)) as f:
    return result, f.read()


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
  out = tmp_path_factory.mktemp('accelerator_smoke')
  proc = _run(['--smoke', f'--out={out}'], devices=2)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  result, markdown = _load(out)
  return result, markdown, proc.stdout, out


@pytest.mark.slow
def test_smoke_device_and_measurements(smoke):
  result, _, stdout, _ = smoke
  assert result['status'] == 'complete'
  device = result['device']
  for key in ('platform', 'device_kind', 'device_count', 'process_count', 'jax', 'jaxlib',
              'platform_version', 'date_utc'):
    assert device.get(key) not in (None, ''), key
  assert device['platform'] == 'cpu' and device['device_count'] == 2
  assert device['chip'] is None   # a CPU: MFU n/a
  if TORCH:
    assert device['torch'] and 'torch_device' in device

  options = result['options']
  expected = {(m, d) for m in options['models'] for d in options['dtypes']}
  assert {(m['model'], m['dtype']) for m in result['measurements']} == expected
  assert len(result['measurements']) == len(expected) == 8
  for m in result['measurements']:
    assert m['status'] == 'ok', m
    assert m['steps_per_s']['median'] > 0 and m['images_per_s'] > 0
    assert m['compile_s'] > 0
    assert m['n_disc'] == 1 and m['batch_size'] == 4
    if m['flops_per_step'] is not None:   # XLA's CPU cost analysis gives them
      assert m['flops_source'] == 'lowered' and m['tflops'] > 0
    if m['compiled_flops_per_device'] is not None:
      assert m['compiled_flops_x_devices'] == pytest.approx(2 * m['compiled_flops_per_device'])
    assert m['mfu'] is None
    eager = m['torch_eager']
    if TORCH:
      assert eager['status'] in ('ok', 'skipped', 'failed')
      if eager['status'] == 'ok':
        assert eager['steps_per_s']['median'] > 0 and m['ratio_eager']['median'] > 0
      else:
        assert eager['reason']
    else:
      assert eager['status'] == 'skipped' and 'not installed' in eager['reason']
    assert 'torch_compile' not in m   # --smoke: eager only
  assert any(m['flops_per_step'] for m in result['measurements'])
  assert stdout.count('elapsed /') >= 8   # one progress line per measurement
  # One framework per process, none in the driver; no worker died, so one process each.
  assert result['workers']['frameworks_in_driver'] == []
  assert device['frameworks_in_gan_jax_worker'] == ['jax']
  assert result['workers']['processes_started']['gan_jax'] == 1
  if TORCH:
    assert device['frameworks_in_torch_worker'] == ['torch']
    assert result['workers']['processes_started']['torch_eager'] == 1


@pytest.mark.slow
def test_smoke_markdown(smoke):
  result, markdown, _, _ = smoke
  assert report.TABLE_HEADER in markdown
  rows = [line for line in markdown.splitlines()
          if line.startswith('| ') and line.split('|')[3].strip() in runners.DTYPES
          and line.split('|')[2].strip() == '4']
  assert len(rows) == sum(m['status'] == 'ok' for m in result['measurements']) == 8
  assert '## bfloat16 over float32' in markdown
  assert result['device']['jax'] in markdown and 'accelerator_suite --smoke' in markdown


@pytest.mark.slow
def test_smoke_scaling_on_two_devices(smoke):
  result, markdown, _, _ = smoke
  scaling = result['scaling']
  assert scaling['status'] == 'ok'
  entries = {e['devices']: e for e in scaling['entries']}
  assert set(entries) == {1, 2}
  assert entries[1]['status'] == entries[2]['status'] == 'ok'
  assert entries[2]['batch_size'] == 2 * entries[1]['batch_size']
  assert entries[1]['efficiency'] == pytest.approx(1.0)
  assert entries[2]['efficiency'] > 0
  assert '## Scaling' in markdown


@pytest.mark.slow
def test_smoke_sprint(smoke):
  result, markdown, _, out = smoke
  sprint = result['sprint']
  assert sprint['status'] == 'ok', sprint
  assert sprint['returncode'] == 0
  assert sprint['steps_done'] == sprint['num_steps'] == 4
  # --smoke evaluates with `probe` (no download) at four points, parsed from WORKDIR/eval.
  assert [e['step'] for e in sprint['evals']] == [1, 2, 3, 4]
  assert all('probe_acc' in e['metrics'] and e['wall_min'] > 0 for e in sprint['evals'])
  assert sprint['config'] == 'configs/cgan_cifar10.py' and sprint['dtype'] == 'bfloat16'
  assert os.path.exists(os.path.join(out, 'sprint.log'))
  assert '## Quality sprint' in markdown


def test_tiny_budget_skips_everything_and_exits_zero(tmp_path):
  proc = _run(['--smoke', f'--out={tmp_path}', '--budget=1', '--models=dcgan32,sngan32'])
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  result, markdown = _load(tmp_path)
  assert result['status'] == 'complete'
  assert len(result['measurements']) == 4
  for m in result['measurements']:
    assert m['status'] == 'skipped' and m['reason'].startswith('budget'), m
  assert result['sprint']['status'] == 'skipped' and 'budget' in result['sprint']['reason']
  assert report.TABLE_HEADER in markdown and '## Skipped' in markdown
  assert markdown.count('skipped: budget') >= 4


def test_peak_table_lookup():
  assert peaks.peak_tflops('NVIDIA H100 80GB HBM3', 'bfloat16') == 989.0
  assert peaks.peak_tflops('NVIDIA H100 80GB HBM3', 'float32') == 495.0
  assert peaks.chip('NVIDIA H100 PCIe')[0] == 'H100 PCIe'
  assert peaks.peak_tflops('NVIDIA H200', 'bfloat16') == 989.0
  assert peaks.peak_tflops('NVIDIA A100-SXM4-80GB', 'float32') == 156.0
  assert peaks.peak_tflops('NVIDIA L4', 'bfloat16') == 121.0
  assert peaks.peak_tflops('TPU v4', 'bfloat16') == 275.0
  assert peaks.peak_tflops('TPU v5 lite', 'bfloat16') == 197.0
  assert peaks.peak_tflops('TPU v5e', 'bfloat16') == 197.0
  assert peaks.peak_tflops('TPU v5 lite', 'float32') is None
  assert peaks.peak_tflops('TPU v5p', 'bfloat16') == 459.0
  assert peaks.peak_tflops('TPU v6 lite', 'bfloat16') == 918.0
  assert peaks.chip('cpu') is None
  assert peaks.peak_tflops('cpu', 'bfloat16') is None


def test_mfu_arithmetic():
  # 1e12 FLOPs per step at 98.9 steps/s is 98.9 TFLOP/s: 10% of one H100's bf16 peak.
  tflops = peaks.achieved_tflops(1e12, 98.9)
  assert tflops == pytest.approx(98.9)
  assert peaks.mfu(tflops, peaks.peak_tflops('H100', 'bfloat16'), 1) == pytest.approx(0.1)
  assert peaks.mfu(tflops, 989.0, 2) == pytest.approx(0.05)
  assert peaks.mfu(tflops, None) is None and peaks.mfu(None, 989.0) is None
  assert peaks.achieved_tflops(None, 10.0) is None
  assert peaks.flops_from_cost_analysis({'flops': 5.0}) == 5.0
  assert peaks.flops_from_cost_analysis([{'flops': 2.0}, {'flops': 3.0}]) == 5.0
  assert peaks.flops_from_cost_analysis([{'bytes accessed': 1.0}]) is None
  assert peaks.flops_from_cost_analysis(None) is None
  assert measure.chunk_steps(0.002, 1.0) == 500 and measure.chunk_steps(5.0, 1.0) == 1


def test_sprint_results_are_parsed_from_the_workdir(tmp_path):
  """The sprint's evaluations, as gan_jax.metrics.hook writes them, and metrics.jsonl."""
  os.makedirs(tmp_path / 'eval')
  for step, fid in ((10, 80.5), (20, 60.25)):
    with open(tmp_path / 'eval' / f'step_{step}.json', 'w') as f:
      json.dump({'step': step, 'samples': 'G', 'seconds': 3.0, 'metrics': {
          'fid': {'value': fid, 'protocol': 'p', 'higher_is_better': False}}}, f)
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    for step in (5, 10, 15, 20):
      f.write(json.dumps({'step': step, 'd_loss': 1.0, 'g_loss': 2.0,
                          'steps_per_sec': 10.0 + step}) + '\n')
  start = os.path.getmtime(tmp_path / 'eval' / 'step_10.json') - 60
  evals, summary = sprint.parse_sprint_workdir(str(tmp_path), start)
  assert [(e['step'], e['metrics']['fid']) for e in evals] == [(10, 80.5), (20, 60.25)]
  assert evals[0]['wall_min'] == pytest.approx(1.0, abs=0.1)
  assert summary['steps_done'] == 20 and summary['last_losses'] == {'d_loss': 1.0, 'g_loss': 2.0}
  result = {'device': {}, 'measurements': [], 'sprint': {
      'config': 'c.py', 'dtype': 'bfloat16', 'num_steps': 20, 'evals': evals, **summary}}
  markdown = report.render_markdown(result)
  assert '| step | wall min | fid |' in markdown and '| 20 |' in markdown


def test_a_worker_that_aborts_fails_its_row_and_the_suite_goes_on(tmp_path):
  """PyTorch's worker aborts in dcgan28 float32's timed chunk, gan_jax's in dcgan28
  bfloat16's: those are reported with their last lines; dcgan32 gets fresh workers."""
  fault = 'torch_eager:dcgan28:float32,gan_jax:dcgan28:bfloat16'
  proc = _run(['--smoke', f'--out={tmp_path}', '--models=dcgan28,dcgan32', '--noscaling',
               '--nosprint'], fault=fault)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  result, markdown = _load(tmp_path)
  assert result['status'] == 'complete'
  rows = {(m['model'], m['dtype']): m for m in result['measurements']}
  assert len(rows) == 4

  jax_died = rows[('dcgan28', 'bfloat16')]   # the whole row: gan_jax's worker died
  assert jax_died['status'] == 'failed', jax_died
  assert jax_died['reason'].startswith("gan_jax worker died during 'time_chunk'")
  assert 'SIGABRT' in jax_died['reason']
  assert any('aborting gan_jax:dcgan28:bfloat16 on purpose' in line
             for line in jax_died['last_lines'])
  assert any('Fatal Python error: Aborted' in line for line in jax_died['last_lines'])
  for key in (('dcgan28', 'float32'), ('dcgan32', 'float32'), ('dcgan32', 'bfloat16')):
    assert rows[key]['status'] == 'ok' and rows[key]['steps_per_s']['median'] > 0, rows[key]
  assert result['workers']['processes_started']['gan_jax'] == 2   # a fresh one after the abort
  assert result['workers']['frameworks_in_driver'] == []
  assert '## Failed' in markdown
  assert "- dcgan28 batch 4 bfloat16: gan_jax worker died during 'time_chunk'" in markdown
  assert 'aborting gan_jax:dcgan28:bfloat16 on purpose' in markdown
  if not TORCH:
    return
  twin = rows[('dcgan28', 'float32')]['torch_eager']   # the twin's part of a measured row
  assert twin['status'] == 'failed' and 'SIGABRT' in twin['reason'], twin
  assert twin['reason'].startswith("torch_eager worker died during 'time_chunk'")
  assert any('aborting torch_eager:dcgan28:float32 on purpose' in line
             for line in twin['last_lines'])
  assert 'ratio_eager' not in rows[('dcgan28', 'float32')]
  for key in (('dcgan32', 'float32'), ('dcgan32', 'bfloat16')):
    assert rows[key]['torch_eager']['status'] == 'ok', rows[key]['torch_eager']
    assert rows[key]['ratio_eager']['median'] > 0
  assert result['workers']['processes_started']['torch_eager'] == 2
  assert "- dcgan28 batch 4 float32 torch_eager: torch_eager worker died" in markdown
  assert 'aborting torch_eager:dcgan28:float32 on purpose' in markdown
  table_row = next(line for line in markdown.splitlines()
                   if line.startswith('| dcgan28 | 4 | float32 |'))
  assert 'failed (torch_eager worker died' in table_row
