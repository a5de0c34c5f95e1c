"""Parts of benchmarks.quality_per_time: the PyTorch baseline, scoring, and the table and figure."""
