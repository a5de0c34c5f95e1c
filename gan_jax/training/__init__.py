"""Running a training: assembling it from the config, the one step loop, checkpoints, signals and reports.

  setup       models, loss, optimizers and the initial state, built from a config
  loop        the training run: resume, the step loop and its periodic actions
  image       the image trainer; toy2d.trainer is the 2D lab's
  trainers    trainers by name (config.trainer)
  checkpoint, integrity, preemption, preflight, reporting, resume: what keeps a run safe and visible
  wandb_run   Weights & Biases, optional (config.logging.wandb): the reporter's second destination
"""
