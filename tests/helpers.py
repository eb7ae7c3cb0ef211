"""Shared by the test modules (absltest's create_tempdir needs parsed absl
flags, which pytest does not provide)."""

import os
import shutil
import tempfile

# One persistent compilation cache for the whole test session (conftest.py
# creates it and removes it at the end; its xdist workers inherit the path):
# subprocess tests that run a binary with the same small config again (the
# fault, rerun and resume tests) then skip recompiling it. A cached program
# is the same executable, so results do not change; tests that compare bits
# across processes or pin goldens still compile from scratch.
SUITE_CACHE = os.environ.get("ECHO_JAX_TEST_CACHE") or tempfile.mkdtemp(
    prefix="echo_jax_test_cache_")


def binary_env(devices: int, **extra) -> dict:
  """The environment of a binary a test runs: `devices` host devices
  (ECHO_JAX_HOST_DEVICES) and the suite's other XLA flags (conftest.py)."""
  flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
           if not flag.startswith("--xla_force_host_platform_device_count")]
  return dict(os.environ, ECHO_JAX_HOST_DEVICES=str(devices),
              XLA_FLAGS=" ".join(flags), **extra)


def make_tempdir(test) -> str:
  """A fresh directory, removed when `test` (a unittest.TestCase) ends."""
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def assert_refused(test, result, message: str, workdir: str) -> None:
  """Bad input's contract: exit 2, exactly one line on stderr starting with
  `message`, and `workdir` not created."""
  test.assertEqual(result.returncode, 2, result.stderr[-2000:])
  test.assertLen(result.stderr.strip().splitlines(), 1, result.stderr)
  test.assertStartsWith(result.stderr.strip(), message)
  test.assertFalse(os.path.exists(workdir))


class Stop(Exception):
  """Raised by `stop_after`'s callback: a run killed between chunks."""


def stop_after(chunks: int):
  """An `on_chunk` callback (`runner.run`) that raises Stop after `chunks`
  chunks, each checkpointed first: a kill between two chunks."""
  done = []

  def on_chunk(*_):
    done.append(1)
    if len(done) >= chunks:
      raise Stop(f"stopped after {chunks} chunks")

  return on_chunk


def run_tutorial(config, **kwargs):
  """(record, trained) of a tutorial experiment through the runner; kwargs
  as `runner.run_task`."""
  # pylint: disable=g-import-not-at-top
  from echo_jax.report import records
  from echo_jax.runtime import runner
  from echo_jax.tasks import task
  output = runner.run_task(task.tutorial_task(config), **kwargs)
  return records.tutorial_record(output), output.trained()


def run_framed(task, **kwargs):
  """(rows, trained with (variant, seed) axes) of a framed task."""
  # pylint: disable=g-import-not-at-top
  from echo_jax.report import rows
  from echo_jax.runtime import runner
  output = runner.run_task(task, **kwargs)
  return rows.variant_rows(output), output.trained(by_variant=True)
