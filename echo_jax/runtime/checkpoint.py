"""Checkpoints of a multi-seed run's TrainState, with orbax.

The state is saved as host numpy arrays (gathered from all devices), so a run
can resume on another device layout; `restore_latest` returns numpy too and
the caller shards it again.
"""

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
  """Keeps the last `max_to_keep` states of one run under `directory`."""

  def __init__(self, directory: str, max_to_keep: int = 3):
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
    host_state = jax.tree.map(np.array, state)
    self._manager.save(step, args=ocp.args.StandardSave(host_state))

  def restore_latest(self, like: Any) -> Any | None:
    """The newest complete state (shaped like `like`), or None."""
    step = self._manager.latest_step()
    if step is None:
      return None
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), like)
    restored = self._manager.restore(
        step, args=ocp.args.StandardRestore(abstract))
    return jax.tree.map(np.asarray, restored)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
