"""Files written atomically (a reader, or a crash, never sees half of one)
and read with one-line errors."""

import contextlib
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


def changed_keys(saved: dict[str, Any], value: dict[str, Any]) -> list[str]:
  """The keys in which `value` differs from `saved` (as JSON: tuples are
  the lists they are saved as)."""
  value = json.loads(json.dumps(value))
  return sorted(k for k in set(saved) | set(value)
                if saved.get(k) != value.get(k))


def saved_changes(path: str, value: dict[str, Any]) -> list[str] | None:
  """`changed_keys` of the JSON saved at `path` and `value`; None where
  nothing can be read there (a missing or damaged file)."""
  try:
    return changed_keys(read_json(path), value)
  except config_lib.ConfigError:
    return None


def read_json(path: str,
              advice: str = "restore it, or start afresh in a new --workdir"
              ) -> Any:
  """A state file's JSON; ConfigError (an unusable workdir, exit 2: one
  line naming the file, then `advice`) if it cannot be read or parsed, e.g.
  truncated by a crash or a full disk."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    reason = e.strerror if isinstance(e, OSError) else str(e)
    raise config_lib.ConfigError(
        f"{path} cannot be read ({reason}): {advice}") from None


def versions() -> dict[str, str]:
  """Versions of the numerics stack and the devices the run used."""
  import chex  # pylint: disable=g-import-not-at-top
  import flax
  import jax
  import jaxlib
  import numpy as np
  import optax
  return {"python": platform.python_version(),
          **{m.__name__: m.__version__
             for m in (jax, jaxlib, flax, optax, chex, np)},
          "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()]}
