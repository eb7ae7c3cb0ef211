"""A run folder: who it belongs to (config.json) and its checkpoints (orbax).

The training state is saved as host numpy arrays (gathered from every device
and process: `parallel.to_host`), so a run can resume on another device
layout. Of a multi-process run every process calls save and restore (orbax
synchronises them; process 0 writes), so the folder must be one that every
process sees.
"""

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


class Checkpointer:
  """Keeps the last `max_to_keep` states of one run under `directory`."""

  def __init__(self, directory: str, max_to_keep: int = 3):
    self._directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self._directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            # Saves overlap the next chunk; `wait` before reading them.
            enable_async_checkpointing=True))

  def save(self, step: int, state: Any) -> None:
    # Host copies: the save is asynchronous, and the caller may donate the
    # arrays as soon as this returns.
    host_state = jax.tree.map(np.array, parallel.to_host(state))
    with parallel.bounded("a checkpoint's save"):
      self._manager.save(step, args=ocp.args.StandardSave(host_state))

  def restore_latest(self, like: Any) -> Any | None:
    """The newest intact state (shaped like `like`), or None. A checkpoint
    that cannot be restored (truncated or corrupted files, e.g. a disk that
    filled up) is moved aside into `damaged/` beside the checkpoints, with
    one warning line, and the one before it is tried."""
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), like)
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self._manager.restore(
            step, args=ocp.args.StandardRestore(abstract))
        return jax.tree.map(np.asarray, restored)
      except Exception as e:  # pylint: disable=broad-except
        # Orbax and TensorStore raise many types for damaged data.
        moved = self._move_aside(step)
        logging.warning(
            "checkpoint %d is damaged (%s: %s); moved to %s, trying the one "
            "before it", step, type(e).__name__,
            str(e).splitlines()[0][:200] if str(e) else "", moved)
    return None

  def _move_aside(self, step: int) -> str:
    if not parallel.is_writer():
      return "damaged/ (by process 0)"  # the others skip it the same way
    damaged = os.path.join(os.path.dirname(self._directory), "damaged")
    os.makedirs(damaged, exist_ok=True)
    target = os.path.join(damaged, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(os.path.join(self._directory, str(step)), target)
    self._manager.reload()
    return target

  def close(self) -> None:
    """Waits for the save in flight, then releases the manager."""
    with parallel.bounded("the last checkpoint's save"):
      self._manager.wait_until_finished()
      self._manager.close()
