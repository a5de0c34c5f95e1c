"""Evaluation during training: every `config.eval.every` steps and at the end, from the train loop.

Results go to WORKDIR/eval/step_N.json (with protocols), to metrics.jsonl
and TensorBoard as `eval/NAME`, and, with `config.eval.best_metric`, the best
state so far is kept in WORKDIR/checkpoints_best (see `report.BestCheckpoint`).
"""

from __future__ import annotations

import time

import jax

from gan_jax.evaluation import evaluators
from gan_jax.evaluation import report
from gan_jax.evaluation.context import Evaluation


class PeriodicEvaluation:
  """Built once per run, before the first step; `__call__(step, state)` evaluates and returns the seconds it took.

  Building it loads the extractors and the reference features the metrics
  need, so a missing file stops the run at its start, not at its first
  evaluation.
  """

  def __init__(self, config, workdir: str, source, gan, mesh, reporter):
    self.config = config
    self.workdir = workdir
    self.gan = gan
    self.reporter = reporter
    self.names = report.metric_names(config.eval.metrics)
    self.evaluation = Evaluation(config, source, mesh, log=reporter.message)
    evaluators.prepare(self.evaluation, self.names)   # missing weights or classifier: fail before step 1
    self.best = (report.BestCheckpoint(workdir, config.eval.best_metric)
                 if config.eval.best_metric else None)

  def __call__(self, step: int, state) -> float:
    start = time.perf_counter()
    samples = self.evaluation.generator_samples(self.gan, state, step)
    results = evaluators.run(self.evaluation, samples, self.names)
    seconds = time.perf_counter() - start
    if jax.process_index() == 0:
      report.write_json(self.workdir, f'step_{step}.json', report.full_record(
          step, samples.description, results, self.config.eval, seconds))
    self.reporter.write(step, {f'eval/{k}': m.value for k, m in results.items()},
                        console=False)
    line = report.summary_line(step, results) + f' ({seconds:.1f}s)'
    if self.best is not None and self.best.update(step, state, results):
      line += f'; new best {self.config.eval.best_metric}, saved to {self.best.directory}'
    self.reporter.message(line)
    return seconds

  def close(self):
    if self.best is not None:
      self.best.close()
