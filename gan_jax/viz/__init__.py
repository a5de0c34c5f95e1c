"""Figures written into a run's workdir: sample grids and loss curves."""
