"""Workdirs: a fresh default name, a writability check that leaves no trace
(a run refused for bad input creates nothing), and one writer per workdir
(an advisory lock)."""

import atexit
import datetime
import fcntl
import os
import tempfile

from echo_jax.core import config as config_lib


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
