"""Data parallelism: a step on 4 (simulated CPU) devices equals the step on 1 device.

BatchNorm inside the step normalises over the global batch only if the
statistics are synchronised across devices; per-device statistics would make
the two runs differ. Runs in a subprocess because the device count is fixed
when JAX starts.
"""

import textwrap

from tests.conftest import run_on_simulated_devices

SCRIPT = textwrap.dedent('''
    import jax, numpy as np
    from gan_jax import parallel, steps, train
    from gan_jax.data.source import DatasetInfo
    from tests.conftest import make_config

    assert jax.device_count() == 4, jax.devices()
    # SGD keeps the update linear in the gradient; Adam would turn float
    # reassociation noise in near-zero gradients into lr-sized differences.
    config = make_config(**{'train.batch_size': 8, 'optim.g.name': 'sgd', 'optim.g.lr': 0.1,
                            'optim.d.name': 'sgd', 'optim.d.lr': 0.1})
    setup = train.build_setup(config, DatasetInfo((28, 28, 1), 10, tuple('0123456789'), 64, 't'))
    step_fn = steps.make_train_step(setup.gan, setup.loss, setup.g_tx, setup.d_tx, config.train)
    rng = np.random.default_rng(0)
    batches = [{'image': rng.integers(0, 256, (1, 8, 28, 28, 1), dtype=np.uint8),
                'label': rng.integers(0, 10, (1, 8)).astype(np.int32)} for _ in range(3)]

    def run(devices):
      mesh = parallel.make_mesh(devices)
      rep = parallel.replicated(mesh)
      step = jax.jit(step_fn, in_shardings=(rep, parallel.batch_sharded(mesh, 1)),
                     out_shardings=(rep, rep))
      state = jax.jit(setup.init_state, out_shardings=rep)()
      hlo = None
      for b in batches:
        gb = parallel.global_batch(b, mesh)
        assert len(gb['image'].sharding.device_set) == len(devices)
        hlo = hlo or step.lower(state, gb).compile().as_text()
        state, metrics = step(state, gb)
      return jax.device_get(state), hlo

    one, hlo1 = run(jax.devices()[:1])
    four, hlo4 = run(jax.devices())
    assert 'all-reduce' in hlo4 and 'all-reduce' not in hlo1
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print('OK')
''')


def test_four_devices_equal_one_device():
  result = run_on_simulated_devices(SCRIPT, 4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'OK' in result.stdout
