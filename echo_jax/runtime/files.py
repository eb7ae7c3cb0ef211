"""Files: written atomically (a reader, or a crash, never sees half of one),
read with one-line errors, and the workdir: a fresh default name, checked
writable without leaving a trace, one writer at a time (an advisory lock)."""

import atexit
import contextlib
import datetime
import fcntl
import json
import os
import platform
import shutil
import tempfile
from typing import Any, Iterable, Iterator

from echo_jax.core import config as config_lib
from echo_jax.runtime import parallel


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temp path beside `path`; renames it onto `path` only if the
  block succeeds, so a reader (or a crash) never sees a truncated file and a
  failed write leaves the previous file intact.

  Of a multi-process run, only process 0 keeps its files: the others,
  which compute the same values, write into a scratch folder that is
  removed (so every process takes the same path through a study).
  """
  if not parallel.is_writer():
    scratch = tempfile.mkdtemp(prefix="echo_jax-not-written-")
    try:
      yield os.path.join(scratch, os.path.basename(path))
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  suffix = os.path.splitext(path)[1]
  fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
  os.close(fd)
  # mkstemp makes the file private (0600); results are ordinary files.
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp_path, 0o666 & ~umask)
  try:
    yield tmp_path
    os.replace(tmp_path, path)
  finally:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)


def write_text_atomic(path: str, text: str) -> None:
  with atomic_path(path) as tmp_path:
    with open(tmp_path, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())


def write_json_atomic(path: str, payload: Any) -> None:
  write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def write_jsonl_atomic(path: str, rows: Iterable[Any]) -> None:
  write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def claim_json(path: str, value: dict[str, Any]) -> list[str]:
  """Writes `value` to `path` on first use; later, the keys in which `value`
  differs from what is saved there (empty when it is the same). How a run
  folder or a sweep's workdir is tied to one config."""
  if not os.path.exists(path):
    write_json_atomic(path, value)
    return []
  return changed_keys(read_json(path), value)


def changed_keys(saved: dict[str, Any], value: dict[str, Any]) -> list[str]:
  """The keys in which `value` differs from `saved` (as JSON: tuples are
  the lists they are saved as)."""
  value = json.loads(json.dumps(value))
  return sorted(k for k in set(saved) | set(value)
                if saved.get(k) != value.get(k))


class UnreadableStateError(config_lib.ConfigError):
  """A file a run depends on cannot be read (an unusable workdir, exit 2);
  the message names it."""


def read_json(path: str) -> Any:
  """A state file's JSON; UnreadableStateError (one line naming the file)
  if it cannot be read or parsed, e.g. truncated by a crash or a full
  disk."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    reason = e.strerror if isinstance(e, OSError) else str(e)
    raise UnreadableStateError(
        f"{path} cannot be read ({reason}): restore or delete it (a rerun "
        "then starts that part afresh)") from None


def versions() -> dict[str, str]:
  """Versions of the numerics stack and the devices the run used."""
  import chex  # pylint: disable=g-import-not-at-top
  import flax
  import jax
  import jaxlib
  import numpy as np
  import optax
  return {
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jaxlib": jaxlib.__version__,
      "flax": flax.__version__,
      "optax": optax.__version__,
      "chex": chex.__version__,
      "numpy": np.__version__,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
  }


# The workdir.

def fresh_name(name: str) -> str:
  """runs/<name>-<time>-<pid>: a new folder for a run given no --workdir."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return os.path.join("runs", f"{name}-{stamp}-{os.getpid()}")


def check_writable(workdir: str) -> str:
  """`workdir`, checked writable but not created yet; ConfigError (one line
  naming --workdir) if it cannot be written."""
  # Probe by creating it and a file in it, then undo whatever we created.
  missing = []
  path = os.path.abspath(workdir)
  while not os.path.exists(path):
    missing.append(path)
    path = os.path.dirname(path)
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise config_lib.ConfigError(
        f"workdir={workdir!r} cannot be written: {e.strerror}") from None
  finally:
    for created in missing:
      if os.path.isdir(created):
        os.rmdir(created)
  return workdir


LOCK_NAME = ".echo_jax.lock"
_held: dict[str, "WorkdirLock"] = {}


class WorkdirLock:
  """An exclusive advisory lock (flock) on a workdir's lock file, held until
  `release` (or the process's end: the kernel drops a killed process's
  lock, so a stale file never blocks a rerun)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    # What this process creates, removed again if the run leaves nothing.
    self._created = []
    path = os.path.abspath(workdir)
    while not os.path.exists(path):
      self._created.append(path)
      path = os.path.dirname(path)
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, LOCK_NAME)
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(self._fd, 64).decode(errors="replace").strip()
      os.close(self._fd)
      self._fd = None
      raise config_lib.ConfigError(
          f"workdir={workdir!r} is in use by another run (pid "
          f"{holder or 'unknown'}): wait for it to end, or use another "
          "--workdir") from None
    os.ftruncate(self._fd, 0)
    os.write(self._fd, str(os.getpid()).encode())

  def release(self) -> None:
    if self._fd is None:
      return
    os.remove(self.path)
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None
    for created in self._created:
      if os.path.isdir(created) and not os.listdir(created):
        os.rmdir(created)


def release_all() -> None:
  """Releases every workdir this process holds (for an exit that skips
  atexit)."""
  for lock in _held.values():
    lock.release()


def claim(workdir: str) -> str:
  """Checks `workdir` writable and takes its lock for this process (one
  writer per workdir: a second run on it exits with one line naming the
  holder's pid); released when the process exits, removing the workdir
  again if the run wrote nothing into it."""
  check_writable(workdir)
  key = os.path.abspath(workdir)
  if key not in _held:
    _held[key] = WorkdirLock(workdir)
    atexit.register(_held[key].release)
  return workdir
