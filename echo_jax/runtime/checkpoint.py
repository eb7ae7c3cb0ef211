"""A run folder: who it belongs to (config.json), its checkpoints (orbax),
its metrics.jsonl and timing.json.

The training state is saved as host numpy arrays (gathered from every device
and process: `parallel.to_host`), so a run can resume on another device
layout. Of a multi-process run every process calls save and restore (orbax
synchronises them; process 0 writes), so the folder must be one that every
process sees.
"""

import json
import os
import re
import time
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from echo_jax.core import config as config_lib
from echo_jax.runtime import files
from echo_jax.runtime import parallel


def _save_error(error: Exception, path: str) -> OSError:
  """An OSError for a checkpoint that could not be written (orbax and
  TensorStore report a full disk as a ValueError naming the OS error)."""
  code = re.search(r"os_error_code='(\d+)'", str(error))
  reason = (os.strerror(int(code.group(1))) if code
            else str(error).strip().splitlines()[0][:200])
  return OSError(int(code.group(1)) if code else None, reason, path)


def other_config(where: str, changed) -> config_lib.ConfigError:
  """The refusal of a folder that holds a run of another identity."""
  return config_lib.ConfigError(
      f"workdir holds a run of another config ({where}; differs in "
      f"{', '.join(changed)}): use a new --workdir to start afresh")


class RunFolder:
  """One run's folder for `identity` (saved with every checkpoint and in
  config.json); keeps its last `max_to_keep` checkpoints."""

  def __init__(self, path: str, identity: dict[str, Any],
               max_to_keep: int = 3):
    self.path, self.identity = path, identity
    self.metrics = os.path.join(path, "metrics.jsonl")
    self._timing = os.path.join(path, "timing.json")
    self._checkpoints = os.path.abspath(os.path.join(path, "checkpoints"))
    # Orbax synchronises the processes of a multi-process run here.
    with parallel.bounded("opening the checkpoints"):
      self._manager = ocp.CheckpointManager(
          self._checkpoints, options=ocp.CheckpointManagerOptions(
              max_to_keep=max_to_keep, create=True,
              # Saves overlap the next chunk; `close` waits for the last.
              enable_async_checkpointing=True))

  def restore(self, like: Any) -> Any | None:
    """The newest intact checkpoint (shaped like `like`), or None; then the
    folder is claimed (config.json). One that cannot be restored (truncated
    or corrupted files, e.g. a disk that filled up) is moved aside into
    `damaged/` with one warning line, and the one before it is tried;
    ConfigError if it belongs to a run of another identity."""
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), like)
    state = None
    with parallel.bounded("restoring a checkpoint"):
      for step in sorted(self._manager.all_steps(), reverse=True):
        try:
          # The identity first (a small JSON item): another run's state
          # may not even have this run's shapes.
          saved = self._manager.restore(step, args=ocp.args.Composite(
              identity=ocp.args.JsonRestore())).identity
        except Exception as e:  # pylint: disable=broad-except
          # Orbax and TensorStore raise many types for damaged data.
          self._move_aside(step, e)
          continue
        changed = files.changed_keys(saved, self.identity)
        if changed:
          raise other_config(self.path, changed)
        try:
          state = self._manager.restore(step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract))).state
          break
        except Exception as e:  # pylint: disable=broad-except
          self._move_aside(step, e)
    # config.json says whose folder it is; the checkpoints decide.
    path = os.path.join(self.path, "config.json")
    if files.saved_changes(path, self.identity) != [] and parallel.is_writer():
      files.write_json_atomic(path, self.identity)
    return None if state is None else jax.tree.map(np.asarray, state)

  def _move_aside(self, step: int, error: Exception) -> None:
    moved = "damaged/ (by process 0)"  # the others skip it the same way
    if parallel.is_writer():
      moved = os.path.join(self.path, "damaged",
                           f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
      os.makedirs(os.path.dirname(moved), exist_ok=True)
      os.rename(os.path.join(self._checkpoints, str(step)), moved)
      self._manager.reload()
    logging.warning(
        "checkpoint %d is damaged (%s: %s); moved to %s, trying the one "
        "before it", step, type(error).__name__,
        str(error).splitlines()[0][:200] if str(error) else "", moved)

  def save(self, epoch: int, state: Any, metrics_rows: list[Any]) -> None:
    """Checkpoints `state` at `epoch` (asynchronously) and appends its
    epochs' rows to metrics.jsonl."""
    # Host copies: the caller may donate the arrays as soon as this returns.
    host_state = jax.tree.map(np.array, parallel.to_host(state))
    with parallel.bounded("a checkpoint's save"):
      try:  # raises the error of the save before it, if that one failed
        self._manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(host_state),
            identity=ocp.args.JsonSave(self.identity)))
      except (ValueError, RuntimeError) as e:
        raise _save_error(e, self._checkpoints) from None
    if parallel.is_writer():
      with open(self.metrics, "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in metrics_rows)

  def timing(self) -> dict[str, float]:
    """The training and checkpoint seconds of the run's earlier processes
    (none where no file, or a damaged one, holds them)."""
    try:
      return files.read_json(self._timing)
    except config_lib.ConfigError:
      return {}

  def write_timing(self, timing: dict[str, float]) -> None:
    files.write_json_atomic(self._timing, timing)

  def close(self) -> None:
    """Waits for the save in flight, then releases the manager."""
    with parallel.bounded("the last checkpoint's save"):
      try:
        self._manager.wait_until_finished()
      except (ValueError, RuntimeError) as e:
        raise _save_error(e, self._checkpoints) from None
      self._manager.close()
