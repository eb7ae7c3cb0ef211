"""The Keras peer runs the tutorial's code on Keras 3's JAX backend (only
where keras is installed: requirements-keras.txt; CI installs
requirements.txt, without it)."""

import unittest
from unittest import mock

from absl.testing import absltest

from benchmarks import keras_peer
from echo_jax.core import config as config_lib


class SettingsTest(absltest.TestCase):

  def test_tutorial_fields_of_a_preset(self):
    self.assertEqual(
        keras_peer.settings(config_lib.preset("echo_lag_no_context")),
        {"n_unique": 100, "length": 25, "lag": 1, "context": 1, "hidden": 50,
         "batch_size": 6, "epochs": 2000, "stateful": True})

  def test_subprocess_gets_the_jax_backend_and_one_device(self):
    with mock.patch.dict(
        "os.environ", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"
                                    " --xla_cpu_foo=1"}):
      env = keras_peer.child_env()
    self.assertEqual((env["KERAS_BACKEND"], env["XLA_FLAGS"]),
                     ("jax", "--xla_cpu_foo=1"))


@unittest.skipUnless(keras_peer.available(), "keras is not installed")
class KerasPeerTest(absltest.TestCase):

  def test_stateful_fit_trains_as_if_stateless(self):
    config = config_lib.preset("echo_lag").replace(epochs=3, hidden=8)
    stateful = keras_peer.train_and_evaluate(config, seed=1, eval_sequences=2)
    stateless = keras_peer.train_and_evaluate(
        config.replace(stateful=False), seed=1, eval_sequences=2)
    self.assertEqual(stateful["versions"]["backend"], "jax")
    self.assertLen(stateful["losses"], 3)
    self.assertLen(stateful["eval_accuracy_per_position"], 20)
    self.assertBetween(stateful["eval_accuracy"], 0.0, 1.0)
    self.assertGreater(stateful["process_seconds"], stateful["seconds"])
    self.assertGreater(stateful["seconds"], stateful["train_seconds"])
    # Keras 3.15's JAX trainer never carries an RNN's state between batches
    # (docs/tutorial.md says so: update it if this changes).
    self.assertEqual(stateful["losses"], stateless["losses"])


if __name__ == "__main__":
  absltest.main()
