"""Generative data augmentation: does a generator trained on K labelled images per class help a classifier?

The CIFAR-10 report (../shared/reports/gan-cgan-cifar10-a8-report.txt, part 3)
proposes training a generative model on a small labelled set and adding its
samples to the training data. For every seed this script

  1. draws K real images per class (the labelled budget) from the data, away
     from a fixed held-out test set;
  2. trains each generator (a conditional GAN, a conditional VAE, ...) on only
     those images, written as a class-folder dataset;
  3. generates M images per class from each;
  4. trains the same small CNN (gan_jax.metrics.classifier) on: the real
     images only; real + M classic augmentations per class (random shifts by
     padding and cropping, plus horizontal flips with --flip); real + the M
     synthetic images per class of each generator. With extra images the real
     ones are repeated so that real and extra images are equally many, and
     every arm trains for the same number of steps;
  5. scores each classifier on the held-out real test set, and each
     generator's samples with a judge classifier trained on all the
     non-test data: class-conditional accuracy (does the judge agree with the
     label asked for?) and the Fréchet classifier distance to the test set.

It writes WORKDIR/RESULTS.md (a Markdown table of mean +- std over seeds and
the exact command), WORKDIR/results.json (every number per seed),
WORKDIR/accuracy.png (the figure) and WORKDIR/samples_GENERATOR.png.

  python -m experiments.augment --workdir=runs/augment_mnist_k10 \
      --data_source=idx --data_path=../shared/data/mnist --per_class=10 \
      --generators=cgan:configs/dcgan_mnist.py,cvae:configs/cvae.py:mnist \
      --gen_steps=1500,3000 --synthetic_per_class=500 --seeds=0,1,2

Re-running resumes: finished generator runs are not retrained.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags, logging
import numpy as np

from gan_jax import cli, errors

FLAGS = flags.FLAGS
TEST_SPLIT_SEED = 1234


def define_flags():
  """The command line's flags (defined only when run as a script: others share absl's FLAGS)."""
  flags.DEFINE_string('workdir', None, 'Directory for every run and the results.')
  flags.DEFINE_string('data_source', 'idx', 'Data source of the labelled data (config.data.source).')
  flags.DEFINE_string('data_path', None, 'Its config.data.path.')
  flags.DEFINE_string('data_split', '', 'Its config.data.split.')
  flags.DEFINE_integer('image_size', 28, 'config.data.image_size.')
  flags.DEFINE_integer('channels', 1, 'config.data.channels.')
  flags.DEFINE_integer('per_class', 10, 'K: real labelled images per class.')
  flags.DEFINE_integer('synthetic_per_class', 500, 'M: generated (and classic-augmented) images per class.')
  flags.DEFINE_integer('num_test', 5000, 'Held-out real test images (a fixed seeded subset).')
  flags.DEFINE_list('generators', ['cgan:configs/dcgan_mnist.py', 'cvae:configs/cvae.py:mnist'],
                    'NAME:CONFIG_FILE pairs; each is trained class-conditionally.')
  flags.DEFINE_list('gen_steps', ['1500'], 'Training steps per generator (one value for all, or one each).')
  flags.DEFINE_integer('gen_batch', 64, 'Generator batch size.')
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds: each draws its own subset and trains everything anew.')
  flags.DEFINE_integer('cls_steps', 1000, 'Classifier training steps (every arm).')
  flags.DEFINE_integer('cls_batch', 64, 'Classifier batch size.')
  flags.DEFINE_integer('judge_steps', 2000, 'Steps of the judge classifier (sample quality).')
  flags.DEFINE_bool('flip', False, 'Classic augmentation flips horizontally too (not for digits).')
  flags.DEFINE_integer('shift', 2, 'Classic augmentation: maximum shift in pixels.')


def classic_augment(images: np.ndarray, labels: np.ndarray, num: int,
                    rng: np.random.Generator, shift: int, flip: bool):
  """`num` random shifts (zero-padded crops) of randomly picked images (with their labels).

  With `flip`, half are also mirrored left-right.
  """
  chosen = rng.integers(0, len(images), num)
  picks = images[chosen]
  _, h, w, _ = picks.shape
  padded = np.pad(picks, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
  out = np.empty_like(picks)
  for i, (dy, dx) in enumerate(rng.integers(0, 2 * shift + 1, (num, 2))):
    out[i] = padded[i, dy:dy + h, dx:dx + w]
  if flip:
    flipped = rng.random(num) < 0.5
    out[flipped] = out[flipped, :, ::-1]
  return out, labels[chosen]


def split(labels: np.ndarray, per_class: int, num_test: int, seed: int):
  """(test indices fixed across seeds, this seed's K-per-class training indices, judge indices)."""
  order = np.random.default_rng(TEST_SPLIT_SEED).permutation(len(labels))
  test, rest = np.sort(order[:num_test]), order[num_test:]
  rng = np.random.default_rng(seed)
  chosen = []
  for c in np.unique(labels):
    pool = rest[labels[rest] == c]
    if len(pool) < per_class:
      raise errors.DataError(f'Class {c} has only {len(pool)} non-test images; '
                             f'--per_class={per_class} needs more.')
    chosen.append(rng.choice(pool, per_class, replace=False))
  return test, np.sort(np.concatenate(chosen)), np.sort(rest)


def write_class_folder(images, labels, class_names, out: str) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for i, (image, label) in enumerate(zip(images, labels)):
    sub = os.path.join(out, class_names[label])
    os.makedirs(sub, exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        os.path.join(sub, f'{i:06d}.png'))


def train_generator(config_path, real_dir, workdir, steps, batch, seed, data_flags):
  """Trains a class-conditional generator on the class folder `real_dir`; returns seconds."""
  from gan_jax.config import files as config_files
  from gan_jax.training import image as image_trainer
  config = config_files.load_file(config_path)
  config.seed = seed
  config.data.source, config.data.path = 'folder', real_dir
  config.data.image_size, config.data.channels = data_flags
  config.data.classes, config.data.read_threads = (), 0
  config.model.conditional = True
  config.train.num_steps, config.train.batch_size = steps, batch
  config.train.log_every = max(1, steps // 10)
  config.train.sample_every = config.train.checkpoint_every = 0
  config.eval.every = 0
  start = time.perf_counter()
  image_trainer.train_and_evaluate(config, workdir)
  return time.perf_counter() - start


def generate_per_class(workdir: str, num: int, seed: int):
  from gan_jax.generation import export  # pylint: disable=g-import-not-at-top
  from gan_jax.training import setup as setup_lib
  _, setup, state = setup_lib.restore_setup(workdir)
  images, labels = zip(*export.generate_batches(setup, state, num, seed=seed,
                                                  batch_size=500, per_class=True))
  return np.concatenate(images), np.concatenate(labels)


def train_and_score(images, labels, num_classes, test_x, test_y, steps, batch, seed) -> float:
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  module, variables = classifier.train(images, labels, num_classes, steps=steps,
                                       batch_size=batch, seed=seed, log=lambda *_: None)
  pred = classifier.predict(module, variables, test_x)['logits'].argmax(-1)
  return float(np.mean(pred == test_y))


def with_real_repeated(real_x, real_y, extra_x, extra_y):
  """Real images repeated to match the extra ones in number, then both together."""
  reps = max(1, int(round(len(extra_x) / len(real_x))))
  return (np.concatenate([np.repeat(real_x, reps, 0), extra_x]),
          np.concatenate([np.repeat(real_y, reps, 0), extra_y]))


def sample_quality(judge, images, labels, test_stats) -> dict:
  from gan_jax.metrics import classifier, frechet  # pylint: disable=g-import-not-at-top
  module, variables = judge
  out = classifier.predict(module, variables, images)
  return {'cls_acc': float(np.mean(out['logits'].argmax(-1) == labels)),
          'cls_fd': frechet.frechet_distance(frechet.statistics(out['features']), test_stats)}


def run_study(*, workdir, data_config, per_class, synthetic_per_class, num_test, generators,
              gen_steps, gen_batch, seeds, cls_steps, cls_batch, judge_steps, flip, shift,
              log=print) -> dict:
  """Runs the whole study; returns (and writes) the results. `generators`: [(name, config)]."""
  from gan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import classifier, frechet  # pylint: disable=g-import-not-at-top
  from gan_jax.viz import grids  # pylint: disable=g-import-not-at-top
  study_start = time.perf_counter()
  os.makedirs(workdir, exist_ok=True)
  source = data_lib.build_source(data_config)
  info = source.info
  if info.num_classes < 2:
    raise errors.DataError(f'{info.description} is not labelled: the study needs classes.')
  images, labels = classifier.all_examples(source)
  names = [f'{c:02d}' for c in range(info.num_classes)]   # folder order = label order
  test_idx, _, judge_idx = split(labels, per_class, num_test, 0)
  test_x, test_y = images[test_idx], labels[test_idx]
  log(f'Data: {info.description}; {len(test_idx)} held-out test images; judge trained on '
      f'{len(judge_idx)} other images for {judge_steps} steps')
  judge = classifier.train(images[judge_idx], labels[judge_idx], info.num_classes,
                           steps=judge_steps, batch_size=64, seed=0, log=lambda *_: None)
  judge_out = classifier.predict(*judge, test_x)
  test_stats = frechet.statistics(judge_out['features'])
  judge_acc = float(np.mean(judge_out['logits'].argmax(-1) == test_y))
  log(f'Judge accuracy on the test set: {judge_acc:.4f}')

  per_seed = []
  for seed in seeds:
    _, train_idx, _ = split(labels, per_class, num_test, seed)
    real_x, real_y = images[train_idx], labels[train_idx]
    seed_dir = os.path.join(workdir, f'seed_{seed}')
    real_dir = os.path.join(seed_dir, 'real')
    if not os.path.isdir(real_dir):
      write_class_folder(real_x, real_y, names, real_dir)
    extra_n = synthetic_per_class * info.num_classes
    rng = np.random.default_rng(seed)
    arms = {'real only': (real_x, real_y)}
    aug_x, aug_y = classic_augment(real_x, real_y, extra_n, rng, shift, flip)
    arms['real + classic aug'] = with_real_repeated(real_x, real_y, aug_x, aug_y)
    record = {'seed': seed, 'generators': {}}
    for name, config_path in generators:
      steps = gen_steps[name]
      run_dir = os.path.join(seed_dir, name)
      log(f'[seed {seed}] training {name} ({config_path}) for {steps} steps on '
          f'{len(real_x)} images')
      seconds = train_generator(config_path, real_dir, run_dir, steps, gen_batch, seed,
                                (data_config.image_size, data_config.channels))
      syn_x, syn_y = generate_per_class(run_dir, synthetic_per_class, seed)
      quality = sample_quality(judge, syn_x, syn_y, test_stats)
      record['generators'][name] = {**quality, 'train_seconds': seconds, 'steps': steps}
      log(f'[seed {seed}] {name}: judge accuracy of its samples {quality["cls_acc"]:.3f}, '
          f'cls_fd {quality["cls_fd"]:.2f} ({seconds:.0f}s)')
      arms[f'real + {name}'] = with_real_repeated(real_x, real_y, syn_x, syn_y)
      if seed == seeds[0]:
        shown = np.concatenate([syn_x[syn_y == c][:10] for c in range(info.num_classes)])
        grids.save_grid(shown, os.path.join(workdir, f'samples_{name}.png'), 10)
    record['accuracy'] = {}
    for arm, (x, y) in arms.items():
      record['accuracy'][arm] = train_and_score(x, y, info.num_classes, test_x, test_y,
                                                cls_steps, cls_batch, seed)
      log(f'[seed {seed}] classifier on {arm} ({len(x)} images): test accuracy '
          f'{record["accuracy"][arm]:.4f}')
    per_seed.append(record)

    results = {
        'data': info.description, 'per_class': per_class,
        'synthetic_per_class': synthetic_per_class, 'num_test': len(test_idx),
        'seeds': list(seeds), 'generators': dict(generators), 'gen_steps': gen_steps,
        'gen_batch': gen_batch, 'cls_steps': cls_steps, 'cls_batch': cls_batch,
        'judge_steps': judge_steps, 'judge_test_accuracy': judge_acc, 'flip': flip,
        'shift': shift, 'per_seed': per_seed, 'complete': seed == seeds[-1],
        'wall_seconds': time.perf_counter() - study_start,
    }
    with open(os.path.join(workdir, 'results.json'), 'w') as f:   # after every seed
      json.dump(results, f, indent=2)
  write_figure(results, os.path.join(workdir, 'accuracy.png'))
  return results


def _mean_std(values) -> str:
  values = np.asarray(values, np.float64)
  return f'{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.4f}'


def markdown_table(results: dict) -> str:
  """Test accuracy per arm (mean ± sample std over seeds) and each generator's sample quality."""
  seeds = results['per_seed']
  arms = list(seeds[0]['accuracy'])
  lines = [f'Classifier test accuracy on {results["num_test"]} held-out real images, '
           f'mean ± std over {len(seeds)} seeds ({results["per_class"]} real images per class):',
           '', '| training data | test accuracy | per seed |', '| --- | --- | --- |']
  for arm in arms:
    accs = [s['accuracy'][arm] for s in seeds]
    lines.append(f'| {arm} | {_mean_std(accs)} | {", ".join(f"{a:.4f}" for a in accs)} |')
  lines += ['', f'Generator sample quality ({results["synthetic_per_class"]} samples per class; '
            f'judge: the same CNN trained on the non-test data, test accuracy '
            f'{results["judge_test_accuracy"]:.4f}):', '',
            '| generator | steps | class-conditional accuracy | Fréchet classifier distance '
            '| training time (s) |', '| --- | --- | --- | --- | --- |']
  for name in seeds[0]['generators']:
    g = [s['generators'][name] for s in seeds]
    lines.append(f'| {name} | {g[0]["steps"]} | {_mean_std([x["cls_acc"] for x in g])} | '
                 f'{_mean_std([x["cls_fd"] for x in g])} | '
                 f'{np.mean([x["train_seconds"] for x in g]):.0f} |')
  return '\n'.join(lines) + '\n'


def write_figure(results: dict, path: str) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  seeds = results['per_seed']
  arms = list(seeds[0]['accuracy'])
  accs = np.array([[s['accuracy'][a] for s in seeds] for a in arms])
  fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(arms), 3.6))
  x = np.arange(len(arms))
  ax.bar(x, accs.mean(1), yerr=accs.std(1, ddof=1) if accs.shape[1] > 1 else None,
         capsize=4, color='#8fb3d9')
  for i, row in enumerate(accs):
    ax.plot(np.full(len(row), i), row, 'k.', ms=5)
  ax.set_xticks(x, arms, rotation=20, ha='right')
  ax.set_ylabel('test accuracy')
  low = max(0.0, accs.min() - 0.05)
  ax.set_ylim(low, min(1.0, accs.max() + 0.03))
  ax.set_title(f'{results["per_class"]} real images per class, {len(seeds)} seeds')
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  from gan_jax.config import base as config_base  # pylint: disable=g-import-not-at-top
  try:
    if not FLAGS.workdir or not FLAGS.data_path:
      raise errors.ConfigError('--workdir and --data_path are required.')
    generators = []
    for item in FLAGS.generators:
      name, _, path = item.partition(':')
      if not path or not os.path.exists(path.partition(':')[0]):
        raise errors.ConfigError(f'--generators entry {item!r} must be NAME:CONFIG_FILE '
                                 '(or NAME:CONFIG_FILE:PRESET) with an existing config file.')
      generators.append((name, path))
    steps = [int(s) for s in FLAGS.gen_steps]
    if len(steps) not in (1, len(generators)):
      raise errors.ConfigError('--gen_steps takes one value, or one per generator.')
    gen_steps = {n: steps[i if len(steps) > 1 else 0] for i, (n, _) in enumerate(generators)}
    data = config_base.get_config().data
    data.source, data.path, data.split = FLAGS.data_source, FLAGS.data_path, FLAGS.data_split
    data.image_size, data.channels, data.read_threads = FLAGS.image_size, FLAGS.channels, 0
    results = run_study(
        workdir=FLAGS.workdir, data_config=data, per_class=FLAGS.per_class,
        synthetic_per_class=FLAGS.synthetic_per_class, num_test=FLAGS.num_test,
        generators=generators, gen_steps=gen_steps, gen_batch=FLAGS.gen_batch,
        seeds=[int(s) for s in FLAGS.seeds], cls_steps=FLAGS.cls_steps,
        cls_batch=FLAGS.cls_batch, judge_steps=FLAGS.judge_steps, flip=FLAGS.flip,
        shift=FLAGS.shift, log=lambda *a: print(*a, flush=True))
  except errors.GanJaxError as e:
    sys.exit(f'error: {e}')
  command = 'python -m experiments.augment ' + ' '.join(sys.argv[1:])
  table = markdown_table(results)
  with open(os.path.join(FLAGS.workdir, 'RESULTS.md'), 'w') as f:
    f.write(f'# Generative augmentation study\n\n{table}\nWall-clock: '
            f'{results["wall_seconds"]:.0f}s.\n\nCommand:\n\n    {command}\n')
  print(table)
  print(f'Wall-clock {results["wall_seconds"]:.0f}s; written to '
        f'{os.path.join(FLAGS.workdir, "RESULTS.md")}')


if __name__ == '__main__':
  define_flags()
  cli.run(main)
