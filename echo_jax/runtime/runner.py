"""The runner: a task's models compiled over the devices, trained in
checkpointed chunks, then scored on fresh test sequences.

`compile_task` lays a task's models (variants x seeds) over the devices and
compiles its programs (`parallel.programs`): initialisation, one chunk of
epochs of `task.train`, evaluation. `run` trains them chunk by chunk; with a
run folder it checkpoints after every chunk and appends the chunk's epochs
to metrics.jsonl, and a rerun with the same folder resumes from the newest
checkpoint, bit-identical to an uninterrupted run (epoch e trains on
fold_in(data_key, e) whatever the chunks). The `RunOutput` is what the record
writers (`report.records`) turn into each binary's files.
"""

import json
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
# Model-updates a device runs per chunk at most by default: a progress line
# and a checkpoint every few seconds on a CPU core at the tutorial's sizes,
# also when an epoch is long (--length=100000: 20,000 updates an epoch).
CHUNK_MODEL_UPDATES = 200_000
# Test sequences scored per call: evaluation's memory stays bounded whatever
# --eval_sequences (on XLA:CPU an evaluation program's first call kept
# ~100 KB per batch it scored).
PIECE_SEQUENCES = 16_000
PROGRESS_SECONDS = 30.0
# Of physical memory, what a run's programs may plan to use on a CPU.
USABLE_FRACTION = 0.8
MEMORY_ENV = "ECHO_JAX_MEMORY_BYTES"  # a share of a machine, in bytes


def model_keys(config: config_lib.EchoConfig, count: int) -> np.ndarray:
  """Training key of model i < count: fold_in(fold_in(seed, 0), i), so
  adding seeds never changes the earlier ones."""
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
  return np.asarray(jax.vmap(lambda i: jax.random.fold_in(base, i))(
      jnp.arange(count)))


def test_keys(config: config_lib.EchoConfig) -> np.ndarray:
  """The keys of the run's test set: every model is scored on the same
  config.eval_sequences sequences, drawn from fold_in(seed, 1) (disjoint
  from training), 8 bytes a sequence (`data.TestSet`)."""
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
  return np.asarray(jax.random.split(key, config.eval_sequences))


def variant_grid(config: config_lib.EchoConfig, variants: tuple[int, ...],
                 count: int) -> tuple[np.ndarray, np.ndarray]:
  """Keys and variant values of all models, variant-major, padded to `count`
  by repeating model 0 (padding is discarded). Every variant uses the same
  seeds' keys: variants are compared on paired initialisations and data."""
  keys_S = model_keys(config, config.seeds)
  keys_M = np.concatenate([keys_S] * len(variants))
  variants_M = np.repeat(np.asarray(variants, np.int32), config.seeds)
  pad = count - len(variants_M)
  return (np.concatenate([keys_M, np.repeat(keys_M[:1], pad, 0)]),
          np.concatenate([variants_M, np.repeat(variants_M[:1], pad)]))


def default_chunk_epochs(task: task_lib.Task, models_per_device: int) -> int:
  """DEFAULT_CHUNK_EPOCHS, fewer where an epoch's updates times a device's
  models exceed CHUNK_MODEL_UPDATES."""
  updates = task.train.updates_per_epoch * models_per_device
  return max(1, min(DEFAULT_CHUNK_EPOCHS, CHUNK_MODEL_UPDATES // updates))


def local_devices(mesh: Mesh) -> list[Any]:
  return [d for d in mesh.devices.flat
          if d.process_index == jax.process_index()]


def available_bytes(mesh: Mesh) -> tuple[int, str]:
  """(bytes this process's devices of `mesh` may use, what that is)."""
  if MEMORY_ENV in os.environ:
    return int(os.environ[MEMORY_ENV]), f"${MEMORY_ENV}"
  local = local_devices(mesh)
  stats = local[0].memory_stats() if local[0].platform != "cpu" else None
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"]) * len(local), (
        f"{len(local)} x {local[0].device_kind}")
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return int(total * USABLE_FRACTION), "this machine's memory"


def check_memory(config: config_lib.EchoConfig, mesh: Mesh, need: int,
                 models: int) -> None:
  """ConfigError (one line naming the flags to change) if `need` bytes
  (for `models` models on this process's devices) do not fit."""
  available, where = available_bytes(mesh)
  if need > available:
    raise config_lib.ConfigError(
        f"the run needs about {need / 1e9:.3g} GB ({models} models x "
        f"{need / models / 1e6:.4g} MB) but {where} allows "
        f"{available / 1e9:.3g} GB: lower --hidden (={config.hidden}), "
        f"--n_unique (={config.n_unique}), --seeds (={config.seeds}) or "
        f"--eval_sequences (={config.eval_sequences})")


def program_bytes(program) -> int:
  """What XLA says one device needs to run a compiled program."""
  stats = program.memory_analysis()
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes
          + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


class Compiled(NamedTuple):
  task: task_lib.Task
  mesh: Mesh
  keys_M: chex.Array              # sharded; padded to a multiple of devices
  variants_M: chex.Array | None   # sharded, or None (task without variants)
  init: Any                       # keys_M -> TrainState_M at epoch 0
  data: Any                       # (state_M[, variants_M]) -> data_M
  fit: Any                        # (state_M, data_M, end_epoch[, variants_M])
  evaluate: dict[int, Any]        # piece size -> compiled evaluation
  chunk_epochs: int
  compile_seconds: float

  @property
  def num_models(self) -> int:
    """Models in the program, padding included."""
    return int(self.keys_M.shape[0])

  def extra(self) -> tuple[Any, ...]:
    return () if self.variants_M is None else (self.variants_M,)

  def chunk(self, state_M, end_epoch: int):
    """One chunk of epochs: its data, then its fit (donating state_M)."""
    return self.fit(state_M, self.data(state_M, *self.extra()),
                    np.int32(end_epoch), *self.extra())


def compile_task(task: task_lib.Task, max_devices: int | None = None,
                 chunk_epochs: int | None = None,
                 with_evaluation: bool = True) -> Compiled:
  """Compiles initialisation, a chunk of `chunk_epochs` epochs (default:
  `default_chunk_epochs`, at most the run) and evaluation of the task's
  models; ConfigError (one line) if they cannot fit in memory.
  `with_evaluation=False` compiles training only (timing runs; `run` then
  cannot score)."""
  config = task.config
  mesh = parallel.seed_mesh(task.num_models, max_devices)
  count = parallel.padded_models(task.num_models, mesh)
  devices = local_devices(mesh)
  local = count // mesh.size * len(devices)  # models on this process
  chunk_epochs = min(chunk_epochs or default_chunk_epochs(
      task, count // mesh.size), config.epochs)
  # Parameters, Adam's moments and gradients, before anything compiles: an
  # oversized model is refused at once.
  params = jax.eval_shape(task.train.init,
                          jax.ShapeDtypeStruct((2,), jnp.uint32)).params
  check_memory(config, mesh, 4 * parallel.tree_bytes(params) * local, local)
  sharding = parallel.seed_sharding(mesh)
  if task.variants is None:
    keys_M = parallel.put(model_keys(config, count), sharding)
    variants_M = None
  else:
    keys_M, variants_M = parallel.put(
        variant_grid(config, task.variants, count), sharding)
  extra = () if variants_M is None else (variants_M,)
  start = time.perf_counter()
  init, data, fit, evaluate = parallel.programs(
      task, mesh, chunk_epochs, parallel.models_per_block())
  with_sharding = lambda tree: jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)
  lowered = [init.lower(keys_M)]
  state = with_sharding(lowered[0].out_info)
  lowered.append(data.lower(state, *extra))
  lowered.append(fit.lower(state, with_sharding(lowered[1].out_info),
                           np.int32(0), *extra))
  sizes = []
  if with_evaluation:
    replicated = NamedSharding(mesh, P())
    num = config.eval_sequences
    sizes = sorted({min(num, PIECE_SEQUENCES), num % PIECE_SEQUENCES or num})
    for size in sizes:
      test_set = data_lib.TestSet(
          jax.ShapeDtypeStruct((size, 2), jnp.uint32, sharding=replicated),
          config.length, config.n_unique)
      lowered.append(evaluate.lower(state.params, test_set, *extra))
  programs = [program.compile() for program in lowered]
  check_memory(config, mesh,
               max(map(program_bytes, programs)) * len(devices), local)
  init, data, fit, *evaluations = programs
  return Compiled(task, mesh, keys_M, variants_M, init, data, fit,
                  dict(zip(sizes, evaluations)), chunk_epochs,
                  time.perf_counter() - start)



class RunOutput(NamedTuple):
  """A finished run; per-model leaves keep the real models only (variant-
  major: model m is variant m // seeds, seed m % seeds)."""
  compiled: Compiled
  params: chex.ArrayTree              # host arrays, (M, ...)
  loss_MxE: np.ndarray
  accuracy_MxE: np.ndarray
  evaluation: evaluate_lib.Scores     # host arrays, models first
  timing: dict[str, Any]              # seconds, chunk length, resumed epoch
  # With `run(..., evaluate_chunks=True)`: end epoch of each chunk -> the
  # models' evaluation sums then, as JSON holds them; else empty.
  chunk_evaluations: dict[int, Any]

  @property
  def task(self) -> task_lib.Task:
    return self.compiled.task

  def by_variant(self, x: np.ndarray) -> np.ndarray:
    """(M, ...) -> (variants, seeds, ...)."""
    return x.reshape((-1, self.task.config.seeds) + x.shape[1:])

  def trained(self, by_variant: bool = False) -> train_lib.TrainResult:
    """Parameters and learning curves, (M, ...) or (variants, seeds, ...)."""
    split = self.by_variant if by_variant else (lambda x: x)
    return train_lib.TrainResult(jax.tree.map(split, self.params),
                                 split(self.loss_MxE),
                                 split(self.accuracy_MxE))


def score(compiled: Compiled, params_M, test_keys_Sx2: np.ndarray
          ) -> evaluate_lib.Scores:
  """The models' Scores on the test set of `test_keys_Sx2`, piece by piece
  (`PIECE_SEQUENCES`), as host arrays (real models only)."""
  config, num = compiled.task.config, test_keys_Sx2.shape[0]
  replicated = NamedSharding(compiled.mesh, P())
  pieces, reported = [], time.monotonic()
  for start in range(0, num, PIECE_SEQUENCES):
    keys = test_keys_Sx2[start:start + PIECE_SEQUENCES]
    test_set = data_lib.TestSet(parallel.put(keys, replicated),
                                config.length, config.n_unique)
    pieces.append(parallel.to_host(compiled.evaluate[keys.shape[0]](
        params_M, test_set, *compiled.extra())))
    if time.monotonic() - reported >= PROGRESS_SECONDS:
      reported = time.monotonic()
      logging.info("%s: evaluated %d/%d test sequences",
                   compiled.task.name, start + keys.shape[0], num)
  sums = jax.tree.map(lambda *values: sum(values[1:], values[0]),
                      *[piece.sums for piece in pieces])
  unpad = lambda x: x[:compiled.task.num_models]
  return jax.tree.map(unpad, evaluate_lib.Scores(sums, pieces[0].first))


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or infinite loss; the message names the epoch."""


def check_finite(loss_MxE: np.ndarray, first_epoch: int) -> None:
  bad = ~np.isfinite(loss_MxE)
  if bad.any():
    model_index, offset = np.argwhere(bad)[0]
    raise NonFiniteLossError(
        f"non-finite training loss at epoch {first_epoch + offset + 1} "
        f"(model {model_index}); lower --learning_rate, or rerun with "
        "--debug_nans to find the operation")


def metrics_rows(task: task_lib.Task, loss_MxE: np.ndarray,
                 accuracy_MxE: np.ndarray, first: int, end: int
                 ) -> list[dict[str, Any]]:
  """metrics.jsonl rows for epochs [first, end) (numbered from 1): the mean
  over all models, and each seed's value (of each variant: its mean too)."""
  # Whole-chunk numpy conversions, epoch-major and contiguous (so each
  # mean adds in the same order as a one-epoch array's): per-epoch numpy
  # calls cost more than the checkpoint they accompany.
  def columns(values_MxE):
    values_CxM = np.ascontiguousarray(values_MxE[:, first:end].T)
    values_CxVxS = values_CxM.reshape(
        end - first, len(task.variants or (0,)), task.config.seeds)
    return (values_CxM.mean(1).tolist(), values_CxVxS.mean(2).tolist(),
            values_CxVxS.tolist())

  (loss, loss_V, loss_VxS), (accuracy, accuracy_V, accuracy_VxS) = (
      columns(loss_MxE), columns(accuracy_MxE))
  if task.variants is None:
    return [{"epoch": first + c + 1, "loss": loss[c], "accuracy": accuracy[c],
             "loss_per_seed": loss_VxS[c][0],
             "accuracy_per_seed": accuracy_VxS[c][0]}
            for c in range(end - first)]
  return [{"epoch": first + c + 1, "loss": loss[c], "accuracy": accuracy[c],
           "per_variant": {
               name: {"loss": loss_V[c][i], "accuracy": accuracy_V[c][i],
                      "loss_per_seed": loss_VxS[c][i],
                      "accuracy_per_seed": accuracy_VxS[c][i]}
               for i, name in enumerate(task.row_names())}}
          for c in range(end - first)]


# The run this process is training and its epochs done, for the line a
# Ctrl-C ends with; and whether a Ctrl-C is pending. Ctrl-C is acted on
# between chunks, after the chunk's checkpoint was handed to orbax (one
# raised inside orbax's save was seen to be swallowed or to hang it); a
# second Ctrl-C interrupts at once.
_progress = {"name": None, "epoch": 0, "total": 0, "interrupt": False}


def _defer_interrupt(signum, frame):
  del signum, frame
  if _progress["interrupt"]:
    raise KeyboardInterrupt
  _progress["interrupt"] = True


def interrupted_message() -> str:
  """What an interrupted binary says: where it stopped, how to go on."""
  if _progress["name"] is None:
    return "interrupted before training began; rerun the same command"
  return (f"interrupted at epoch {_progress['epoch']}/{_progress['total']} "
          f"of {_progress['name']}; rerun the same command to resume")


TIMING_FILE = "timing.json"
CHUNK_EVALUATIONS_FILE = "chunk_evaluations.json"

def read_timing(run_dir: str) -> dict[str, float]:
  """The training and checkpoint seconds of a run folder's earlier
  processes (none where no file, or a damaged one, holds them)."""
  try:
    return files.read_json(os.path.join(run_dir, TIMING_FILE))
  except files.UnreadableStateError:
    return {}


# on_chunk(first_epoch, end_epoch, loss_MxE, accuracy_MxE), after each chunk
# (e.g. TensorBoard summaries); M counts the real models.
ChunkCallback = Callable[[int, int, np.ndarray, np.ndarray], None]


def run(compiled: Compiled, run_dir: str | None = None,
        on_chunk: ChunkCallback | None = None,
        evaluate_chunks: bool = False) -> RunOutput:
  """Trains every model chunk by chunk, then scores them on the run's test
  set. With `run_dir` (claimed for the task's identity), the state and the
  metrics so far are checkpointed after every chunk and a rerun resumes;
  metrics.jsonl there holds the epochs so far. With `evaluate_chunks` the
  models are also scored after every chunk (learning curves on fresh
  sequences, kept in the run folder for a resumed run)."""
  task, config = compiled.task, compiled.task.config
  num_models, total = task.num_models, config.epochs
  test_keys_Sx2 = test_keys(config)
  state = compiled.init(compiled.keys_M)
  loss_MxE = np.zeros((num_models, total), np.float32)
  accuracy_MxE = np.zeros((num_models, total), np.float32)
  checkpointer, earlier, resumed_from = None, {}, 0
  evaluations, evaluations_path = {}, None
  if run_dir is not None:
    checkpoint.claim_run_dir(run_dir, task.identity())
    # Orbax synchronises the processes of a multi-process run here.
    with parallel.bounded("opening the checkpoints"):
      checkpointer = checkpoint.Checkpointer(
          os.path.join(run_dir, "checkpoints"))
      restored = checkpointer.restore_latest(
          {"state": state, "loss_E": loss_MxE, "accuracy_E": accuracy_MxE})
    if restored is not None:
      state = parallel.put(restored["state"],
                           parallel.seed_sharding(compiled.mesh))
      loss_MxE, accuracy_MxE = restored["loss_E"], restored["accuracy_E"]
      resumed_from = int(restored["state"].epoch[0])
      logging.info("%s: resuming at epoch %d/%d from %s", task.name,
                   resumed_from, total, run_dir)
    parallel.check_same_everywhere(
        str(resumed_from), f"the checkpoint it resumes {task.name} from",
        "put --workdir on a file system every process shares")
    if resumed_from:
      earlier = read_timing(run_dir)
    # The checkpoint is the truth: drop rows a kill left beyond it (or a
    # torn last line), then append one chunk at a time.
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    files.write_jsonl_atomic(metrics_path, metrics_rows(
        task, loss_MxE, accuracy_MxE, 0, resumed_from))
    evaluations_path = os.path.join(run_dir, CHUNK_EVALUATIONS_FILE)
    if evaluate_chunks and os.path.exists(evaluations_path):
      evaluations = {int(epoch): sums for epoch, sums
                     in files.read_json(evaluations_path).items()}

  def evaluate_chunk(epoch):
    if not evaluate_chunks or epoch in evaluations:
      return  # resumed: scored before (the same bits)
    sums = score(compiled, state.params, test_keys_Sx2).sums
    # As JSON holds it (a tuple becomes a list), fresh or resumed.
    evaluations[epoch] = json.loads(json.dumps(jax.tree.map(
        lambda x: np.asarray(x).tolist(), sums)))
    if evaluations_path and parallel.is_writer():
      files.write_json_atomic(evaluations_path, {
          str(e): evaluations[e] for e in sorted(evaluations)})

  if resumed_from:
    evaluate_chunk(resumed_from)
  epoch, train_seconds, checkpoint_seconds = resumed_from, 0.0, 0.0
  _progress.update(name=task.name, epoch=epoch, total=total, interrupt=False)
  in_main = threading.current_thread() is threading.main_thread()
  if in_main:
    previous_handler = signal.signal(signal.SIGINT, _defer_interrupt)
  wait_for_save = True  # not after a lost peer or a Ctrl-C
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
      logging.info(
          "%s: epoch %d/%d  loss %.4f  accuracy %.4f  elapsed %.1fs  eta %.1fs",
          task.name, done, total, loss_MxE[:, done - 1].mean(),
          accuracy_MxE[:, done - 1].mean(), train_seconds,
          (total - done) * train_seconds / (done - resumed_from))
      epoch_before, epoch = epoch, done
      if checkpointer is not None:
        start = time.perf_counter()
        checkpointer.save(done, {"state": state, "loss_E": loss_MxE,
                                 "accuracy_E": accuracy_MxE})
        if parallel.is_writer():
          with open(metrics_path, "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in metrics_rows(
                task, loss_MxE, accuracy_MxE, epoch_before, done))
        checkpoint_seconds += time.perf_counter() - start
        files.write_json_atomic(os.path.join(run_dir, TIMING_FILE), {
            "train_seconds": earlier.get("train_seconds", 0.0) + train_seconds,
            "checkpoint_seconds": (earlier.get("checkpoint_seconds", 0.0)
                                   + checkpoint_seconds)})
      _progress["epoch"] = done
      evaluate_chunk(done)
      if on_chunk is not None:
        on_chunk(epoch_before, done, loss_MxE, accuracy_MxE)
      if _progress["interrupt"]:
        raise KeyboardInterrupt
  except (KeyboardInterrupt, parallel.PeerLostError):
    # A resume takes the newest complete checkpoint: the save in flight is
    # not waited for (it may wait for the lost process, or hang in orbax).
    wait_for_save = False
    raise
  finally:
    if in_main:
      signal.signal(signal.SIGINT, previous_handler)
    if checkpointer is not None and wait_for_save:
      start = time.perf_counter()
      checkpointer.close()
      checkpoint_seconds += time.perf_counter() - start
  start = time.perf_counter()
  evaluation = (score(compiled, state.params, test_keys_Sx2)
                if compiled.evaluate else None)
  timing = {
      "compile_seconds": compiled.compile_seconds,
      # A rerun of a finished run keeps the run's own time.
      "train_seconds": earlier.get("train_seconds", 0.0) + train_seconds,
      "train_seconds_this_process": train_seconds,
      "eval_seconds": time.perf_counter() - start,
      "checkpoint_seconds": (earlier.get("checkpoint_seconds", 0.0)
                             + checkpoint_seconds),
      "chunk_epochs": compiled.chunk_epochs,
      "resumed_from_epoch": resumed_from}
  params = jax.tree.map(lambda x: x[:num_models],
                        parallel.to_host(state.params))
  return RunOutput(compiled, params, loss_MxE, accuracy_MxE, evaluation,
                   timing, dict(sorted(evaluations.items())))


def run_task(task: task_lib.Task, max_devices: int | None = None,
             run_dir: str | None = None, chunk_epochs: int | None = None,
             on_chunk: ChunkCallback | None = None,
             evaluate_chunks: bool = False) -> RunOutput:
  """`compile_task`, then `run`."""
  return run(compile_task(task, max_devices, chunk_epochs), run_dir,
             on_chunk, evaluate_chunks)
