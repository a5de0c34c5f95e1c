"""Scoring runs: evaluators by name over the feature spaces of gan_jax.metrics, during training or after.

  context     what one evaluation loads once: extractors, reference data, sample sets
  evaluators  the registered evaluators (config.eval.metrics)
  periodic    evaluation every config.eval.every steps, from the training loop
  report      results written as JSON with their protocols; the best checkpoint
"""
