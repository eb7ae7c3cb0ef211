"""The compiled programs: cheaply compiled ones give the same bits, shared
ones are compiled once."""

import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import train
from echo_jax.runtime import programs
from echo_jax.tasks import masking
from echo_jax.tasks import mlp
from echo_jax.tasks import seq2seq

TINY = config_lib.EchoConfig(
    experiment="tiny", length=10, n_unique=12, lag=1, context=3, hidden=8,
    batch_size=7, stateful=False, epochs=6, seeds=4, eval_sequences=30)

# Every kind of initialisation the binaries compile: Keras' and Flax's LSTM
# initialisers (uniform, orthogonal via QR, normal), one-hot and gathered
# inputs, and the extensions' models.
INITS = {
    "keras_lstm": (TINY, None),
    "flax_lstm_one_hot": (TINY.replace(init="flax", input_encoding="one_hot"),
                          None),
    "cell_backend_hard_sigmoid": (
        TINY.replace(lstm_backend="cell",
                     recurrent_activation="hard_sigmoid"), None),
    "mlp": (TINY, mlp.mlp_task(TINY, 16).init),
    "sequence_lstm": (TINY, seq2seq.lag_sequence_task(TINY, (1,)).init),
    "masked_lstm": (TINY, masking.missing_value_task(TINY, "mask").init),
}


def both_ways(lowered):
  """(light, default) compilations of one lowered program."""
  return programs.compile_light(lowered), lowered.compile()


def assert_same_bits(test, tree_a, tree_b):
  leaves_a, leaves_b = jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)
  test.assertEqual(len(leaves_a), len(leaves_b))
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


class LightCompileTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.mesh = programs.seed_mesh(TINY.seeds, max_devices=2)
    self.keys = jax.device_put(
        np.asarray(jax.random.split(jax.random.PRNGKey(3), TINY.seeds)),
        programs.seed_sharding(self.mesh))

  def test_light_options_are_cpu_only(self):
    self.assertEqual(jax.default_backend(), "cpu")
    self.assertEqual(programs.light_options(),
                     {"xla_backend_optimization_level": 1})

  @parameterized.named_parameters(
      (name, config, init) for name, (config, init) in INITS.items())
  def test_initialisation_has_the_same_bits(self, config, init_params):
    lowered = programs.make_init_many(config, self.mesh,
                                      init_params).lower(self.keys)
    light, default = both_ways(lowered)
    assert_same_bits(self, light(self.keys), default(self.keys))

  @parameterized.named_parameters(
      ("tutorial_framing", None),
      ("task_samples", seq2seq.lag_sequence_task(TINY, (1, 2))))
  def test_chunk_data_have_the_same_bits(self, task):
    if task is None:
      chunk, variants = train.make_run_epochs(TINY, 4), None
    else:
      chunk = task.chunk(4)
      variants = jax.device_put(np.array([1, 2, 1, 2], np.int32),
                                programs.seed_sharding(self.mesh))
    state = programs.make_init_many(TINY, self.mesh)(self.keys)
    make_data, _ = programs.chunk_programs(chunk, self.mesh, task is not None)
    light, default = both_ways(make_data.lower(state, variants))
    assert_same_bits(self, light(state, variants), default(state, variants))

  def test_test_set_matches_data_and_is_compiled_once(self):
    key = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(
        data.sequences_of(programs.test_set(TINY, key)),
        data.test_sequences(key, TINY.eval_sequences, TINY.length,
                            TINY.n_unique))
    # Another experiment with the same test-set size shares the program.
    other = TINY.replace(experiment="other", lag=0, context=1, hidden=4)
    self.assertIs(programs.test_keys_program(other),
                  programs.test_keys_program(TINY))
    self.assertIsNot(
        programs.test_keys_program(TINY.replace(eval_sequences=31)),
        programs.test_keys_program(TINY))


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
    got = jax.jit(programs.over_models(fn, in_axes, block))(params, 2.0, rows)
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
    self.assertEqual(programs.cache_block(count, size), want)

  def test_env_overrides_and_bad_values(self):
    cases = {"": programs.AUTO, "auto": programs.AUTO, " AUTO ": programs.AUTO,
             "all": None, " ALL ": None,
             "6": 6}
    with mock.patch.dict(os.environ):
      for value, want in cases.items():
        os.environ[programs.BLOCK_ENV] = value
        self.assertEqual(programs.models_per_block(), want, value)
      for value in ("0", "-2", "x", "1.5"):
        os.environ[programs.BLOCK_ENV] = value
        with self.assertRaisesRegex(config_lib.ConfigError,
                                    "ECHO_JAX_MODELS_PER_BLOCK="):
          programs.models_per_block()

  def test_auto_blocks_only_what_exceeds_the_budget(self):
    # The jaxpr shows the layout: a block loop (lax.map's scan) appears
    # only when a device's models' state is over CACHE_BLOCK_BYTES.
    fn = lambda w, x: jnp.tanh(x @ w)
    per_model = programs.CACHE_BLOCK_BYTES // 4 // 4  # floats: 4 fit
    side = int(per_model ** 0.5)
    for models, blocked in ((4, False), (8, True)):
      w = jnp.zeros((models, side, side))
      x = jnp.zeros((models, 2, side))
      jaxpr = str(jax.make_jaxpr(programs.over_models(
          fn, (0, 0), programs.AUTO))(w, x))
      self.assertEqual("scan" in jaxpr, blocked, models)


class TrainProgramsTest(absltest.TestCase):

  def test_run_chunk_equals_one_program(self):
    mesh = programs.seed_mesh(TINY.seeds, max_devices=2)
    keys = jax.device_put(
        np.asarray(jax.random.split(jax.random.PRNGKey(4), TINY.seeds)),
        programs.seed_sharding(mesh))
    chunk = train.make_run_epochs(TINY, 3)
    training, nothing = programs.compile_training(TINY, chunk, mesh, keys)
    self.assertIsNone(nothing)
    end = np.int32(TINY.epochs)
    state, metrics = training.run_chunk(training.init(keys), end)
    state, more = training.run_chunk(state, end)
    # The same two chunks as one program per chunk, data made inside it.
    one_program = jax.jit(jax.vmap(lambda s: chunk(s, jnp.int32(6))))
    init = programs.make_init_many(TINY, mesh)
    reference, reference_metrics = one_program(init(keys))
    reference, reference_more = one_program(reference)
    np.testing.assert_allclose(state.epoch, [6] * TINY.seeds)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6,
                                                         atol=1e-7),
                 (state, metrics, more),
                 (reference, reference_metrics, reference_more))


if __name__ == "__main__":
  absltest.main()
