"""What every binary shares: process set-up, flags -> config, the workdir,
joining a multi-process run (docs/scaling.md), one-line errors.

Imported first, it gives XLA one host device per CPU core before JAX starts
(tiny LSTM matmuls keep a core busy each; ECHO_JAX_HOST_DEVICES=N chooses, 0
leaves XLA_FLAGS alone), and OpenBLAS one thread unless OPENBLAS_NUM_THREADS
is set (the orthogonal initialiser's QR runs on it, and its idle threads
busy-wait on a core XLA needs: 13% of all samples while echo_lag trained).
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

import atexit
import contextlib
import datetime
import fcntl
import logging
import re
import signal
import traceback
from typing import Any, Callable, Collection, Sequence

from absl import app
from absl import flags

from echo_jax.core import config as config_lib

# Flags left unset (None) keep the experiment's preset value.
_WORKDIR = flags.DEFINE_string(
    "workdir", None,
    "Folder for results (default: a fresh runs/<name>-<time>).")
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
# A multi-process run (docs/scaling.md; `launch`). Unset, each falls back to
# $ECHO_JAX_<NAME in capitals>, so one command line can serve every process.
flags.DEFINE_string(
    "coordinator_address", None,
    "HOST:PORT of process 0, where the processes of a multi-process run meet "
    "(jax.distributed). Give it with --num_processes and --process_id; "
    "default: detected from SLURM, Open MPI or a Cloud TPU pod, else one "
    "process.")
flags.DEFINE_integer(
    "num_processes", None, "Processes of a multi-process run (>= 1).")
flags.DEFINE_integer(
    "process_id", None,
    "This process's index in [0, --num_processes); process 0 writes the "
    "results.")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_integer(
    "distributed_timeout", 60,
    "Seconds a process of a multi-process run waits for the others: to "
    "start, and at each gather or checkpoint; then it exits with one line.")
LAUNCH_FLAGS = ("coordinator_address", "num_processes", "process_id")


def fail(message: str, status: int = 2) -> None:
  """One line on stderr and a non-zero exit: 2 for bad input (how every
  invalid flag or config ends), 1 for a run that failed, 74 for a file
  that cannot be read or written, 128 + N for signal N."""
  # Not sys.exit: jax's shutdown would wait for every peer (which may be
  # waiting for this process), and orbax's worker threads for a save that
  # failed or was cut short (a resume takes the newest complete checkpoint).
  release_all()
  print(f"error: {message}", file=sys.stderr)
  sys.stderr.flush()
  sys.stdout.flush()
  os._exit(status)  # pylint: disable=protected-access


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's parser, but a bad flag is one line and exit 2, not a usage dump."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0])
  if len(rest) > 1:
    fail(f"unexpected arguments: {' '.join(rest[1:])}")
  return rest


def with_overrides(base: config_lib.EchoConfig) -> config_lib.EchoConfig:
  """`base` (a binary's preset) updated by --config_json's fields, then by
  the config flags given."""
  if _CONFIG_JSON.value:
    base = config_lib.load_json(_CONFIG_JSON.value, base)
  # Given = on the command line (`present`), not "not None": --help sets
  # the flags' defaults to the preset's values (`flag_help`).
  return base.replace(**{name: flags.FLAGS[name].value
                         for name in CONFIG_FLAGS if flags.FLAGS[name].present})


def resolve_config(experiment: str) -> config_lib.EchoConfig:
  """The experiment's preset, --config_json, the flags given; validated."""
  return config_lib.validate(with_overrides(config_lib.preset(experiment)))


# The workdir: one run writes into it at a time.
LOCK_NAME = ".echo_jax.lock"
_held: dict[str, Callable[[], None]] = {}  # workdir -> its release


def claim(workdir: str) -> str:
  """Takes `workdir` for this process: creates it and holds an exclusive
  lock (flock) on its lock file, which the kernel drops when the process
  ends, so a killed run's stale file never blocks a rerun. Another run on
  it, or an unwritable workdir, is refused in one line (ConfigError).
  Released at exit, removing what it created if the run wrote nothing."""
  key = os.path.abspath(workdir)
  if key in _held:
    return workdir
  created, path = [], key
  while not os.path.exists(path):
    created.append(path)
    path = os.path.dirname(path)
  lock = os.path.join(key, LOCK_NAME)
  try:
    os.makedirs(key, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise config_lib.ConfigError(
        f"workdir={workdir!r} cannot be written: {e.strerror}") from None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.read(fd, 64).decode(errors="replace").strip()
    os.close(fd)
    raise config_lib.ConfigError(
        f"workdir={workdir!r} is in use by another run (pid "
        f"{holder or 'unknown'}): wait for it to end, or use another "
        "--workdir") from None
  os.ftruncate(fd, 0)
  os.write(fd, str(os.getpid()).encode())

  def release():
    if _held.pop(key, None) is None:
      return
    with contextlib.suppress(FileNotFoundError):  # workdir moved mid-run
      os.remove(lock)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    for folder in created:  # innermost first; kept if anything is in it
      with contextlib.suppress(OSError):
        os.rmdir(folder)

  _held[key] = release
  atexit.register(release)
  return workdir


def release_all() -> None:
  """Releases every workdir this process holds (for an exit that skips
  atexit)."""
  for release in list(_held.values()):
    release()


def resolve_workdir(name: str) -> str:
  """The run begins (`start_run`); then --workdir (default: a fresh
  runs/<name>-<time>-<pid>), claimed for this process (`claim`: a run that
  fails before writing leaves nothing)."""
  start_run()
  from echo_jax.runtime import parallel
  if not parallel.is_writer():
    return _WORKDIR.value  # process 0 checks and locks it; we only read
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return claim(_WORKDIR.value
               or os.path.join("runs", f"{name}-{stamp}-{os.getpid()}"))


def start_processes() -> None:
  """Joins a multi-process run if the launch flags (or their $ECHO_JAX_*
  variables) ask for one (`launch.join`), or a launcher that
  jax.distributed.initialize detects (SLURM, Open MPI 4, a Cloud TPU pod)
  started this process; else the run is this one process."""
  from echo_jax.runtime import parallel
  timeout = _DISTRIBUTED_TIMEOUT.value
  if timeout < 1:
    raise config_lib.ConfigError(
        f"distributed_timeout={timeout} must be >= 1")
  parallel.TIMEOUT["seconds"] = timeout
  if any(flags.FLAGS[name].value is not None
         or os.environ.get(f"ECHO_JAX_{name.upper()}")
         for name in LAUNCH_FLAGS):
    from experiments import launch
    launch.join(timeout)
  elif not initialize(timeout, "this process", "the launcher coordinator"):
    return
  if parallel.is_multiprocess():
    from experiments import launch
    launch.check_processes()


def initialize(timeout: int, who: str, where: str, *settings) -> bool:
  """jax.distributed.initialize(*settings) (address, count, index; none: a
  launcher's), ended with one line after `timeout` seconds; False if no
  settings were given and no launcher that jax knows started this process."""
  import jax
  from echo_jax.runtime import parallel
  # Gloo is jax's CPU default; set so a CPU run never depends on that.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  message = (f"{who} could not join the run at {where} within "
             f"--distributed_timeout={timeout} s: start every process with "
             "the same --coordinator_address and --num_processes")
  # Ours fires before jax's own deadline, which aborts with a report.
  with parallel.watchdog(timeout, message, status=2):
    try:
      jax.distributed.initialize(
          *settings, initialization_timeout=timeout + 5,
          heartbeat_timeout_seconds=timeout + 30,
          shutdown_timeout_seconds=timeout)
    except ValueError as e:
      if settings or "coordinator_address should be defined" not in str(e):
        raise config_lib.ConfigError(f"{message} ({e})") from None
      # No launcher that jax knows. Open MPI 5's mpirun (PRRTE) is not one
      # of them in jax 0.10: its ranks would each run alone.
      ranks = os.environ.get("OMPI_COMM_WORLD_SIZE", "1")
      if ranks.isdigit() and int(ranks) > 1:
        raise config_lib.ConfigError(
            f"started by Open MPI with {ranks} processes, which jax "
            f"{jax.__version__} does not detect (Open MPI 5): give every "
            "process --coordinator_address=HOST:PORT (HOST: rank 0's host) "
            f"--num_processes={ranks} --process_id=$OMPI_COMM_WORLD_RANK"
        ) from None
      return False
    except Exception as e:  # pylint: disable=broad-except
      # The runtime raises several types; the first line says why.
      reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
      raise config_lib.ConfigError(f"{message} ({reason})") from None
  return True


def _enable_compilation_cache() -> None:
  """JAX's persistent cache, for every program (a cold run is mostly
  compiling)."""
  import jax
  path = _COMPILATION_CACHE.value
  if path is None:
    path = os.environ.get("ECHO_JAX_COMPILATION_CACHE", os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "echo_jax", "jax_compilation_cache"))
  if path:
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def start_run() -> None:
  """Readies this process for its first JAX computation (`resolve_workdir`
  calls it, once a binary's settings are validated: bad input ends in one
  line before JAX is even imported)."""
  from echo_jax.runtime import parallel
  from echo_jax.runtime import runner
  # SIGTERM (SLURM's preemption, scancel, time limit) ends a run like
  # Ctrl-C: one line, and a rerun resumes.
  signal.signal(signal.SIGTERM, runner.interrupt)
  parallel.models_per_block()  # a bad $ECHO_JAX_MODELS_PER_BLOCK: here
  start_processes()
  _enable_compilation_cache()
  if _DEBUG_NANS.value:
    import jax
    jax.config.update("jax_debug_nans", True)


def fail_run(error: BaseException) -> None:
  """Ends the process on `error` with one line and its exit status (`fail`);
  a bug's traceback (then one line in a multi-process run, whose peers must
  not wait for this process's shutdown)."""
  from echo_jax.runtime import parallel
  from echo_jax.runtime import runner
  if isinstance(error, (FloatingPointError, parallel.PeerLostError)):
    fail(str(error).splitlines()[0], status=1)
  if isinstance(error, OSError):
    # A full disk, a file that cannot be read or written: the newest
    # complete checkpoint is intact, so a rerun resumes (74: EX_IOERR).
    fail(f"{error.strerror or error}"
         f"{f': {error.filename}' if error.filename else ''} "
         f"({runner.where()}); free space or fix the permissions, then "
         "rerun the same command to resume", status=74)
  if isinstance(error, (KeyboardInterrupt, runner.Interrupted)):
    signum = getattr(error, "signum", signal.SIGINT)
    fail(runner.interrupted_message(signum), 128 + signum)
  if isinstance(error, Exception) and parallel.is_multiprocess():
    traceback.print_exception(error)
    fail(f"{type(error).__name__} (traceback above)", status=1)
  raise error


# absl's short help, printed while the flags are parsed (`flag_help`).
_SHORT_HELP = re.compile(r"--?(help|helpshort|\?)")


def run_main(body: Callable[[], None],
             preset: Callable[[], Any] | None = None,
             refused: Collection[str] = ()) -> None:
  """app.run with one-line errors for bad flags and bad config values.
  `preset` returns the config(s) the binary starts from before
  --config_json and the flags, `refused` the flags it rejects: with them
  --help lists the binary's flags and their defaults (`flag_help`).
  `preset` is called for --help only (it may import the study, JAX)."""

  def main(argv):
    del argv
    # INFO is for our progress lines, not each absent accelerator plugin
    # (JAX) or every step of every save (orbax).
    logging.getLogger("jax").setLevel(logging.WARNING)
    logging.getLogger("absl").addFilter(
        lambda record: "/orbax/" not in record.pathname)
    # After a save that failed (a full disk) or was cut short, TensorStore
    # still calls back into orbax's closed event loop: noise, not news.
    report = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None if (
        "Event loop is closed" in str(unraisable.exc_value)) else report(
            unraisable)
    try:
      if _CHUNK_EPOCHS.value is not None and _CHUNK_EPOCHS.value < 1:
        raise config_lib.ConfigError(
            f"chunk_epochs={_CHUNK_EPOCHS.value} must be >= 1")
      body()
    except config_lib.ConfigError as e:
      fail(str(e))
    except SystemExit:
      raise
    except BaseException as e:  # pylint: disable=broad-except
      fail_run(e)

  if any(_SHORT_HELP.fullmatch(arg) for arg in sys.argv[1:]):
    from experiments import flag_help
    flag_help.prepare(preset, refused)
  app.run(main, flags_parser=parse_flags)


def run_options():
  """The settings every run takes from the shared flags."""
  from echo_jax.studies import runs
  return runs.RunOptions(chunk_epochs=_CHUNK_EPOCHS.value,
                         tensorboard=_TENSORBOARD.value)


def run_single(name: str) -> None:
  """The body of a one-experiment binary: resolve, run, write, report."""
  config = resolve_config(name)
  from echo_jax.studies import runs
  runs.run_single(config, resolve_workdir(config.experiment), run_options())
