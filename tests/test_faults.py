"""Faults a long run meets: each ends with one line and its exit code, loses
nothing, and a resumed run equals an uninterrupted one."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate
from echo_jax.core import models
from echo_jax.runtime import runner
from echo_jax.tasks import framed
from echo_jax.tasks import lags
from echo_jax.tasks import sweep_cell
from echo_jax.tasks import task as task_lib

import helpers
from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--epochs=4", "--seeds=2", "--hidden=4", "--eval_sequences=4",
        f"--compilation_cache={helpers.SUITE_CACHE}"]
TINY = config_lib.preset("echo_lag").replace(epochs=6, seeds=2, hidden=4,
                                            eval_sequences=4)


def env(**extra):
  return helpers.binary_env(2, **extra)


def run_binary(name, *args, timeout=240, **extra_env):
  return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args],
                        cwd=REPO, env=env(**extra_env), capture_output=True,
                        text=True, timeout=timeout, check=False)


def start_binary(name, *args):
  return subprocess.Popen(
      [sys.executable, "-m", f"experiments.{name}", *args], cwd=REPO,
      env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, process, seconds=120):
  deadline = time.time() + seconds
  while time.time() < deadline and process.poll() is None:
    if predicate():
      return True
    time.sleep(0.02)
  return predicate()


def one_line(test, result, code, prefix):
  test.assertEqual(result.returncode, code, result.stderr[-2000:])
  lines = result.stderr.strip().splitlines()
  test.assertNotIn("Traceback", result.stderr)
  test.assertStartsWith(lines[-1], prefix)
  return lines[-1]


def checkpoint_steps(run_dir):
  folder = os.path.join(run_dir, "checkpoints")
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


class BadInputTest(parameterized.TestCase):

  @parameterized.parameters(
      ("echo_lag", ["--learning_rate=inf"],
       "error: learning_rate=inf must be a finite number"),
      ("lag_sequence", ["--lags="], "error: lags is empty"),
      ("mlp_baseline", ["--mlp_hidden=50,50"],
       "error: mlp_hidden: 50 is given twice"),
      ("large_vocab", ["--vocabs=100,100"], "error: vocabs: 100 is given twice"),
      ("lag_values", ["--lags=1,1"], "error: lags: 1 is given twice"),
      ("lag_values", ["--lag=3"],
       "error: --lag is not used by lag_values: give --lags"),
      ("entire_sequence", ["--context=3"],
       "error: --context is not used by entire_sequence"),
  )
  def test_refused_in_one_line(self, binary, flags, message):
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary(binary, *flags, f"--workdir={workdir}")
    one_line(self, result, 2, message)  # and no traceback
    helpers.assert_refused(self, result, message, workdir)

  def test_oversized_run_refused_before_compiling(self):
    workdir = os.path.join(make_tempdir(self), "out")
    start = time.time()
    result = run_binary(
        "echo_lag", "--n_unique=1000000", "--hidden=4096", "--epochs=50",
        "--seeds=2", "--eval_sequences=50", f"--workdir={workdir}")
    line = one_line(self, result, 2, "error: the run needs about")
    self.assertIn("--hidden (=4096)", line)
    self.assertLess(time.time() - start, 60)
    self.assertFalse(os.path.exists(workdir))

  def test_memory_limit(self):
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary("echo_lag", *FAST, f"--workdir={workdir}",
                        ECHO_JAX_MEMORY_BYTES="100000")
    one_line(self, result, 2, "error: the run needs about")
    self.assertFalse(os.path.exists(workdir))

  def test_what_fits_is_what_xla_says_the_programs_need(self):
    # large_vocab's default V = 10,000 run (8 models) fits this machine;
    # the same with twice the limit's worth of models does not.
    config = config_lib.validate(config_lib.preset("echo_lag").replace(
        n_unique=10000, seeds=8, eval_sequences=1000, epochs=100))
    task = framed.echo_lstm_task("v", config, None, 16,
                                 config.num_samples * 16)
    runner.compile_task(task, 2)
    with mock.patch.dict(os.environ, {runner.MEMORY_ENV: str(10**8)}):
      with self.assertRaisesRegex(config_lib.ConfigError,
                                  "^the run needs about .* but "
                                  r"\$ECHO_JAX_MEMORY_BYTES allows 0.1 GB"):
        runner.compile_task(task, 2)

  def test_entire_sequence_takes_any_lag_the_sequence_allows(self):
    result = run_binary("entire_sequence", "--lag=25",
                        f"--workdir={make_tempdir(self)}/out")
    one_line(self, result, 2, "error: lag=25 must be in [0, length=25)")


class StateFileTest(absltest.TestCase):

  def test_checkpoints_carry_their_config(self):
    # config.json damaged or deleted: the checkpoints' own identity decides.
    workdir = make_tempdir(self)
    # A run that failed before its first checkpoint does not hold the folder.
    failed = run_binary("echo_lag", *FAST, "--learning_rate=3e38",
                        "--seeds=1", f"--workdir={workdir}")
    one_line(self, failed, 1, "error: non-finite training loss")
    first = run_binary("echo_lag", *FAST, "--chunk_epochs=2",
                       f"--workdir={workdir}")
    self.assertEqual(first.returncode, 0, first.stderr[-2000:])
    self.assertNotIn("diverged", first.stderr)  # a sane run: no warning
    record = os.path.join(workdir, "echo_lag.json")
    with open(record) as f:
      before = json.load(f)
    # reproduce checks every run folder before it trains any.
    result = run_binary("reproduce", *FAST, "--hidden=5",
                        f"--workdir={workdir}")
    one_line(self, result, 2, "error: workdir holds a run of another config")
    self.assertCountEqual(os.listdir(workdir), ["echo_lag", "echo_lag.json"])
    intact = run_binary("echo_lag", *FAST, "--chunk_epochs=2",
                        "--learning_rate=0.01", f"--workdir={workdir}")
    line = one_line(self, intact, 2, "error: workdir holds a run of another "
                    "config")
    self.assertRegex(line, r"differs in [a-z_, ]*learning_rate")
    path = os.path.join(workdir, "echo_lag", "config.json")
    os.remove(path)
    for other in ("--hidden=5",):
      result = run_binary("echo_lag", *FAST, "--chunk_epochs=2", other,
                          f"--workdir={workdir}")
      line = one_line(self, result, 2, "error: workdir holds a run of "
                      "another config")
      self.assertIn("use a new --workdir to start afresh", line)
      self.assertFalse(os.path.exists(path))
      with open(record) as f:
        self.assertEqual(json.load(f), before)
    # Damaged, it is written again from the run it belongs to.
    with open(path, "w") as f:
      f.write('{"hidden": ')
    again = run_binary("echo_lag", *FAST, "--chunk_epochs=2",
                       f"--workdir={workdir}")
    self.assertEqual(again.returncode, 0, again.stderr[-2000:])
    with open(path) as f:
      self.assertEqual(json.load(f), before["config"])
    with open(record) as f:
      after = json.load(f)
    self.assertEqual(after["resumed_from_epoch"], 4)
    self.assertEqual(after["eval_accuracy_per_seed"],
                     before["eval_accuracy_per_seed"])
    # A rerun of a finished run keeps the timings of the run that trained.
    self.assertGreater(before["train_seconds"], 0)
    self.assertEqual(after["train_seconds"], before["train_seconds"])
    self.assertEqual(after["train_seconds_this_process"], 0.0)

  def test_truncated_sweep_files_named(self):
    workdir = make_tempdir(self)
    args = ["--length=9", "--n_unique=6", "--batch_size=3", "--epochs=2",
            "--seeds=1", "--eval_sequences=2", "--hidden_sizes=4",
            "--lags=0", "--contexts=2",
            f"--compilation_cache={helpers.SUITE_CACHE}",
            f"--workdir={workdir}"]
    first = run_binary("sweep", *args)
    self.assertEqual(first.returncode, 0, first.stderr[-2000:])
    for rel in ("cells/lag0_context2_hidden4.json", "sweep_config.json"):
      path = os.path.join(workdir, rel)
      with open(path, "r+") as f:
        f.truncate(5)
      result = run_binary("sweep", *args)
      self.assertIn(path, one_line(self, result, 2, "error: "))
      os.remove(path)


class DamagedCheckpointTest(absltest.TestCase):

  def test_falls_back_to_the_newest_intact_checkpoint(self):
    clean, clean_trained = helpers.run_tutorial(TINY, chunk_epochs=2)
    run_dir = os.path.join(make_tempdir(self), "run")
    task = task_lib.tutorial_task(TINY)
    with self.assertRaises(helpers.Stop):
      runner.run_task(task, run_dir=run_dir, chunk_epochs=2,
                      on_chunk=helpers.stop_after(2))
    self.assertEqual(checkpoint_steps(run_dir), [2, 4])
    # Truncate the largest file of the newest checkpoint.
    newest = os.path.join(run_dir, "checkpoints", "4")
    files = [os.path.join(root, name) for root, _, names in os.walk(newest)
             for name in names]
    largest = max(files, key=os.path.getsize)
    with open(largest, "r+b") as f:
      f.truncate(os.path.getsize(largest) // 2)
    with self.assertLogs(level="WARNING") as logs:
      resumed, resumed_trained = helpers.run_tutorial(
          TINY, run_dir=run_dir, chunk_epochs=2)
    self.assertTrue(any("checkpoint 4 is damaged" in line
                        for line in logs.output))
    self.assertEqual(resumed["resumed_from_epoch"], 2)
    damaged = os.listdir(os.path.join(run_dir, "damaged"))
    self.assertLen(damaged, 1)
    self.assertStartsWith(damaged[0], "4-")
    for key in ("eval_accuracy_per_seed", "train_loss_per_epoch", "example"):
      self.assertEqual(resumed[key], clean[key])
    np.testing.assert_array_equal(resumed_trained.loss_E, clean_trained.loss_E)


class ProcessTest(absltest.TestCase):

  # Many small chunks: the run lasts long enough to be raced or interrupted.
  LONG = ["--epochs=3000", "--chunk_epochs=100", "--seeds=2", "--hidden=8",
          "--eval_sequences=10", f"--compilation_cache={helpers.SUITE_CACHE}"]

  def test_one_writer_per_workdir_and_stale_lock_ignored(self):
    workdir = make_tempdir(self)
    first = start_binary("echo_lag", *self.LONG, f"--workdir={workdir}")
    self.addCleanup(first.kill)
    lock = os.path.join(workdir, ".echo_jax.lock")
    self.assertTrue(wait_for(lambda: os.path.exists(lock), first))
    second = run_binary("echo_lag", *self.LONG, f"--workdir={workdir}",
                        timeout=60)
    line = one_line(self, second, 2, "error: workdir=")
    self.assertIn(f"in use by another run (pid {first.pid})", line)
    first.kill()  # SIGKILL: the lock file stays, the kernel drops the lock
    first.wait()
    self.assertTrue(os.path.exists(lock))
    rerun = run_binary("echo_lag", *self.LONG, f"--workdir={workdir}")
    self.assertEqual(rerun.returncode, 0, rerun.stderr[-2000:])
    self.assertFalse(os.path.exists(lock))

  def test_sigint_ends_with_one_line_and_resumes(self):
    workdir = make_tempdir(self)
    process = start_binary("echo_lag", *self.LONG, f"--workdir={workdir}")
    self.addCleanup(process.kill)
    checkpoints = os.path.join(workdir, "echo_lag", "checkpoints")
    self.assertTrue(wait_for(lambda: os.path.isdir(checkpoints) and any(
        n.isdigit() for n in os.listdir(checkpoints)), process))
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    self.assertEqual(process.returncode, 130, stderr[-2000:])
    self.assertNotIn("Traceback", stderr)
    last = stderr.strip().splitlines()[-1]
    self.assertRegex(last, r"^error: interrupted at epoch \d+/3000 of "
                     r"echo_lag; rerun the same command to resume$")
    self.assertFalse(os.path.exists(os.path.join(workdir, "echo_lag.json")))
    self.assertFalse(os.path.exists(os.path.join(workdir, ".echo_jax.lock")))


class SignalTest(absltest.TestCase):

  def test_killed_or_terminated_then_rerun_is_bit_identical(self):
    # SIGKILL wherever it lands; then the resumed run gets SIGTERM (what
    # SLURM sends at preemption, scancel or the time limit), which ends it
    # with one line; the rerun after both equals an uninterrupted run. Many
    # small chunks, so each signal lands mid-run.
    args = ["--epochs=200", "--chunk_epochs=5", "--seeds=2", "--hidden=8",
            "--eval_sequences=20",
            f"--compilation_cache={helpers.SUITE_CACHE}"]
    whole = os.path.join(make_tempdir(self), "whole")
    self.assertEqual(run_binary("echo_lag", *args,
                                f"--workdir={whole}").returncode, 0)
    with open(os.path.join(whole, "echo_lag.json")) as f:
      want = json.load(f)
    workdir = make_tempdir(self)
    run_dir = os.path.join(workdir, "echo_lag")
    steps_before = []
    for sig in (signal.SIGKILL, signal.SIGTERM):
      process = start_binary("echo_lag", *args, f"--workdir={workdir}")
      self.addCleanup(process.kill)
      # Orbax renames a finished save to its step number: once a new one is
      # there, this process has trained, and a rerun can resume from it.
      self.assertTrue(wait_for(lambda: os.path.isdir(os.path.join(
          run_dir, "checkpoints")) and checkpoint_steps(run_dir)[-1:] > (
              steps_before[-1:]), process))
      process.send_signal(sig)
      _, stderr = process.communicate(timeout=60)
      self.assertFalse(os.path.exists(os.path.join(workdir, "echo_lag.json")))
      steps_before = checkpoint_steps(run_dir)
    self.assertEqual(process.returncode, 143, stderr[-2000:])
    self.assertNotIn("Traceback", stderr)
    self.assertRegex(stderr.strip().splitlines()[-1],
                     r"^error: terminated \(SIGTERM\) at epoch \d+/200 "
                     r"of echo_lag; rerun the same command to resume$")
    rerun = run_binary("echo_lag", *args, f"--workdir={workdir}")
    self.assertEqual(rerun.returncode, 0, rerun.stderr[-2000:])
    with open(os.path.join(workdir, "echo_lag.json")) as f:
      got = json.load(f)
    self.assertGreater(got["resumed_from_epoch"], 0)
    for key in ("eval_accuracy_per_seed", "eval_accuracy_per_position",
                "train_loss_per_epoch", "final_train_loss_per_seed",
                "example"):
      self.assertEqual(got[key], want[key], key)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      self.assertLen(f.readlines(), 200)


class DiskFullTest(absltest.TestCase):
  """A full disk ends a run with one line (exit 74), the newest complete
  checkpoint intact; once there is room, the rerun resumes."""

  def test_on_a_small_file_system(self):
    mount = make_tempdir(self)
    # Room for one checkpoint of LSTM(64) and its Adam state (~0.5 MB), not
    # for the next beside it.
    tried = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k",
                            "tmpfs", mount], capture_output=True, check=False)
    if tried.returncode:
      self.skipTest("no tmpfs here (test_simulated_write_failure stands in)")
    self.addCleanup(subprocess.run, ["umount", "-l", mount], check=False)
    workdir = os.path.join(mount, "out")
    args = ["--epochs=20", "--chunk_epochs=2", "--seeds=2", "--hidden=64",
            "--eval_sequences=10",
            f"--compilation_cache={helpers.SUITE_CACHE}"]
    result = run_binary("echo_lag", *args, f"--workdir={workdir}")
    line = one_line(self, result, 74, "error: No space left on device")
    self.assertIn("rerun the same command to resume", line)
    self.assertLess(len(result.stderr.strip().splitlines()), 40)
    # Room again: the run folder moves to a bigger disk and resumes.
    bigger = os.path.join(make_tempdir(self), "out")
    shutil.copytree(workdir, bigger)
    rerun = run_binary("echo_lag", *args, f"--workdir={bigger}")
    self.assertEqual(rerun.returncode, 0, rerun.stderr[-2000:])
    whole = os.path.join(make_tempdir(self), "whole")
    self.assertEqual(run_binary("echo_lag", *args,
                                f"--workdir={whole}").returncode, 0)
    records = []
    for folder in (bigger, whole):
      with open(os.path.join(folder, "echo_lag.json")) as f:
        records.append(json.load(f))
    self.assertGreater(records[0]["resumed_from_epoch"], 0)
    for key in ("eval_accuracy_per_seed", "train_loss_per_epoch", "example"):
      self.assertEqual(records[0][key], records[1][key])

  def test_simulated_write_failure(self):
    # The same path as a full disk: an OSError out of a write.
    code = ("from experiments import common\n"
            "def body():\n"
            "  raise OSError(28, 'No space left on device', 'x/metrics.jsonl')\n"
            "common.run_main(body)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                            env=env(), capture_output=True, text=True,
                            timeout=120, check=False)
    self.assertEqual(result.stderr.strip().splitlines(), [
        "error: No space left on device: x/metrics.jsonl (before training); "
        "free space or fix the permissions, then rerun the same command to "
        "resume"])
    self.assertEqual(result.returncode, 74)


class DivergenceTest(absltest.TestCase):

  def test_a_diverging_run_is_named_and_marked(self):
    workdir = make_tempdir(self)
    result = run_binary("echo_lag", *FAST, "--learning_rate=1e10",
                        f"--workdir={workdir}")
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    lines = [l for l in result.stderr.splitlines() if "diverged" in l]
    self.assertLen(lines, 1)
    self.assertIn("lower --learning_rate", lines[0])
    with open(os.path.join(workdir, "echo_lag.json")) as f:
      diverged = json.load(f)["diverged_at_epoch_per_seed"]
    self.assertTrue(all(e is not None for e in diverged), diverged)


class SimultaneousStartTest(absltest.TestCase):

  def test_exactly_one_of_two_runs_started_at_once_proceeds(self):
    # Twenty races on new workdirs, by two processes that start each race
    # at the same instant: one claims it, the other gets the "in use"
    # line, never a traceback.
    code = ("import os, sys, time\n"
            "from experiments import common\n"
            "root = sys.argv[1]\n"
            "print('ready', flush=True)\n"
            "start = float(sys.stdin.readline())\n"
            "for i in range(20):\n"
            "  time.sleep(max(0.0, start + 0.4 * i - time.time()))\n"
            "  try:\n"
            "    common.claim(f'{root}/{i}/new/out')\n"
            "  except Exception as e:\n"
            "    print(i, type(e).__name__, e, flush=True)\n"
            "  else:\n"
            "    print(i, 'claimed', flush=True)\n"
            "    time.sleep(0.25)  # held while the other tries\n"
            "    common.release_all()\n"
            # A workdir moved away mid-run: released without a traceback.
            "gone = common.claim(f'{root}/gone-{time.time_ns()}')\n"
            "os.remove(f'{gone}/{common.LOCK_NAME}')\n"
            "common.release_all()\n")
    root = make_tempdir(self)
    racers = [subprocess.Popen(
        [sys.executable, "-c", code, root], cwd=REPO, env=env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(2)]
    self.addCleanup(lambda: [r.kill() for r in racers])
    for r in racers:  # both imported: the races start together
      self.assertEqual(r.stdout.readline(), "ready\n")
    for r in racers:
      r.stdin.write(f"{time.time() + 0.2}\n")
      r.stdin.flush()
    outs = [r.communicate(timeout=120) for r in racers]
    self.assertFalse(any(err.strip() for _, err in outs), outs)
    said = {}
    for out, _ in outs:
      for line in out.splitlines():
        i, what = line.split(" ", 1)
        said.setdefault(int(i), []).append(what)
    self.assertEqual(sorted(said), list(range(20)), outs)
    for i, both in said.items():
      both.sort()
      self.assertEqual(both[1], "claimed", (i, both))
      self.assertStartsWith(both[0], "ConfigError workdir=")
      self.assertIn("is in use by another run", both[0])


class ConfigJsonTest(absltest.TestCase):

  def test_a_partial_config_starts_from_the_binarys_preset(self):
    tmp = make_tempdir(self)
    partial = os.path.join(tmp, "partial.json")
    with open(partial, "w") as f:
      json.dump({"seeds": 2, "epochs": 3, "eval_sequences": 4}, f)
    result = run_binary("echo_current", f"--config_json={partial}",
                        f"--compilation_cache={helpers.SUITE_CACHE}",
                        f"--workdir={tmp}/out")
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    with open(os.path.join(tmp, "out", "echo_current.json")) as f:
      config = json.load(f)["config"]
    self.assertEqual(config, {**config_lib.preset("echo_current").to_dict(),
                              "seeds": 2, "epochs": 3, "eval_sequences": 4})

  def test_another_experiments_config_or_no_utf8_is_refused(self):
    tmp = make_tempdir(self)
    other = os.path.join(tmp, "other.json")
    with open(other, "w") as f:
      json.dump({"config": config_lib.preset("echo_lag").to_dict()}, f)
    binary = os.path.join(tmp, "binary.json")
    with open(binary, "wb") as f:
      f.write(b'{"seeds": 2, "\xff": 1}')
    for name, path, message in (
        ("echo_current", other, f"error: config_json={other!r} is a config "
         "of experiment 'echo_lag', not of this binary's 'echo_current'"),
        ("echo_lag", binary, f"error: config_json={binary!r} cannot be "
         "read"),
        ("reproduce", other, "error: --config_json is not used by "
         "reproduce")):
      result = run_binary(name, f"--config_json={path}",
                          f"--workdir={tmp}/out")
      helpers.assert_refused(self, result, message, f"{tmp}/out")


class OpenMpiTest(absltest.TestCase):

  def test_open_mpi_5_ranks_are_refused_with_the_flags_to_use(self):
    # Open MPI 5 (PRRTE) sets these but not Open MPI 4's
    # OMPI_MCA_orte_hnp_uri, the variable jax detects Open MPI by.
    workdir = os.path.join(make_tempdir(self), "out")
    result = run_binary("echo_lag", *FAST, f"--workdir={workdir}",
                        OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="1")
    helpers.assert_refused(
        self, result, "error: started by Open MPI with 2 processes, which "
        "jax", workdir)
    self.assertIn("--num_processes=2 --process_id=$OMPI_COMM_WORLD_RANK",
                  result.stderr)


class EvaluationMemoryTest(absltest.TestCase):

  def test_test_set_of_keys_scores_the_same_sequences(self):
    # 2500 sequences: three batches of 1000, the last overlapping.
    config = TINY.replace(eval_sequences=2500)
    key = jax.random.PRNGKey(7)
    params = models.init_params(config, jax.random.PRNGKey(0))
    evaluate_fn = jax.jit(evaluate.make_evaluate(config))
    test_set = data.TestSet(jax.random.split(key, config.eval_sequences),
                            config.length, config.n_unique)
    from_keys = evaluate_fn(params, test_set)
    from_array = evaluate_fn(params, data.sequences_of(test_set))
    for got, want in zip(from_keys, from_array):
      np.testing.assert_array_equal(got, want)


class EvaluationPiecesTest(parameterized.TestCase):
  """The runner scores a test set in pieces of PIECE_SEQUENCES, so its
  memory does not grow with --eval_sequences: the same bits as one piece,
  for each kind of evaluator (counts, sums, the sweep's counts)."""

  @parameterized.named_parameters(
      ("tutorial", lambda c: task_lib.tutorial_task(c)),
      ("samples", lambda c: lags.lags_task(c, (1, 2))),
      ("sweep", lambda c: sweep_cell.group_task(
          c.replace(experiment="sweep", length=9, n_unique=6, batch_size=3,
                    stateful=False), 3, c.hidden, (0, 2))))
  def test_pieces_give_the_same_bits_as_one(self, make_task):
    # 8 sequences in pieces of 3: 3, 3 and a shorter last piece of 2.
    task = make_task(TINY.replace(eval_sequences=8))
    whole = runner.run_task(task, max_devices=1)
    self.assertEqual(sorted(whole.compiled.evaluate), [8])
    with mock.patch.object(runner, "PIECE_SEQUENCES", 3):
      pieces = runner.run_task(task, max_devices=1)
    self.assertEqual(sorted(pieces.compiled.evaluate), [2, 3])
    chex.assert_trees_all_equal(pieces.evaluation, whole.evaluation)
    chex.assert_trees_all_equal(pieces.params, whole.params)


class SumOverSequencesTest(absltest.TestCase):

  def test_batches_count_every_sequence_once(self):
    # 1003 = 4 x 250 + 3: the last batch overlaps the one before it.
    sequences = np.random.RandomState(0).randint(0, 100, (1003, 5))
    fn = lambda seq: evaluate.Scores(
        ((seq % 7 == 0).astype(np.float32), (seq > 50).astype(np.int32).sum()),
        seq[:2])
    batched = jax.jit(lambda s: evaluate.sum_over_sequences(fn, s, 250))(
        sequences)
    whole = jax.tree.map(lambda v: v.sum(0), jax.vmap(fn)(sequences).sums)
    for got, want in zip(batched.sums, whole):
      np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(batched.first, sequences[0, :2])


class DefaultChunkTest(absltest.TestCase):

  def test_long_epochs_get_short_chunks(self):
    task = task_lib.tutorial_task(
        config_lib.preset("echo_lag").replace(length=100000))
    self.assertLessEqual(runner.default_chunk_epochs(task, 2), 10)
    self.assertEqual(runner.default_chunk_epochs(
        task_lib.tutorial_task(config_lib.preset("echo_lag")), 2), 1000)


if __name__ == "__main__":
  absltest.main()
