"""The state map: its traced carry is Keras' stateful fit, its evaluation
is the tutorial's prediction both ways, its measurements (norms, probe) are
what they say; the binary runs, resumes and refuses bad input in one line."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import models
from echo_jax.core import train
from echo_jax.tasks import state_cell
import helpers
from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = config_lib.preset("echo_lag").replace(
    hidden=4, epochs=2, seeds=2, eval_sequences=6, lag=2, context=4,
    batch_size=2)


def run_binary(*args):
  env = helpers.binary_env(2)
  return subprocess.run(
      [sys.executable, "-m", "experiments.state_map",
       f"--compilation_cache={helpers.SUITE_CACHE}", *args],
      cwd=REPO, env=env, capture_output=True, text=True,
      timeout=300, check=False)


class StateCellTest(parameterized.TestCase):

  @parameterized.parameters(True, False)
  def test_traced_carry_is_the_configured_fit(self, stateful):
    config = TINY.replace(stateful=stateful)
    state = train.make_train(config).init(jax.random.PRNGKey(0))
    reference, _ = jax.jit(
        lambda s: train.make_train(config).chunk(2)(s, 2))(state)
    traced = train.make_train(config.replace(stateful=True),
                              stateful_fn=lambda v: v == state_cell.STATEFUL
                              ).chunk(2)
    variant = jnp.int32(state_cell.STATEFUL if stateful
                        else state_cell.STATELESS)
    mapped, _ = jax.jit(lambda s, v: traced(s, 2, v))(state, variant)
    for a, b in zip(jax.tree.leaves(reference.params),
                    jax.tree.leaves(mapped.params)):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

  def test_rollout_is_the_tutorial_prediction_both_ways(self):
    config = state_cell.cell_config(TINY, 2, 4, 2)
    params = models.init_params(config, jax.random.PRNGKey(3))
    sequence = data.generate_sequence(jax.random.PRNGKey(4), config.length,
                                      config.n_unique)
    windows, _ = data.frame_windows(sequence, config.lag, config.context)
    zero, carried, (c, h) = state_cell.make_rollout(config)(params, windows)
    stateful = evaluate_lib.make_predict_logits(config)(params, windows)
    stateless = evaluate_lib.make_predict_logits(
        config.replace(stateful=False))(params, windows)
    np.testing.assert_allclose(carried, stateful, atol=1e-5)
    np.testing.assert_allclose(zero, stateless, atol=1e-5)
    # Row j starts from window j - 2's final state; rows 0, 1 from zeros.
    np.testing.assert_array_equal(h[:2], 0)
    model = models.make_model(config)
    _, (c1, h1) = model.apply({"params": params}, windows[1:2],
                              models.zero_carry(1, config.hidden))
    _, (c3, h3) = model.apply({"params": params}, windows[3:4], (c1, h1))
    np.testing.assert_allclose(h[3], h1[0], atol=1e-6)
    np.testing.assert_allclose(c[5], c3[0], atol=1e-6)

  def test_inverse_and_whole_batch_measurements(self):
    a = np.random.default_rng(0).normal(size=(30, 9)).astype(np.float32)
    spd = a.T @ a + 0.1 * np.eye(9, dtype=np.float32)
    inverse = state_cell._inverse_spd(jnp.asarray(spd))  # pylint: disable=protected-access
    np.testing.assert_allclose(inverse, np.linalg.inv(spd), rtol=2e-3,
                               atol=2e-3)
    # One batch per sequence: nothing is carried, both ways agree.
    config = state_cell.cell_config(TINY, 1, 3, TINY.replace(
        lag=1, context=3).num_samples)
    params = models.init_params(config, jax.random.PRNGKey(5))
    sequences = data.sequences_of(data.TestSet(
        jax.random.split(jax.random.PRNGKey(6), 6), config.length,
        config.n_unique))
    out = state_cell.make_evaluate(config, 4, 2)(params, sequences, 1)
    self.assertEqual(int(out["correct_zero"]), int(out["correct_carried"]))
    self.assertEqual(float(out["h_norm"]), 0.0)
    np.testing.assert_array_equal(out["probe_correct_P"], 0)

  def test_probe_decodes_what_the_state_holds(self):
    # A model whose state holds the last input: the probe reads window
    # j - 1's last value from it far above chance, its first value not.
    config = state_cell.cell_config(
        TINY.replace(hidden=16, n_unique=10, eval_sequences=200), 0, 2, 1)
    params = models.init_params(config, jax.random.PRNGKey(7))
    sequences = jax.random.randint(jax.random.PRNGKey(8),
                                   (200, config.length), 0, config.n_unique)
    out = state_cell.make_evaluate(config, 50, 100)(params, sequences, 1)
    rows = 100 * (config.num_samples - 1)
    probe = np.asarray(out["probe_correct_P"]) / rows
    self.assertGreater(probe[-2], 0.9)    # window j - 1's last value
    self.assertLess(probe[0], probe[-2])  # its first, further back
    self.assertGreater(float(out["h_norm"]), 0.0)


class StateMapBinaryTest(parameterized.TestCase):

  def test_tiny_map_runs_resumes_and_writes_its_files(self):
    workdir = make_tempdir(self)
    args = ["--lags=1", "--windows=2", "--batch_sizes=1,2,whole",
            "--seeds=2", "--epochs=2", "--hidden=4", "--eval_sequences=4",
            f"--workdir={workdir}"]
    first = run_binary(*args)
    self.assertEqual(first.returncode, 0, first.stderr[-2000:])
    with open(os.path.join(workdir, "state_map.json")) as f:
      record = json.load(f)
    # N = 25 - 1 - 2 + 1 = 23 rows: batch 2 does not divide them.
    self.assertEqual([r["status"] for r in record["rows"]],
                     ["ok", "not_divisor", "ok"])
    cell = record["rows"][0]
    for mode in ("stateful", "stateless"):
      self.assertLen(cell[mode]["accuracy"]["per_seed"], 2)
      self.assertLen(cell[mode]["probe_previous_window"], 2)
      self.assertIsNotNone(cell[mode]["carried_h_norm"])
    self.assertEqual(cell["stateful"]["accuracy"],
                     cell["stateful"]["accuracy_carried_state"])
    self.assertEqual(cell["stateless"]["accuracy_other_way"],
                     cell["stateless"]["accuracy_carried_state"])
    self.assertIsNone(record["rows"][2]["stateful"]["probe_target"])
    self.assertTrue(os.path.exists(os.path.join(workdir, "state_map.png")))
    second = run_binary(*args)
    self.assertEqual(second.returncode, 0, second.stderr[-2000:])
    with open(os.path.join(workdir, "state_map.json")) as f:
      again = json.load(f)
    self.assertEqual(again["cells_trained_now"], 0)
    self.assertEqual(again["rows"], record["rows"])

  @parameterized.parameters(
      ("--lags=1,1", "error: lags: 1 is given twice"),
      ("--batch_sizes=two", "error: batch_sizes=two must be integers"),
      ("--windows=0", "error: windows: 0 must be in [1, 25]"),
      ("--lag=3", "error: --lag is not used by state_map: give --lags"),
  )
  def test_bad_flag_one_line_exit_2(self, flag, message):
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary(flag, f"--workdir={workdir}")
    helpers.assert_refused(self, result, message, workdir)


if __name__ == "__main__":
  absltest.main()
