"""The one runner: a task's programs compiled, trained in chunks, evaluated.

Every experiment (the tutorial's three, the extensions, each sweep group,
the benchmark's timed runs) is a `tasks.task.Task`. `compile_task` compiles
its programs for all its models (variants x seeds) sharded over a 1-D device
mesh: initialisation, a chunk's data, a chunk's fit (`programs`) and
evaluation on the run's test set. `run` trains them chunk by chunk
(`chunked`: checkpoints after every chunk, bit-identical resume) and scores
them; the `RunOutput` it returns is what the record writers
(`report.records`) turn into each binary's files.
"""

import json
import os
import time
from typing import Any, Hashable, NamedTuple

from absl import logging
import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from echo_jax.core import data as data_lib
from echo_jax.core import train as train_lib
from echo_jax.runtime import chunked
from echo_jax.runtime import distributed
from echo_jax.runtime import keys as keys_lib
from echo_jax.runtime import memory
from echo_jax.runtime import programs
from echo_jax.runtime import results
from echo_jax.tasks import task as task_lib

DEFAULT_CHUNK_EPOCHS = 1000
# Model-updates a device runs per chunk by default: a chunk (and so a
# progress line and a checkpoint) every few seconds on a CPU core for the
# tutorial's sizes, so a long epoch (e.g. --length=100000: 20,000 updates)
# does not mean an hour without a word.
CHUNK_MODEL_UPDATES = 200_000


def chunk_length(chunk_epochs: int | None, epochs: int,
                 default: int = DEFAULT_CHUNK_EPOCHS) -> int:
  """Epochs per compiled chunk: as asked (else `default`), at most the
  whole run."""
  return min(chunk_epochs or default, epochs)


def default_chunk_epochs(task: task_lib.Task, models_per_device: int) -> int:
  """DEFAULT_CHUNK_EPOCHS, fewer where an epoch's updates times a device's
  models exceed CHUNK_MODEL_UPDATES per chunk."""
  updates = task.updates_per_epoch * models_per_device
  return max(1, min(DEFAULT_CHUNK_EPOCHS, CHUNK_MODEL_UPDATES // updates))


# Batches of a task's evaluator (`Task.eval_batch` sequences each) in one
# piece of a large test set: the runner scores it piece by piece with one
# compiled program. On XLA:CPU with two or more devices, the first
# execution of an evaluation program kept about 100 KB per batch it ran
# (cause not found), and later executions of the same program stay flat:
# in pieces, memory no longer grows with --eval_sequences.
EVAL_PIECE_BATCHES = 64
# Seconds between the progress lines of an evaluation in pieces.
EVAL_PROGRESS_SECONDS = 30.0


def piece_sequences(task: task_lib.Task) -> int:
  """Test sequences in each piece (the last may be shorter): all of them
  for a task that needs the whole test set at once."""
  num = task.config.eval_sequences
  if task.combine_pieces is None:
    return num
  return min(num, EVAL_PIECE_BATCHES * task.eval_batch)


class Evaluator:
  """A task's compiled evaluation of all its models on a test set held as
  host keys: scored in consecutive pieces of `piece_sequences` (one
  program; a shorter last piece compiles a second), the outputs combined by
  `task.combine_pieces`. Returns host arrays, models first."""

  def __init__(self, task: task_lib.Task, mesh: Mesh, params_spec,
               variants_M, program_key: str | None = None):
    evaluate = task.evaluator()
    if variants_M is None:
      self._local = jax.vmap(evaluate, in_axes=(0, None))
      self._specs = (P(programs.SEED_AXIS), P())
    else:
      self._local = jax.vmap(evaluate, in_axes=(0, None, 0))
      self._specs = (P(programs.SEED_AXIS), P(), P(programs.SEED_AXIS))
    self._task, self._mesh = task, mesh
    self._params_spec, self._variants_M = params_spec, variants_M
    self._program_key = program_key
    self._programs: dict[int, Any] = {}
    self.piece = piece_sequences(task)
    self.program(self.piece)

  def program(self, num_sequences: int):
    """The compiled evaluation of a piece of `num_sequences` sequences."""
    if num_sequences not in self._programs:
      args = (self._params_spec,
              programs.test_set_spec(self._task.config, num_sequences))
      if self._variants_M is not None:
        args += (self._variants_M,)
      self._programs[num_sequences] = programs.compile_program(
          programs.per_device(self._local, self._mesh, self._specs), args,
          self._mesh, self._program_key, f"evaluate/{num_sequences}")
    return self._programs[num_sequences]

  def __call__(self, params_M, test_keys_Sx2: np.ndarray):
    config, num = self._task.config, test_keys_Sx2.shape[0]
    extra = () if self._variants_M is None else (self._variants_M,)
    replicated = NamedSharding(self._mesh, P())
    outputs, reported = [], time.monotonic()
    for start in range(0, num, self.piece):
      keys = test_keys_Sx2[start:start + self.piece]
      test_set = data_lib.TestSet(distributed.put(keys, replicated),
                                  config.length, config.n_unique)
      outputs.append(distributed.to_host(
          self.program(keys.shape[0])(params_M, test_set, *extra)))
      if time.monotonic() - reported >= EVAL_PROGRESS_SECONDS:
        reported = time.monotonic()
        logging.info("%s: evaluated %d/%d test sequences", self._task.name,
                     start + keys.shape[0], num)
    if self._task.combine_pieces is None:
      return outputs[0]
    return self._task.combine_pieces(outputs, num)


class Compiled(NamedTuple):
  task: task_lib.Task
  mesh: Mesh
  keys_M: chex.Array              # sharded; padded to a multiple of devices
  variants_M: chex.Array | None   # sharded, or None (task without variants)
  training: programs.TrainPrograms
  evaluate: Evaluator | None      # (params_M, test keys) -> host tree_M
  chunk_epochs: int
  compile_seconds: float

  @property
  def num_models(self) -> int:
    """Models in the program, padding included."""
    return int(self.keys_M.shape[0])

  def run_chunk(self, state_M, end_epoch):
    return self.training.run_chunk(state_M, end_epoch, self.variants_M)


# Compiled (training, evaluate) of tasks with a program_key, per process.
_PROGRAMS: dict[Hashable, tuple[programs.TrainPrograms, Any]] = {}
_MAX_CACHED = 16


def _compile_programs(task: task_lib.Task, mesh: Mesh, chunk_epochs: int,
                      keys_M, variants_M, with_evaluation: bool,
                      program_key: str | None):
  # The evaluation compiles while the fit does: in a sweep of several
  # processes each compiles the one it owns (`distributed.compile_jitted`).
  evaluator = None
  if with_evaluation:
    evaluator = lambda state_spec: Evaluator(
        task, mesh, state_spec.params, variants_M, program_key)
  return programs.compile_training(
      task.config, task.chunk(chunk_epochs), mesh, keys_M, variants_M,
      task.init, program_key, alongside=evaluator)


def check_memory(task: task_lib.Task, chunk_epochs: int, num_models: int,
                 mesh: Mesh, with_evaluation: bool = True) -> int:
  """`memory.check` of the task's models: ConfigError (one line naming the
  flags to change) before anything compiles if they cannot fit (training
  alone, without evaluation's logits, with `with_evaluation=False`)."""
  config = task.config
  key_spec = jax.ShapeDtypeStruct((2,), jnp.uint32)
  init_state = train_lib.make_init_state(config)
  state = jax.eval_shape(lambda k: init_state(task.init(k), k), key_spec)
  variant = (None if task.variants is None
             else jax.ShapeDtypeStruct((), jnp.int32))
  data = jax.eval_shape(task.chunk(chunk_epochs).make_data, state, variant)
  logit = 4 * config.n_unique  # float32 bytes per predicted step
  # Sequences one evaluation batch scores at once, as the task states
  # (counting every task at the tutorial's 1000 refused large_vocab's
  # default run: V = 10,000, 44.5 GB estimated).
  eval_batch = (min(config.eval_sequences, task.eval_batch)
                if with_evaluation else 0)
  per_model = memory.per_model_bytes(
      state.params, data,
      batch_logits_bytes=task.samples_per_update * config.context * logit,
      eval_logits_bytes=eval_batch * config.length * config.context * logit)
  # The test set's keys (8 bytes a sequence), drawn on one device and
  # copied to the host, and a piece of them on every device of the mesh;
  # sequences are drawn per batch.
  keys_bytes = 8 * (2 * config.eval_sequences
                    + mesh.size * piece_sequences(task))
  return memory.check(config, num_models, per_model, keys_bytes,
                      list(mesh.devices.flat))


def compile_task(task: task_lib.Task, max_devices: int | None = None,
                 chunk_epochs: int | None = None,
                 with_evaluation: bool = True) -> Compiled:
  """Compiles initialisation, one chunk of `chunk_epochs`
  epochs of training and evaluation of the task's variants x seeds models
  (each traced once, whatever the chunk count). Tasks with a `program_key`
  reuse the programs compiled for an earlier task of this process with the
  same key, mesh and chunk (e.g. runs that differ only in seed or epochs).
  `with_evaluation=False` compiles training only (the benchmark's timed
  training runs; `run` then cannot evaluate)."""
  config = task.config
  mesh = programs.seed_mesh(task.num_models, max_devices)
  count = programs.padded_models(task.num_models, mesh)
  chunk_epochs = chunk_length(
      chunk_epochs, config.epochs,
      default_chunk_epochs(task, count // mesh.size))
  check_memory(task, chunk_epochs, count, mesh, with_evaluation)
  if task.variants is None:
    # Placed from host memory: resharding a device array compiles a program.
    keys_M = distributed.put(np.asarray(keys_lib.model_keys(config, count)),
                             programs.seed_sharding(mesh))
    variants_M = None
  else:
    keys_M, variants_M = distributed.put(
        keys_lib.variant_grid(config, task.variants, count),
        programs.seed_sharding(mesh))
  start = time.perf_counter()
  key = None
  if task.program_key is not None and with_evaluation:
    # The run's length only decides whether a chunk needs the end-of-run
    # guard: runs that differ in epochs otherwise share their programs.
    key = (task.program_key, mesh, count, chunk_epochs,
           train_lib.needs_guard(config.epochs, chunk_epochs),
           programs.models_per_block(), piece_sequences(task))
  if key is not None and task.keep_programs and key in _PROGRAMS:
    training, evaluate = _PROGRAMS[key]
  else:
    training, evaluate = _compile_programs(
        task, mesh, chunk_epochs, keys_M, variants_M, with_evaluation,
        None if key is None else _shared_key(key))
    if key is not None and task.keep_programs:
      if len(_PROGRAMS) >= _MAX_CACHED:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
      _PROGRAMS[key] = (training, evaluate)
  return Compiled(task, mesh, keys_M, variants_M, training, evaluate,
                  chunk_epochs, time.perf_counter() - start)


def _shared_key(key: tuple[Any, ...]) -> str:
  """The runner's key of a task's programs as the string that names them
  across processes (`distributed.compile_jitted`): the mesh by its devices
  (a Mesh's text does not name them)."""
  task_key, mesh, *rest = key
  return repr((task_key, mesh.axis_names,
               tuple(int(d.id) for d in mesh.devices.flat), *rest))


class RunOutput(NamedTuple):
  """A finished run; per-model leaves keep the real models only (variant-
  major: model m is variant m // seeds, seed m % seeds)."""
  compiled: Compiled
  state: Any                 # the final state, still sharded (padded)
  params: chex.ArrayTree     # host arrays, (M, ...)
  loss_MxE: np.ndarray
  accuracy_MxE: np.ndarray
  evaluation: Any            # the task's evaluation, host arrays (M, ...)
  chunks: chunked.ChunkedRun
  eval_seconds: float
  # With `run(..., evaluate_chunks=True)`: end epoch of each chunk -> the
  # task's evaluation of the models then, as JSON holds it (nested lists,
  # models first); else empty.
  chunk_evaluations: dict[int, Any] = {}

  @property
  def task(self) -> task_lib.Task:
    return self.compiled.task

  def timing_fields(self) -> dict[str, Any]:
    return self.chunks.timing_fields(self.compiled.compile_seconds,
                                     self.compiled.chunk_epochs,
                                     self.eval_seconds)

  def by_variant(self, x: np.ndarray) -> np.ndarray:
    """(M, ...) -> (variants, seeds, ...)."""
    seeds = self.task.config.seeds
    return x.reshape((-1, seeds) + x.shape[1:])

  def trained(self, by_variant: bool = False) -> train_lib.TrainResult:
    """Parameters and learning curves, (M, ...) or (variants, seeds, ...)."""
    split = self.by_variant if by_variant else (lambda x: x)
    return train_lib.TrainResult(jax.tree.map(split, self.params),
                                 split(self.loss_MxE),
                                 split(self.accuracy_MxE))


# The evaluations of `run(..., evaluate_chunks=True)`, kept in the run
# folder so that a resumed run has its earlier chunks' too.
CHUNK_EVALUATIONS_FILE = "chunk_evaluations.json"


def _chunk_evaluator(compiled: Compiled, evaluate, run_dir: str | None):
  """(evaluations, on_state) for `chunked.run_chunks`: each chunk's end state
  scored by `evaluate(params)` on the run's test set, recorded by end epoch
  (in `run_dir`'s CHUNK_EVALUATIONS_FILE, written atomically, when given)."""
  path = run_dir and os.path.join(run_dir, CHUNK_EVALUATIONS_FILE)
  evaluations = {}
  if path and os.path.exists(path):
    evaluations = {int(epoch): tree
                   for epoch, tree in results.read_json(path).items()}
  unpad = lambda x: np.asarray(x)[:compiled.task.num_models].tolist()

  def on_state(epoch, state):
    if epoch in evaluations:
      return  # resumed: scored before (the same bits)
    # As JSON holds it (a NamedTuple becomes a list), fresh or resumed.
    evaluations[epoch] = json.loads(json.dumps(jax.tree.map(
        unpad, evaluate(state.params))))
    if path and distributed.is_writer():
      results.write_json_atomic(
          path, {str(e): evaluations[e] for e in sorted(evaluations)})

  return evaluations, on_state


def run(compiled: Compiled, run_dir: str | None = None,
        stop_after_chunks: int | None = None,
        on_chunk: chunked.ChunkCallback | None = None,
        evaluate_chunks: bool = False) -> RunOutput:
  """Trains every model chunk by chunk, then evaluates them on the run's
  test set (`keys.eval_test_set`).

  With `run_dir`, the state is checkpointed after every chunk and a rerun
  with the same `run_dir` resumes from the newest checkpoint, bit-identical
  to an uninterrupted run; `metrics.jsonl` there holds the epochs so far.
  `on_chunk(first_epoch, end_epoch, loss_MxE, accuracy_MxE)` is called after
  each chunk (e.g. to write TensorBoard summaries). With `evaluate_chunks`
  the models are also scored on the test set after every chunk (learning
  curves on fresh sequences; `RunOutput.chunk_evaluations`).
  """
  task, config = compiled.task, compiled.task.config
  num_models = task.num_models
  if task.variants is None:
    metrics_rows = chunked.metrics_per_seed
  else:
    metrics_rows = chunked.metrics_by_variant(task.row_names(), config.seeds)
  # On the host (8 bytes a sequence); placed piece by piece when scored.
  test_keys_Sx2 = np.asarray(distributed.to_host(
      keys_lib.eval_test_set(config).keys))
  evaluate = lambda params: compiled.evaluate(params, test_keys_Sx2)
  chunk_evaluations, on_state = {}, None
  if evaluate_chunks:
    chunk_evaluations, on_state = _chunk_evaluator(compiled, evaluate,
                                                   run_dir)
  chunks = chunked.run_chunks(
      compiled.run_chunk, compiled.training.init(compiled.keys_M),
      name=task.name, total_epochs=config.epochs, num_models=num_models,
      metrics_rows=metrics_rows,
      restore_sharding=programs.seed_sharding(compiled.mesh),
      run_dir=run_dir, identity=task.run_identity(),
      stop_after_chunks=stop_after_chunks, on_chunk=on_chunk,
      on_state=on_state)
  state = chunks.state
  start = time.perf_counter()
  evaluation = evaluate(state.params)
  eval_seconds = time.perf_counter() - start
  unpad = lambda x: x[:num_models]
  return RunOutput(compiled, state,
                   jax.tree.map(unpad, distributed.to_host(state.params)),
                   chunks.loss_MxE, chunks.accuracy_MxE,
                   jax.tree.map(unpad, evaluation), chunks, eval_seconds,
                   dict(sorted(chunk_evaluations.items())))


def run_task(task: task_lib.Task, max_devices: int | None = None,
             run_dir: str | None = None, chunk_epochs: int | None = None,
             stop_after_chunks: int | None = None,
             on_chunk: chunked.ChunkCallback | None = None,
             evaluate_chunks: bool = False) -> RunOutput:
  """`compile_task`, then `run`."""
  return run(compile_task(task, max_devices, chunk_epochs), run_dir,
             stop_after_chunks, on_chunk, evaluate_chunks)
