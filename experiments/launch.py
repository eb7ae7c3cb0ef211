"""Joining a multi-process run (docs/scaling.md) on the settings given:
--coordinator_address, --num_processes and --process_id, or their
$ECHO_JAX_<NAME> variables (`common.start_processes` finds a launcher's on
its own); then what every process of such a run checks before it starts.
A one-process run never imports this module."""

import os
import sys

from absl import flags
from absl import logging

from echo_jax.core import config as config_lib
from echo_jax.runtime import parallel
from experiments import common

# Flags that may differ between the processes of one run.
PER_PROCESS_FLAGS = ("process_id", "compilation_cache")


def setting(name: str):
  """A launch flag's value, else $ECHO_JAX_<NAME>, else None."""
  value, text = flags.FLAGS[name].value, os.environ.get(
      f"ECHO_JAX_{name.upper()}") or None
  if value is not None or text is None:
    return value
  if name != "coordinator_address" and not text.lstrip("-").isdigit():
    raise config_lib.ConfigError(
        f"ECHO_JAX_{name.upper()}={text!r} must be an integer")
  return text if name == "coordinator_address" else int(text)


def check_launch(address: str | None, count: int | None,
                 index: int | None) -> None:
  """ConfigError (one line naming the flag and its allowed range) unless
  the three settings are all given and consistent."""
  given = dict(zip(common.LAUNCH_FLAGS, (address, count, index)))
  missing = [name for name, v in given.items() if v is None]
  if missing:
    raise config_lib.ConfigError(
        "--coordinator_address, --num_processes and --process_id go "
        f"together: also give --{', --'.join(missing)}")
  if count < 1:
    raise config_lib.ConfigError(f"num_processes={count} must be >= 1")
  if not 0 <= index < count:
    raise config_lib.ConfigError(
        f"process_id={index} must be in [0, num_processes={count})")
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise config_lib.ConfigError(
        f"coordinator_address={address!r} must be HOST:PORT")


def join(timeout: int) -> None:
  """Joins the run the settings name, or ends in one line (exit 2)."""
  address, count, index = map(setting, common.LAUNCH_FLAGS)
  check_launch(address, count, index)
  common.initialize(timeout, f"process {index} of {count}", address,
                    address, count, index)


def check_processes() -> None:
  """In every process of a joined run: orbax synchronised through jax,
  all but process 0 quiet, the same flags everywhere, a shared --workdir."""
  # Orbax's barriers through jax's coordination service, not collectives:
  # its asynchronous saves wait at barriers in a worker thread, and a
  # collective there can interleave with the main thread's gathers in
  # another order on each process (gloo then aborts on the mismatch).
  import orbax.checkpoint  # pylint: disable=g-import-not-at-top,unused-import
  flags.FLAGS["experimental_orbax_use_distributed_barrier"].value = True
  if not parallel.is_writer():
    logging.set_verbosity(logging.ERROR)
    sys.stdout = open(os.devnull, "w")  # pylint: disable=consider-using-with
  given = sorted(f"{name}={flags.FLAGS[name].value!r}" for name in flags.FLAGS
                 if flags.FLAGS[name].present and name not in PER_PROCESS_FLAGS)
  parallel.check_same_everywhere(
      "\n".join([os.path.basename(sys.argv[0])] + given), "the flags given",
      "start every process with the same command (only --process_id may "
      "differ)")
  if not flags.FLAGS["workdir"].value:
    # The default is a fresh name per process (it carries the pid).
    raise config_lib.ConfigError(
        "a multi-process run needs --workdir: one folder every process sees "
        "(a shared file system)")
