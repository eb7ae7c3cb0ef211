"""Validation: every bad value is one clear line naming the field and range."""

from absl.testing import absltest
from absl.testing import parameterized

from echo_jax.core import config as config_lib


class ValidateTest(parameterized.TestCase):

  @parameterized.parameters(*config_lib.PRESETS)
  def test_presets_are_valid_and_match_the_tutorial(self, name):
    config = config_lib.validate(config_lib.preset(name))
    self.assertEqual(config.experiment, name)
    self.assertEqual(config.length, 25)
    self.assertEqual(config.n_unique, 100)

  def test_tutorial_settings(self):
    current = config_lib.preset("echo_current")
    self.assertEqual((current.hidden, current.batch_size, current.epochs,
                      current.num_samples), (15, 1, 500, 25))
    mistake = config_lib.preset("echo_lag_no_context")
    self.assertEqual((mistake.hidden, mistake.batch_size, mistake.epochs,
                      mistake.num_samples, mistake.stateful),
                     (50, 6, 2000, 24, True))
    lag = config_lib.preset("echo_lag")
    self.assertEqual((lag.hidden, lag.batch_size, lag.epochs, lag.num_samples,
                      lag.stateful), (50, 5, 2000, 20, True))

  @parameterized.named_parameters(
      ("negative_lag", dict(lag=-1), "lag=-1 must be >= 0"),
      ("zero_context", dict(context=0), "context=0 must be >= 1"),
      ("lag_not_below_context", dict(lag=5, context=5),
       "lag=5 must be < context=5"),
      ("one_symbol", dict(n_unique=1), "n_unique=1 must be >= 2"),
      ("too_short", dict(length=5, lag=1, context=5),
       "length=5 must be >= lag + context = 6"),
      ("batch_not_dividing", dict(batch_size=6),
       "batch_size=6 must divide the 20 samples per sequence in stateful "
       "mode (one of 1, 2, 4, 5, 10, 20)"),
      ("batch_too_big", dict(batch_size=21, stateful=False),
       "batch_size=21 must be in [1, 20]"),
      ("zero_epochs", dict(epochs=0), "epochs=0 must be >= 1"),
      ("zero_seeds", dict(seeds=0), "seeds=0 must be >= 1"),
      ("zero_hidden", dict(hidden=0), "hidden=0 must be >= 1"),
      ("zero_eval", dict(eval_sequences=0), "eval_sequences=0 must be >= 1"),
      ("negative_seed", dict(seed=-3), "seed=-3 must be in [0, 2147483647]"),
      ("float_hidden", dict(hidden=2.5), "hidden=2.5 must be an integer"),
      ("unknown_init", dict(init="he"),
       "init='he' must be one of keras, chrono, chain, flax"),
      ("unknown_activation", dict(recurrent_activation="relu"),
       "recurrent_activation='relu' must be one of sigmoid, hard_sigmoid"),
      ("unknown_framing", dict(framing="all"),
       "framing='all' must be one of window, no_context"),
      ("no_context_with_context", dict(framing="no_context", context=2),
       "context=2 must be 1 for framing=no_context"),
      ("unknown_optimizer", dict(optimizer="sgd"),
       "optimizer='sgd' must be one of keras_adam, optax_adam"),
      ("bad_learning_rate", dict(learning_rate=0.0),
       "learning_rate=0.0 must be > 0"),
  )
  def test_bad_values(self, changes, message):
    config = config_lib.preset("echo_lag").replace(**changes)
    with self.assertRaises(config_lib.ConfigError) as raised:
      config_lib.validate(config)
    self.assertStartsWith(str(raised.exception), message)
    self.assertNotIn("\n", str(raised.exception))

  def test_stateless_batch_need_not_divide(self):
    config_lib.validate(config_lib.preset("echo_lag").replace(
        batch_size=6, stateful=False))

  def test_no_context_allows_lag_at_least_context(self):
    config_lib.validate(config_lib.preset("echo_lag_no_context").replace(
        lag=3, batch_size=2))

  def test_unknown_field_and_experiment(self):
    with self.assertRaisesRegex(config_lib.ConfigError, "unknown config field"):
      config_lib.preset("echo_lag").replace(hiden=3)
    with self.assertRaisesRegex(config_lib.ConfigError, "unknown experiment"):
      config_lib.preset("echo_lagg")
    with self.assertRaisesRegex(config_lib.ConfigError, "unknown config field"):
      config_lib.from_dict({"lag": 1, "colour": "red"})

  def test_config_is_hashable_and_round_trips(self):
    config = config_lib.preset("echo_lag")
    self.assertEqual(hash(config), hash(config_lib.from_dict(config.to_dict())))


if __name__ == "__main__":
  absltest.main()
