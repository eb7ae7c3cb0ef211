"""Workdirs: a fresh default name, and a writability check that leaves no
trace (a run refused for bad input creates nothing)."""

import datetime
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
