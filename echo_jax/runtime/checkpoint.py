"""Checkpoints of a multi-seed run's TrainState, with orbax.

The state is saved as host numpy arrays (gathered from all devices, and of
a multi-process run from every process: `distributed.to_host`), so a run
can resume on another device layout; `restore_latest` returns numpy too and
the caller shards it again. Of a multi-process run every process calls
save and restore (orbax's multi-process mode: it synchronises them, and
process 0 writes the numpy arrays every process holds), so the checkpoint
folder must be one folder every process sees (a shared file system).
"""

import os
import time
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from echo_jax.runtime import distributed


class Checkpointer:
  """Keeps the last `max_to_keep` states of one run under `directory`."""

  def __init__(self, directory: str, max_to_keep: int = 3):
    self._directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            # Saves overlap the next chunk; `wait` before reading them.
            enable_async_checkpointing=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    # Host copies: the save is asynchronous, and the caller may reuse (or
    # donate) the arrays as soon as this returns.
    host_state = jax.tree.map(np.array, distributed.to_host(state))
    with distributed.bounded("a checkpoint's save"):
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
    if not distributed.is_writer():
      return "damaged/ (by process 0)"  # the others skip it the same way
    damaged = os.path.join(os.path.dirname(self._directory), "damaged")
    os.makedirs(damaged, exist_ok=True)
    target = os.path.join(damaged, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(os.path.join(self._directory, str(step)), target)
    self._manager.reload()
    return target

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
