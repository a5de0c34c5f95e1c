"""Chips' dense peak TFLOP/s, and from XLA's FLOP counts to achieved TFLOP/s and MFU."""

from __future__ import annotations

import math

# Dense peak TFLOP/s per chip (no 2:4 structured sparsity), per compute dtype.
# 'float32' on NVIDIA is TF32 on the tensor cores; None where not meaningful
# (TPUs have no float32 matrix peak). Sources, the vendors' spec sheets:
#   H100 SXM: NVIDIA H100 Tensor Core GPU datasheet: BF16 1,979 / TF32 989
#     TFLOPS "with sparsity", so 989 / 495 dense (494.7). H100 PCIe: 1,513 /
#     756 with sparsity, so 756 / 378 dense.
#   H200 (SXM): NVIDIA H200 datasheet: the same tensor-core figures as the
#     H100 SXM (BF16 1,979, TF32 989 with sparsity).
#   A100: NVIDIA A100 datasheet: BF16 312, TF32 156 (dense; 624 / 312 sparse).
#   L4: NVIDIA L4 datasheet: BF16 242, TF32 120 with sparsity, so 121 / 60.
#   TPU v4: Google Cloud TPU v4 documentation: 275 TFLOPS bf16 per chip.
#   TPU v5e: Cloud TPU v5e documentation: 197 TFLOPS bf16 per chip.
#   TPU v5p: Cloud TPU v5p documentation: 459 TFLOPS bf16 per chip.
#   TPU v6e (Trillium): Cloud TPU v6e documentation: 918 TFLOPS bf16 per chip.
# Matched in order against substrings of `device.device_kind` (JAX names
# such as 'NVIDIA H100 80GB HBM3', 'TPU v5 lite', 'TPU v6 lite'): the more
# specific names first ('H100 PCIe' before 'H100', 'TPU v5 lite' before 'TPU v5').
PEAK_TFLOPS = (
    (('H100 PCIe',), 'H100 PCIe', {'bfloat16': 756.0, 'float32': 378.0}),
    (('H100',), 'H100 SXM', {'bfloat16': 989.0, 'float32': 495.0}),
    (('H200',), 'H200', {'bfloat16': 989.0, 'float32': 495.0}),
    (('A100',), 'A100', {'bfloat16': 312.0, 'float32': 156.0}),
    (('L4',), 'L4', {'bfloat16': 121.0, 'float32': 60.0}),
    (('TPU v4',), 'TPU v4', {'bfloat16': 275.0, 'float32': None}),
    (('TPU v5 lite', 'TPU v5e', 'TPU v5litepod'), 'TPU v5e', {'bfloat16': 197.0, 'float32': None}),
    (('TPU v5p', 'TPU v5'), 'TPU v5p', {'bfloat16': 459.0, 'float32': None}),
    (('TPU v6 lite', 'TPU v6e', 'TPU v6'), 'TPU v6e', {'bfloat16': 918.0, 'float32': None}),
)


def chip(device_kind: str) -> tuple[str, dict] | None:
  """(chip name, {dtype: dense peak TFLOP/s or None}) for a device kind, or None if unknown."""
  kind = (device_kind or '').lower()
  for substrings, name, peaks in PEAK_TFLOPS:
    if any(s.lower() in kind for s in substrings):
      return name, dict(peaks)
  return None


def peak_tflops(device_kind: str, dtype: str) -> float | None:
  """Dense peak TFLOP/s of one chip in `dtype`; None for an unknown chip or dtype."""
  found = chip(device_kind)
  return None if found is None else found[1].get(dtype)


def achieved_tflops(flops_per_step: float | None, steps_per_s: float | None) -> float | None:
  """TFLOP/s of all devices together, from the FLOPs of one step (all devices) and steps/s."""
  if not flops_per_step or not steps_per_s:
    return None
  return flops_per_step * steps_per_s / 1e12


def mfu(tflops: float | None, peak_per_chip: float | None, devices: int = 1) -> float | None:
  """Model FLOPs utilisation: achieved TFLOP/s over the peak of `devices` chips (None: n/a)."""
  if tflops is None or not peak_per_chip or devices < 1:
    return None
  return tflops / (peak_per_chip * devices)


def cost_analysis(stage):
  """`stage.cost_analysis()` of a lowered or compiled program; None where the backend has none."""
  try:
    return stage.cost_analysis()
  except Exception:  # pylint: disable=broad-except  (some backends have none)
    return None


def flops_from_cost_analysis(cost) -> float | None:
  """The 'flops' of `compiled.cost_analysis()`: a dict, or a list of dicts (older JAX); None if absent."""
  if cost is None:
    return None
  if isinstance(cost, (list, tuple)):
    values = [flops_from_cost_analysis(c) for c in cost]
    values = [v for v in values if v is not None]
    return sum(values) if values else None
  try:
    value = cost.get('flops')
  except AttributeError:
    return None
  if value is None or not math.isfinite(float(value)) or float(value) <= 0:
    return None
  return float(value)
