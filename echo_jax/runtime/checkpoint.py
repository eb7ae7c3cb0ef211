"""A run folder: who it belongs to (config.json), its checkpoints (orbax),
its metrics.jsonl, timing.json and scores after each chunk.

The training state is saved as host numpy arrays (gathered from every device
and process: `parallel.to_host`), so a run can resume on another device
layout. Of a multi-process run every process calls save and restore (orbax
synchronises them; process 0 writes), so the folder must be one that every
process sees.
"""

import json
import os
import time
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from echo_jax.core import config as config_lib
from echo_jax.runtime import files
from echo_jax.runtime import parallel


def has_trained(run_dir: str) -> bool:
  """Whether a run folder holds a checkpoint: until then, nothing of the
  run it was claimed for would be lost by starting another."""
  folder = os.path.join(run_dir, "checkpoints")
  return os.path.isdir(folder) and any(
      name.isdigit() for name in os.listdir(folder))


def check_run_dir(run_dir: str, identity: dict[str, Any],
                  claim_file: str = "config.json",
                  trained: bool | None = None) -> None:
  """ConfigError if `run_dir` holds a trained run (`trained`, default: a
  checkpoint there) of another identity (saved in `claim_file`); reads
  only, so a study can check every folder it will claim before training."""
  path = os.path.join(run_dir, claim_file)
  if trained is None:
    trained = has_trained(run_dir)
  if not os.path.exists(path) or not trained:
    return
  changed = files.changed_keys(files.read_json(path), identity)
  if changed:
    raise config_lib.ConfigError(
        f"workdir holds a run of another config ({run_dir}; differs in "
        f"{', '.join(changed)}): use a new --workdir to start afresh")


def claim_run_dir(run_dir: str, identity: dict[str, Any],
                  claim_file: str = "config.json",
                  trained: bool | None = None) -> None:
  """A run folder belongs to one run (`identity`, a flat JSON dict saved in
  `claim_file`): claimed on first use, and resuming another run is an
  error. A claim whose run failed before it trained is replaced."""
  if trained is None:
    trained = has_trained(run_dir)
  check_run_dir(run_dir, identity, claim_file, trained)
  path = os.path.join(run_dir, claim_file)
  if os.path.exists(path) and not trained and parallel.is_writer():
    os.remove(path)
  files.claim_json(path, identity)


class RunFolder:
  """One run's folder, claimed for `identity`; keeps its last `max_to_keep`
  checkpoints."""

  def __init__(self, path: str, identity: dict[str, Any],
               max_to_keep: int = 3):
    claim_run_dir(path, identity)
    self.path = path
    self.metrics = os.path.join(path, "metrics.jsonl")
    self._timing = os.path.join(path, "timing.json")
    self._evaluations = os.path.join(path, "chunk_evaluations.json")
    self._checkpoints = os.path.abspath(os.path.join(path, "checkpoints"))
    # Orbax synchronises the processes of a multi-process run here.
    with parallel.bounded("opening the checkpoints"):
      self._manager = ocp.CheckpointManager(
          self._checkpoints, options=ocp.CheckpointManagerOptions(
              max_to_keep=max_to_keep, create=True,
              # Saves overlap the next chunk; `close` waits for the last.
              enable_async_checkpointing=True))

  def restore(self, like: Any) -> Any | None:
    """The newest intact checkpoint (shaped like `like`), or None. One that
    cannot be restored (truncated or corrupted files, e.g. a disk that
    filled up) is moved aside into `damaged/` with one warning line, and
    the one before it is tried."""
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), like)
    with parallel.bounded("restoring a checkpoint"):
      for step in sorted(self._manager.all_steps(), reverse=True):
        try:
          return jax.tree.map(np.asarray, self._manager.restore(
              step, args=ocp.args.StandardRestore(abstract)))
        except Exception as e:  # pylint: disable=broad-except
          # Orbax and TensorStore raise many types for damaged data.
          self._move_aside(step, e)
    return None

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
      self._manager.save(epoch, args=ocp.args.StandardSave(host_state))
    if parallel.is_writer():
      with open(self.metrics, "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in metrics_rows)

  def timing(self) -> dict[str, float]:
    """The training and checkpoint seconds of the run's earlier processes
    (none where no file, or a damaged one, holds them)."""
    try:
      return files.read_json(self._timing)
    except files.UnreadableStateError:
      return {}

  def write_timing(self, timing: dict[str, float]) -> None:
    files.write_json_atomic(self._timing, timing)

  def chunk_evaluations(self) -> dict[int, Any]:
    """The scores after each chunk of the run's earlier processes."""
    if not os.path.exists(self._evaluations):
      return {}
    return {int(epoch): sums for epoch, sums
            in files.read_json(self._evaluations).items()}

  def write_chunk_evaluations(self, evaluations: dict[int, Any]) -> None:
    files.write_json_atomic(self._evaluations, {
        str(e): evaluations[e] for e in sorted(evaluations)})

  def close(self) -> None:
    """Waits for the save in flight, then releases the manager."""
    with parallel.bounded("the last checkpoint's save"):
      self._manager.wait_until_finished()
      self._manager.close()
