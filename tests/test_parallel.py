"""Where models run: a device's models vmapped, alone or in blocks; the
chunk program donates its state."""

import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.runtime import parallel
from echo_jax.runtime import runner
from echo_jax.tasks import task as task_lib

TINY = config_lib.EchoConfig(
    experiment="tiny", length=10, n_unique=12, lag=1, context=3, hidden=8,
    batch_size=7, stateful=False, epochs=6, seeds=4, eval_sequences=30)


class OverModelsTest(parameterized.TestCase):

  @parameterized.parameters((1, None), (3, None), (4, 2), (4, 1), (3, 2))
  def test_equals_vmap(self, models, block):
    def fn(params, scale, rows):
      # A matmul with a transposed operand (what XLA:CPU lowers differently
      # with a batch axis), a shared argument and a pytree output.
      return {"y": jnp.tanh(rows @ params["w"].T) * scale,
              "n": jnp.sum(params["w"])}

    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    params = {"w": jax.random.normal(keys[0], (models, 6, 4))}
    rows = jax.random.normal(keys[1], (models, 5, 4))
    in_axes = (0, None, 0)
    got = jax.jit(parallel.over_models(fn, in_axes, block))(params, 2.0, rows)
    want = jax.vmap(fn, in_axes=in_axes)(params, 2.0, rows)
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6)
    chex.assert_tree_shape_prefix(got, (models,))


class CacheBlockTest(parameterized.TestCase):

  @parameterized.parameters(
      (36, 70_000, None),   # 36 hidden-8 models, 2.5 MB: all vmapped
      (32, 420_000, 8),     # echo_lag models: 9 fit, 8 divides 32
      (36, 900_000, 4),     # 4 fit and divide 36
      (35, 900_000, 1),     # 4 fit, none of 2-4 divides 35
      (3, 8 * 2**20, 1),    # one model is over the budget alone
  )
  def test_largest_dividing_block_within_the_budget(self, count, size, want):
    self.assertEqual(parallel.cache_block(count, size), want)

  def test_env_overrides_and_bad_values(self):
    cases = {"": "auto", "auto": "auto", " AUTO ": "auto",
             "all": None, " ALL ": None,
             "6": 6}
    with mock.patch.dict(os.environ):
      for value, want in cases.items():
        os.environ[parallel.BLOCK_ENV] = value
        self.assertEqual(parallel.models_per_block(), want, value)
      for value in ("0", "-2", "x", "1.5"):
        os.environ[parallel.BLOCK_ENV] = value
        with self.assertRaisesRegex(config_lib.ConfigError,
                                    "ECHO_JAX_MODELS_PER_BLOCK="):
          parallel.models_per_block()

  def test_auto_blocks_only_what_exceeds_the_budget(self):
    # The jaxpr shows the layout: a block loop (lax.map's scan) appears
    # only when a device's models' state is over CACHE_BLOCK_BYTES.
    fn = lambda w, x: jnp.tanh(x @ w)
    per_model = parallel.CACHE_BLOCK_BYTES // 4 // 4  # floats: 4 fit
    side = int(per_model ** 0.5)
    for models, blocked in ((4, False), (8, True)):
      w = jnp.zeros((models, side, side))
      x = jnp.zeros((models, 2, side))
      jaxpr = str(jax.make_jaxpr(parallel.over_models(
          fn, (0, 0), "auto"))(w, x))
      self.assertEqual("scan" in jaxpr, blocked, models)


class ChunkProgramTest(absltest.TestCase):

  def test_chunk_donates_the_state_it_is_given(self):
    # The training state is updated in place from chunk to chunk.
    compiled = runner.compile_task(task_lib.tutorial_task(TINY), 2,
                                   chunk_epochs=3, with_evaluation=False)
    state = compiled.initial_state()
    new_state, _ = compiled.chunk(state, np.int32(TINY.epochs))
    self.assertTrue(all(x.is_deleted() for x in jax.tree.leaves(state)))
    np.testing.assert_array_equal(new_state.epoch, [3] * TINY.seeds)


if __name__ == "__main__":
  absltest.main()
