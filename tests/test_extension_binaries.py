"""The extension binaries end to end, tiny: result file, rows with intervals,
plots; their own flags refuse bad values in one line."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--seeds=2", "--eval_sequences=4", "--hidden=4", "--epochs=2",
        "--compilation_cache="]

# name -> (extra flags, variants expected, plots expected)
BINARIES = {
    "ignore_state": ([], 2, ["ignore_state.png"]),
    "mask_missing": ([], 3, ["mask_missing.png"]),
    "entire_sequence": (["--length=10"], 2, ["entire_sequence.png"]),
    "lag_values": (["--lags=1,6", "--hiddens=3"], 2, ["lag_values.png"]),
    "lag_sequence": (["--lags=1,3"], 2, ["lag_sequence.png"]),
    "streaming_echo": (["--lags=1,2", "--beginner_epochs=2", "--length=13"],
                       5, ["streaming_echo.png", "streaming_echo_lags.png"]),
    "mlp_baseline": (["--mlp_hidden=3"], 2, ["mlp_baseline.png"]),
    "large_vocab": (["--vocabs=30", "--timing_epochs=1",
                     "--sequences_per_epoch=2"], 3, ["large_vocab.png"]),
    "predict_next": ([], 2, []),
}


def run_binary(name, *args):
  env = dict(os.environ, ECHO_JAX_HOST_DEVICES="2")
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300, check=False)


class ExtensionBinaryTest(parameterized.TestCase):

  def make_workdir(self):
    path = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  @parameterized.parameters(*BINARIES)
  def test_writes_rows_with_intervals(self, name):
    extra, variants, pngs = BINARIES[name]
    workdir = self.make_workdir()
    result = run_binary(name, *TINY, *extra, f"--workdir={workdir}")
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn(f"wrote {os.path.join(workdir, name + '.json')}",
                  result.stdout)
    self.assertCountEqual(os.listdir(workdir), [f"{name}.json", name] + pngs)
    # One resumable run folder per trained program.
    for part in os.listdir(os.path.join(workdir, name)):
      run_dir = os.path.join(workdir, name, part)
      self.assertContainsSubset(
          ["config.json", "checkpoints", "metrics.jsonl",
           "learning_curves.png"], os.listdir(run_dir))
      with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        self.assertLen(f.readlines(), 2)  # --epochs=2
    with open(os.path.join(workdir, f"{name}.json")) as f:
      record = json.load(f)
    self.assertEqual(record["experiment"], name)
    self.assertEqual(record["config"]["experiment"], name)  # --config_json
    self.assertLen(record["rows"], variants)
    self.assertEqual(set(record["eval_accuracy"]),
                     {row["variant"] for row in record["rows"]})
    for row in record["rows"]:
      summary = row["eval_accuracy"]
      self.assertLen(summary["per_seed"], 2)
      low, high = summary["ci95"]
      self.assertLessEqual(low, summary["mean"])
      self.assertLessEqual(summary["mean"], high)
      self.assertBetween(summary["mean"], 0.0, 1.0)
    for png in pngs:
      with open(os.path.join(workdir, png), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

  def test_rerun_in_the_same_workdir_resumes_with_the_same_results(self):
    workdir = self.make_workdir()
    args = [*TINY, "--epochs=4", "--chunk_epochs=2", f"--workdir={workdir}"]
    first = run_binary("mask_missing", *args)
    self.assertEqual(first.returncode, 0, first.stderr[-2000:])
    self.assertIn("epoch 2/4", first.stderr)  # one progress line per chunk
    with open(os.path.join(workdir, "mask_missing.json")) as f:
      before = json.load(f)
    again = run_binary("mask_missing", *args)
    self.assertEqual(again.returncode, 0, again.stderr[-2000:])
    self.assertIn("resuming at epoch 4/4", again.stderr)
    with open(os.path.join(workdir, "mask_missing.json")) as f:
      after = json.load(f)
    for row, row_before in zip(after["rows"], before["rows"]):
      self.assertEqual(row["resumed_from_epoch"], 4)
      for key in ("eval_accuracy", "eval_accuracy_per_position",
                  "train_accuracy_per_epoch", "final_train_loss"):
        self.assertEqual(row[key], row_before[key])

  @parameterized.parameters(
      ("lag_values", "--lags=0", "error: lags=0 must be integers >= 1"),
      ("lag_values", "--lags=30", "error: lag=30 leaves no complete window"),
      ("lag_sequence", "--lags=5", "error: lag=5 must be in [1, context=5)"),
      ("streaming_echo", "--lags=x", "error: lags=x must be integers"),
      ("large_vocab", "--vocabs=1", "error: vocabs=1 must be integers >= 2"),
      ("mlp_baseline", "--mlp_hidden=0", "error: mlp_hidden=0 must be"),
      ("mask_missing", "--seeds=0", "error: seeds=0 must be >= 1"),
  )
  def test_bad_flag_one_line_exit_2(self, name, flag, message):
    workdir = os.path.join(self.make_workdir(), "out")
    result = run_binary(name, flag, f"--workdir={workdir}")
    self.assertEqual(result.returncode, 2, result.stderr[-2000:])
    self.assertLen(result.stderr.strip().splitlines(), 1, result.stderr)
    self.assertStartsWith(result.stderr.strip(), message)
    self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
  absltest.main()
