"""gan_jax: GAN training and evaluation in JAX/Flax.

The commands sit at the top (main, evaluate, generate, analyze); everything
else lives in a sub-package named for its role. docs/design.md draws the
layers and says what each may import.
"""
