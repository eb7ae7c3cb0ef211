"""Training in compiled chunks of epochs, with checkpoints and resume.

A run's state (`train.TrainState` with a leading model axis) goes through a
compiled `run_chunk` until every model has done its epochs; the per-epoch
metrics come back with each chunk and are kept on the host. With a run folder,
the state is saved with orbax after every chunk and the epochs' metrics are
appended to metrics.jsonl; a rerun with the same folder resumes from the
newest checkpoint. Epoch keys depend only on the epoch index, so a resumed
run is bit-identical to an uninterrupted one. Used by the one runner
(`runner.run`).
"""

import json
import os
import signal
import threading
import time
from typing import Any, Callable, NamedTuple

from absl import logging
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.runtime import checkpoint
from echo_jax.runtime import distributed
from echo_jax.runtime import results


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or infinite loss; the message names the epoch."""


class Interrupted(Exception):
  """Raised after `stop_after_chunks` chunks: a simulated kill, for tests."""


# The run this process is training and its epochs done (checkpointed when
# it has a run folder), for the line a Ctrl-C ends with.
_progress = {"name": None, "epoch": 0, "total": 0}


# Ctrl-C during training is acted on between chunks, after the chunk's
# checkpoint save has been handed to orbax: a KeyboardInterrupt raised inside
# orbax's save was seen to be swallowed (the run went on) or to hang it. A
# second Ctrl-C interrupts at once.
_interrupt = {"pending": False}


def _defer_interrupt(signum, frame):
  del signum, frame
  if _interrupt["pending"]:
    raise KeyboardInterrupt
  _interrupt["pending"] = True


def interrupted_message() -> str:
  """What an interrupted binary says: where it stopped, how to go on."""
  if _progress["name"] is None:
    return "interrupted before training began; rerun the same command"
  return (f"interrupted at epoch {_progress['epoch']}/{_progress['total']} "
          f"of {_progress['name']}; rerun the same command to resume")


def check_finite(loss_MxE: np.ndarray, first_epoch: int) -> None:
  bad = ~np.isfinite(loss_MxE)
  if bad.any():
    model_index, offset = np.argwhere(bad)[0]
    raise NonFiniteLossError(
        f"non-finite training loss at epoch {first_epoch + offset + 1} "
        f"(model {model_index}); lower --learning_rate, or rerun with "
        "--debug_nans to find the operation")


TIMING_FILE = "timing.json"


def read_timing(run_dir: str) -> dict[str, float]:
  """The training and checkpoint seconds of a run folder's earlier
  processes (empty if none recorded them: a folder from before timing.json,
  or one whose file is damaged, counts from zero)."""
  path = os.path.join(run_dir, TIMING_FILE)
  try:
    saved = results.read_json(path)
  except results.UnreadableStateError:
    return {}
  return {k: float(v) for k, v in saved.items()
          if k in ("train_seconds", "checkpoint_seconds")}


def has_trained(run_dir: str) -> bool:
  """Whether a run folder holds a checkpoint: until then, nothing of the
  run it was claimed for would be lost by starting another."""
  folder = os.path.join(run_dir, "checkpoints")
  return os.path.isdir(folder) and any(
      name.isdigit() for name in os.listdir(folder))


def check_run_dir(run_dir: str, identity: dict[str, Any],
                  claim_file: str = "config.json",
                  trained: bool | None = None) -> None:
  """Raises ConfigError if `run_dir` holds a trained run (`trained`,
  default: a checkpoint there) of another identity (saved in `claim_file`);
  reads only, so a study can check every folder it will claim before
  training any."""
  path = os.path.join(run_dir, claim_file)
  if trained is None:
    trained = has_trained(run_dir)
  if not os.path.exists(path) or not trained:
    return
  changed = results.changed_keys(results.read_json(path), identity)
  if changed:
    raise config_lib.ConfigError(
        f"workdir holds a run of another config ({run_dir}; differs in "
        f"{', '.join(changed)}): use a new --workdir to start afresh")


def claim_run_dir(run_dir: str, identity: dict[str, Any],
                  claim_file: str = "config.json",
                  trained: bool | None = None) -> None:
  """A run folder belongs to one run (`identity`: its config as a flat
  JSON dict, saved in `claim_file`): writes it on first use; resuming
  another run is an error. A folder claimed by a run that failed before it
  trained (`trained`, default: a checkpoint there) is claimed afresh."""
  if trained is None:
    trained = has_trained(run_dir)
  check_run_dir(run_dir, identity, claim_file, trained)
  path = os.path.join(run_dir, claim_file)
  if os.path.exists(path) and not trained and distributed.is_writer():
    os.remove(path)
  results.claim_json(path, identity)


# metrics_rows(loss_MxE, accuracy_MxE, first, end) -> metrics.jsonl rows for
# epochs [first, end); on_chunk(first, end, loss_MxE, accuracy_MxE) is called
# after each chunk (e.g. TensorBoard). M counts real (unpadded) models.
MetricsRows = Callable[[np.ndarray, np.ndarray, int, int],
                       list[dict[str, Any]]]
ChunkCallback = Callable[[int, int, np.ndarray, np.ndarray], None]
# on_state(epoch, state): the state at a chunk's end, or the state resumed
# from; done with it on return (the next chunk donates it).
StateCallback = Callable[[int, Any], None]


def metrics_per_seed(loss_SxE: np.ndarray, accuracy_SxE: np.ndarray,
                     first: int, end: int) -> list[dict[str, Any]]:
  """metrics.jsonl rows of a run without variants, for epochs [first, end)
  (numbered from 1): the mean over seeds and each seed's value."""
  # Whole-chunk numpy conversions: per-epoch ones cost more than the saves.
  loss_SxC, accuracy_SxC = loss_SxE[:, first:end], accuracy_SxE[:, first:end]
  columns = zip(loss_SxC.mean(0).tolist(), accuracy_SxC.mean(0).tolist(),
                loss_SxC.T.tolist(), accuracy_SxC.T.tolist())
  return [{"epoch": e + 1, "loss": loss, "accuracy": accuracy,
           "loss_per_seed": loss_S, "accuracy_per_seed": accuracy_S}
          for e, (loss, accuracy, loss_S, accuracy_S)
          in zip(range(first, end), columns)]


def metrics_by_variant(names: tuple[str, ...], seeds: int) -> MetricsRows:
  """metrics.jsonl rows for models laid out variant-major (variant i, seed
  s is model i * seeds + s): per epoch, the mean over all models and, per
  variant, the mean and each seed's value."""

  def metrics_rows(loss_MxE, accuracy_MxE, first, end):
    # Whole-chunk numpy conversions, epoch-major and contiguous (so each
    # mean adds in the same order as a one-epoch array's): per-epoch numpy
    # calls cost more than the checkpoint they accompany.
    def columns(values_MxE):
      values_CxM = np.ascontiguousarray(values_MxE[:, first:end].T)
      values_CxVxS = values_CxM.reshape(-1, len(names), seeds)
      return (values_CxM.mean(1).tolist(), values_CxVxS.mean(2).tolist(),
              values_CxVxS.tolist())

    loss, loss_V, loss_VxS = columns(loss_MxE)
    accuracy, accuracy_V, accuracy_VxS = columns(accuracy_MxE)
    return [{"epoch": first + c + 1, "loss": loss[c], "accuracy": accuracy[c],
             "per_variant": {
                 name: {"loss": loss_V[c][i], "accuracy": accuracy_V[c][i],
                        "loss_per_seed": loss_VxS[c][i],
                        "accuracy_per_seed": accuracy_VxS[c][i]}
                 for i, name in enumerate(names)}}
            for c in range(end - first)]

  return metrics_rows


class ChunkedRun(NamedTuple):
  state: Any                 # the final state, still sharded (padded)
  loss_MxE: np.ndarray       # per real model and epoch
  accuracy_MxE: np.ndarray
  train_seconds: float       # the run's training time, all processes
  checkpoint_seconds: float  # saving, appending metrics, waiting for saves
  resumed_from: int          # epochs already done when this process began
  train_seconds_this_process: float = 0.0

  def timing_fields(self, compile_seconds: float, chunk_epochs: int,
                    eval_seconds: float) -> dict[str, Any]:
    """What a result record says of the run's time (every runner's)."""
    return {"compile_seconds": compile_seconds,
            # A rerun of a finished run keeps the run's own time.
            "train_seconds": self.train_seconds,
            "train_seconds_this_process": self.train_seconds_this_process,
            "eval_seconds": eval_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "chunk_epochs": chunk_epochs,
            "resumed_from_epoch": self.resumed_from}


def run_chunks(run_chunk: Callable[[Any, int], tuple[Any, Any]], state: Any,
               *, name: str, total_epochs: int, num_models: int,
               metrics_rows: MetricsRows,
               restore_sharding: Any = None,
               run_dir: str | None = None,
               identity: dict[str, Any] | None = None,
               stop_after_chunks: int | None = None,
               on_chunk: ChunkCallback | None = None,
               on_state: StateCallback | None = None) -> ChunkedRun:
  """Runs run_chunk(state, end_epoch) -> (state, EpochMetrics_M) (end_epoch:
  an int32 scalar, as the compiled programs take it) from
  `state` (epoch_M; the first `num_models` models are real, the rest
  padding) until `total_epochs`, logging one progress line per chunk and
  stopping with NonFiniteLossError on a non-finite loss. With `run_dir`
  (claimed for `identity`), the state and the metrics so far are
  checkpointed after every chunk and a rerun resumes; restored states are
  placed with `restore_sharding`. `on_state(epoch, state)` is called with
  the state after each chunk (after its checkpoint) and with a resumed
  state."""
  checkpointer = None
  earlier: dict[str, float] = {}  # timings of earlier processes of the run
  resumed_from = 0
  checkpoint_seconds = 0.0
  loss_MxE = np.zeros((num_models, total_epochs), np.float32)
  accuracy_MxE = np.zeros((num_models, total_epochs), np.float32)
  if run_dir is not None:
    claim_run_dir(run_dir, identity or {})
    # Orbax synchronises the processes of a multi-process run here.
    with distributed.bounded("opening the checkpoints"):
      checkpointer = checkpoint.Checkpointer(
          os.path.join(run_dir, "checkpoints"))
      restored = checkpointer.restore_latest(
          {"state": state, "loss_E": loss_MxE, "accuracy_E": accuracy_MxE})
    if restored is not None:
      state = distributed.put(restored["state"], restore_sharding)
      loss_MxE, accuracy_MxE = restored["loss_E"], restored["accuracy_E"]
      resumed_from = int(restored["state"].epoch[0])
      logging.info("%s: resuming at epoch %d/%d from %s", name, resumed_from,
                   total_epochs, run_dir)
    distributed.check_same_everywhere(
        str(resumed_from), f"the checkpoint it resumes {name} from",
        "put --workdir on a file system every process shares")
    earlier = read_timing(run_dir) if resumed_from else {}
    # The checkpoint is the truth: drop rows a kill left beyond it (or a
    # torn last line), then append one chunk at a time.
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    results.write_jsonl_atomic(metrics_path, metrics_rows(
        loss_MxE, accuracy_MxE, 0, resumed_from))
  epoch = resumed_from
  if on_state is not None and resumed_from:
    on_state(resumed_from, state)
  _progress.update(name=name, epoch=epoch, total=total_epochs)
  end_epoch = np.int32(total_epochs)
  train_seconds = 0.0
  chunks = 0
  skip_wait = False  # lost peer or Ctrl-C: no wait for a save in flight
  in_main = threading.current_thread() is threading.main_thread()
  previous_handler = None
  if in_main:
    _interrupt["pending"] = False
    previous_handler = signal.signal(signal.SIGINT, _defer_interrupt)
  try:
    while epoch < total_epochs:
      if _interrupt["pending"]:
        raise KeyboardInterrupt
      start = time.perf_counter()
      state, metrics = run_chunk(state, end_epoch)
      # Waits for the chunk; read on the host (indexing the sharded
      # array would compile a program), gathered from every process.
      epoch_M, loss_MxC, accuracy_MxC = distributed.to_host(
          (state.epoch, metrics.loss_C, metrics.accuracy_C))
      done = int(epoch_M[0])
      train_seconds += time.perf_counter() - start
      loss_MxE[:, epoch:done] = loss_MxC[:num_models, :done - epoch]
      accuracy_MxE[:, epoch:done] = accuracy_MxC[:num_models, :done - epoch]
      check_finite(loss_MxE[:, epoch:done], epoch)
      remaining = (total_epochs - done) * train_seconds / (done - resumed_from)
      logging.info(
          "%s: epoch %d/%d  loss %.4f  accuracy %.4f  elapsed %.1fs  eta %.1fs",
          name, done, total_epochs, loss_MxE[:, done - 1].mean(),
          accuracy_MxE[:, done - 1].mean(), train_seconds, remaining)
      epoch_before, epoch = epoch, done
      if checkpointer is not None:
        start = time.perf_counter()
        checkpointer.save(done, {"state": state, "loss_E": loss_MxE,
                                 "accuracy_E": accuracy_MxE})
        if distributed.is_writer():
          with open(metrics_path, "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in metrics_rows(
                loss_MxE, accuracy_MxE, epoch_before, done))
        checkpoint_seconds += time.perf_counter() - start
        results.write_json_atomic(os.path.join(run_dir, TIMING_FILE), {
            "train_seconds": earlier.get("train_seconds", 0.0) + train_seconds,
            "checkpoint_seconds": (earlier.get("checkpoint_seconds", 0.0)
                                   + checkpoint_seconds)})
      _progress["epoch"] = done
      if on_state is not None:
        on_state(done, state)
      if on_chunk is not None:
        on_chunk(epoch_before, done, loss_MxE, accuracy_MxE)
      chunks += 1
      if _interrupt["pending"]:
        raise KeyboardInterrupt
      if stop_after_chunks is not None and chunks >= stop_after_chunks:
        raise Interrupted(f"stopped after {chunks} chunks at epoch {done}")
  except distributed.PeerLostError:
    skip_wait = True  # a save in flight waits for the lost process
    raise
  except KeyboardInterrupt:
    # Raised between chunks for a first Ctrl-C, anywhere for a second one
    # (inside orbax's save too, after which waiting for it can hang); the
    # binary ends at once (common.py) and a resume takes the newest
    # complete checkpoint, so the save in flight is not waited for.
    skip_wait = True
    raise
  finally:
    if in_main:
      signal.signal(signal.SIGINT, previous_handler)
    if checkpointer is not None and not skip_wait:
      start = time.perf_counter()
      with distributed.bounded("the last checkpoint's save"):
        checkpointer.wait()
        checkpointer.close()
      checkpoint_seconds += time.perf_counter() - start
  return ChunkedRun(
      state, loss_MxE, accuracy_MxE,
      earlier.get("train_seconds", 0.0) + train_seconds,
      earlier.get("checkpoint_seconds", 0.0) + checkpoint_seconds,
      resumed_from, train_seconds)
