"""The absl binaries end to end: results written, bad input refused cleanly."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--epochs=3", "--seeds=2", "--eval_sequences=10"]


def make_tempdir(test):
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def run_binary(name, *args):
  env = dict(os.environ, ECHO_JAX_HOST_DEVICES="2")
  env.pop("XLA_FLAGS", None)
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
  )
  def test_one_line_exit_2_nothing_written(self, binary, flag, message):
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary(binary, flag, f"--workdir={workdir}")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertEqual(result.stderr.strip().splitlines(), [
        result.stderr.strip()])
    self.assertStartsWith(result.stderr.strip(), message)
    self.assertFalse(os.path.exists(workdir))

  def test_unwritable_workdir(self):
    blocker = os.path.join(make_tempdir(self), "a_file")
    open(blocker, "w").close()
    result = run_binary("echo_current", *FAST,
                        f"--workdir={os.path.join(blocker, 'out')}")
    self.assertEqual(result.returncode, 2, result.stderr)
    self.assertStartsWith(result.stderr, "error: workdir=")


class RunTest(absltest.TestCase):

  def test_single_experiment_writes_result(self):
    workdir = make_tempdir(self)
    result = run_binary("echo_lag", *FAST, "--hidden=8", f"--workdir={workdir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn("Expected:", result.stdout)
    self.assertEqual(os.listdir(workdir), ["echo_lag.json"])
    with open(os.path.join(workdir, "echo_lag.json")) as f:
      record = json.load(f)
    self.assertEqual(record["experiment"], "echo_lag")
    self.assertEqual(record["config"]["hidden"], 8)
    self.assertLen(record["eval_accuracy_per_seed"], 2)
    for key in ("eval_accuracy", "compile_seconds", "train_seconds",
                "versions"):
      self.assertIn(key, record)

    # --config_json reruns exactly the saved config: same numbers.
    rerun_dir = os.path.join(workdir, "rerun")
    rerun = run_binary("echo_lag", f"--workdir={rerun_dir}",
                       f"--config_json={os.path.join(workdir, 'echo_lag.json')}")
    self.assertEqual(rerun.returncode, 0, rerun.stderr)
    with open(os.path.join(rerun_dir, "echo_lag.json")) as f:
      again = json.load(f)
    self.assertEqual(again["config"], record["config"])
    self.assertEqual(again["eval_accuracy_per_seed"],
                     record["eval_accuracy_per_seed"])

  def test_reproduce_writes_all_four(self):
    workdir = make_tempdir(self)
    result = run_binary("reproduce", *FAST, f"--workdir={workdir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertCountEqual(os.listdir(workdir), [
        "echo_current.json", "echo_lag_no_context.json", "echo_lag.json",
        "reproduce.json"])
    with open(os.path.join(workdir, "reproduce.json")) as f:
      summary = json.load(f)
    self.assertEqual([r["experiment"] for r in summary["experiments"]],
                     ["echo_current", "echo_lag_no_context", "echo_lag"])
    for name in ("echo_current", "echo_lag_no_context", "echo_lag"):
      self.assertIn(name, result.stdout)


if __name__ == "__main__":
  absltest.main()
