"""A chaos run: one training hit again and again by SIGKILL, checkpoint corruption and a full disk, then finished.

  python -m experiments.chaos_run --workdir=runs/chaos [--faults=12] [--steps=400] [--seed=0]

The run is the base config's small DCGAN on the bundled digits, checkpointing
every 10 steps. Each attempt runs `python -m gan_jax.main` as a user would and
meets one fault, drawn at random:

  sigkill   killed at a random moment once it trains (mid-step or mid-save);
  corrupt   bytes flipped at a random place in a random file of the newest
            checkpoint before it starts (and another fault during it): it must
            fall back to an older checkpoint, moving the bad one aside, unless
            the damage missed everything that is read (the restored arrays
            still match their digest);
  disk_full its workdir on a tmpfs with room for about one more checkpoint
            (`unshare -rm`, where a user namespace may mount one) with room for
            part of one more checkpoint: it must stop at its next save with
            one message, exit status 1 and no partial save.

After the faults one last attempt finishes the run. The final parameters are
compared, bit for bit, with an uninterrupted run's, and WORKDIR/chaos.json
records every attempt: fault, exit status, the step resumed from, and the
message it printed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

from absl import flags
from absl import logging
import jax
import numpy as np

from gan_jax import cli
from gan_jax.config import base as config_base

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULTS = ('sigkill', 'corrupt', 'disk_full')

_WORKDIR = flags.DEFINE_string('workdir', 'runs/chaos', 'Where the two runs and chaos.json go.')
_FAULTS = flags.DEFINE_integer('faults', 12, 'How many faults to inflict.')
_STEPS = flags.DEFINE_integer('steps', 400, 'Training steps of the run.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the choice and timing of the faults.')


def _command(workdir: str, steps: int) -> list[str]:
  return [sys.executable, '-m', 'gan_jax.main', f'--workdir={workdir}',
          f'--config={config_base.BASE_CONFIG_PATH}', f'--config.train.num_steps={steps}',
          '--config.train.checkpoint_every=10', '--config.train.log_every=10',
          '--config.train.keep_checkpoints=3', '--config.train.sample_every=0']


def _env() -> dict:
  return dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))


def _steps(workdir: str) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(
      directory) else []


def _dir_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
             for f in files)


def _resumed_from(log: str) -> int | None:
  match = re.search(r'Resumed from the checkpoint at step (\d+)', log)
  return int(match.group(1)) if match else None


def _messages(log: str) -> list[str]:
  return [line for line in log.splitlines() if line.startswith(('error:', 'Warning:'))]


def _can_mount_tmpfs(scratch: str) -> bool:
  if shutil.which('unshare') is None:
    return False
  os.makedirs(scratch, exist_ok=True)
  probe = subprocess.run(['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs tmpfs {scratch}'],
                         capture_output=True)
  return probe.returncode == 0


def _sigkill(workdir: str, steps: int, rng: random.Random, log_path: str) -> dict:
  start = max(_steps(workdir), default=0)
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(_command(workdir, steps), cwd=REPO_ROOT, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
  deadline = time.time() + 300
  target = start + rng.randint(1, 30)   # a step (or a save) somewhere past the start
  while proc.poll() is None and time.time() < deadline:
    logged = [int(s) for s in re.findall(r'^step +(\d+)/', open(log_path).read(), re.M)]
    if max(logged, default=0) >= target:
      break
    time.sleep(0.01)
  time.sleep(rng.uniform(0, 0.3))
  proc.send_signal(signal.SIGKILL)
  return {'exit': proc.wait()}


def _corrupt(workdir: str, rng: random.Random) -> dict:
  steps = _steps(workdir)
  if not steps:
    return {'skipped': 'no checkpoint yet'}
  step_dir = os.path.join(workdir, 'checkpoints', str(steps[-1]))
  files = sorted(os.path.join(root, f) for root, _, names in os.walk(step_dir) for f in names)
  path = rng.choice(files)
  data = bytearray(open(path, 'rb').read())
  if data:
    at = rng.randrange(len(data))
    for i in range(at, min(len(data), at + 8)):
      data[i] ^= 0xFF
  with open(path, 'wb') as f:
    f.write(data)
  return {'corrupted': os.path.relpath(path, workdir)}


def _disk_full(workdir: str, steps: int, scratch: str, log_path: str) -> dict:
  """One attempt with the workdir copied onto a tmpfs too small for one more checkpoint."""
  last = _steps(workdir)
  checkpoint = _dir_bytes(os.path.join(workdir, 'checkpoints', str(last[-1]))) if last else 2**21
  # Room for the files as they are and part of one checkpoint: the next save fails.
  size_kb = (_dir_bytes(workdir) + checkpoint * 3 // 5) // 1024
  inner = os.path.join(scratch, 'run')
  command = ' '.join(shlex.quote(a) for a in _command(inner, steps))
  script = (f'mount -t tmpfs -o size={size_kb}k tmpfs {scratch} && cp -a {shlex.quote(workdir)} '
            f'{inner} && {command} > {shlex.quote(log_path)} 2>&1; code=$?; '
            f'rm -rf {shlex.quote(workdir)} && cp -a {inner} {shlex.quote(workdir)}; exit $code')
  result = subprocess.run(['unshare', '-rm', 'sh', '-c', script], cwd=REPO_ROOT, env=_env(),
                          capture_output=True, text=True)
  return {'exit': result.returncode, 'tmpfs_kb': size_kb,
          'partial_saves_left': [d for d in os.listdir(os.path.join(workdir, 'checkpoints'))
                                 if 'orbax-checkpoint-tmp' in d]}


def _final_params(workdir: str):
  from gan_jax.training import setup as setup_lib  # pylint: disable=g-import-not-at-top
  state = setup_lib.restore_setup(workdir)[2]
  return int(state.step), jax.tree.leaves(jax.device_get(state))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's INFO lines would drown the attempts
  root = os.path.abspath(_WORKDIR.value)
  if os.path.exists(root):
    raise SystemExit(f'error: {root} exists; the chaos run starts from nothing. Remove it '
                     'or choose another --workdir.')
  os.makedirs(root)
  steps, rng = _STEPS.value, random.Random(_SEED.value)
  reference, chaos = os.path.join(root, 'reference'), os.path.join(root, 'chaos')
  scratch = os.path.join(root, 'tmpfs')
  kinds = FAULTS if _can_mount_tmpfs(scratch) else ('sigkill', 'corrupt')
  if 'disk_full' not in kinds:
    print('No tmpfs can be mounted here (unshare -rm): no disk_full faults.')
  start = time.time()
  print(f'Reference: {steps} uninterrupted steps in {reference}', flush=True)
  subprocess.run(_command(reference, steps), cwd=REPO_ROOT, env=_env(), check=True,
                 capture_output=True)

  attempts, pending_corruption = [], None
  for i in range(_FAULTS.value + 1):
    final = i == _FAULTS.value
    kind = 'none' if final else rng.choice(kinds)
    if kind == 'corrupt':  # hits the next attempt's start
      record = {'fault': kind, **_corrupt(chaos, rng)}
      if 'skipped' in record:
        kind = 'sigkill'
      else:
        pending_corruption = record
        kind = rng.choice([k for k in kinds if k != 'corrupt']) if not final else 'none'
    log_path = os.path.join(root, f'attempt{i:02d}.log')
    if kind == 'sigkill':
      record = _sigkill(chaos, steps, rng, log_path)
    elif kind == 'disk_full':
      record = _disk_full(chaos, steps, scratch, log_path)
    else:
      with open(log_path, 'w') as log:
        record = {'exit': subprocess.run(_command(chaos, steps), cwd=REPO_ROOT, env=_env(),
                                         stdout=log, stderr=subprocess.STDOUT).returncode}
    text = open(log_path).read()
    record = {'attempt': i, 'fault': kind, **record, 'resumed_from': _resumed_from(text),
              'messages': _messages(text), 'checkpoints_after': _steps(chaos)}
    if pending_corruption:
      record['after_corruption'] = pending_corruption
      record['fell_back'] = any('cannot be read' in m for m in record['messages'])
      record['restored_intact'] = not record['fell_back'] and record['resumed_from'] == int(
          pending_corruption['corrupted'].split(os.sep)[1])
      pending_corruption = None
    attempts.append(record)
    print(f'attempt {i:2d}: {kind:9s} exit {record["exit"]}, resumed from '
          f'{record["resumed_from"]}, checkpoints now {record["checkpoints_after"]}'
          + (f'; after corrupting {record["after_corruption"]["corrupted"]}: '
             + ('fell back' if record['fell_back'] else 'read intact (digest verified)'
                if record['restored_intact'] else 'NEITHER')
             if 'after_corruption' in record else ''), flush=True)
    for message in record['messages']:
      print(f'    {message[:300]}', flush=True)

  final_step, params = _final_params(chaos)
  ref_step, ref_params = _final_params(reference)
  equal = final_step == ref_step == steps and all(
      np.array_equal(a, b) for a, b in zip(params, ref_params))
  survived = {k: sum(1 for a in attempts if a['fault'] == k) for k in FAULTS}
  survived['corrupt'] = sum(1 for a in attempts if 'after_corruption' in a)
  summary = {
      'command': 'python -m experiments.chaos_run ' + ' '.join(
          f'--{f}={v}' for f, v in (('workdir', _WORKDIR.value), ('faults', _FAULTS.value),
                                    ('steps', steps), ('seed', _SEED.value))),
      'steps': steps, 'faults': survived, 'fell_back_after_corruption': sum(
          1 for a in attempts if a.get('fell_back')),
      'corruption_missed_what_is_read': sum(1 for a in attempts if a.get('restored_intact')),
      'disk_full_clean_exits': sum(1 for a in attempts if a['fault'] == 'disk_full'
                                   and a['exit'] == 1 and not a['partial_saves_left']
                                   and any('No space left' in m for m in a['messages'])),
      'finished': final_step == steps, 'bitwise_equal_to_uninterrupted': equal,
      'wall_seconds': round(time.time() - start, 1), 'attempts': attempts}
  with open(os.path.join(root, 'chaos.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(f'Survived {sum(survived.values())} faults ({survived}); finished at step {final_step}; '
        f'final parameters bitwise equal to the uninterrupted run: {equal}. '
        f'{os.path.join(root, "chaos.json")}')
  if not equal:
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
