"""benchmarks/torch_reference.py's guard against oneDNN's AVX2 1x1 weight-gradient bug (BENCHMARKS.md).

On a CPU where oneDNN runs its AVX2 kernels, the resnet18d twin's float32
step used to abort ('double free or corruption') or segfault in D's
backward: a channels-last real batch reaches a 1x1 stride-2 convolution.
The twin now gives D a contiguous NCHW batch there.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

torch = pytest.importorskip('torch')
from benchmarks import torch_reference as tr  # noqa: E402
from tests.conftest import REPO_ROOT, subprocess_env  # noqa: E402

X86 = platform.machine().lower() in ('x86_64', 'amd64')


@pytest.fixture
def fresh_guard():
  tr.onednn_avx2_only.cache_clear()
  yield
  tr.onednn_avx2_only.cache_clear()


@pytest.mark.skipif(not X86, reason='the bug is in oneDNN x86 kernels')
def test_isa_cap_turns_the_guard_on(monkeypatch, fresh_guard):
  monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
  assert tr.onednn_avx2_only()
  tr.onednn_avx2_only.cache_clear()
  monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'avx512_core_bf16')
  assert not tr.onednn_avx2_only()


def test_the_guard_changes_the_layout_not_the_numbers(monkeypatch):
  real = torch.randint(0, 256, (4, 32, 32, 3), generator=torch.Generator().manual_seed(1),
                       dtype=torch.uint8)
  losses = {}
  for guarded in (False, True):
    monkeypatch.setattr(tr, 'onednn_avx2_only', lambda g=guarded: g)
    step = tr.TrainStep('resnet18d', width_scale=1 / 16, seed=0)
    assert step.input_layout == ('nchw (oneDNN AVX2 guard)' if guarded else 'channels_last')
    losses[guarded] = [float(v) for _ in range(2) for v in step(real).values()]
  assert losses[True] == pytest.approx(losses[False], rel=1e-4, abs=1e-5)


@pytest.mark.skipif(not X86, reason='the bug is in oneDNN x86 kernels')
def test_the_twin_that_crashed_runs_under_onednn_avx2():
  script = ('import torch; from benchmarks import torch_reference as tr; '
            'torch.set_num_threads(1); s = tr.TrainStep("resnet18d", width_scale=1/16); '
            'r = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8); '
            '[s(r) for _ in range(3)]; print(s.input_layout)')
  env = dict(subprocess_env(), ONEDNN_MAX_CPU_ISA='AVX2')
  proc = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'oneDNN AVX2 guard' in proc.stdout
