"""The suite's options: one field per flag of `python -m benchmarks.accelerator_suite`, and what --smoke sets."""

from __future__ import annotations

import dataclasses

from benchmarks.accelerator.runners import DTYPES


@dataclasses.dataclass
class Options:
  """What a suite run measures and how; the command line fills it from its flags (module docstring there)."""
  out: str
  budget: float = 480.0
  models: tuple = ('dcgan32', 'dcgan64', 'sngan32', 'resnet18d')
  batch_sizes: tuple = (64, 256)
  dtypes: tuple = DTYPES
  repeats: int = 3
  chunk_seconds: float = 1.0
  torch: bool = True
  torch_compile: bool = True
  scaling: bool = True
  scaling_model: str = ''
  scaling_batch: int = 64
  sprint_data: str = ''
  sprint_config: str = 'configs/cgan_cifar10.py'
  sprint_workdir: str = ''
  sprint_reserve: float = 180.0
  sprint_eval_num: int = 10_000
  sprint_metrics: str = ''
  sprint_steps: int = 0
  inception_weights: str = ''
  sprint: bool = True
  worker_logs: bool = False       # copy the workers' stderr to the suite's
  smoke: bool = False
  # Set by --smoke (or by hand): model widths, D updates per step, steps per chunk.
  width_scale: float = 1.0
  n_disc: int = 0                 # 0: the config's
  n_gen: int = 0                  # 0: the config's
  fixed_chunk_steps: int = 0      # > 0: exactly this many steps per chunk
  command: str = ''

  @classmethod
  def smoke_defaults(cls, out: str, **explicit) -> 'Options':
    """The --smoke options; keyword arguments are the flags given explicitly, which win."""
    values = dict(out=out, smoke=True, batch_sizes=(4,), repeats=1, torch_compile=False,
                  width_scale=1 / 16, n_disc=1, n_gen=1, fixed_chunk_steps=1, scaling_batch=2,
                  sprint_eval_num=16, sprint_metrics='probe', sprint_steps=4,
                  sprint_reserve=0.0)
    values.update(explicit)
    return cls(**values)
