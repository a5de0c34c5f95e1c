"""The base configuration every experiment starts from.

`get_config()` returns every key gan_jax knows, with defaults that train the
small DCGAN of the MNIST course report on scikit-learn's bundled 8x8 digits
(upscaled to 28x28), which need no download. The embedded quickstart
(gan_jax/quickstart.py, what `python -m gan_jax.main --workdir=DIR` trains)
is this with a tuned recipe. Experiment files in `configs/` import this and
override a few fields, and the returned dict is locked so that a misspelt key
is an error rather than a silently ignored new field.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from gan_jax import errors

BASE_CONFIG_PATH = os.path.abspath(__file__)
WANDB_MODES = ('offline', 'online', 'disabled')
WANDB_MISSING = ("config.logging.wandb.enabled needs the wandb package: "
                 "pip install -e '.[wandb]'")


def schedule_spec(kind: str = 'constant', end: float = 0.0, length: float = 0.0,
                  unit: str = 'images') -> ml_collections.ConfigDict:
  """How a value moves over training (gan_jax.core.schedules); the default keeps it constant.

  kind: constant | linear | cosine, from the value's own key to `end` over
  `length` `unit`s (images: real images D has seen; or steps), then `end`.
  """
  return ml_collections.ConfigDict(dict(kind=kind, end=float(end), length=float(length),
                                        unit=unit))


def _optimizer(lr: float) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name='adam',          # adam | adamw | sgd
      lr=lr,
      b1=0.5,               # DCGAN's beta1; also SGD momentum when name='sgd'
      b2=0.999,
      eps=1e-8,
      weight_decay=0.0,     # decoupled (adamw) or L2 added to the gradient (adam, sgd)
      lr_schedule='constant',  # constant | linear (decays to 0 at train.num_steps, as SNGAN)
      # lr and b2 moved over training (core.schedules; R3GAN: cosine lr 2e-4 -> 5e-5,
      # b2 0.9 -> 0.99). Exclusive with lr_schedule='linear'.
      schedule=dict(lr=schedule_spec(), b2=schedule_spec()),
      ortho=0.0,            # BigGAN's orthogonal regularisation (G_ortho, D_ortho; core.ortho)
  ))


def get_config() -> ml_collections.ConfigDict:
  """Returns the base config: every key, and the MNIST report's small DCGAN on bundled digits."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.trainer = 'image'  # image | toy2d: the training loop, see gan_jax.training.trainers.TRAINERS

  config.data = ml_collections.ConfigDict(dict(
      source='digits',      # digits | idx | folder | tfds | stacked_mnist | toy2d (2D points, with trainer='toy2d')
      name='',              # TFDS dataset name, e.g. 'mnist', 'cifar10', 'celeb_a'; toy2d distribution
      path='',              # IDX directory, image folder, TFDS data_dir, or toy2d points (.npy/.csv)
      split='',             # '' = the source's default ('train' for TFDS, all files for IDX)
      image_size=28,        # images are resized (shorter side) and centre-cropped to this
      channels=0,           # 0 = as stored; 1 or 3 converts
      classes=(),           # keep only these classes, by name or index; () keeps all
      skip_bad_files=False, # folder source: skip unreadable images (counted in the log)
      read_threads=1,       # host threads decoding and batching ahead of the step
      prefetch=4,           # batches prepared ahead of the step
      mirror=False,         # doubles the data with left-right mirrored copies (StyleGAN's and R3GAN's --mirror)
  ))

  config.model = ml_collections.ConfigDict(dict(
      name='dcgan28',       # see gan_jax.models.MODELS
      family='gan',         # gan | vae | ddpm (gan_jax.families); models vae, ddpm_unet need theirs
      latent_dim=100,
      conditional=False,    # class-conditional G and D, as the two keys below say
      g_conditioning='concat',  # none | concat (one-hot to z) | cbn (class-conditional BatchNorm) | embed
      d_conditioning='concat',  # none | concat (one-hot maps on the input) | projection | acgan | embed
      spectral_norm='default',  # default (sngan*: D; others: none) | none | d | g | gd
      width_scale=1.0,      # multiplies every hidden width; < 1 for tiny tests
      bn_momentum=0.9,      # = PyTorch BatchNorm momentum 0.1
      hidden=32,            # mlp2d: units in each hidden layer ...
      hidden_layers=2,      # ... and their number, in G and in D (2: the report's networks)
      # Mode-collapse tools of D (docs/toolbox.md): PacGAN packing, D judges
      # `pack` samples at once, side by side along channels; 1 is off.
      pack=1,
      d_minibatch='none',   # none | stddev (ProGAN/StyleGAN) | discrimination (Salimans et al.)
      minibatch_group=4,    # stddev: group size, min(group, D's batch) as StyleGAN
      minibatch_kernels=100,  # discrimination: B kernels of T (A, B, C) ...
      minibatch_dims=5,     # ... of C dims each (the authors' code: 100 of 5)
      # biggan32/64/128 only (gan_jax.models.biggan), BigGAN-PyTorch's flags; their width
      # is ch = 64 x width_scale. The defaults are its CIFAR-10 setting.
      biggan=dict(
          attention=0,      # G_attn = D_attn: resolution of a self-attention block; 0 = none
          shared_dim=0,     # G_shared: > 0 = one shared class embedding of this size feeds every ccbn
          hier=False,       # hierarchical z: a chunk of z per G block, joined to the shared embedding
      ),
  ))

  config.loss = ml_collections.ConfigDict(dict(
      name='nonsaturating',  # minimax | nonsaturating | hinge | wasserstein | least_squares
      label_smoothing=0.0,  # one-sided: D's real target 1 - this (BCE and least-squares losses)
      classifier_weight=1.0,  # ACGAN class cross-entropy weight (model.d_conditioning='acgan')
      # Weight of the A8 report's MSE "similarity" term in G's loss: mean squared
      # error between G(z, y) and a real image of class y (needs
      # model.conditional); logged as g_similarity_loss. 0 is off.
      similarity_weight=0.0,
  ))

  # Penalties added to D's loss (gan_jax.regularizers); weight 0 is off.
  # every=k > 1: lazy, on one D update in k, scaled by k (StyleGAN2).
  config.reg = ml_collections.ConfigDict(dict(
      gradient_penalty=dict(weight=0.0, every=1, target=1.0),  # WGAN-GP: 10
      r1=dict(weight=0.0, every=1,    # gamma: adds gamma/2 E||grad D(x_real)||^2
              before_augment=False,   # True: grad w.r.t. x before config.augment (R3GAN's code)
              schedule=dict(weight=schedule_spec())),  # gamma over training (R3GAN: 0.05 -> 0.005)
      r2=dict(weight=0.0, every=1,    # gamma/2 E||grad D(G(z))||^2 on the fakes (R3GAN: with r1)
              before_augment=False, schedule=dict(weight=schedule_spec())),
      lecam=dict(weight=0.0, every=1,  # LeCam (Tseng et al. 2021): 0.3 (BigGAN), 0.01 (StyleGAN2)
                 decay=0.99),          # EMA decay of the anchors (D's mean real and fake logits)
      bcr=dict(weight=0.0, every=1,    # balanced consistency (Zhao et al. 2020): 10
               translation=0.125,      # its T: shifts up to this fraction of the size ...
               flip=True),             # ... and left-right flips
      zcr=dict(weight=0.0, every=1,    # latent consistency, D's term (Zhao et al. 2020): 5
               g_weight=0.5,           # G's term, rewarding G(z) != G(z + dz): 0.5
               sigma=0.05),            # dz ~ N(0, sigma^2 I)
  ))

  # Transforms of every batch D sees (gan_jax.augment), applied in the order listed.
  config.augment = ml_collections.ConfigDict(dict(
      transforms=(),        # e.g. ('diffaugment',) or ('instance_noise',)
      instance_noise=dict(std=0.1,       # Gaussian noise std on D's inputs in [-1, 1]
                          decay_steps=0),  # > 0: std decays linearly to 0 at this step
      diffaugment=dict(policy='color,translation,cutout',
                       translation=0.125,  # max shift, fraction of the image size
                       cutout=0.5),        # side of the zeroed square, fraction of the size
      # ADA (Karras et al. 2020): each op with probability p, p steered by r_t.
      ada=dict(p=0.0,             # initial (or, with adapt=False, fixed) probability
               target=0.6,        # r_t = E[sign(D(x_real))] that p steers toward
               interval=4,        # D updates between adjustments of p
               kimg=500.0,        # thousands of images for p to go from 0 to 1
               ops='blit,geom,color',  # groups (blit, geom, color, cutout) or op names;
                                       # 'color:0.5': those ops at p x 0.5 (R3GAN's strengths)
               adapt=True,
               schedule=dict(p=schedule_spec())),  # with adapt=False: p over training (R3GAN: 0 -> 0.55)
  ))

  # The VAE family (model.family='vae', gan_jax.vae): loss = NLL + beta * KL.
  config.vae = ml_collections.ConfigDict(dict(
      beta=1.0,             # weight of the KL term; 1 = the ELBO, > 1 = beta-VAE
      likelihood='bernoulli',  # bernoulli (pixels as probabilities) | gaussian (fixed std)
      sigma=0.1,            # gaussian likelihood: std on [-1, 1] pixels
  ))

  # The DDPM family (model.family='ddpm', gan_jax.diffusion).
  config.ddpm = ml_collections.ConfigDict(dict(
      timesteps=1000,       # T of the forward process
      schedule='linear',    # linear (Ho et al.) | cosine (Nichol & Dhariwal)
      sampler='ddim',       # ddim | ancestral (all T steps)
      sample_steps=50,      # DDIM steps
      eta=0.0,              # DDIM noise: 0 deterministic, 1 ~ ancestral
      guidance=0.0,         # classifier-free guidance weight w; 0 = plain conditional
      p_uncond=0.1,         # training: probability of dropping the label (needed for guidance)
  ))

  config.optim = ml_collections.ConfigDict(dict(
      g=_optimizer(2e-4),
      d=_optimizer(2e-4),
  ))

  config.train = ml_collections.ConfigDict(dict(
      num_steps=1500,       # generator iterations; each = n_disc D updates + n_gen G updates
      batch_size=64,        # global batch, split over all devices
      n_disc=1,             # D updates per iteration, each on a fresh real batch
      n_gen=1,              # G updates per iteration, each on fresh noise
      log_every=100,
      sample_every=500,
      checkpoint_every=500,
      keep_checkpoints=3,
      # EMA of G's variables (weights and BatchNorm statistics) after every step,
      # ema = decay * ema + (1 - decay) * G; sample grids, generate and
      # evaluation use it. 0 disables; 0.999-0.9999 is usual.
      ema_decay=0.0,
      ema_start=0,          # step from which the EMA starts averaging (before: a copy)
      # Unrolled GAN (Metz et al. 2017): G's loss uses D after k more updates of
      # D on this step's D batches, differentiated through them; 0 is off.
      unroll_steps=0,
      # > 0 (or scheduled): the EMA by half-life in images instead of ema_decay, decay
      # 0.5 ** (batch_size x n_disc / half-life) per step (Karras et al.; R3GAN: 0 -> 5M
      # images over 20M, train.schedule.ema_half_life). Exclusive with ema_decay.
      ema_half_life=0.0,
      schedule=dict(ema_half_life=schedule_spec()),
      # float32 | bfloat16: the dtype G's and D's convolutions, matmuls and
      # activations run in (gan_jax.precision); parameters, optimizer states,
      # BatchNorm statistics, losses and the EMA stay float32. bfloat16 is for
      # GPUs and TPUs: a CPU emulates it, slower than float32.
      compute_dtype='float32',
      # > 0: a time budget. Training stops at the first step that ends more than
      # this many minutes after it started (compile, data, checkpoints and grids
      # included), saving a checkpoint and a grid there as at the last step.
      # Rerunning the command resumes toward num_steps with a fresh budget.
      max_minutes=0.0,
  ))

  config.sample = ml_collections.ConfigDict(dict(
      num=64,               # images in an unconditional sample grid
      per_class=10,         # columns per class row in a conditional grid
      # An EMA G with BatchNorm samples (grids, evaluation, generate, analyze) with
      # standing statistics: BatchNorm's mean and variance averaged over this many
      # train-mode batches of train.batch_size from fixed noise, recomputed per action
      # (BigGAN's standing stats; gan_jax.generation.standing). 0 = the EMA of the
      # running statistics, which do not match the EMA weights.
      standing_stats_batches=16,
  ))

  # Evaluation (gan_jax/metrics; docs/evaluation.md). Numbers are written with
  # their protocol: sample count, reference data and feature space.
  config.eval = ml_collections.ConfigDict(dict(
      every=0,              # evaluate during training every N steps (and at the end); 0 = never
      metrics=(),           # evaluator names, e.g. ('cls_fd', 'cls_cov'); see gan_jax.metrics.evaluators
      best_metric='',       # keep the best checkpoint by this metric in WORKDIR/checkpoints_best; '' = off
      num=10_000,           # generated samples per evaluation
      num_reference=10_000, # reference images: a seeded subset of the data (0 = all of it)
      reference_split='',   # data split of the reference; '' = config.data.split (the training data)
      batch_size=500,       # images per jitted call, split over all devices
      inception_batch_size=20, # the same for the Inception (20 was fastest on a 2-core CPU; more on accelerators)
      seed=0,               # seeds the evaluation noise, the reference subset and KID's subsets
      inception_weights='', # converted FID Inception dir; '' = $GAN_JAX_INCEPTION_WEIGHTS or the cache
      classifier='',        # domain classifier dir (python -m gan_jax.metrics.classifier)
      cache_dir='',         # reference statistics, weights, classifiers; '' = $GAN_JAX_CACHE_DIR, $XDG_CACHE_HOME/gan_jax or ~/.cache/gan_jax
      kid_subsets=100,      # KID: number of subsets ...
      kid_subset_size=1000, # ... and their size (Binkowski et al.)
      pr_k=3,               # precision/recall: k of the k-NN balls (Kynkaanniemi et al.)
      dup_num=1000,         # cls_dups: near-duplicate pairs among this many samples
      dup_quantile=1e-4,    # cls_dups threshold: this quantile of reference pair distances ...
      dup_threshold=0.0,    # ... unless this absolute distance is > 0
      modes_num=26_000,     # stacked_modes: samples (26,000 in the PacGAN/VEEGAN protocol)
      probe_num=5_000,      # probe: labelled real images, 80% to fit and 20% to score
  ))

  # The 2D lab (trainer='toy2d', data.source='toy2d'); see gan_jax/toy2d/.
  config.toy2d = ml_collections.ConfigDict(dict(
      latent='uniform',     # G's 2D noise: uniform = Unif[-1,1]^d (the report) | normal
      sine_frequency=1.0,   # sine: (x, sin(frequency * x) + y / 4); 1 is the report's formula
      ring_modes=8,         # ring: Gaussians evenly spaced on a circle (PacGAN/VEEGAN 2D-ring)
      ring_radius=1.0,
      ring_std=0.01,
      grid_size=5,          # grid: grid_size^2 Gaussians at spacing * {-2..2}^2 (2D-grid)
      grid_spacing=2.0,
      grid_std=0.05,
      steps_per_call=1000,  # train steps fused into one compiled call (lax.scan)
      eval_samples=10_000,  # generated and true points for the sliced Wasserstein distance
      mode_samples=2_500,   # generated points for the ring/grid mode metric
      plot_points=1_000,    # real and generated points drawn per snapshot
      plot_resolution=80,   # cells per side of the D maps in a snapshot
      animation='gif',      # gif | none: the snapshots (train.sample_every) assembled at the end
  ))

  # Where training metrics and images go besides the console, metrics.jsonl and
  # TensorBoard (gan_jax.training.reporting; always on, process 0 only).
  config.logging = ml_collections.ConfigDict(dict(
      # Weights & Biases, optional (pip install -e '.[wandb]'): the same scalars
      # and images as TensorBoard, into one W&B run per workdir. Its id is kept in
      # WORKDIR/wandb_run_id, so a resumed run logs into the same W&B run.
      wandb=dict(
          enabled=False,
          project='gan_jax',
          entity='',        # W&B user or team; '' = the logged-in user's default
          name='',          # run name; '' = the workdir's base name
          group='',         # groups runs in the W&B UI (e.g. a sweep); '' = none
          tags=(),          # e.g. ('cifar10', 'hinge')
          # offline: written to WORKDIR/wandb, no network (upload later with
          # `wandb sync`, as the run's console says) | online (needs `wandb login`)
          # | disabled (wandb's no-op run)
          mode='offline',
      ),
  ))

  # Multi-host jobs (gan_jax/distributed.py). None of this is needed on one
  # host, whatever its number of devices.
  config.distributed = ml_collections.ConfigDict(dict(
      coordinator_address='',   # 'HOST:PORT' of process 0, the same for all; '' = $JAX_COORDINATOR_ADDRESS or detected
      num_processes=0,          # 0 = from the detected cluster
      process_id=-1,            # this process, 0..num_processes-1; -1 = from the detected cluster
      auto_detect=True,         # let JAX detect SLURM (srun), Cloud TPU pods, Open MPI, Kubernetes
      initialization_timeout=300,  # seconds to wait for every process to connect
  ))

  config.lock()
  return config


def validate(config: ml_collections.ConfigDict) -> None:
  """Rejects values that would fail later, or silently, with a message naming the key."""
  train = config.train
  checks = [
      (train.num_steps >= 1, 'train.num_steps', 'must be at least 1'),
      (train.batch_size >= 1, 'train.batch_size', 'must be at least 1'),
      (train.n_disc >= 1, 'train.n_disc', 'must be at least 1'),
      (train.n_gen >= 1, 'train.n_gen', 'must be at least 1'),
      (train.log_every >= 1, 'train.log_every', 'must be at least 1'),
      (train.sample_every >= 0, 'train.sample_every', 'must be >= 0 (0: only at the end)'),
      (train.checkpoint_every >= 0, 'train.checkpoint_every',
       'must be >= 0 (0: only at the end)'),
      (train.keep_checkpoints >= 1, 'train.keep_checkpoints', 'must be at least 1'),
      (train.max_minutes >= 0, 'train.max_minutes', 'must be >= 0 (0: no time budget)'),
      (0.0 <= train.ema_decay < 1.0, 'train.ema_decay', 'must be in [0, 1)'),
      (train.ema_start >= 0, 'train.ema_start', 'must be >= 0'),
      (train.unroll_steps >= 0, 'train.unroll_steps', 'must be >= 0 (0: no unrolling)'),
      (train.ema_half_life >= 0, 'train.ema_half_life', 'must be >= 0 (0: ema_decay)'),
      (config.model.latent_dim >= 1, 'model.latent_dim', 'must be at least 1'),
      (config.sample.num >= 1, 'sample.num', 'must be at least 1'),
      (config.sample.per_class >= 1, 'sample.per_class', 'must be at least 1'),
      (config.sample.standing_stats_batches >= 0, 'sample.standing_stats_batches',
       'must be >= 0 (0: no standing statistics)'),
      (config.eval.every >= 0, 'eval.every', 'must be >= 0 (0: no evaluation during training)'),
      (config.eval.num >= 2, 'eval.num', 'must be at least 2'),
      (config.eval.num_reference >= 0, 'eval.num_reference', 'must be >= 0 (0: all)'),
      (config.eval.batch_size >= 1, 'eval.batch_size', 'must be at least 1'),
      (config.eval.inception_batch_size >= 1, 'eval.inception_batch_size', 'must be at least 1'),
      (not config.eval.every or config.eval.metrics, 'eval.metrics',
       'must name at least one evaluator when eval.every > 0'),
      (not config.eval.best_metric or config.eval.every, 'eval.best_metric',
       'needs eval.every > 0'),
      (config.distributed.initialization_timeout >= 1,
       'distributed.initialization_timeout', 'must be at least 1 (seconds)'),
      (config.logging.wandb.mode in WANDB_MODES, 'logging.wandb.mode',
       f'must be one of {", ".join(WANDB_MODES)}'),
  ]
  raise_failed(config, checks)
  # On every process, before anything starts: only process 0 imports wandb, and
  # failing there alone would leave the others waiting for it.
  if config.logging.wandb.enabled and not module_installed('wandb'):
    raise errors.ConfigError(WANDB_MISSING)


def module_installed(name: str) -> bool:
  """Whether `import name` would find a module, without importing it."""
  try:
    return importlib.util.find_spec(name) is not None
  except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (import blocked)
    return False


def raise_failed(config: ml_collections.ConfigDict, checks) -> None:
  """Raises ConfigError naming the key and value of the first failed (ok, key, requirement)."""
  for ok, key, requirement in checks:
    if not ok:
      value = config
      for part in key.split('.'):
        value = value[part]
      raise errors.ConfigError(f'config.{key}={value!r} {requirement}.')
