"""The flags every binary shares for a multi-process run, and joining it.

A run of N cooperating processes (one per host or accelerator, one SPMD
program: docs/scaling.md) is started by a launcher (SLURM, Open MPI, a Cloud
TPU pod: detected by jax) or with --coordinator_address, --num_processes and
--process_id; `start` joins it before anything else touches JAX.
"""

import os
import sys

from absl import flags

from echo_jax.core import config as config_lib

# A multi-process run (docs/scaling.md). Unset, each falls back to
# $ECHO_JAX_<NAME in capitals>, so one command line can serve every process.
COORDINATOR_ADDRESS = flags.DEFINE_string(
    "coordinator_address", None,
    "HOST:PORT of process 0, where the processes of a multi-process run meet "
    "(jax.distributed). Give it with --num_processes and --process_id; "
    "default: detected from SLURM, Open MPI or a Cloud TPU pod, else one "
    "process.")
NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes of a multi-process run (>= 1).")
PROCESS_ID = flags.DEFINE_integer(
    "process_id", None,
    "This process's index in [0, --num_processes); process 0 writes the "
    "results.")
DISTRIBUTED_TIMEOUT = flags.DEFINE_integer(
    "distributed_timeout", 60,
    "Seconds a process of a multi-process run waits for the others: to "
    "start, and at each gather or checkpoint; then it exits with one line.")
# Flags that may differ between the processes of one run.
PER_PROCESS_FLAGS = ("process_id", "compilation_cache")


def _launch_value(flag):
  """A multi-process flag's value, else $ECHO_JAX_<NAME>, else None."""
  if flag.value is not None:
    return flag.value
  text = os.environ.get(f"ECHO_JAX_{flag.name.upper()}")
  if text is None or text == "":
    return None
  if flag.name != "coordinator_address":
    try:
      return int(text)
    except ValueError:
      raise config_lib.ConfigError(
          f"ECHO_JAX_{flag.name.upper()}={text!r} must be an integer"
      ) from None
  return text


def start(workdir_given: bool) -> None:
  """Joins a multi-process run if one was asked for or launched (every
  process then checks that all were given the same flags); its processes
  other than 0 write no logs and print nothing."""
  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging
  from echo_jax.runtime import distributed
  if not distributed.initialize(
      _launch_value(COORDINATOR_ADDRESS), _launch_value(NUM_PROCESSES),
      _launch_value(PROCESS_ID), DISTRIBUTED_TIMEOUT.value):
    return
  if not distributed.is_writer():
    absl_logging.set_verbosity(absl_logging.ERROR)
    sys.stdout = open(os.devnull, "w")  # pylint: disable=consider-using-with
  given = sorted(f"{name}={flags.FLAGS[name].value!r}" for name in flags.FLAGS
                 if flags.FLAGS[name].present and name not in PER_PROCESS_FLAGS)
  distributed.check_same_everywhere(
      "\n".join([os.path.basename(sys.argv[0])] + given), "the flags given",
      "start every process with the same command (only --process_id may "
      "differ)")
  # Programs are shared by key (distributed.compile_jitted) and results
  # compared bit for bit: other code on a host is refused, not waited on.
  distributed.check_same_everywhere(
      distributed.code_digest(), "echo_jax's source or jax's version",
      "install the same echo_jax and jax on every host")
  if not workdir_given:
    # The default is a fresh name per process (it carries the pid).
    raise config_lib.ConfigError(
        "a multi-process run needs --workdir: one folder every process sees "
        "(a shared file system)")
