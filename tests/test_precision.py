"""Mixed precision: bfloat16 steps compute in bfloat16, keep float32 state, and track float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.core import precision
from gan_jax.data.source import DatasetInfo
from gan_jax.training import image as image_trainer
from gan_jax.training import setup as setup_lib
from tests.conftest import make_config, tiny_config

CLASSES = tuple('0123456789')

# (model, image side, channels, family, overrides, run here): every
# registered model, and between them every option the issue names (spectral
# norm, conditional BatchNorm, projection, ACGAN, embed, DiffAugment, R1,
# GP). All are traced, from the state's shapes. Compiling a step takes
# seconds to a minute on this CPU, so bfloat16 steps are run (and their
# losses checked finite) where no other test runs them: the dcgan28 case by
# the agreement test below, unconditional dcgan32, dcgan64, sngan32 and
# resnet18d by the accelerator suite's smoke test in both dtypes, and the
# cases marked True here.
CASES = {
    'dcgan28_sn_cbn_acgan_diffaugment_r1_gp': ('dcgan28', 28, 1, 'gan', {
        'model.conditional': True, 'model.spectral_norm': 'd',
        'model.g_conditioning': 'cbn', 'model.d_conditioning': 'acgan',
        'augment.transforms': ('diffaugment',), 'reg.r1.weight': 1.0,
        'reg.gradient_penalty.weight': 1.0}, False),
    'dcgan32_projection': ('dcgan32', 32, 3, 'gan', {
        'model.conditional': True, 'model.d_conditioning': 'projection'}, False),
    'sngan32_cbn_projection_hinge': ('sngan32', 32, 3, 'gan', {
        'model.conditional': True, 'model.g_conditioning': 'cbn',
        'model.d_conditioning': 'projection', 'loss.name': 'hinge'}, False),
    'resnet18d_embed': ('resnet18d', 32, 3, 'gan', {
        'model.conditional': True, 'model.g_conditioning': 'embed',
        'model.d_conditioning': 'embed'}, False),
    'sngan48': ('sngan48', 48, 3, 'gan', {}, False),
    'sngan64': ('sngan64', 64, 3, 'gan', {}, False),
    'dcgan64': ('dcgan64', 64, 3, 'gan', {}, False),
    'dcgan64_wide_concat': ('dcgan64_wide', 64, 3, 'gan', {'model.conditional': True}, True),
    'mlp_instance_noise': ('mlp', 28, 1, 'gan', {'augment.transforms': ('instance_noise',)},
                           True),
    'vae': ('vae', 28, 1, 'vae', {'model.conditional': True}, True),
    'ddpm_unet': ('ddpm_unet', 28, 1, 'ddpm', {'model.conditional': True}, False),
    # BigGAN with every option of its networks: SN in G and D, shared
    # embedding, hierarchical z, self-attention, 2 D steps. (Orthogonal
    # regularisation is the optimizer's: float32 on float32 weights, as Adam.)
    'biggan32_shared_hier_attention_ortho': ('biggan32', 32, 3, 'gan', {
        'model.conditional': True, 'model.g_conditioning': 'cbn',
        'model.d_conditioning': 'projection', 'model.latent_dim': 20,
        'model.biggan.shared_dim': 8, 'model.biggan.hier': True,
        'model.biggan.attention': 16, 'loss.name': 'hinge', 'train.n_disc': 2}, False),
    # R3GAN's conditional variant with its loss and R1 + R2 through ADA.
    'r3gan32_embed_projection_rpgan_r1_r2': ('r3gan32', 32, 3, 'gan', {
        'model.conditional': True, 'model.g_conditioning': 'embed',
        'model.d_conditioning': 'projection', 'model.latent_dim': 64,
        'loss.name': 'rpgan', 'reg.r1.weight': 0.05, 'reg.r2.weight': 0.05,
        'reg.r1.before_augment': True, 'reg.r2.before_augment': True,
        'augment.transforms': ('ada',), 'augment.ada.adapt': False}, False),
}


def _setup(case: str, dtype: str, **extra):
  name, side, channels, family, overrides, _ = CASES[case]
  config = make_config(**{'model.name': name, 'model.family': family,
                          'model.width_scale': 1 / 16, 'train.batch_size': 4,
                          'train.compute_dtype': dtype, **overrides, **extra})
  info = DatasetInfo((side, side, channels), 10, CLASSES, 100, 'test')
  setup = setup_lib.build_setup(config, info)
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (1, 4, side, side, channels), dtype=np.uint8),
           'label': rng.integers(0, 10, (1, 4)).astype(np.int32)}
  return setup, setup.train_step(config.train), batch


def _equations(jaxpr):
  """Every equation of a jaxpr, those of its sub-jaxprs (jit, custom_vjp, ...) included."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, (list, tuple)) else (value,):
        inner = getattr(sub, 'jaxpr', sub)
        if hasattr(inner, 'eqns'):
          yield from _equations(inner)


def _float32_products(jaxpr) -> tuple[int, list]:
  """(number of convs and matmuls, those with a float32 operand) in a traced step.

  Spectral norm's power iteration multiplies the weight by its float32
  vectors u, v of shape (1, n); those matvecs are allowed (and negligible),
  and so are ADA's compositions of per-example 3x3 and 4x4 transform
  matrices (its geometry stays float32).
  """
  products, float32 = 0, []
  for eqn in _equations(jaxpr):
    if eqn.primitive.name not in ('conv_general_dilated', 'dot_general'):
      continue
    products += 1
    avals = [v.aval for v in eqn.invars]
    if any(a.dtype == jnp.float32 for a in avals):
      power_iteration = eqn.primitive.name == 'dot_general' and any(
          1 in a.shape for a in avals)
      ada_matrices = eqn.primitive.name == 'dot_general' and all(
          a.ndim == 3 and max(a.shape[1:]) <= 4 for a in avals)
      if not (power_iteration or ada_matrices):
        float32.append((eqn.primitive.name, [(a.dtype, a.shape) for a in avals]))
  return products, float32


def _float_dtypes(tree) -> set:
  return {leaf.dtype for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)}


@pytest.mark.parametrize('case', sorted(CASES))
def test_bfloat16_step_computes_in_bfloat16_and_keeps_float32_state(case):
  setup, step, batch = _setup(case, 'bfloat16')
  run = CASES[case][-1]
  # Shapes alone where the step is only traced: initialising eagerly is slow.
  state = jax.jit(setup.init_state)() if run else jax.eval_shape(setup.init_state)
  traced, (new, _) = jax.make_jaxpr(step, return_shape=True)(state, batch)
  products, float32 = _float32_products(traced.jaxpr)
  assert products > 0
  assert not float32, f'convolutions or matmuls left in float32: {float32[:3]}'
  # Parameters, optimizer states, BatchNorm statistics / spectral-norm vectors
  # and the EMA persist in float32.
  assert jax.tree.structure(new) == jax.tree.structure(state)
  for part in (new.g.params, new.d.params, new.g.opt_state, new.d.opt_state,
               new.g.batch_stats, new.d.batch_stats, new.ema):
    assert _float_dtypes(part) <= {jnp.dtype(jnp.float32)}
  if run:
    new, metrics = jax.jit(step)(state, batch)
    assert bool(metrics['finite'])
    losses = {k: float(v) for k, v in metrics.items() if k.endswith('loss')}
    assert losses and all(np.isfinite(v) for v in losses.values()), losses
    assert _float_dtypes((new.g, new.d)) == {jnp.dtype(jnp.float32)}


def test_float32_step_has_no_bfloat16():
  setup, step, batch = _setup('dcgan28_sn_cbn_acgan_diffaugment_r1_gp', 'float32')
  jaxpr = jax.make_jaxpr(step)(jax.eval_shape(setup.init_state), batch).jaxpr
  assert all(v.aval.dtype != jnp.bfloat16 for eqn in _equations(jaxpr)
             for v in (*eqn.invars, *eqn.outvars) if hasattr(v, 'aval')
             and hasattr(v.aval, 'dtype'))


def _relative(a, b) -> float:
  a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for t in (a, b))
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.slow
def test_bfloat16_step_agrees_with_float32_from_the_same_state():
  case = 'dcgan28_sn_cbn_acgan_diffaugment_r1_gp'
  # Plain SGD makes the update proportional to the gradient, so the update
  # compares gradients (Adam's first step is about lr * sign(gradient)).
  extra = {'optim.g.name': 'sgd', 'optim.d.name': 'sgd', 'optim.g.b1': 0.0,
           'optim.d.b1': 0.0, 'model.width_scale': 0.5}
  results = {}
  for dtype in ('float32', 'bfloat16'):
    setup, step, batch = _setup(case, dtype, **extra)
    state = setup.init_state()
    new, metrics = jax.jit(step)(state, batch)
    updates = jax.tree.map(lambda a, b: a - b, (new.g.params, new.d.params),
                           (state.g.params, state.d.params))
    results[dtype] = (metrics, updates, new.g.batch_stats)
  (m32, u32, s32), (m16, u16, s16) = results['float32'], results['bfloat16']
  assert bool(m16['finite'])
  # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2%); a step
  # is dozens of layers deep, so a few percent is its expected difference.
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss'):
    assert abs(float(m16[key]) - float(m32[key])) <= 0.02 * abs(float(m32[key])) + 0.01, key
  print('relative difference: updates', _relative(u16, u32), 'G statistics', _relative(s16, s32))
  assert _relative(u16, u32) < 0.1
  assert _relative(s16, s32) < 0.05


def test_unknown_compute_dtype_names_the_choices():
  with pytest.raises(errors.ConfigError, match='float32, bfloat16'):
    precision.compute_dtype('float16')


def test_mixed_apply_casts_inputs_and_parameters_and_returns_float32():
  import flax.linen as nn
  seen = {}

  class Probe(nn.Module):
    @nn.compact
    def __call__(self, x, labels):
      seen['x'], seen['labels'] = x.dtype, labels.dtype
      y = nn.Dense(3)(x)
      seen['y'] = y.dtype
      return {'out': y, 'count': jnp.sum(labels)}

  module = Probe()
  x, labels = jnp.ones((2, 4)), jnp.arange(2)
  variables = module.init(jax.random.PRNGKey(0), x, labels)
  out = precision.mixed_apply(module, jnp.bfloat16)(variables, x, labels)
  assert (seen['x'], seen['labels'], seen['y']) == (jnp.bfloat16, labels.dtype, jnp.bfloat16)
  assert out['out'].dtype == jnp.float32 and out['count'].dtype == labels.dtype
  # Gradients reach the float32 parameters, in float32.
  grads = jax.grad(lambda p: jnp.sum(precision.mixed_apply(module, jnp.bfloat16)(
      {'params': p}, x, labels)['out']))(variables['params'])
  assert _float_dtypes(grads) == {jnp.dtype(jnp.float32)}
  assert precision.mixed_apply(module, jnp.float32) == module.apply


@pytest.mark.slow
def test_a_float32_run_resumes_in_bfloat16(tmp_path):
  # The checkpoint holds float32 either way, so the other direction is the same restore.
  workdir = str(tmp_path / 'run')
  image_trainer.train_and_evaluate(tiny_config(**{'train.num_steps': 2}), workdir)
  state = image_trainer.train_and_evaluate(
      tiny_config(**{'train.num_steps': 4, 'train.compute_dtype': 'bfloat16'}), workdir)
  assert int(state.step) == 4
  assert _float_dtypes((state.g, state.d, state.ema)) == {jnp.dtype(jnp.float32)}
