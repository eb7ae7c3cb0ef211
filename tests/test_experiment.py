"""Many seeds in one call: equal to one seed at a time, on 1 or 4 devices."""

from absl.testing import absltest
import chex
import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import train
from echo_jax.report import records

import helpers

TINY = config_lib.EchoConfig(
    experiment="tiny", length=10, n_unique=12, lag=1, context=3, hidden=8,
    batch_size=7, stateful=True, epochs=20, seeds=3, eval_sequences=50)


class MultiSeedTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.one_device, cls.trained = helpers.run_tutorial(TINY, max_devices=1)

  def test_vmapped_seeds_equal_per_seed_training(self):
    keys = train.model_keys(TINY.seed, TINY.seeds)
    single = jax.jit(train.make_train(TINY))
    for i in range(TINY.seeds):
      alone = single(keys[i])
      chex.assert_trees_all_close(
          jax.tree.map(lambda x, i=i: x[i], self.trained), alone,
          rtol=1e-5, atol=1e-6)

  def test_sharded_over_four_devices_equals_one_device(self):
    self.assertGreaterEqual(jax.device_count(), 4)
    sharded, trained = helpers.run_tutorial(TINY, max_devices=4)
    self.assertEqual(sharded["devices_used"], 3)
    chex.assert_trees_all_close(trained, self.trained, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sharded["eval_accuracy_per_seed"],
                               self.one_device["eval_accuracy_per_seed"])

  def test_same_seed_is_bit_identical_and_other_seed_differs(self):
    again, trained = helpers.run_tutorial(TINY, max_devices=1)
    chex.assert_trees_all_equal(trained, self.trained)
    self.assertEqual(again["eval_accuracy_per_seed"],
                     self.one_device["eval_accuracy_per_seed"])
    _, other = helpers.run_tutorial(TINY.replace(seed=1), max_devices=1)
    self.assertFalse(np.array_equal(other.loss_E, self.trained.loss_E))

  def test_adding_seeds_keeps_earlier_models(self):
    _, two = helpers.run_tutorial(TINY.replace(seeds=2), max_devices=1)
    chex.assert_trees_all_close(
        two, jax.tree.map(lambda x: x[:2], self.trained), rtol=1e-5, atol=1e-6)

  def test_keys_follow_the_documented_derivation(self):
    # model i: fold_in(fold_in(PRNGKey(seed), 0), i); test set: fold_in(., 1).
    for seed in (0, 7, 2**31 - 1):
      config = TINY.replace(seed=seed)
      root = jax.random.PRNGKey(seed)
      base = jax.random.fold_in(root, 0)
      np.testing.assert_array_equal(
          train.model_keys(config.seed, 5),
          np.stack([jax.random.fold_in(base, i) for i in range(5)]))
      np.testing.assert_array_equal(
          train.test_keys(config.seed, 3),
          jax.random.split(jax.random.fold_in(root, 1), 3))

  def test_record(self):
    record = self.one_device
    for key in ("experiment", "config", "eval_accuracy",
                "eval_accuracy_per_seed", "compile_seconds", "train_seconds",
                "versions"):
      self.assertIn(key, record)
    self.assertLen(record["eval_accuracy_per_seed"], TINY.seeds)
    self.assertAlmostEqual(record["eval_accuracy"],
                           np.mean(record["eval_accuracy_per_seed"]), 6)
    low, high = record["eval_accuracy_ci95"]
    self.assertLessEqual(low, record["eval_accuracy"])
    self.assertGreaterEqual(high, record["eval_accuracy"])
    self.assertEqual(config_lib.from_dict(record["config"]), TINY)


class ConfidenceIntervalTest(absltest.TestCase):

  def test_half_width_shrinks_with_more_seeds(self):
    rng = np.random.default_rng(0)
    values = rng.normal(0.9, 0.05, 64)
    widths = []
    for n in (2, 4, 8, 16, 64):
      _, low, high = records.mean_and_ci95(values[:n])
      widths.append(high - low)
    self.assertEqual(widths, sorted(widths, reverse=True))

  def test_interval_stays_within_accuracy_bounds(self):
    mean, low, high = records.mean_and_ci95([1.0, 0.99, 1.0])
    self.assertLess(low, mean)
    self.assertEqual(high, 1.0)
    self.assertEqual(records.mean_and_ci95([0.0, 0.01])[1], 0.0)

  def test_t_quantiles(self):
    self.assertAlmostEqual(records.t_quantile_975(4), 2.776)
    self.assertAlmostEqual(records.t_quantile_975(30), 2.042, delta=0.003)
    self.assertAlmostEqual(records.t_quantile_975(1000), 1.962, delta=0.003)


if __name__ == "__main__":
  absltest.main()
