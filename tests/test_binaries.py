"""The absl binaries end to end: results written, bad input refused cleanly."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

import helpers
from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--epochs=3", "--seeds=2", "--eval_sequences=10"]


def run_binary(name, *args, cache=None):
  # The suite's compilation cache unless a test gives its own (never the
  # user's cache).
  cache = helpers.SUITE_CACHE if cache is None else cache
  env = helpers.binary_env(2, ECHO_JAX_COMPILATION_CACHE=cache)
  return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300, check=False)


class BadInputTest(parameterized.TestCase):

  @parameterized.parameters(
      ("echo_lag", "--lag=5", "error: lag=5 must be < context=5"),
      ("echo_lag", "--lag=-1", "error: lag=-1 must be >= 0"),
      ("echo_current", "--context=0", "error: context=0 must be >= 1"),
      ("echo_lag", "--n_unique=1", "error: n_unique=1 must be >= 2"),
      ("echo_lag", "--length=4", "error: length=4 must be >= lag + context"),
      ("echo_lag_no_context", "--batch_size=5",
       "error: batch_size=5 must divide the 24 samples"),
      ("echo_lag", "--init=zeros", "error: init='zeros' must be one of"),
      ("echo_lag", "--hidden=many", "error: flag --hidden=many"),
      ("echo_lag", "--colour=red", "error: Unknown command line flag 'colour'"),
      ("reproduce", "--seeds=0", "error: seeds=0 must be >= 1"),
      ("benchmark", "--sections=scaling,speed",
       "error: sections=scaling,speed: 'speed' is not one of"),
      ("benchmark", "--gpu_seeds=0", "error: gpu_seeds=0 must be integers >= 1"),
      ("benchmark", "--gpu_check_settings=on",
       "error: gpu_check_settings=on: 'on' is not one of XLA default, off"),
      ("benchmark", "--gpu_check_settings=",
       "error: gpu_check_settings=: name any of XLA default, off"),
      ("benchmark", "--gpu_check_timeout_s=0",
       "error: gpu_check_timeout_s=0 must be >= 1"),
  )
  def test_one_line_exit_2_nothing_written(self, binary, flag, message):
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary(binary, flag, f"--workdir={workdir}")
    helpers.assert_refused(self, result, message, workdir)

  @parameterized.parameters("echo_lag", "mask_missing", "reproduce")
  def test_bad_input_ends_before_jax_is_imported(self, binary):
    # Fails fast: the flags are checked before the run begins (JAX's import
    # alone takes about a second).
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    result = subprocess.run(
        [sys.executable, "-m", f"experiments.{binary}", "--epochs=0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        check=False)
    self.assertEqual(result.returncode, 2, result.stderr[-2000:])
    self.assertEqual(result.stderr.strip().splitlines()[-1],
                     "error: epochs=0 must be >= 1")
    imported = [line.rsplit("|", 1)[1].strip()
                for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    self.assertIn("echo_jax.core.config", imported)
    self.assertNotIn("jax", imported)

  def test_existing_workdir_untouched_by_bad_input(self):
    workdir = make_tempdir(self)
    with open(os.path.join(workdir, "keep.txt"), "w") as f:
      f.write("previous results")
    result = run_binary("echo_lag", "--context=0", f"--workdir={workdir}")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertEqual(os.listdir(workdir), ["keep.txt"])

  @parameterized.parameters("echo_lag", "reproduce")
  def test_bad_chunk_epochs(self, binary):
    # reproduce compiles in a worker thread: its error must surface the same.
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary(binary, "--chunk_epochs=0", f"--workdir={workdir}")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertEqual(result.stderr.strip(), "error: chunk_epochs=0 must be >= 1")
    self.assertFalse(os.path.exists(workdir))
    self.assertFalse(os.path.exists(workdir))

  def test_unwritable_workdir(self):
    blocker = os.path.join(make_tempdir(self), "a_file")
    open(blocker, "w").close()
    result = run_binary("echo_current", *FAST,
                        f"--workdir={os.path.join(blocker, 'out')}")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertStartsWith(result.stderr, "error: workdir=")


class BenchmarkTest(absltest.TestCase):

  def test_scaling_and_cost_model_sections(self):
    # Sequential calls are timed up to --max_sequential_seeds only; a larger
    # N is compared with the rate of the largest N timed.
    workdir = make_tempdir(self)
    result = run_binary(
        "benchmark", f"--workdir={workdir}",
        "--sections=scaling,cost_model",
        "--scaling_seeds=1,3", "--max_sequential_seeds=1",
        "--scaling_epochs=2", "--repeats=1", "--peer=false",
        "--start_up=false")
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(workdir, "benchmark.json")) as f:
      report = json.load(f)
    self.assertEqual(report["backend"], "cpu")
    self.assertNotIn("one_model", report)
    small, large = report["scaling"]
    self.assertEqual((small["seeds"], large["seeds"]), (1, 3))
    self.assertGreater(small["sequential_models_per_second"], 0)
    self.assertIsNone(large["sequential_models_per_second"])
    self.assertAlmostEqual(
        large["speedup"], large["one_call_models_per_second"]
        / small["sequential_models_per_second"])
    self.assertRegex(result.stdout, r"\| 3 +\| 2 +\| - +\|")
    # The cost model of the largest run: 3 models on 2 devices.
    cost = report["cost_model"]
    self.assertEqual(cost["models_per_device"], 2)
    self.assertEqual(cost["params"], 35300)
    self.assertGreater(cost["fraction_device"], 0)
    self.assertIn("of limit", result.stdout)


if __name__ == "__main__":
  absltest.main()
