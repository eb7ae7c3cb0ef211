"""What every binary shares: its flags, flags -> config, running and writing.

Importing this module first exposes one XLA host device per CPU core (before
JAX initialises), so every binary uses all cores by default; set
ECHO_JAX_HOST_DEVICES=N to choose, 0 to leave XLA_FLAGS alone. It also keeps
OpenBLAS to one thread unless OPENBLAS_NUM_THREADS is set (see host_devices).

Every binary runs as N cooperating processes (one per host: docs/scaling.md)
when a launcher starts it or with the flags of `experiments.processes`.
"""

# pylint: disable=g-import-not-at-top
from echo_jax.runtime import host_devices

host_devices.expose_host_devices()
host_devices.single_threaded_blas()

import logging
import os
import sys
import traceback
from typing import Any, Callable, Sequence

from absl import app
from absl import flags

from echo_jax.core import config as config_lib
from experiments import processes

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
CONFIG_FLAGS = tuple(config_lib.FIELD_HELP)


def fail(message: str, status: int = 2) -> None:
  """One line on stderr and a non-zero exit: 2 for bad input (how every
  invalid flag or config ends), 1 for a run that failed."""
  from echo_jax.runtime import distributed  # pylint: disable=g-import-not-at-top
  if distributed.is_multiprocess():
    # Not sys.exit: jax's shutdown would wait for every peer, and a peer
    # still training waits for this one at its next gather.
    from echo_jax.runtime import workdirs  # pylint: disable=g-import-not-at-top
    workdirs.release_all()
    distributed.exit_now(message, status)
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
  writable and locked for this process (`workdirs.claim`: a run that fails
  before writing leaves nothing behind)."""
  # pylint: disable=g-import-not-at-top
  from echo_jax.runtime import distributed
  from echo_jax.runtime import workdirs
  if not distributed.is_writer():
    return _WORKDIR.value  # process 0 checks and locks it; we only read
  return workdirs.claim(_WORKDIR.value or workdirs.fresh_name(name))


def run_main(body: Callable[[], None]) -> None:
  """app.run with one-line errors for bad flags and bad config values."""

  def main(argv):
    del argv
    # JAX reports each absent accelerator plugin at INFO, orbax every step
    # of every save: keep INFO for our progress lines.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    logging.getLogger("jax._src.distributed").setLevel(logging.WARNING)
    logging.getLogger("absl").addFilter(
        lambda record: "/orbax/" not in record.pathname)
    try:
      if _CHUNK_EPOCHS.value is not None and _CHUNK_EPOCHS.value < 1:
        raise config_lib.ConfigError(
            f"chunk_epochs={_CHUNK_EPOCHS.value} must be >= 1")
      # pylint: disable=g-import-not-at-top
      from echo_jax.runtime import programs
      programs.models_per_block()  # a bad $ECHO_JAX_MODELS_PER_BLOCK: here
      processes.start(workdir_given=bool(_WORKDIR.value))
      # pylint: disable=g-import-not-at-top
      from echo_jax.runtime import compilation_cache
      cache = _COMPILATION_CACHE.value
      if cache is None:
        cache = compilation_cache.default_path()
      if cache:
        compilation_cache.enable(cache)
      if _DEBUG_NANS.value:
        import jax  # pylint: disable=g-import-not-at-top
        jax.config.update("jax_debug_nans", True)
      body()
    except config_lib.ConfigError as e:
      fail(str(e))
    except FloatingPointError as e:
      fail(str(e).splitlines()[0], status=1)
    except Exception as e:  # pylint: disable=broad-except
      # pylint: disable=g-import-not-at-top
      from echo_jax.runtime import distributed
      if isinstance(e, distributed.PeerLostError):
        fail(str(e), status=1)
      if not distributed.is_multiprocess():
        raise
      # A bug: its traceback, then out without jax's shutdown, which would
      # wait for peers that may be waiting for this process.
      traceback.print_exc()
      fail(f"{type(e).__name__} (traceback above)", status=1)
    except KeyboardInterrupt:
      # pylint: disable=g-import-not-at-top
      from echo_jax.runtime import chunked
      from echo_jax.runtime import workdirs
      print(f"error: {chunked.interrupted_message()}", file=sys.stderr)
      sys.stderr.flush()
      sys.stdout.flush()
      workdirs.release_all()
      # Not sys.exit: a save the interrupt cut short can leave orbax's
      # worker thread waiting, and the interpreter would wait for it. An
      # unfinished save is never read (resume takes the newest complete
      # checkpoint), so ending here loses nothing.
      os._exit(130)  # pylint: disable=protected-access

  app.run(main, flags_parser=parse_flags)


def run_options():
  """The settings every run takes from the shared flags."""
  from echo_jax.studies import runs  # pylint: disable=g-import-not-at-top
  return runs.RunOptions(chunk_epochs=_CHUNK_EPOCHS.value,
                         tensorboard=_TENSORBOARD.value)


def run_single(name: str) -> None:
  """The body of a one-experiment binary: resolve, run, write, report."""
  from echo_jax.studies import tutorial  # pylint: disable=g-import-not-at-top
  config = resolve_config(name)
  tutorial.run_single(config, resolve_workdir(config.experiment),
                      run_options())
