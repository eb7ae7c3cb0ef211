"""The long-lag study: its framing, the hand-set bound, the matched widths,
the recipes, and the binary end to end (tiny)."""

import dataclasses
import json
import os
import subprocess
import sys

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import models
from echo_jax.core import train as train_lib
from echo_jax.runtime import runner
from echo_jax.studies import long_lags as study
from echo_jax.tasks import long_lags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FrameTest(absltest.TestCase):

  def test_one_head_is_the_lag_and_heads_are_lags_one_to_r(self):
    sequence = jnp.arange(8)
    one = long_lags.frame_readouts(sequence, 3, 1)
    np.testing.assert_array_equal(one.targets[0, :, 0],
                                  [0, 0, 0, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(one.weights[0, :, 0], [0, 0, 0] + [1] * 5)
    heads = long_lags.frame_readouts(sequence, 3, 4)
    for k in range(1, 5):  # head k: X(t - k), scored up to the lag only
      np.testing.assert_array_equal(heads.targets[0, k:, k - 1],
                                    np.arange(8 - k))
      want = [0] * 8 if k > 3 else [0] * k + [1] * (8 - k)
      np.testing.assert_array_equal(heads.weights[0, :, k - 1], want)
    self.assertEqual(long_lags.scored_readout(3, 4), 2)
    self.assertEqual(long_lags.scored_readout(3, 1), 0)


class HandSetTest(absltest.TestCase):

  def test_shift_register_echoes_its_lag_exactly_and_no_other(self):
    test = data.TestSet(jnp.asarray(train_lib.test_keys(0, 40)), 50, 100)
    for lag in (1, 7, 20):
      correct, weight = long_lags.shift_register_evaluate(lag, 100)(test).sums
      self.assertEqual(float(jnp.sum(correct)), float(jnp.sum(weight)))
      self.assertEqual(float(jnp.sum(weight)), 40 * (50 - lag))
    # Scored against the next lag it is at chance: the score can fail.
    model = long_lags.ShiftRegister(long_lags.shift_register_units(5), 100)
    params = jax.tree.map(jnp.asarray, long_lags.shift_register_params(5, 100))
    ids = data.sequences_of(test)
    predicted = jnp.argmax(model.apply({"params": params}, ids)[:, :, 0], -1)
    self.assertTrue(jnp.all(predicted[:, 5:] == ids[:, :-5]))
    self.assertLess(float(jnp.mean(predicted[:, 6:] == ids[:, :-6])), 0.05)


class ModelsTest(absltest.TestCase):

  def test_matched_widths_within_a_quarter_of_the_lstms_parameters(self):
    for readouts in (1, 10):
      target = long_lags.count_params(
          long_lags.make_model("lstm", 64, 100, readouts, 50))
      for name in ("gru", "lru", "attention"):
        width = long_lags.matched_width(name, target, 100, readouts, 50)
        model = long_lags.make_model(name, width, 100, readouts, 50)
        ratio = long_lags.count_params(model) / target
        self.assertBetween(ratio, 0.8, 1.25, (name, readouts, width))
        logits = jax.eval_shape(model.init_with_output, jax.random.PRNGKey(0),
                                jnp.zeros((2, 50), jnp.int32))[0]
        self.assertEqual(logits.shape, (2, 50, readouts, 100))

  def test_lru_and_attention_are_causal(self):
    # The output at t must not see inputs after t.
    ids = jax.random.randint(jax.random.PRNGKey(1), (1, 12), 0, 100)
    later = ids.at[0, 8:].set((ids[0, 8:] + 1) % 100)
    for name in ("lru", "attention"):  # the cells are causal as scanned
      model = long_lags.make_model(name, 16, 100, 1, 12)
      params = model.init(jax.random.PRNGKey(0), ids)
      np.testing.assert_allclose(model.apply(params, ids)[0, :8],
                                 model.apply(params, later)[0, :8],
                                 rtol=1e-5, atol=1e-5, err_msg=name)


class SpanTest(absltest.TestCase):

  def test_the_chain_spans_each_models_lag(self):
    config = config_lib.EchoConfig(seeds=1, epochs=1)
    task = study.make_task(config, "lstm", 24, "span", (2, 5))
    key = jax.random.PRNGKey(0)
    chain = study.make_task(config, "lstm", 24, "long", (2,)).train.init(
        key, 2).params["lstm"]
    for lag, lanes in ((2, 8), (5, 4)):  # 24 // (lag + 1) units a slot
      # Traced, as in the study's one program over its lags.
      span = jax.jit(task.train.init)(key, jnp.int32(lag)).params["lstm"]
      kernel = np.asarray(span["recurrent_kernel"])
      np.testing.assert_array_equal(
          kernel[:, 48:72], models.CHAIN_GAIN * np.eye(24, k=lanes))
      # The gates and the input kernel: the chain init's, unchanged.
      np.testing.assert_array_equal(
          np.delete(kernel, np.s_[48:72], axis=1),
          np.delete(np.asarray(chain["recurrent_kernel"]), np.s_[48:72], 1))
      np.testing.assert_array_equal(span["kernel"], chain["kernel"])
      np.testing.assert_array_equal(span["bias"], chain["bias"])
    self.assertEqual(task.settings["init"], "span")
    self.assertNotIn("init", study.make_task(config, "gru", 24, "span",
                                             (2,)).settings)


class RecipeTest(absltest.TestCase):

  def test_one_ingredient_set_back_or_changed(self):
    for name in study.INGREDIENTS:
      others = [f for f in study.INGREDIENTS if f != name]
      for base, start in study.BASES.items():
        for sign, value in (("-", study.TUTORIAL), ("+", study.CHANGED)):
          if getattr(start, name) == getattr(value, name):
            with self.assertRaisesRegex(config_lib.ConfigError,
                                        "changes nothing"):
              study.recipe(f"{base}{sign}{name}")
            continue
          recipe = study.recipe(f"{base}{sign}{name}")
          self.assertEqual(getattr(recipe, name), getattr(value, name))
          self.assertEqual([getattr(recipe, f) for f in others],
                           [getattr(start, f) for f in others])
    self.assertFalse(study.FULL.every_lag)
    self.assertTrue(study.recipe("full+every_lag").every_lag)
    with self.assertRaisesRegex(config_lib.ConfigError, "full-speed"):
      study.recipe("full-speed")

  def test_ingredients_chain_left_to_right(self):
    # The best recipe's ablation: span+decay with one ingredient set back.
    self.assertEqual(study.recipe("span+decay-clip"),
                     dataclasses.replace(study.SPAN, decay=True, clip=None))
    self.assertEqual(study.recipe("span+decay+every_lag-batch"),
                     dataclasses.replace(study.SPAN, decay=True,
                                         every_lag=True, batch=16))
    for bad, message in (("span+decay+decay", r"span\+decay already has "
                          "decay on"), ("span+decay-", "is not tutorial"),
                         ("span+-clip", "is not tutorial"),
                         ("span+decay-clipped", "is not tutorial")):
      with self.assertRaisesRegex(config_lib.ConfigError, message):
        study.recipe(bad)

  def test_decay_is_keras_time_decay_of_the_recipes_rate(self):
    config = config_lib.EchoConfig(seeds=1, epochs=1)
    for name, optimizer in (("span", "keras_adam"),
                            ("span+decay", "keras_adam_decay")):
      task = study.make_task(config, "lstm", 8, name, (2,))
      self.assertEqual(task.config.optimizer, optimizer)
      self.assertEqual(task.config.learning_rate, study.SPAN.learning_rate)

  def test_accuracy_is_each_lags_own_head(self):
    # 2 lags x 2 seeds, 3 heads: the lag-2 models are right on head 2 only.
    correct = np.zeros((4, 1, 5, 3))
    weight = np.ones((4, 1, 5, 3))
    correct[0:2, ..., 0] = 1  # lag 1 on head 1
    correct[2:4, ..., 1] = 1  # lag 2 on head 2
    np.testing.assert_array_equal(
        study.accuracy_at((correct, weight), (1, 2), 3, 2), np.ones((2, 2)))


class CombineTest(absltest.TestCase):

  def test_refuses_a_missing_record_and_a_row_held_twice(self):
    row = {"model": "lstm", "recipe": "full", "hidden": 8, "lag": 2,
           "sequence_length": 50}
    register = {**row, "model": "shift_register", "recipe": "hand-set"}
    tmp = helpers.make_tempdir(self)
    sources = [os.path.join(tmp, name) for name in ("a", "b")]
    for source in sources:
      os.makedirs(source)
      with open(os.path.join(source, "long_lags.json"), "w") as f:
        json.dump({"rows": [row, register]}, f)
    with self.assertRaisesRegex(config_lib.ConfigError,
                                "two runs hold lstm 8, full, lag 2"):
      study.load_runs(sources)
    with self.assertRaisesRegex(config_lib.ConfigError, "holds no"):
      study.load_runs([sources[0], os.path.join(tmp, "c")])
    loaded = study.load_runs(sources[:1])
    self.assertLen(loaded["rows"], 2)
    # A point rerun with a larger budget replaces the shorter run's row,
    # in whichever order the runs are given.
    for budget, source in ((500, sources[0]), (3000, sources[1])):
      with open(os.path.join(source, "long_lags.json"), "w") as f:
        json.dump({"updates": budget, "rows": [
            {**row, "accuracy": budget / 3000}, register]}, f)
    for order in (sources, sources[::-1]):
      rows = study.load_runs(order)["rows"]
      self.assertLen(rows, 2)
      trained, = [r for r in rows if r["model"] == "lstm"]
      self.assertEqual((trained["accuracy"], trained["source"]),
                       (1.0, sources[1]))


class EfficiencyTest(absltest.TestCase):

  def test_training_time_against_its_matmuls_at_their_rate(self):
    # Recipe long: 64 sequences of 50 a update, one head of 100 values.
    config = config_lib.preset("echo_lag").replace(
        epochs=10, seeds=2, eval_sequences=4)
    task = study.make_task(config, "lstm", 8, "long", (3, 4))
    # Only its timing is read: a run resumed at update 4 of 10.
    output = runner.RunOutput(
        compiled=None, params=None, loss_MxE=None, accuracy_MxE=None,
        evaluation=None, diverged=[], timing={
            "resumed_from_epoch": 4, "train_seconds_this_process": 1.2})
    rate = study.efficiency(task, output)
    per_update = 1.2 / 6  # the 6 updates this process trained
    self.assertAlmostEqual(rate["train_seconds_per_update"], per_update)
    # Forward, and the backward as twice it: recurrent kernel per step,
    # then the head over every position; 4 models (2 lags x 2 seeds).
    flops = 3 * 2.0 * 4 * (50 * 64 * 8 * 32 + 64 * 50 * 8 * 100)
    self.assertAlmostEqual(rate["train_flops_per_second"],
                           flops / per_update, delta=1.0)
    self.assertAlmostEqual(
        rate["fraction_of_matmul_rate"],
        rate["matmul_seconds_per_update"] / per_update)
    self.assertBetween(rate["matmul_seconds_per_update"], 1e-7, 1.0)


class BinaryTest(absltest.TestCase):

  def test_tiny_study_writes_its_rows(self):
    workdir = os.path.join(helpers.make_tempdir(self), "out")
    args = ["--models=lstm,attention", "--recipes=full+every_lag",
            "--hiddens=4", "--lags=1,2", "--updates=4", "--eval_every=2",
            "--seeds=2", "--eval_sequences=4",
            f"--compilation_cache={helpers.SUITE_CACHE}",
            f"--workdir={workdir}"]
    env = helpers.binary_env(1)
    first = subprocess.run(
        [sys.executable, "-m", "experiments.long_lags", *args], cwd=REPO,
        env=env, capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    self.assertCountEqual(os.listdir(workdir), [
        "long_lags", "long_lags.json", "long_lags.png",
        "long_lags_width.png"])
    with open(os.path.join(workdir, "long_lags.json")) as f:
      record = json.load(f)
    rows = record["rows"]
    # 2 models x 2 lags, and the register at the 2 lags.
    self.assertLen(rows, 6)
    for row in rows:
      self.assertContainsSubset(
          ["model", "recipe", "hidden", "lag", "accuracy", "accuracy_ci95",
           "updates_to_99", "seeds", "sequence_length"], row)
      low, high = row["accuracy_ci95"]
      self.assertBetween(row["accuracy"], low, high)
    attention = [r for r in rows if r["model"] == "attention"]
    self.assertTrue(all(r["lstm_hidden_matched"] == 4 for r in attention))
    lstm = [r for r in rows if r["model"] == "lstm"]
    self.assertTrue(all(len(r["final_per_readout"]) == r["lag"]
                        for r in lstm))  # every_lag: a head per lag
    register = [r for r in rows if r["model"] == "shift_register"]
    self.assertEqual({r["accuracy"] for r in register}, {1.0})
    self.assertEqual({r["sequence_length"] for r in register}, {50})
    # Resuming is run_scored's, tested in test_checkpoint.


if __name__ == "__main__":
  absltest.main()
