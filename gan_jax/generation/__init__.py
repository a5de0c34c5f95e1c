"""Drawing from a trained generator: fixed-noise grids, batches, and generated datasets on disk."""
