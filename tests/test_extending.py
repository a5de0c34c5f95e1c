"""docs/extending.md's examples work: each block registers its component, and the component is used for real.

The blocks are read from the page: every fenced ```python block that follows a
`<!-- example: NAME -->` line. The five component blocks run once per module,
together, as the `my_components` module the page's config file imports; the
registries are restored afterwards, so the made-up names never leak into other
tests (which list every registered model, loss, ...). Tiny shapes, 1-2 steps.
"""

from __future__ import annotations

import json
import os
import re
import sys
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import data as data_lib
from gan_jax import errors
from gan_jax import models as models_lib
from gan_jax.config import base as config_base
from gan_jax.core import losses as losses_lib
from gan_jax.core import regularizers as regularizers_lib
from gan_jax.data import pipeline
from gan_jax.data.source import DatasetInfo
from gan_jax.evaluation import evaluators
from gan_jax.evaluation.context import Evaluation, SampleSet
from gan_jax.training import setup as setup_lib
from tests.conftest import REPO_ROOT, make_config

DOC = os.path.join(REPO_ROOT, 'docs', 'extending.md')
EXAMPLE = re.compile(r'^<!-- example: (\w+) -->\n```python\n(.*?)^```$', re.S | re.M)
# The component blocks, in the page's order, and what each registers.
COMPONENTS = {
    'model': (models_lib.MODELS, 'tiny_mlp'),
    'loss': (losses_lib.LOSSES, 'soft_hinge'),
    'regularizer': (regularizers_lib.REGULARIZERS, 'logit_drift'),
    'evaluator': (evaluators.EVALUATORS, 'pixel_mean_gap'),
    'data_source': (data_lib.SOURCES, 'stripes'),
}


def doc_examples() -> dict[str, str]:
  with open(DOC, encoding='utf-8') as f:
    return dict(EXAMPLE.findall(f.read()))


@pytest.fixture(scope='module')
def components():
  """The component blocks run as the module `my_components`; registries and sys.modules restored after."""
  examples = doc_examples()
  # Registry keeps its entries in `_entries`; a test may reach in to leave them as it found them.
  saved = {id(registry): (registry, dict(registry._entries))  # pylint: disable=protected-access
           for registry, _ in COMPONENTS.values()}
  for registry, name in COMPONENTS.values():
    registry._entries.pop(name, None)  # pylint: disable=protected-access  (a rerun in one process)
  module = types.ModuleType('my_components')
  sys.modules['my_components'] = module  # before the blocks run: Flax modules are dataclasses
  try:
    for kind in COMPONENTS:
      exec(compile(examples[kind], f'docs/extending.md ({kind})', 'exec'),  # pylint: disable=exec-used
           module.__dict__)
    yield module
  finally:
    sys.modules.pop('my_components', None)
    for registry, entries in saved.values():
      registry._entries.clear()  # pylint: disable=protected-access
      registry._entries.update(entries)  # pylint: disable=protected-access


def _one_step(config, image_shape=(16, 16, 1), batch_size=8):
  """(setup, metrics, new state) of one jitted train step of `config` on random uint8 images."""
  setup = setup_lib.build_setup(config, DatasetInfo(image_shape, 0, (), 64, 'random images'))
  state = setup.init_state()
  n_disc = config.train.n_disc
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (n_disc, batch_size, *image_shape), dtype=np.uint8),
           'label': np.zeros((n_disc, batch_size), np.int32)}
  new_state, metrics = jax.jit(setup.train_step(config.train))(state, batch)
  return setup, jax.device_get(metrics), new_state


def test_the_page_has_every_example_and_its_python_blocks_compile():
  examples = doc_examples()
  assert set(examples) == set(COMPONENTS) | {'config'}
  with open(DOC, encoding='utf-8') as f:
    blocks = re.findall(r'^```python\n(.*?)^```$', f.read(), re.S | re.M)
  for block in blocks:
    compile(block, 'docs/extending.md', 'exec')


def test_model_builds_and_trains_a_step(components):
  del components
  config = make_config(**{'model.name': 'tiny_mlp', 'model.hidden': 16, 'train.batch_size': 8})
  setup, metrics, state = _one_step(config)
  assert (setup.gan.image_shape, setup.gan.num_classes) == ((16, 16, 1), 0)
  assert metrics['finite'] and int(state.step) == 1
  images = setup.gan.generator.apply(state.g.variables, jnp.zeros((3, setup.gan.latent_dim)),
                                     None, train=False)
  assert images.shape == (3, 16, 16, 1) and float(jnp.max(jnp.abs(images))) <= 1.0
  with pytest.raises(errors.ConfigError, match='tiny_mlp.*unconditional'):
    setup_lib.build_setup(make_config(**{'model.name': 'tiny_mlp', 'model.conditional': True}),
                          DatasetInfo((16, 16, 1), 2, ('a', 'b'), 64, 'labelled'))


def test_loss_on_a_few_logits(components):
  del components
  loss = losses_lib.build(make_config(**{'loss.name': 'soft_hinge'}).loss)
  logits = jnp.array([-2.0, 0.0, 3.0])
  np.testing.assert_allclose(loss.d_real(logits), jax.nn.softplus(1.0 - logits), rtol=1e-6)
  np.testing.assert_allclose(loss.d_fake(logits), jax.nn.softplus(1.0 + logits), rtol=1e-6)
  np.testing.assert_allclose(loss.g(logits), -logits)
  with pytest.raises(errors.ConfigError, match='label_smoothing'):
    losses_lib.build(make_config(**{'loss.name': 'soft_hinge', 'loss.label_smoothing': 0.1}).loss)


def _with_drift(weight: float, **overrides):
  config = make_config(**overrides)
  with config.unlocked():
    config.reg.logit_drift = ml_collections.ConfigDict(dict(weight=weight, every=1))
  return config


def test_regularizer_value_and_inside_a_train_step(components):
  del components
  regularize = regularizers_lib.build(_with_drift(0.5).reg, lazy='mask')
  real, fake = jnp.full((4, 2, 2, 1), 0.5), jnp.zeros((4, 2, 2, 1))

  def d_logits(images, labels):
    del labels
    return jnp.sum(images, axis=(1, 2, 3))   # 2.0 on every real image

  total, metrics = regularize(d_logits, real, fake, jnp.zeros(4, jnp.int32),
                              jax.random.PRNGKey(0), jnp.array(0))
  assert float(total) == pytest.approx(0.5 * 4.0) and set(metrics) == {'d_logit_drift'}
  _, metrics, _ = _one_step(_with_drift(0.5, **{'model.name': 'tiny_mlp', 'model.hidden': 16}))
  assert metrics['finite'] and metrics['d_logit_drift'] > 0


def test_evaluator_through_evaluators_run(components):
  del components
  config = make_config(**{'data.source': 'stripes', 'data.image_size': 8, 'eval.num': 16,
                          'eval.num_reference': 32})
  ev = Evaluation(config, log=lambda *_: None)
  black = SampleSet(lambda n: (np.zeros((n, 8, 8, 1), np.uint8), None), 'black images')
  results = evaluators.run(ev, black, ['pixel_mean_gap'])
  reference, _ = ev.reference_images()
  metric = results['pixel_mean_gap']
  assert metric.value == pytest.approx(float(reference.mean()))
  assert not metric.higher_is_better and '16 samples of black images' in metric.protocol


def test_data_source_builds_and_batches(components):
  del components
  source = data_lib.build_source(make_config(**{'data.source': 'stripes',
                                                'data.image_size': 12}).data)
  assert len(source) == 256 and source.info.image_shape == (12, 12, 1)
  assert source.info.class_names == ('horizontal', 'vertical')
  batch = next(pipeline.batches(source, global_batch=8, n_disc=1, seed=0, read_threads=0))
  assert batch['image'].shape == (1, 8, 12, 12, 1) and batch['image'].dtype == np.uint8
  horizontal = source[0]['image'][..., 0]
  assert (horizontal == horizontal[:, :1]).all() and source[0]['label'] == 0
  vertical = data_lib.build_source(make_config(**{
      'data.source': 'stripes', 'data.image_size': 12, 'data.classes': ('vertical',)}).data)
  assert len(vertical) == 128 and vertical.info.num_classes == 1


def test_config_file_trains_and_evaluates_with_all_five(components, tmp_path):
  """The page's config file, shrunk to 2 steps, through the real trainer and its periodic evaluation."""
  del components
  from gan_jax.training import trainers  # pylint: disable=g-import-not-at-top
  namespace = {}
  exec(compile(doc_examples()['config'], 'docs/extending.md (config)', 'exec'),  # pylint: disable=exec-used
       namespace)
  config = namespace['get_config']()
  for key, value in {'train.num_steps': 2, 'train.batch_size': 8, 'train.log_every': 1,
                     'train.sample_every': 2, 'train.checkpoint_every': 2, 'eval.every': 2,
                     'eval.num': 16, 'eval.num_reference': 32, 'sample.num': 4,
                     'data.read_threads': 0, 'model.hidden': 16}.items():
    section, leaf = key.split('.')
    config[section][leaf] = value
  config_base.validate(config)
  workdir = str(tmp_path / 'tiny')
  trainers.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f if line.strip()]
  assert any('d_logit_drift' in r for r in records)
  with open(os.path.join(workdir, 'eval', 'step_2.json')) as f:
    assert 'pixel_mean_gap' in json.dumps(json.load(f))
