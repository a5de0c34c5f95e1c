"""The study's settings: everything a small-data study depends on, as the command line gives it."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Settings:
  """Everything a study depends on (the command line's flags)."""
  workdir: str
  config: str
  data_source: str
  data_path: str
  image_size: int = 28
  channels: int = 1
  num_train: int = 100
  num_heldout: int = 1000
  seed: int = 0
  steps: int = 1500
  batch_size: int = 64
  variants: tuple = ('baseline', 'diffaugment', 'ada', 'ada_lecam')
  lecam_weight: float = 0.3
  ada_target: float = 0.6
  ada_kimg: float = 100
  checkpoints: int = 4
  metrics: tuple = ('cls_fd', 'cls_cov')
  eval_num: int = 5000
  num_reference: int = 10_000
  fid_stats: str = ''
  fid_num: int = 1000
  overrides: tuple = ()
