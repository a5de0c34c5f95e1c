"""The parts of the accelerator benchmark suite, `python -m benchmarks.accelerator_suite`."""
