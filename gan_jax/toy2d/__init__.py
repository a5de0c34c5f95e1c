"""The 2D lab: GANs on 2D distributions, where every step of the game can be seen.

`distributions` samples the target on device, `lab` fuses train steps and
computes the snapshots and metrics, `metrics` holds the mode and distance
rules, `trainer` is the training loop (`config.trainer = 'toy2d'`) and
`sweep` runs settings and seeds side by side in one vmapped program.
"""
