"""The 2D lab on the mode-collapse benchmark's 2D-ring (VEEGAN, PacGAN): settings that cover every mode.

Target: 8 Gaussians of std 0.01 evenly spaced on the unit circle (PacGAN's
2D-ring). Metrics, logged during training and in final_metrics.json: modes
with at least one high-quality sample (within 3 std of its nearest centre) and
the % of high-quality samples, over 2,500 samples, as in VEEGAN and PacGAN
Table 1 (GAN: 6.3 / 8 modes, 98.2% high quality), and the sliced Wasserstein
distance to the target.

Default: the report's networks (mlp2d, LeakyReLU) at 64 units, G and D lr
1e-4 (PacGAN's), Adam b1 0.5, batch 1,000, 2D Gaussian noise, 60,000 steps.
Over 5 seeds: 8 of 8 modes in every seed, 90.1 +- 3.9% high-quality samples,
sliced Wasserstein 0.061 (experiments/RESULTS.md, "Defaults for the ring and
the grid"). `:report` keeps the reference report's GAN (32 units, D lr 1e-3,
batch 100, 30,000 steps), which collapses onto 2-4 of the 8 modes.

Run:
  python -m gan_jax.main --config=configs/toy2d_ring.py --workdir=runs/toy2d_ring
  python -m gan_jax.main --config=configs/toy2d_ring.py:report --workdir=runs/toy2d_ring_report
"""

from gan_jax.toy2d.defaults import mode_benchmark_config


def get_config(preset: str = ''):
  return mode_benchmark_config('ring', preset, {
      'optim.d.lr': 1e-4, 'model.hidden': 64, 'train.batch_size': 1000,
      'train.num_steps': 60_000, 'train.sample_every': 2_000,
      'train.log_every': 2_000})
