"""Golden outputs: every training binary at tiny settings, on 1 and 2 host
devices, must write exactly the files pinned in tests/golden/ (timings,
versions and paths stripped). A refactor that changes no behaviour keeps
them; a change that moves results on purpose regenerates them in its own
commit:

  ECHO_JAX_UPDATE_GOLDENS=1 python3 -m pytest tests/test_golden.py -n 2

Floats are compared exactly (their JSON repr round-trips) on the machine the
goldens were made on; XLA:CPU compiles for the host's instruction set, so on
a processor with other vector extensions the last bits may move, and there
the comparison falls back to a relative tolerance (and says so).
"""

import csv
import json
import math
import os
import platform
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

import helpers
from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(REPO, "tests", "golden")
UPDATE = os.environ.get("ECHO_JAX_UPDATE_GOLDENS") == "1"

_EXT = ["--seeds=2", "--eval_sequences=4", "--hidden=4", "--epochs=3"]
# name -> (binary, flags). Three seeds for the tutorial: on two devices they
# pad to four (two models per device); echo_lag's two seeds run one model
# per device (the unbatched program).
CASES = {
    "reproduce": ("reproduce", ["--seeds=3", "--epochs=3",
                                "--eval_sequences=5", "--hidden=8",
                                "--chunk_epochs=2"]),
    "echo_lag": ("echo_lag", ["--seeds=2", "--epochs=4", "--hidden=8",
                              "--eval_sequences=5", "--chunk_epochs=3"]),
    "ignore_state": ("ignore_state", _EXT),
    "mask_missing": ("mask_missing", _EXT),
    "entire_sequence": ("entire_sequence", _EXT + ["--length=10"]),
    "lag_values": ("lag_values", [f for f in _EXT if f != "--hidden=4"]
                   + ["--lags=1,6", "--hiddens=3"]),
    "lag_sequence": ("lag_sequence", _EXT + ["--lags=1,3"]),
    "streaming_echo": ("streaming_echo", _EXT + [
        "--lags=1,2", "--beginner_epochs=2", "--length=13"]),
    "streaming_budget": ("streaming_budget", [
        "--seeds=2", "--eval_sequences=4", "--hiddens=4", "--updates=4",
        "--eval_every=2", "--lags=1,2", "--recipes=tutorial,decay",
        "--length=13"]),
    "mlp_baseline": ("mlp_baseline", _EXT + ["--mlp_hidden=3"]),
    "large_vocab": ("large_vocab", _EXT + [
        "--vocabs=30", "--timing_epochs=1", "--sequences_per_epoch=2"]),
    "predict_next": ("predict_next", _EXT),
    "sweep": ("sweep", ["--length=9", "--n_unique=6", "--batch_size=3",
                        "--epochs=3", "--seeds=2", "--eval_sequences=10",
                        "--hidden_sizes=4", "--lags=0,1,2",
                        "--contexts=2,3", "--chunk_epochs=2"]),
}

# Extension binaries: (variants expected, plots expected[, epochs of a
# second kind of run folder]), checked on the
# same run as the goldens (a readable guard that outlives regeneration).
EXTENSION_SHAPES = {
    "ignore_state": (2, ["ignore_state.png"]),
    "mask_missing": (3, ["mask_missing.png"]),
    "entire_sequence": (2, ["entire_sequence.png"]),
    "lag_values": (2, ["lag_values.png"]),
    "lag_sequence": (2, ["lag_sequence.png"]),
    "streaming_echo": (5, ["streaming_echo.png", "streaming_echo_lags.png"],
                       2),  # its beginner run: --beginner_epochs=2
    "streaming_budget": (4, ["streaming_budget.png"], 4),  # 4 updates
    "mlp_baseline": (2, ["mlp_baseline.png"]),
    "large_vocab": (3, ["large_vocab.png"]),
    "predict_next": (2, []),
}
# Every binary on 1 device; on 2 devices (models sharded) the tutorial's
# echo_lag and one extension (ignore_state: variants x seeds). The other
# binaries run the same runner path (the sweep's 2-device bits are
# test_multiprocess's reference), and each 2-device run costs the suite
# 10-20 s of start-up and compilation.
TWO_DEVICE_CASES = ("echo_lag", "ignore_state")
GOLDEN_RUNS = ([(case, 1) for case in sorted(CASES)]
               + [(case, 2) for case in sorted(TWO_DEVICE_CASES)])
TUTORIAL = ("echo_current", "echo_lag_no_context", "echo_lag")

# Fields that measure time, name versions or hold paths: not results.
_DROPPED_KEYS = ("versions",)


def _dropped(key: str) -> bool:
  return (key in _DROPPED_KEYS or "seconds" in key
          or key.startswith("ms_per_"))


def normalise(value):
  """A JSON value without timing and version fields (recursively)."""
  if isinstance(value, dict):
    return {k: normalise(v) for k, v in value.items() if not _dropped(k)}
  if isinstance(value, list):
    return [normalise(v) for v in value]
  return value


def read_outputs(workdir: str) -> dict:
  """Every file under `workdir`: JSON (keys in order) and JSON lines
  normalised, CSV without timing columns, other files by name only (PNGs,
  checkpoint contents: their layout is what must not change)."""
  outputs = {}
  for root, dirs, files in os.walk(workdir):
    dirs.sort()
    rel_root = os.path.relpath(root, workdir)
    if rel_root == ".":
      rel_root = ""
    for name in sorted(files):
      rel = os.path.join(rel_root, name)
      path = os.path.join(root, name)
      parts = rel.split(os.sep)
      if "checkpoints" in parts:
        # Orbax names its data blobs (under d/) by content hash.
        if "d" in parts:
          rel = os.path.join(*parts[:parts.index("d") + 1], "<blobs>")
        outputs[rel] = "<checkpoint file>"
      elif name.endswith(".json"):
        with open(path) as f:
          outputs[rel] = normalise(json.load(f))
      elif name.endswith(".jsonl"):
        with open(path) as f:
          outputs[rel] = [normalise(json.loads(line)) for line in f]
      elif name.endswith(".csv"):
        with open(path) as f:
          rows = list(csv.DictReader(f))
        outputs[rel] = [{k: v for k, v in row.items() if not _dropped(k)}
                        for row in rows]
      else:
        outputs[rel] = "<file>"
    for name in dirs:
      rel = os.path.join(rel_root, name)
      if "checkpoints" in rel.split(os.sep) and name.isdigit():
        outputs.setdefault("<checkpoint steps>", []).append(rel)
  return outputs


def machine() -> str:
  """What the goldens' bits depend on besides the code: the processor's
  vector extensions (XLA:CPU compiles for the host)."""
  flags = ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          flags = " ".join(sorted(
              w for w in line.split(":", 1)[1].split()
              if w.startswith(("avx", "fma", "sse", "amx"))))
          break
  except OSError:
    pass
  return f"{platform.machine()} {flags}"


def run_binary(binary: str, args, devices: int, workdir: str, cache=""):
  """The binary; compiled from scratch unless given a `cache` folder."""
  env = dict(os.environ, ECHO_JAX_HOST_DEVICES=str(devices),
             ECHO_JAX_COMPILATION_CACHE=cache)
  # XLA's defaults, as users compile: the suite's flags (conftest.py) would
  # move the last bits.
  env.pop("XLA_FLAGS", None)
  return subprocess.run(
      [sys.executable, "-m", f"experiments.{binary}", *args,
       f"--workdir={workdir}"], cwd=REPO, env=env, capture_output=True,
      text=True, timeout=300, check=False)


def assert_close(test, got, want, path="", exact=True):
  """Equal structure; floats equal exactly, or within 1e-5 relative."""
  if isinstance(want, dict):
    test.assertIsInstance(got, dict, path)
    test.assertEqual(list(got), list(want), f"keys of {path}")
    for k in want:
      assert_close(test, got[k], want[k], f"{path}.{k}", exact)
  elif isinstance(want, list):
    test.assertIsInstance(got, list, path)
    test.assertLen(got, len(want), path)
    for i, (g, w) in enumerate(zip(got, want)):
      assert_close(test, g, w, f"{path}[{i}]", exact)
  elif isinstance(want, float) and not exact and isinstance(got, float):
    test.assertTrue(math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6),
                    f"{path}: {got} != {want}")
  else:
    test.assertEqual(got, want, path)


def check_extension(test, name, workdir, stdout, seeds=2, epochs=3):
  """An extension's result file, rows with intervals, run folders, plots."""
  variants, pngs, *other_epochs = EXTENSION_SHAPES[name]
  test.assertIn(f"wrote {os.path.join(workdir, name + '.json')}", stdout)
  test.assertCountEqual(os.listdir(workdir), [f"{name}.json", name] + pngs)
  # One resumable run folder per trained program.
  parts = sorted(os.listdir(os.path.join(workdir, name)))
  test.assertIn("study.json", parts)  # claimed before any run trains
  for part in parts:
    run_dir = os.path.join(workdir, name, part)
    if not os.path.isdir(run_dir):
      continue
    test.assertContainsSubset(
        ["config.json", "checkpoints", "metrics.jsonl",
         "learning_curves.png"], os.listdir(run_dir))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      test.assertIn(len(f.readlines()), [epochs, *other_epochs])
  with open(os.path.join(workdir, f"{name}.json")) as f:
    record = json.load(f)
  test.assertEqual(record["experiment"], name)
  test.assertEqual(record["config"]["experiment"], name)  # --config_json
  test.assertLen(record["rows"], variants)
  test.assertEqual(set(record["eval_accuracy"]),
                   {row["variant"] for row in record["rows"]})
  for row in record["rows"]:
    summary = row["eval_accuracy"]
    test.assertLen(summary["per_seed"], seeds)
    low, high = summary["ci95"]
    test.assertLessEqual(low, summary["mean"])
    test.assertLessEqual(summary["mean"], high)
    test.assertBetween(summary["mean"], 0.0, 1.0)
  for png in pngs:
    with open(os.path.join(workdir, png), "rb") as f:
      test.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


def check_reproduce(test, workdir, stdout):
  test.assertContainsSubset(
      [f"{name}.json" for name in TUTORIAL] + ["reproduce.json"],
      os.listdir(workdir))
  with open(os.path.join(workdir, "reproduce.json")) as f:
    summary = json.load(f)
  test.assertEqual([r["experiment"] for r in summary["experiments"]],
                   list(TUTORIAL))
  for name in TUTORIAL:
    test.assertIn(name, stdout)


class GoldenOutputTest(parameterized.TestCase):

  @parameterized.named_parameters(
      (f"_{case}_{devices}dev", case, devices) for case, devices in GOLDEN_RUNS)
  def test_outputs_match_golden(self, case, devices):
    binary, args = CASES[case]
    workdir = os.path.join(make_tempdir(self), "out")
    # A run checked again by its rerun keeps its programs for the rerun
    # (the first run compiles them all the same).
    rerun = RERUN_CHECKS.get(case) if devices == 1 else None
    cache = make_tempdir(self) if rerun else ""
    result = run_binary(binary, args, devices, workdir, cache)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    if case in EXTENSION_SHAPES:
      check_extension(self, case, workdir, result.stdout)
    elif case == "reproduce":
      check_reproduce(self, workdir, result.stdout)
    elif case == "echo_lag":  # the tutorial's check: model 0, sequence 0
      self.assertIn("Expected:", result.stdout)
    outputs = read_outputs(workdir)
    golden_path = os.path.join(GOLDEN_DIR, f"{case}_{devices}dev.json")
    if UPDATE:
      os.makedirs(GOLDEN_DIR, exist_ok=True)
      with open(golden_path, "w") as f:
        json.dump({"machine": machine(), "binary": binary, "flags": args,
                   "devices": devices, "outputs": outputs}, f, indent=1)
        f.write("\n")
      return
    with open(golden_path) as f:
      golden = json.load(f)
    self.assertEqual(golden["flags"], args, "flags changed: regenerate")
    exact = golden["machine"] == machine()
    if not exact:
      print(f"{golden_path}: made on another processor ({golden['machine']}"
            f"); comparing floats to 1e-5")
    self.assertEqual(sorted(outputs), sorted(golden["outputs"]),
                     "files written")
    for rel, want in golden["outputs"].items():
      assert_close(self, outputs[rel], want, rel, exact)
    if rerun:
      rerun(self, binary, args, workdir, cache)


def rerun_sweep(test, binary, args, workdir, cache):
  """The sweep's table and plots; a rerun reuses every cell; other
  settings in the same workdir are refused."""
  with open(os.path.join(workdir, "sweep.csv")) as f:
    lines = f.read().splitlines()
  test.assertLen(lines, 7)  # header + 3 lags x 2 contexts
  test.assertIn("impossible", lines[3])  # context 2: lags 0, 1, 2
  for name in ("heatmap.png", "accuracy_vs_hidden.png",
               "learning_curves.png"):
    test.assertGreater(os.path.getsize(os.path.join(workdir, name)), 0)
  again = run_binary(binary, args, 1, workdir, cache)
  test.assertEqual(again.returncode, 0, again.stderr[-2000:])
  with open(os.path.join(workdir, "sweep.json")) as f:
    test.assertEqual(json.load(f)["cells_reused"], 5)
  refused = run_binary(binary, args + ["--epochs=4"], 1, workdir, cache)
  test.assertEqual(refused.returncode, 2, refused.stderr[-2000:])
  test.assertStartsWith(refused.stderr.strip(), "error: workdir=")


def rerun_extension(test, binary, args, workdir, cache):
  """A rerun of a finished extension resumes every run at its end and
  reports the same results."""
  with open(os.path.join(workdir, f"{binary}.json")) as f:
    before = json.load(f)
  again = run_binary(binary, args, 1, workdir, cache)
  test.assertEqual(again.returncode, 0, again.stderr[-2000:])
  test.assertIn("resuming at epoch 3/3", again.stderr)
  with open(os.path.join(workdir, f"{binary}.json")) as f:
    after = json.load(f)
  for row, row_before in zip(after["rows"], before["rows"], strict=True):
    test.assertEqual(row["resumed_from_epoch"], 3)
    for key in ("eval_accuracy", "eval_accuracy_per_position",
                "train_accuracy_per_epoch", "final_train_loss"):
      test.assertEqual(row[key], row_before[key], key)


def rerun_config_json(test, binary, args, workdir, cache):
  """One experiment's files; --config_json of its record reruns exactly the
  saved config: the same numbers."""
  del args
  test.assertCountEqual(os.listdir(workdir), [f"{binary}.json", binary])
  test.assertContainsSubset(
      ["config.json", "metrics.jsonl", "learning_curves.png", "checkpoints"],
      os.listdir(os.path.join(workdir, binary)))
  path = os.path.join(workdir, f"{binary}.json")
  with open(path) as f:
    record = json.load(f)
  for key in ("eval_accuracy", "compile_seconds", "train_seconds",
              "versions"):
    test.assertIn(key, record)
  rerun_dir = os.path.join(make_tempdir(test), "rerun")
  rerun = run_binary(binary, [f"--config_json={path}"], 1, rerun_dir, cache)
  test.assertEqual(rerun.returncode, 0, rerun.stderr[-2000:])
  with open(os.path.join(rerun_dir, f"{binary}.json")) as f:
    again = json.load(f)
  test.assertEqual(again["config"], record["config"])
  test.assertEqual(again["eval_accuracy_per_seed"],
                   record["eval_accuracy_per_seed"])


def combine_budget(test, binary, args, workdir, cache):
  """streaming_budget --combine: one table from earlier runs' results (here
  the golden run's); two runs of the same budget, or a folder without
  results, refused in one line."""
  del args, cache
  merged = os.path.join(make_tempdir(test), "merged")
  result = run_binary(binary, [f"--combine={workdir}"], 1, merged)
  test.assertEqual(result.returncode, 0, result.stderr[-2000:])
  with open(os.path.join(merged, "streaming_budget.json")) as f:
    record = json.load(f)
  test.assertEqual(
      [(r["lag"], r["recipe"], r["run_updates"], r["updates"])
       for r in record["rows"]],
      [(lag, recipe, 4, [2, 4]) for lag in (1, 2)
       for recipe in ("decay", "tutorial")])
  test.assertTrue(os.path.exists(os.path.join(merged, "streaming_budget.png")))
  again = os.path.join(make_tempdir(test), "again")
  helpers.assert_refused(
      test, run_binary(binary, [f"--combine={workdir},{workdir}"], 1, again),
      "error: combine: two runs hold the same lag, hidden, recipe and "
      "budget", again)
  helpers.assert_refused(
      test, run_binary(binary, [f"--combine={again}"], 1, again),
      f"error: combine={again}: {again} holds no streaming_budget.json",
      again)


# Checked on the golden run's own workdir (no second first run).
RERUN_CHECKS = {"sweep": rerun_sweep, "mask_missing": rerun_extension,
                "streaming_budget": combine_budget,
                "echo_lag": rerun_config_json}


if __name__ == "__main__":
  absltest.main()
