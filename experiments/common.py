"""What every binary shares: process set-up, its flags, flags -> config,
joining a multi-process run, and running with one-line errors.

Importing this module first exposes one XLA host device per CPU core (before
JAX initialises: tiny LSTM matmuls keep one core busy each, so the seeds are
split over one device per core); ECHO_JAX_HOST_DEVICES=N chooses, 0 leaves
XLA_FLAGS alone. It also keeps OpenBLAS to one thread unless
OPENBLAS_NUM_THREADS is set: jaxlib's CPU LAPACK (the orthogonal
initialiser's QR) runs on SciPy's OpenBLAS, whose idle threads otherwise
busy-wait on a core XLA needs (13% of all samples while echo_lag trained).

Every binary runs as N cooperating processes (one per host: docs/scaling.md)
when a launcher that jax detects starts it (SLURM, Open MPI, a Cloud TPU
pod), or with --coordinator_address, --num_processes and --process_id.
"""

# pylint: disable=g-import-not-at-top,wrong-import-position
import os
import sys

_DEVICES_FLAG = "--xla_force_host_platform_device_count"
if (_DEVICES_FLAG not in os.environ.get("XLA_FLAGS", "")
    and "jax" not in sys.modules):
  _devices = os.environ.get("ECHO_JAX_HOST_DEVICES", "").strip()
  _devices = int(_devices) if _devices else len(os.sched_getaffinity(0))
  if _devices > 0:  # only the CPU platform reads it
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" {_DEVICES_FLAG}={_devices}").strip()
if not {"numpy", "scipy", "jax"} & set(sys.modules):
  os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import logging
import traceback
from typing import Any, Callable, Sequence

from absl import app
from absl import flags

from echo_jax.core import config as config_lib

# Flags left unset (None) keep the experiment's preset value.
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Folder for results (default: a fresh runs/<name>-<time>).")
_CONFIG_JSON = flags.DEFINE_string(
    "config_json", None,
    "A saved config (the 'config' of a result JSON, or a plain config dict) "
    "to rerun; other flags given override it.")
# One flag per documented config field, typed as the field.
_DEFINE = {int: flags.DEFINE_integer, str: flags.DEFINE_string,
           bool: flags.DEFINE_boolean, float: flags.DEFINE_float}
for _name, _help in config_lib.FIELD_HELP.items():
  _DEFINE[config_lib.field_type(_name)](_name, None, _help)
CONFIG_FLAGS = tuple(config_lib.FIELD_HELP)
_CHUNK_EPOCHS = flags.DEFINE_integer(
    "chunk_epochs", None,
    "Epochs per compiled chunk; the run is checkpointed (orbax) after each "
    "and a rerun with the same --workdir resumes. Default: 1000, fewer when "
    "a chunk would exceed ~200,000 model-updates per device.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None,
    "Folder for JAX's persistent compilation cache, so reruns skip XLA "
    "compilation; '' disables it. Default: $ECHO_JAX_COMPILATION_CACHE, else "
    "<user cache dir>/echo_jax/jax_compilation_cache.")
_TENSORBOARD = flags.DEFINE_boolean(
    "tensorboard", False,
    "Write TensorBoard summaries of the training curves (needs the optional "
    "extra: pip install -r requirements-tensorboard.txt).")
_DEBUG_NANS = flags.DEFINE_boolean(
    "debug_nans", False, "Turn on jax_debug_nans (slow; finds the NaN op).")
# A multi-process run (docs/scaling.md). Unset, each falls back to
# $ECHO_JAX_<NAME in capitals>, so one command line can serve every process.
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    "coordinator_address", None,
    "HOST:PORT of process 0, where the processes of a multi-process run meet "
    "(jax.distributed). Give it with --num_processes and --process_id; "
    "default: detected from SLURM, Open MPI or a Cloud TPU pod, else one "
    "process.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes of a multi-process run (>= 1).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None,
    "This process's index in [0, --num_processes); process 0 writes the "
    "results.")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_integer(
    "distributed_timeout", 60,
    "Seconds a process of a multi-process run waits for the others: to "
    "start, and at each gather or checkpoint; then it exits with one line.")
# Flags that may differ between the processes of one run.
PER_PROCESS_FLAGS = ("process_id", "compilation_cache")


def fail(message: str, status: int = 2) -> None:
  """One line on stderr and a non-zero exit: 2 for bad input (how every
  invalid flag or config ends), 1 for a run that failed."""
  from echo_jax.runtime import files
  from echo_jax.runtime import parallel
  if parallel.is_multiprocess():
    # Not sys.exit: jax's shutdown would wait for every peer, and a peer
    # still training waits for this one at its next gather.
    files.release_all()
    parallel.exit_now(message, status)
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's parser, but a bad flag is one line and exit 2, not a usage dump."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0])
  if len(rest) > 1:
    fail(f"unexpected arguments: {' '.join(rest[1:])}")
  return rest


def int_list(name: str, values: Sequence[str], minimum: int | None = None
             ) -> tuple[int, ...]:
  """A list flag's integers; one-line ConfigError naming the flag if any is
  not an integer, one is given twice, the list is empty, or (with
  `minimum`) one is below it."""
  try:
    parsed = tuple(int(v) for v in values)
  except ValueError:
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be integers") from None
  if minimum is not None and (not parsed or min(parsed) < minimum):
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be integers >= {minimum}")
  if not parsed:
    raise config_lib.ConfigError(f"{name} is empty: give at least one value")
  for i, value in enumerate(parsed):
    if value in parsed[:i]:
      # Each value is one row of the results: a copy would train twice.
      raise config_lib.ConfigError(f"{name}: {value} is given twice")
  return parsed


def name_list(name: str, values: Sequence[str], allowed: Sequence[str],
              allow_empty: bool = False) -> list[str]:
  """A list flag's names, each one of `allowed`; one-line ConfigError
  naming the flag and the allowed names otherwise (or, unless
  `allow_empty`, if it names none)."""
  unknown = [value for value in values if value not in allowed]
  if unknown or not (values or allow_empty):
    raise config_lib.ConfigError(
        f"{name}={','.join(values)}: "
        + (f"{unknown[0]!r} is not one of " if unknown else "name any of ")
        + ", ".join(allowed))
  return list(values)


def flag_overrides() -> dict[str, Any]:
  return {name: flags.FLAGS[name].value for name in CONFIG_FLAGS
          if flags.FLAGS[name].value is not None}


def load_config_json(path: str) -> config_lib.EchoConfig:
  return config_lib.load_json(path, "config_json")


def resolve_config(experiment: str) -> config_lib.EchoConfig:
  """Preset (or --config_json), then any flags given; validated."""
  if _CONFIG_JSON.value:
    base = load_config_json(_CONFIG_JSON.value)
  else:
    base = config_lib.preset(experiment)
  return config_lib.validate(base.replace(**flag_overrides()))


def resolve_workdir(name: str) -> str:
  """--workdir (default: a fresh runs/<name>-<time>-<pid>), checked
  writable and locked for this process (`files.claim`: a run that fails
  before writing leaves nothing behind)."""
  from echo_jax.runtime import files
  from echo_jax.runtime import parallel
  if not parallel.is_writer():
    return _WORKDIR.value  # process 0 checks and locks it; we only read
  return files.claim(_WORKDIR.value or files.fresh_name(name))


def _launch_value(flag):
  """A multi-process flag's value, else $ECHO_JAX_<NAME>, else None."""
  if flag.value is not None:
    return flag.value
  text = os.environ.get(f"ECHO_JAX_{flag.name.upper()}") or None
  if text is not None and flag.name != "coordinator_address":
    try:
      return int(text)
    except ValueError:
      raise config_lib.ConfigError(
          f"ECHO_JAX_{flag.name.upper()}={text!r} must be an integer"
      ) from None
  return text


def check_launch(address: str | None, count: int | None,
                 index: int | None) -> bool:
  """Whether the flags ask for a multi-process run; ConfigError (one line
  naming the flag and its allowed range) if they are inconsistent."""
  given = {"coordinator_address": address, "num_processes": count,
           "process_id": index}
  if all(v is None for v in given.values()):
    return False
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
  return True


def start_processes() -> None:
  """Joins a multi-process run if one was asked for or a launcher started
  this process (jax.distributed.initialize detects it); every process then
  checks that all were given the same flags. Processes other than 0 write
  no logs and print nothing."""
  import jax
  from echo_jax.runtime import parallel
  address, count, index = (_launch_value(f) for f in (
      _COORDINATOR_ADDRESS, _NUM_PROCESSES, _PROCESS_ID))
  explicit = check_launch(address, count, index)
  timeout = _DISTRIBUTED_TIMEOUT.value
  if timeout < 1:
    raise config_lib.ConfigError(
        f"distributed_timeout={timeout} must be >= 1")
  parallel.TIMEOUT["seconds"] = timeout
  # Gloo is jax's CPU default; set so a CPU run never depends on that.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  who = f"process {index} of {count}" if explicit else "this process"
  message = (f"{who} could not join the run at "
             f"{address or 'the launcher coordinator'} within "
             f"--distributed_timeout={timeout} s: start every process with "
             "the same --coordinator_address and --num_processes")
  # jax's own deadline (a little later) would end the process with the
  # runtime's abort report, not a line: ours fires first.
  with parallel.watchdog(timeout, message, status=2):
    try:
      jax.distributed.initialize(
          address, count, index, initialization_timeout=timeout + 5,
          heartbeat_timeout_seconds=timeout + 30,
          shutdown_timeout_seconds=timeout)
    except ValueError as e:
      if explicit or "coordinator_address should be defined" not in str(e):
        raise config_lib.ConfigError(f"{message} ({e})") from None
      return  # no launcher detected: one process
    except Exception as e:  # pylint: disable=broad-except
      # The runtime raises several types; the first line says why.
      reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
      raise config_lib.ConfigError(f"{message} ({reason})") from None
  if not parallel.is_multiprocess():
    return
  # Orbax's barriers through jax's coordination service, not collectives:
  # its asynchronous saves wait at barriers in a worker thread, and a
  # collective there can interleave with the main thread's gathers in
  # another order on each process (gloo then aborts on the mismatch).
  import orbax.checkpoint  # pylint: disable=unused-import  (its flag)
  flags.FLAGS["experimental_orbax_use_distributed_barrier"].value = True
  if not parallel.is_writer():
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)
    sys.stdout = open(os.devnull, "w")  # pylint: disable=consider-using-with
  given = sorted(f"{name}={flags.FLAGS[name].value!r}" for name in flags.FLAGS
                 if flags.FLAGS[name].present and name not in PER_PROCESS_FLAGS)
  parallel.check_same_everywhere(
      "\n".join([os.path.basename(sys.argv[0])] + given), "the flags given",
      "start every process with the same command (only --process_id may "
      "differ)")
  if not _WORKDIR.value:
    # The default is a fresh name per process (it carries the pid).
    raise config_lib.ConfigError(
        "a multi-process run needs --workdir: one folder every process sees "
        "(a shared file system)")


def _enable_compilation_cache() -> None:
  """JAX's persistent compilation cache, for every program (a cold echo
  run is mostly compilation)."""
  import jax
  path = _COMPILATION_CACHE.value
  if path is None:
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    path = os.environ.get(
        "ECHO_JAX_COMPILATION_CACHE",
        os.path.join(cache_home, "echo_jax", "jax_compilation_cache"))
  if path:
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run_main(body: Callable[[], None]) -> None:
  """app.run with one-line errors for bad flags and bad config values."""

  def main(argv):
    del argv
    # JAX reports each absent accelerator plugin at INFO, orbax every step
    # of every save: keep INFO for our progress lines.
    logging.getLogger("jax").setLevel(logging.WARNING)
    logging.getLogger("absl").addFilter(
        lambda record: "/orbax/" not in record.pathname)
    from echo_jax.runtime import files
    from echo_jax.runtime import parallel
    from echo_jax.runtime import runner
    try:
      if _CHUNK_EPOCHS.value is not None and _CHUNK_EPOCHS.value < 1:
        raise config_lib.ConfigError(
            f"chunk_epochs={_CHUNK_EPOCHS.value} must be >= 1")
      parallel.models_per_block()  # a bad $ECHO_JAX_MODELS_PER_BLOCK: here
      start_processes()
      _enable_compilation_cache()
      if _DEBUG_NANS.value:
        import jax
        jax.config.update("jax_debug_nans", True)
      body()
    except config_lib.ConfigError as e:
      fail(str(e))
    except (FloatingPointError, parallel.PeerLostError) as e:
      fail(str(e).splitlines()[0], status=1)
    except Exception as e:  # pylint: disable=broad-except
      if not parallel.is_multiprocess():
        raise
      # A bug: its traceback, then out without jax's shutdown, which would
      # wait for peers that may be waiting for this process.
      traceback.print_exc()
      fail(f"{type(e).__name__} (traceback above)", status=1)
    except KeyboardInterrupt:
      print(f"error: {runner.interrupted_message()}", file=sys.stderr)
      sys.stderr.flush()
      sys.stdout.flush()
      files.release_all()
      # Not sys.exit: a save the interrupt cut short can leave orbax's
      # worker thread waiting, and the interpreter would wait for it. An
      # unfinished save is never read (resume takes the newest complete
      # checkpoint), so ending here loses nothing.
      os._exit(130)  # pylint: disable=protected-access

  app.run(main, flags_parser=parse_flags)


def run_options():
  """The settings every run takes from the shared flags."""
  from echo_jax.studies import runs
  return runs.RunOptions(chunk_epochs=_CHUNK_EPOCHS.value,
                         tensorboard=_TENSORBOARD.value)


def run_single(name: str) -> None:
  """The body of a one-experiment binary: resolve, run, write, report."""
  from echo_jax.studies import tutorial
  config = resolve_config(name)
  tutorial.run_single(config, resolve_workdir(config.experiment),
                      run_options())
