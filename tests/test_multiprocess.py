"""The multi-process path for real: 2 local processes on localhost, one host
device each, JAX's CPU collectives (gloo), against 1 process with 2 host
devices. Every run is a subprocess with a timeout and ports picked now."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from absl.testing import absltest
from absl.testing import parameterized

import helpers
from helpers import make_tempdir
from test_golden import read_outputs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240  # seconds per command: a bound, not an expectation
# Short enough to keep the tests bounded, long enough for a loaded machine.
DISTRIBUTED_TIMEOUT = "--distributed_timeout=20"
# Chunks of 40 epochs, each checkpointed: long enough to be killed between.
ECHO = ["--seeds=4", "--epochs=160", "--hidden=8", "--eval_sequences=10",
        "--chunk_epochs=40", "--compilation_cache="]
SWEEP = ["--length=9", "--n_unique=6", "--batch_size=3", "--epochs=20",
         "--seeds=2", "--eval_sequences=10", "--hidden_sizes=4",
         "--lags=0,1,2", "--contexts=3", "--chunk_epochs=10",
         "--compilation_cache="]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def env(devices: int):
  return helpers.binary_env(devices, JAX_PLATFORMS="cpu")


def one_process(binary, args, workdir):
  """The command as 1 process with 2 host devices."""
  return subprocess.run(
      [sys.executable, "-m", f"experiments.{binary}", *args,
       f"--workdir={workdir}"], cwd=REPO, env=env(2), capture_output=True,
      text=True, timeout=TIMEOUT, check=False)


def start_processes(binary, args, workdir, count=2, ids=None,
                    extra=lambda i: [], cwd=lambda i: REPO):
  """The command as `count` processes with 1 host device each (or only
  those of `ids`), process i started in `cwd(i)`; a --distributed_timeout
  in `args` or `extra` replaces the default."""
  port = free_port()
  return [subprocess.Popen(
      [sys.executable, "-m", f"experiments.{binary}", DISTRIBUTED_TIMEOUT,
       *args, f"--workdir={workdir}",
       f"--coordinator_address=localhost:{port}", f"--num_processes={count}",
       f"--process_id={i}", *extra(i)], cwd=cwd(i), env=env(1), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
          for i in (range(count) if ids is None else ids)]


def finish(test, processes, timeout=TIMEOUT):
  """(returncode, stderr) of each process, killing all of them if one
  overruns the timeout."""
  test.addCleanup(lambda: [p.kill() for p in processes])
  deadline = time.time() + timeout
  ended = []
  for p in processes:
    try:
      _, stderr = p.communicate(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
      for q in processes:
        q.kill()
      test.fail(f"process {p.args[-2]} still running after {timeout} s")
    ended.append((p.returncode, stderr))
  return ended


def run_processes(test, binary, args, workdir, extra=lambda i: []):
  for code, stderr in finish(test, start_processes(binary, args, workdir,
                                                   extra=extra)):
    test.assertEqual(code, 0, stderr[-3000:])


def results(workdir, *dropped):
  """The workdir's files (`test_golden.read_outputs`: timings and versions
  out), without `dropped` keys of the result record."""
  outputs = read_outputs(workdir)
  for value in outputs.values():
    if isinstance(value, dict):
      for key in dropped:
        value.pop(key, None)
  return outputs


def last_error_line(test, code, stderr, status):
  test.assertEqual(code, status, stderr[-3000:])
  test.assertNotIn("Traceback", stderr)
  return stderr.strip().splitlines()[-1]


def wait_for_checkpoint(run_dir, processes, seconds=TIMEOUT):
  folder = os.path.join(run_dir, "checkpoints")
  deadline = time.time() + seconds
  while time.time() < deadline and all(p.poll() is None for p in processes):
    if os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder)):
      return True
    time.sleep(0.02)
  return False


class SameBitsTest(absltest.TestCase):

  def test_echo_lag_two_processes_equal_one_process_two_devices(self):
    # One reference and one 2-process run, killed on both processes after
    # a checkpoint and resumed: equal to the reference, it shows both that
    # 2 processes give the 1-process bits and that resume keeps them (an
    # uninterrupted 2-process run was equal too; dropped for the suite's
    # time: each launch costs seconds of start-up and compilation).
    tmp = make_tempdir(self)
    one = one_process("echo_lag", ECHO, os.path.join(tmp, "one"))
    self.assertEqual(one.returncode, 0, one.stderr[-3000:])
    want = results(os.path.join(tmp, "one"), "resumed_from_epoch")
    two = ECHO
    with self.subTest("both killed after a checkpoint, then resumed"):
      workdir = os.path.join(tmp, "killed")
      processes = start_processes("echo_lag", two, workdir)
      self.addCleanup(lambda: [p.kill() for p in processes])
      self.assertTrue(wait_for_checkpoint(os.path.join(workdir, "echo_lag"),
                                          processes))
      for p in processes:
        p.kill()
        p.wait()
      self.assertFalse(os.path.exists(os.path.join(workdir, "echo_lag.json")))
      # Resumed with a persistent cache on process 0 only: each process
      # compiles (or loads) its own programs, and the bits are the same.
      run_processes(self, "echo_lag", two, workdir, extra=lambda i: (
          [f"--compilation_cache={tmp}/cache"] if i == 0 else []))
      with open(os.path.join(workdir, "echo_lag.json")) as f:
        record = json.load(f)
      self.assertGreater(record["resumed_from_epoch"], 0)
      self.assertLen(record["eval_accuracy_per_seed"], 4)
      self.assertLen(record["versions"]["devices"], 2)
      self.assertEqual(results(workdir, "resumed_from_epoch"), want)

  def test_sweep_two_processes_equal_one_process_cell_for_cell(self):
    tmp = make_tempdir(self)
    one = one_process("sweep", SWEEP, os.path.join(tmp, "one"))
    self.assertEqual(one.returncode, 0, one.stderr[-3000:])
    run_processes(self, "sweep", SWEEP, os.path.join(tmp, "two"))
    want, got = (results(os.path.join(tmp, name), "wall_seconds_after_imports")
                 for name in ("one", "two"))
    cells = sorted(k for k in want if k.startswith("cells/"))
    # Lags 0-2 in windows of 3: one group of 6 models, 3 a process.
    self.assertLen(cells, 3)
    self.assertEqual(got, want)


class LostProcessTest(parameterized.TestCase):

  # A survivor waiting in a checkpoint's barrier ends at the timeout.
  # Bits do not matter here: the suite's cache spares three compilations.
  LONG = ["--seeds=2", "--epochs=20000", "--hidden=4", "--eval_sequences=4",
          "--chunk_epochs=20", f"--compilation_cache={helpers.SUITE_CACHE}",
          "--distributed_timeout=10"]

  def test_survivor_exits_with_one_line_and_no_result_files(self):
    workdir = os.path.join(make_tempdir(self), "two")
    processes = start_processes("echo_lag", self.LONG, workdir)
    self.addCleanup(lambda: [p.kill() for p in processes])
    run_dir = os.path.join(workdir, "echo_lag")
    self.assertTrue(wait_for_checkpoint(run_dir, processes))
    processes[1].send_signal(signal.SIGKILL)
    killed = time.time()
    (code, stderr), _ = finish(self, processes, timeout=60)
    self.assertLess(time.time() - killed, 40)
    line = last_error_line(self, code, stderr, 1)
    # Seen at the next gather (the connection closes), or by the bounded
    # wait if the survivor was waiting in a checkpoint's barrier.
    self.assertRegex(line, r"^error: .*(another process died or left the run|"
                     r"a process died or hangs).*rerun the same command on "
                     r"every process to resume$")
    self.assertFalse(os.path.exists(os.path.join(workdir, "echo_lag.json")))
    self.assertFalse(any(n.startswith(".tmp-") for n in os.listdir(run_dir)))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
      epochs = [json.loads(line)["epoch"] for line in f]  # no torn line
    self.assertEqual(epochs, list(range(1, len(epochs) + 1)))

  def test_coordinator_killed_ends_the_other_process(self):
    # Process 0 hosts jax's coordination service: when it dies, jax itself
    # ends the others at once (its own fatal report, not our line).
    workdir = os.path.join(make_tempdir(self), "two")
    processes = start_processes("echo_lag", self.LONG, workdir)
    self.addCleanup(lambda: [p.kill() for p in processes])
    self.assertTrue(wait_for_checkpoint(os.path.join(workdir, "echo_lag"),
                                        processes))
    processes[0].send_signal(signal.SIGKILL)
    killed = time.time()
    _, (code, stderr) = finish(self, processes, timeout=60)
    self.assertLess(time.time() - killed, 40)
    self.assertNotEqual(code, 0)
    self.assertFalse(os.path.exists(os.path.join(workdir, "echo_lag.json")))


class BadLaunchTest(parameterized.TestCase):

  @parameterized.parameters(
      (["--num_processes=2", "--process_id=2"],
       "error: process_id=2 must be in [0, num_processes=2)"),
      (["--num_processes=2", "--process_id=-1"],
       "error: process_id=-1 must be in [0, num_processes=2)"),
      (["--num_processes=0", "--process_id=0"],
       "error: num_processes=0 must be >= 1"),
      (["--num_processes=2"],
       "error: --coordinator_address, --num_processes and --process_id go "
       "together: also give --process_id"),
  )
  def test_inconsistent_flags_refused_in_one_line(self, flags, message):
    workdir = os.path.join(make_tempdir(self), "out")
    result = subprocess.run(
        [sys.executable, "-m", "experiments.echo_lag", *ECHO,
         f"--workdir={workdir}", f"--coordinator_address=localhost:{free_port()}",
         *flags], cwd=REPO, env=env(1), capture_output=True, text=True,
        timeout=60, check=False)
    self.assertEqual(result.returncode, 2, result.stderr[-3000:])
    self.assertEqual(result.stderr.strip().splitlines(), [message])
    self.assertFalse(os.path.exists(workdir))

  def test_coordinator_that_never_answers(self):
    workdir = os.path.join(make_tempdir(self), "out")
    start = time.time()
    (code, stderr), = finish(self, start_processes(
        "echo_lag", ECHO, workdir, ids=[1],
        extra=lambda i: ["--distributed_timeout=3"]), timeout=60)
    line = last_error_line(self, code, stderr, 2)
    self.assertLess(time.time() - start, 40)
    self.assertRegex(line, r"^error: process 1 of 2 could not join the run at "
                     r"localhost:\d+ within --distributed_timeout=3 s")
    self.assertFalse(os.path.exists(workdir))

  def assert_both_refused(self, workdir, line, **launch):
    """Both processes of echo_lag (`launch`: start_processes' options) end
    with exit 2 and `line`, writing nothing."""
    ended = finish(self, start_processes("echo_lag", ECHO, workdir, **launch),
                   timeout=120)
    for code, stderr in ended:
      self.assertEqual(last_error_line(self, code, stderr, 2), line)
    self.assertFalse(os.path.exists(workdir))

  def test_processes_with_other_flags(self):
    self.assert_both_refused(
        os.path.join(make_tempdir(self), "out"),
        "error: process 1 differs from process 0 in the flags given: start "
        "every process with the same command (only --process_id may differ)",
        extra=lambda i: [f"--hidden={8 + i}"])


if __name__ == "__main__":
  absltest.main()
