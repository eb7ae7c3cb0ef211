"""The lag x context x hidden sweep: grouped training equals per-model
training, sharding changes nothing, one program per (context, hidden),
impossible cells untouched, resumable, bad grids refused."""

import json
import os
import re
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate
from echo_jax.core import train
from echo_jax.report import records
from echo_jax.report import sweep_plots
from echo_jax.runtime import runner
from echo_jax.studies import sweep as sweep_study
from echo_jax.tasks import sweep_cell

import helpers
from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = config_lib.EchoConfig(
    experiment="sweep", length=9, n_unique=6, hidden=4, batch_size=3,
    stateful=False, epochs=6, seeds=2, eval_sequences=30)
CONTEXT, LAGS = 3, (0, 1, 2)


def model_slice(tree, i, s):
  return jax.tree.map(lambda x: x[i, s], tree)


class FramingTest(absltest.TestCase):

  def test_all_windows_extend_the_tutorial_rows(self):
    sequence_L = jnp.arange(10, 20, dtype=jnp.int32)
    for lag in range(4):
      windows_NxC, targets_N = jax.jit(
          sweep_cell.all_windows, static_argnums=2)(sequence_L, lag, 4)
      chex.assert_shape(windows_NxC, (7, 4))
      ref_windows, ref_targets = data.frame_windows(sequence_L, lag, 4)
      np.testing.assert_array_equal(windows_NxC[lag:], ref_windows)
      np.testing.assert_array_equal(targets_N[lag:], ref_targets)
      np.testing.assert_array_equal(targets_N, windows_NxC[:, 3 - lag])


def run_group(max_devices):
  return runner.run_task(
      sweep_cell.group_task(TINY, CONTEXT, TINY.hidden, LAGS),
      max_devices=max_devices)


def accuracy_LxS(output):
  windows = output.task.config.num_samples  # lag 0: every full window
  return output.by_variant(evaluate.fraction(
      output.evaluation.sums, TINY.eval_sequences * windows))


class GroupTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.output = run_group(max_devices=1)
    cls.trained = cls.output.trained(by_variant=True)

  def test_grouped_models_equal_one_model_at_a_time(self):
    train_one = jax.jit(sweep_cell.group_task(TINY, CONTEXT, TINY.hidden,
                                              LAGS).train)
    keys_S = train.model_keys(TINY.seed, TINY.seeds)
    for i, lag in enumerate(LAGS):
      for s in range(TINY.seeds):
        alone = train_one(keys_S[s], lag)
        chex.assert_trees_all_close(model_slice(self.trained, i, s), alone,
                                    rtol=1e-5, atol=1e-6)

  def test_lag_zero_is_the_core_training_run(self):
    config = sweep_cell.group_config(TINY, CONTEXT, TINY.hidden)
    core = jax.jit(train.make_train(config))
    keys_S = train.model_keys(TINY.seed, TINY.seeds)
    for s in range(TINY.seeds):
      chex.assert_trees_all_close(model_slice(self.trained, 0, s),
                                  core(keys_S[s]), rtol=1e-5, atol=1e-6)

  def test_accuracy_matches_direct_prediction(self):
    predict_logits = evaluate.make_predict_logits(
        sweep_cell.group_config(TINY, CONTEXT, TINY.hidden))
    predict = jax.jit(jax.vmap(
        jax.vmap(lambda p, w: jnp.argmax(predict_logits(p, w), -1),
                 in_axes=(None, 0)), in_axes=(0, None)))
    sequences_SxL = data.sequences_of(data.TestSet(
        train.test_keys(TINY.seed, TINY.eval_sequences), TINY.length,
        TINY.n_unique))
    for i, lag in enumerate(LAGS):
      framed = [sweep_cell.all_windows(seq, lag, CONTEXT)
                for seq in sequences_SxL]
      windows = jnp.stack([w for w, _ in framed])
      targets = np.stack([t for _, t in framed])
      predicted = np.asarray(predict(
          jax.tree.map(lambda x, i=i: x[i], self.trained.params), windows))
      np.testing.assert_allclose(
          accuracy_LxS(self.output)[i],
          (predicted == targets[None]).mean(axis=(1, 2)), rtol=1e-6)

  def test_sharded_over_four_devices_equals_one_device(self):
    self.assertGreaterEqual(jax.device_count(), 4)
    output = run_group(max_devices=4)
    self.assertEqual(output.compiled.mesh.size, 4)
    chex.assert_trees_all_close(output.trained(by_variant=True), self.trained,
                                rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(accuracy_LxS(output), accuracy_LxS(self.output))

  def test_records(self):
    cells = sweep_study.cell_records(self.output, TINY)
    self.assertEqual([r["lag"] for r in cells], list(LAGS))
    for i, record in enumerate(cells):
      self.assertEqual(record["status"], "ok")
      mean, low, high = records.mean_and_ci95(accuracy_LxS(self.output)[i])
      self.assertAlmostEqual(record["mean"], mean)
      self.assertEqual((record["ci_low"], record["ci_high"]), (low, high))
      self.assertLen(record["train_accuracy_per_epoch"], TINY.epochs)
      self.assertEqual(record["samples_per_sequence"],
                       TINY.length - CONTEXT + 1)


class HelpersTest(absltest.TestCase):

  def test_csv_has_the_columns_and_empty_impossible_fields(self):
    rows = [sweep_study.impossible_record(3, 2, 8)]
    lines = sweep_study.csv_text(rows).splitlines()
    self.assertEqual(lines[0], "lag,context,hidden,seeds,mean,ci_low,ci_high,"
                     "status,epochs_to_99,train_seconds")
    self.assertEqual(lines[1], "3,2,8,0,,,,impossible,,")

  def test_information_bound(self):
    self.assertAlmostEqual(sweep_plots.bits_needed(2, 16), 8.0)


class ValidateTest(parameterized.TestCase):

  @parameterized.parameters(
      ((), (3,), (4,), {}, "lags is empty"),
      ((0, 0), (3,), (4,), {}, "lags: 0 is given twice"),
      ((0, 3), (3,), (4,), {}, "lags: 3 must be in [0, 2]"),
      ((-1,), (3,), (4,), {}, "lags: -1 must be in [0, 2]"),
      ((0,), (0,), (4,), {}, "contexts: 0 must be in [1, 7]"),
      ((0,), (8,), (4,), {}, "contexts: 8 must be in [1, 7]"),
      ((0,), (3,), (0,), {}, "hidden_sizes: 0 must be >= 1"),
      ((0,), (3,), (4,), {"seeds": 0}, "seeds=0 must be >= 1"),
      ((0,), (3,), (4,), {"stateful": True},
       "context=3: batch_size=3 must divide the 7 samples"),
      ((0,), (3,), (4,), {"framing": "no_context"},
       "framing=no_context cannot be swept"),
  )
  def test_bad_grid(self, lags, contexts, hiddens, changes, message):
    with self.assertRaisesRegex(config_lib.ConfigError,
                                "^" + re.escape(message)):
      sweep_cell.validate(TINY.replace(**changes),
                          sweep_cell.Grid(lags, contexts, hiddens))

  def test_stateful_allowed_when_the_batch_divides_every_context(self):
    sweep_cell.validate(TINY.replace(stateful=True, batch_size=1),
                        sweep_cell.Grid((0, 1), (1, 2, 3), (4,)))


class SweepTest(absltest.TestCase):
  """Whole sweeps on a 2-context grid: 2 programs, 4 possible cells."""

  GRID = sweep_cell.Grid((0, 1, 2), (1, 3), (4,))

  def test_one_program_per_context_and_hidden_and_impossible_untouched(self):
    workdir = make_tempdir(self)
    with mock.patch.object(runner, "compile_task",
                           wraps=runner.compile_task) as compile_task:
      record = sweep_study.run_sweep(TINY, self.GRID, workdir, max_devices=4)
    self.assertEqual([call.args[0].name for call in compile_task.mock_calls],
                     ["context 1 hidden 4", "context 3 hidden 4"])
    statuses = {(r["lag"], r["context"]): r["status"] for r in record["rows"]}
    self.assertEqual(statuses, {
        (0, 1): "ok", (1, 1): "impossible", (2, 1): "impossible",
        (0, 3): "ok", (1, 3): "ok", (2, 3): "ok"})
    for lag, context in ((1, 1), (2, 1)):
      self.assertFalse(os.path.exists(
          sweep_study.cell_path(workdir, lag, context, 4)))
    by_cell = {(r["lag"], r["context"]): r for r in record["rows"]}
    # Context 1 trains its one lag only: 1 lag x 2 seeds models.
    self.assertEqual(by_cell[0, 1]["models_in_program"], TINY.seeds)
    # Context 3: 3 lags x 2 seeds, padded to a multiple of 4 devices.
    self.assertEqual(by_cell[0, 3]["models_in_program"], 8)
    self.assertEqual(record["cells_impossible"], 2)

  def test_interrupted_sweep_resumes_without_recomputing(self):
    workdir = make_tempdir(self)
    calls = []

    def run_one_group(*args, **kwargs):  # then killed before the second
      calls.append(1)
      if len(calls) > 1:
        raise helpers.Stop("killed")
      return run(*args, **kwargs)

    run = runner.run
    with mock.patch.object(runner, "run", run_one_group):
      with self.assertRaises(helpers.Stop):
        sweep_study.run_sweep(TINY, self.GRID, workdir)
    first = sweep_study.cell_path(workdir, 0, 1, 4)  # context 1 runs first
    self.assertTrue(os.path.exists(first))
    self.assertFalse(os.path.exists(sweep_study.cell_path(workdir, 0, 3, 4)))
    stamp = os.stat(first).st_mtime_ns
    with open(first) as f:
      before = json.load(f)
    with mock.patch.object(runner, "compile_task",
                           wraps=runner.compile_task) as compile_task:
      record = sweep_study.run_sweep(TINY, self.GRID, workdir)
    self.assertEqual([call.args[0].name for call in compile_task.mock_calls],
                     ["context 3 hidden 4"])
    self.assertEqual(record["cells_reused"], 1)
    self.assertEqual(record["cells_trained_now"], 3)
    self.assertEqual(os.stat(first).st_mtime_ns, stamp)
    self.assertEqual(record["rows"][0], before)
    again = sweep_study.run_sweep(TINY, self.GRID, workdir)
    self.assertEqual(again["cells_trained_now"], 0)
    self.assertEqual(again["rows"], record["rows"])

  def test_killed_inside_a_group_resumes_bit_identically(self):
    grid = sweep_cell.Grid((0, 1), (3,), (4,))
    whole = sweep_study.run_sweep(TINY, grid, make_tempdir(self),
                                  chunk_epochs=2)
    workdir = make_tempdir(self)
    run = runner.run
    killed = lambda compiled, run_dir: run(
        compiled, run_dir, on_chunk=helpers.stop_after(2))
    with mock.patch.object(runner, "run", killed):
      with self.assertRaises(helpers.Stop):
        sweep_study.run_sweep(TINY, grid, workdir, chunk_epochs=2)
    self.assertFalse(os.path.exists(os.path.join(workdir, "cells")))
    run_dir = sweep_study.group_dir(workdir, 3, 4, (0, 1))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      self.assertLen(f.readlines(), 4)  # 2 chunks of 2 epochs
    resumed = sweep_study.run_sweep(TINY, grid, workdir, chunk_epochs=2)
    timing = ("train_seconds", "group_train_seconds", "group_eval_seconds",
              "group_compile_seconds")
    for row, whole_row in zip(resumed["rows"], whole["rows"]):
      for key in set(row) - set(timing):
        self.assertEqual(row[key], whole_row[key], key)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      self.assertLen(f.readlines(), 6)
    self.assertFalse(os.path.exists(os.path.join(run_dir, "checkpoints")))

  def test_other_config_in_same_workdir_refused(self):
    workdir = make_tempdir(self)
    grid = sweep_cell.Grid((0,), (1,), (4,))
    sweep_study.run_sweep(TINY, grid, workdir)
    with self.assertRaisesRegex(config_lib.ConfigError,
                                "holds a sweep of another config.*epochs"):
      sweep_study.run_sweep(TINY.replace(epochs=7), grid, workdir)

  def test_ci_half_width_shrinks_with_more_seeds(self):
    widths = []
    for seeds in (2, 6):
      record = sweep_study.run_sweep(TINY.replace(seeds=seeds),
                                     sweep_cell.Grid((1,), (2,), (4,)),
                                     make_tempdir(self))
      (row,) = record["rows"]
      self.assertLen(row["eval_accuracy_per_seed"], seeds)
      widths.append(row["ci_high"] - row["ci_low"])
    self.assertLess(widths[1], widths[0])


def run_binary(*args):
  env = helpers.binary_env(2, ECHO_JAX_COMPILATION_CACHE=helpers.SUITE_CACHE)
  return subprocess.run([sys.executable, "-m", "experiments.sweep", *args],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300, check=False)


TINY_FLAGS = ["--length=9", "--n_unique=6", "--batch_size=3", "--epochs=3",
              "--seeds=2", "--eval_sequences=10", "--hidden_sizes=4",
              "--lags=0,1", "--contexts=2,3"]  # later flags override


class BinaryTest(parameterized.TestCase):

  @parameterized.parameters(
      (["--lags="], "error: lags is empty"),
      (["--lags=1,x"], "error: lags=1,x must be integers"),
      (["--contexts=0,2"], "error: contexts: 0 must be in [1, 7]"),
      (["--lags=0,5", "--contexts=3"], "error: lags: 5 must be in [0, 2]"),
      (["--seeds=0"], "error: seeds=0 must be >= 1"),
      (["--lag=2"], "error: --lag is not used by the sweep: give --lags"),
  )
  def test_bad_input_one_line_exit_2_nothing_written(self, flags, message):
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary(*TINY_FLAGS, *flags, f"--workdir={workdir}")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertEqual(result.stderr.strip().splitlines(),
                     [result.stderr.strip()])
    self.assertStartsWith(result.stderr.strip(), message)
    self.assertFalse(os.path.exists(workdir))

  def test_benchmark_writes_its_rows(self):
    # docs/map.md's "one call for many models" command, at tiny settings.
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary("--benchmark", "--epochs=2", "--hidden=4",
                        "--benchmark_sizes=1,2", f"--workdir={workdir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(workdir, "benchmark.json")) as f:
      rows = json.load(f)["rows"]
    self.assertEqual([r["models"] for r in rows], [1, 2])
    for row in rows:
      self.assertGreater(row["vmapped_seconds"], 0)
      self.assertGreater(row["sequential_seconds"], 0)

  def test_unwritable_workdir(self):
    parent = make_tempdir(self)
    blocker = os.path.join(parent, "file")
    with open(blocker, "w") as f:
      f.write("not a folder")
    result = run_binary(*TINY_FLAGS, f"--workdir={blocker}/out")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertStartsWith(result.stderr.strip(), "error: workdir=")
    self.assertEqual(os.listdir(parent), ["file"])


if __name__ == "__main__":
  absltest.main()
