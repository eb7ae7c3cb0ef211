"""The runner: a task's programs compiled over the devices (`compile_task`);
its models trained chunk by chunk, each chunk checkpointed in a run folder so
that a rerun resumes bit-identically, then scored on fresh test sequences
(`run`)."""

import os
import signal
import threading
import time
from typing import Any, Callable, NamedTuple

from absl import logging
import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from echo_jax.core import config as config_lib
from echo_jax.core import data as data_lib
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import train as train_lib
from echo_jax.runtime import checkpoint
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.tasks import task as task_lib

DEFAULT_CHUNK_EPOCHS = 1000
# Model-updates per device and chunk at most by default: a progress line
# and a checkpoint every few seconds, also when an epoch is long.
CHUNK_MODEL_UPDATES = 200_000
# Test sequences scored per call: evaluation's memory stays bounded whatever
# --eval_sequences (an XLA:CPU program's first call kept ~100 KB a batch).
PIECE_SEQUENCES = 16_000
PROGRESS_SECONDS = 30.0
MEMORY_ENV = "ECHO_JAX_MEMORY_BYTES"  # a share of a machine, in bytes


def default_chunk_epochs(task: task_lib.Task, models_per_device: int) -> int:
  """DEFAULT_CHUNK_EPOCHS, or fewer: at most CHUNK_MODEL_UPDATES."""
  updates = task.train.updates_per_epoch * models_per_device
  return max(1, min(DEFAULT_CHUNK_EPOCHS, CHUNK_MODEL_UPDATES // updates))


def check_memory(config: config_lib.EchoConfig, devices: list[Any],
                 bytes_per_device: int, models: int) -> None:
  """ConfigError (one line naming the flags to change) unless `models`
  models needing `bytes_per_device` on each of `devices` fit in
  $ECHO_JAX_MEMORY_BYTES, the accelerators' memory or 80% of the host's."""
  need = bytes_per_device * len(devices)
  stats = devices[0].memory_stats() if devices[0].platform != "cpu" else None
  if MEMORY_ENV in os.environ:
    available, where = int(os.environ[MEMORY_ENV]), f"${MEMORY_ENV}"
  elif stats and "bytes_limit" in stats:
    available = int(stats["bytes_limit"]) * len(devices)
    where = f"{len(devices)} x {devices[0].device_kind}"
  else:
    available = int(0.8 * os.sysconf("SC_PAGE_SIZE")
                    * os.sysconf("SC_PHYS_PAGES"))
    where = "this machine's memory"
  if need > available:
    raise config_lib.ConfigError(
        f"the run needs about {need / 1e9:.3g} GB ({models} models x "
        f"{need / models / 1e6:.4g} MB) but {where} allows "
        f"{available / 1e9:.3g} GB: lower --hidden (={config.hidden}), "
        f"--n_unique (={config.n_unique}), --seeds (={config.seeds}) or "
        f"--eval_sequences (={config.eval_sequences})")


class Compiled(NamedTuple):
  task: task_lib.Task
  mesh: Mesh
  keys_M: chex.Array              # sharded; padded to a multiple of devices
  extra: tuple[chex.Array, ...]   # (variants_M,) sharded; () without variants
  init: Any                       # (keys_M[, variants_M]) -> TrainState_M
  data: Any                       # (state_M[, variants_M]) -> data_M
  fit: Any                        # (state_M, data_M, end_epoch[, variants_M])
  evaluate: dict[int, Any]        # test sequences -> compiled evaluation
  chunk_epochs: int
  compile_seconds: float

  @property
  def num_models(self) -> int:
    """Models in the program, padding included."""
    return int(self.keys_M.shape[0])

  def initial_state(self):
    """Every model's TrainState at epoch 0."""
    return self.init(self.keys_M, *self.extra)

  def chunk(self, state_M, end_epoch: int):
    """One chunk of epochs: its data, then its fit (donating state_M)."""
    return self.fit(state_M, self.data(state_M, *self.extra),
                    np.int32(end_epoch), *self.extra)


def compile_task(task: task_lib.Task, max_devices: int | None = None,
                 chunk_epochs: int | None = None,
                 with_evaluation: bool = True) -> Compiled:
  """Compiles the task's programs for a chunk of `chunk_epochs` epochs
  (default: `default_chunk_epochs`, at most the run); ConfigError (one
  line) if they cannot fit in memory. `with_evaluation=False`: training
  only (timing runs)."""
  config = task.config
  mesh = parallel.seed_mesh(task.num_models, max_devices)
  count = parallel.padded_models(task.num_models, mesh)
  devices = [d for d in mesh.devices.flat
             if d.process_index == jax.process_index()]
  per_device = count // mesh.size
  chunk_epochs = min(chunk_epochs or default_chunk_epochs(task, per_device),
                     config.epochs)
  # Parameters, Adam's moments and gradients: an oversized model is refused
  # before anything compiles.
  params = jax.eval_shape(task.train.init,
                          jax.ShapeDtypeStruct((2,), jnp.uint32),
                          jax.ShapeDtypeStruct((), jnp.int32)).params
  check_memory(config, devices, 4 * parallel.tree_bytes(params) * per_device,
               per_device * len(devices))
  sharding = parallel.seed_sharding(mesh)
  keys_M, variants_M = task.model_keys(count)
  keys_M, variants_M = parallel.put((keys_M, variants_M), sharding)
  extra = () if variants_M is None else (variants_M,)
  start = time.perf_counter()
  init, data, fit, evaluate = parallel.programs(
      task, mesh, chunk_epochs, parallel.models_per_block())
  with_sharding = lambda tree: jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)
  lowered = [init.lower(keys_M, *extra)]
  state = with_sharding(lowered[0].out_info)
  lowered.append(data.lower(state, *extra))
  lowered.append(fit.lower(state, with_sharding(lowered[1].out_info),
                           np.int32(0), *extra))
  num, sizes = config.eval_sequences, []
  if with_evaluation:  # a piece of PIECE_SEQUENCES and a shorter last one
    sizes = sorted({min(num, PIECE_SEQUENCES), num % PIECE_SEQUENCES or num})
  for size in sizes:
    test_set = data_lib.TestSet(
        jax.ShapeDtypeStruct((size, 2), jnp.uint32,
                             sharding=NamedSharding(mesh, P())),
        config.length, config.n_unique)
    lowered.append(evaluate.lower(state.params, test_set, *extra))
  # A chunk's data are integer arithmetic (random bits, framing), exact at
  # any optimisation level; at LLVM's -O1 a streaming task's compiled in
  # 0.4 s instead of 3.9 s.
  light = ({"xla_backend_optimization_level": 1}
           if jax.default_backend() == "cpu" else None)
  init, data, fit, *evaluations = programs = [
      program.compile(light if i == 1 else None)
      for i, program in enumerate(lowered)]
  need = [p.memory_analysis() for p in programs]  # XLA's word, per device
  check_memory(config, devices, max(
      m.argument_size_in_bytes + m.output_size_in_bytes
      + m.temp_size_in_bytes - m.alias_size_in_bytes for m in need),
               per_device * len(devices))
  return Compiled(task, mesh, keys_M, extra, init, data, fit,
                  dict(zip(sizes, evaluations)), chunk_epochs,
                  time.perf_counter() - start)


class RunOutput(NamedTuple):
  """A finished run, real models only (model m: variant m // seeds, seed
  m % seeds)."""
  compiled: Compiled
  params: chex.ArrayTree              # host arrays, (M, ...)
  loss_MxE: np.ndarray
  accuracy_MxE: np.ndarray
  evaluation: evaluate_lib.Scores     # host arrays, models first
  timing: dict[str, Any]              # seconds, chunk length, resumed epoch
  diverged: list[int | None]          # epoch each model diverged, or None

  @property
  def task(self) -> task_lib.Task:
    return self.compiled.task

  def by_variant(self, x: np.ndarray) -> np.ndarray:
    """(M, ...) -> (variants, seeds, ...)."""
    return x.reshape((-1, self.task.config.seeds) + x.shape[1:])

  def diverged_per_seed(self, variant: int) -> list[int | None]:
    """The epoch each seed of variant `variant` diverged at, or None."""
    seeds = self.task.config.seeds
    return self.diverged[variant * seeds:(variant + 1) * seeds]

  def trained(self, by_variant: bool = False) -> train_lib.TrainResult:
    """Parameters and learning curves, (M, ...) or (variants, seeds, ...)."""
    split = self.by_variant if by_variant else (lambda x: x)
    return train_lib.TrainResult(jax.tree.map(split, self.params),
                                 split(self.loss_MxE),
                                 split(self.accuracy_MxE))


def score(compiled: Compiled, params_M, test_keys_Sx2: np.ndarray
          ) -> evaluate_lib.Scores:
  """The real models' Scores on a test set's keys, piece by piece."""
  config, num = compiled.task.config, test_keys_Sx2.shape[0]
  pieces, reported = [], time.monotonic()
  for start in range(0, num, PIECE_SEQUENCES):
    keys = parallel.put(test_keys_Sx2[start:start + PIECE_SEQUENCES],
                        NamedSharding(compiled.mesh, P()))
    pieces.append(parallel.to_host(compiled.evaluate[keys.shape[0]](
        params_M, data_lib.TestSet(keys, config.length, config.n_unique),
        *compiled.extra)))
    if time.monotonic() - reported >= PROGRESS_SECONDS:
      reported = time.monotonic()
      logging.info("%s: evaluated %d/%d test sequences",
                   compiled.task.name, start + keys.shape[0], num)
  sums = jax.tree.map(lambda *values: sum(values[1:], values[0]),
                      *[piece.sums for piece in pieces])
  return jax.tree.map(lambda x: x[:compiled.task.num_models],
                      evaluate_lib.Scores(sums, pieces[0].first))


def check_finite(loss_MxE: np.ndarray, first_epoch: int) -> None:
  """FloatingPointError naming the first epoch with a NaN or infinite loss."""
  bad = ~np.isfinite(loss_MxE)
  if bad.any():
    model_index, offset = np.argwhere(bad)[0]
    raise FloatingPointError(
        f"non-finite training loss at epoch {first_epoch + offset + 1} "
        f"(model {model_index}); lower --learning_rate, or rerun with "
        "--debug_nans to find the operation")


def metrics_rows(task: task_lib.Task, loss_MxE: np.ndarray,
                 accuracy_MxE: np.ndarray, first: int, end: int
                 ) -> list[dict[str, Any]]:
  """metrics.jsonl rows for epochs [first, end) (numbered from 1): the mean
  over all models, and each seed's value (of each variant: its mean too)."""
  # Whole-chunk conversions (per-epoch ones cost more than a checkpoint),
  # epoch-major and contiguous: each mean adds in a one-epoch array's order.
  def columns(values_MxE):
    values_CxM = np.ascontiguousarray(values_MxE[:, first:end].T)
    values_CxVxS = values_CxM.reshape(end - first, len(task.variants or [0]),
                                      task.config.seeds)
    return (values_CxM.mean(1).tolist(), values_CxVxS.mean(2).tolist(),
            values_CxVxS.tolist())

  (loss, loss_V, loss_VxS), (accuracy, accuracy_V, accuracy_VxS) = (
      columns(loss_MxE), columns(accuracy_MxE))
  rows = [{"epoch": first + c + 1, "loss": loss[c], "accuracy": accuracy[c]}
          for c in range(end - first)]
  for c, row in enumerate(rows):
    if task.variants is None:
      row.update(loss_per_seed=loss_VxS[c][0],
                 accuracy_per_seed=accuracy_VxS[c][0])
    else:
      row["per_variant"] = {
          name: {"loss": loss_V[c][i], "accuracy": accuracy_V[c][i],
                 "loss_per_seed": loss_VxS[c][i],
                 "accuracy_per_seed": accuracy_VxS[c][i]}
          for i, name in enumerate(task.row_names())}
  return rows


class Interrupted(BaseException):
  """SIGINT (Ctrl-C) or SIGTERM (what SLURM sends at preemption, scancel or
  the time limit) stopped the run; `signum` says which."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


def interrupt(signum, frame):
  """A signal handler: stops the process with `Interrupted`."""
  del frame
  raise Interrupted(signum)


# The run in training, for the line a signal ends it with. A signal is acted
# on between chunks, after the checkpoint was handed to orbax (raised inside
# orbax's save, one was swallowed or hung it); a second one at once.
_progress = {"name": None, "epoch": 0, "total": 0, "signal": None}


def _defer(signum, frame):
  if _progress["signal"] is not None:
    interrupt(signum, frame)
  _progress["signal"] = signum


def where() -> str:
  """How far training got: 'at epoch E/T of NAME', or 'before training'."""
  if _progress["name"] is None:
    return "before training"
  return (f"at epoch {_progress['epoch']}/{_progress['total']} of "
          f"{_progress['name']}")


def interrupted_message(signum: int) -> str:
  """What a binary stopped by `signum` says: where it stopped, how to go on."""
  what = "interrupted" if signum == signal.SIGINT else (
      f"terminated ({signal.Signals(signum).name})")
  resume = "" if _progress["name"] is None else " to resume"
  return f"{what} {where()}; rerun the same command{resume}"


# A model whose training loss rises this far above a uniform guess's
# (ln n_unique) has diverged: finite, but it learns nothing any more.
DIVERGENCE_FACTOR = 1000.0


# on_chunk(first_epoch, end_epoch, loss_MxE, accuracy_MxE, params_M) after
# each chunk's checkpoint (e.g. TensorBoard summaries), and once after a
# resume with first_epoch == end_epoch (a kill may have cut the last call
# short). loss and accuracy: host arrays of the real models; params_M: on
# the devices, padding included (for `score`).
ChunkCallback = Callable[[int, int, np.ndarray, np.ndarray, Any], None]


def run(compiled: Compiled, run_dir: str | None = None,
        on_chunk: ChunkCallback | None = None) -> RunOutput:
  """Trains every model chunk by chunk, then scores them on the run's test
  set. With `run_dir` (`checkpoint.RunFolder`), every chunk is checkpointed
  and a rerun resumes."""
  task, config = compiled.task, compiled.task.config
  num_models, total = task.num_models, config.epochs
  test_keys_Sx2 = train_lib.test_keys(config.seed, config.eval_sequences)
  state = compiled.initial_state()
  loss_MxE = np.zeros((num_models, total), np.float32)
  accuracy_MxE = np.zeros((num_models, total), np.float32)
  folder, earlier, resumed_from = None, {}, 0
  if run_dir is not None:
    folder = checkpoint.RunFolder(run_dir, task.identity())
    restored = folder.restore(
        {"state": state, "loss_E": loss_MxE, "accuracy_E": accuracy_MxE})
    if restored is not None:
      state = parallel.put(restored["state"],
                           parallel.seed_sharding(compiled.mesh))
      loss_MxE, accuracy_MxE = restored["loss_E"], restored["accuracy_E"]
      resumed_from = int(restored["state"].epoch[0])
      if (resumed_from < total and resumed_from % compiled.chunk_epochs
          and total % compiled.chunk_epochs == 0):
        # A chunk length that divides the run compiles without the end-of-run
        # guard: from another start its last chunk would run past the end.
        raise config_lib.ConfigError(
            f"{run_dir} was checkpointed at epoch {resumed_from}, not a "
            f"multiple of chunk_epochs={compiled.chunk_epochs}: resume with "
            "the --chunk_epochs it ran with")
      logging.info("%s: resuming at epoch %d/%d from %s", task.name,
                   resumed_from, total, run_dir)
      earlier = folder.timing()
    parallel.check_same_everywhere(
        str(resumed_from), f"the checkpoint it resumes {task.name} from",
        "put --workdir on a file system every process shares")
    # The checkpoint is the truth: drop rows a kill left beyond it (or a
    # torn last line), then append one chunk at a time.
    files.write_jsonl_atomic(folder.metrics, metrics_rows(
        task, loss_MxE, accuracy_MxE, 0, resumed_from))
  if resumed_from and on_chunk is not None:
    on_chunk(resumed_from, resumed_from, loss_MxE, accuracy_MxE, state.params)
  epoch, train_seconds, checkpoint_seconds = resumed_from, 0.0, 0.0
  # A rerun of a finished run keeps the run's own time.
  totals = lambda: {
      "train_seconds": earlier.get("train_seconds", 0.0) + train_seconds,
      "checkpoint_seconds": (earlier.get("checkpoint_seconds", 0.0)
                             + checkpoint_seconds)}
  _progress.update(name=task.name, epoch=epoch, total=total, signal=None)
  in_main = threading.current_thread() is threading.main_thread()
  signums = (signal.SIGINT, signal.SIGTERM)
  if in_main:
    previous = [signal.signal(s, _defer) for s in signums]
  wait_for_save = True  # not after a lost peer or a signal
  diverged_loss = DIVERGENCE_FACTOR * np.log(config.n_unique)
  warned = False  # one warning, also for an epoch before a resume
  try:
    while epoch < total:
      start = time.perf_counter()
      state, metrics = compiled.chunk(state, total)
      # Waits for the chunk; gathered from every process.
      epoch_M, loss_MxC, accuracy_MxC = parallel.to_host(
          (state.epoch, metrics.loss_C, metrics.accuracy_C))
      done = int(epoch_M[0])
      train_seconds += time.perf_counter() - start
      loss_MxE[:, epoch:done] = loss_MxC[:num_models, :done - epoch]
      accuracy_MxE[:, epoch:done] = accuracy_MxC[:num_models, :done - epoch]
      check_finite(loss_MxE[:, epoch:done], epoch)
      if not warned and (loss_MxE[:, :done] > diverged_loss).any():
        warned = True
        m, e = np.argwhere(loss_MxE[:, :done] > diverged_loss)[0]
        logging.warning(
            "%s: model %d diverged: its training loss rose to %.3g at epoch "
            "%d, over %gx a uniform guess's (%.3g); lower --learning_rate "
            "(diverged models are marked in the record)", task.name, m,
            loss_MxE[m, e], e + 1, DIVERGENCE_FACTOR,
            np.log(config.n_unique))
      logging.info(
          "%s: epoch %d/%d  loss %.4f  accuracy %.4f  elapsed %.1fs  eta %.1fs",
          task.name, done, total, loss_MxE[:, done - 1].mean(),
          accuracy_MxE[:, done - 1].mean(), train_seconds,
          (total - done) * train_seconds / (done - resumed_from))
      epoch_before, epoch = epoch, done
      if folder is not None:
        start = time.perf_counter()
        folder.save(done, {"state": state, "loss_E": loss_MxE,
                           "accuracy_E": accuracy_MxE}, metrics_rows(
                               task, loss_MxE, accuracy_MxE, epoch_before,
                               done))
        checkpoint_seconds += time.perf_counter() - start
        folder.write_timing(totals())
      _progress["epoch"] = done
      if on_chunk is not None:
        on_chunk(epoch_before, done, loss_MxE, accuracy_MxE, state.params)
      if _progress["signal"] is not None:
        interrupt(_progress["signal"], None)
  except (Interrupted, parallel.PeerLostError):
    # A resume takes the newest complete checkpoint: the save in flight is
    # not waited for (it may wait for the lost process, or hang in orbax).
    wait_for_save = False
    raise
  finally:
    if in_main:
      for s, handler in zip(signums, previous):
        signal.signal(s, handler)
    if folder is not None and wait_for_save:
      start = time.perf_counter()
      folder.close()
      checkpoint_seconds += time.perf_counter() - start
  start = time.perf_counter()
  evaluation = (score(compiled, state.params, test_keys_Sx2)
                if compiled.evaluate else None)
  timing = {
      "compile_seconds": compiled.compile_seconds, **totals(),
      "train_seconds_this_process": train_seconds,
      "eval_seconds": time.perf_counter() - start,
      "chunk_epochs": compiled.chunk_epochs,
      "resumed_from_epoch": resumed_from}
  over_MxE = loss_MxE > diverged_loss
  diverged = [int(np.argmax(row)) + 1 if row.any() else None
              for row in over_MxE]
  params = jax.tree.map(lambda x: x[:num_models],
                        parallel.to_host(state.params))
  return RunOutput(compiled, params, loss_MxE, accuracy_MxE, evaluation,
                   timing, diverged)


def run_task(task: task_lib.Task, max_devices: int | None = None,
             run_dir: str | None = None, chunk_epochs: int | None = None,
             on_chunk: ChunkCallback | None = None) -> RunOutput:
  """`compile_task`, then `run`."""
  return run(compile_task(task, max_devices, chunk_epochs), run_dir, on_chunk)
