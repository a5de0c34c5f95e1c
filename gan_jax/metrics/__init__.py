"""Evaluation: FID/IS/KID/precision-recall with a verified FID Inception port, and offline metrics.

`evaluation.Evaluation` scores sample sets with the evaluators registered in
`evaluators` (by name, see `evaluation.EVALUATORS`); `hook` runs it during
training and `gan_jax.evaluate` from the command line. docs/evaluation.md
describes the metrics, their protocols and the one-time set-up (real FID:
docs/fid.md).
"""
