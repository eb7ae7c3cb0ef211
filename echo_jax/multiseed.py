"""Any framing and model, many seeds in one jitted call: the extensions' runner.

`experiment.run_experiment` runs the tutorial's windowed classifier. The
extensions need other framings (masked windows, prefixes, a prediction at every
timestep, whole sequences) and other models (an MLP), so this module runs a
`Task`: a framing of fresh random sequences plus a model's init and apply.
It keeps experiment's conventions: model i trains with key
fold_in(fold_in(PRNGKey(seed), 0), i), seeds are split over devices with
`shard_map` and `vmap`ped within one, and every model is scored on the same
`eval_sequences` fresh sequences from `experiment.eval_key`.

Training is stateless (each sample starts from a zero state): an epoch takes
`sequences_per_epoch` fresh sequences, frames them into samples in order and
fits them in batches of `batch_size` with Adam; epochs and batches are nested
`lax.scan`s. As in `experiment`, training runs as compiled chunks of epochs
(`chunked`): epoch e trains on fold_in(data_key, e), and with a run folder
each chunk is checkpointed and a killed run resumes bit-identically. Targets may be one per sample (N,) or one per timestep (N, T);
`weights` of the same shape say which count (0: padding or no target).
"""

import dataclasses
import time
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec as P

from echo_jax import chunked
from echo_jax import config as config_lib
from echo_jax import data
from echo_jax import experiment
from echo_jax import models
from echo_jax import programs
from echo_jax import results
from echo_jax import train as train_lib


class Samples(NamedTuple):
  """One sequence framed: every leaf has the sample axis N first."""
  inputs: chex.ArrayTree  # what `apply` takes, e.g. ids (N, T)
  targets: chex.Array     # int32 (N,) or (N, T)
  weights: chex.Array     # float32, targets' shape; 0 = not scored


@dataclasses.dataclass(frozen=True)
class Task:
  """A framing and a model; `config` supplies the data size, the training
  schedule, Adam's settings, the seeds and the test-set size.

  frame(sequence_L, variant) -> Samples, where `variant` is a traced int32
  scalar, one of `variants` (e.g. the lag): all variants x seeds train in one
  compiled program, so a sweep over lags costs one compilation;
  init(key) -> params; apply(params, inputs_B...) -> logits with targets'
  shape plus a class axis.
  """
  name: str
  config: config_lib.EchoConfig
  frame: Callable[[chex.Array, chex.Array], Samples]
  init: Callable[[chex.PRNGKey], chex.ArrayTree]
  apply: Callable[[chex.ArrayTree, chex.ArrayTree], chex.Array]
  sequences_per_epoch: int = 1
  variants: tuple[int, ...] = (0,)
  variant_names: tuple[str, ...] | None = None  # default: `name`
  # Samples per Adam update; None: config.batch_size (whose validation
  # assumes one sequence per epoch).
  batch_size: int | None = None

  def row_names(self) -> tuple[str, ...]:
    if self.variant_names is not None:
      return self.variant_names
    if len(self.variants) == 1:
      return (self.name,)
    return tuple(f"{self.name}={v}" for v in self.variants)


def frame_many(task: Task, key: chex.PRNGKey, count: int,
               variant: chex.Array) -> Samples:
  """`count` fresh sequences framed and concatenated along the sample axis."""
  keys = jax.random.split(key, count)
  sequences_SxL = jax.vmap(
      lambda k: data.generate_sequence(k, task.config.length,
                                       task.config.n_unique))(keys)
  framed = jax.vmap(task.frame, in_axes=(0, None))(sequences_SxL, variant)
  return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), framed)


def batch_samples(samples: Samples, batch_size: int) -> Samples:
  """(N, ...) -> (K, B, ...) in order; a partial last batch is padded with
  weight-0 rows so it counts like Keras' smaller last batch."""
  n = samples.targets.shape[0]
  k = -(-n // batch_size)
  pad = k * batch_size - n

  def split(x):
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape((k, batch_size) + x.shape[1:])

  return jax.tree.map(split, samples)


def weighted_loss_and_accuracy(logits: chex.Array, targets: chex.Array,
                               weights: chex.Array):
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  correct = train_lib.argmax_matches(logits, targets).astype(jnp.float32)
  total = jnp.maximum(jnp.sum(weights), 1.0)
  return jnp.sum(losses * weights) / total, jnp.sum(correct * weights) / total


def make_run_epochs(task: Task, num_epochs: int) -> train_lib.ChunkFns:
  """`num_epochs` more epochs as `train.ChunkFns` (weighted metrics; the
  data are the framed, batched samples). The state is `train.TrainState`;
  epoch e trains on fold_in(data_key, e), as in `train`, so any split of
  the run into chunks trains on the same sequences."""
  config = task.config
  optimizer = train_lib.make_optimizer(config)

  def loss_fn(params, batch: Samples):
    logits = task.apply(params, batch.inputs)
    return weighted_loss_and_accuracy(logits, batch.targets, batch.weights)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def batch_step(state, batch):
    params, opt_state = state
    (loss, accuracy), grads = grad_fn(params, batch)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    # A batch of padding only (a variant with fewer samples than the
    # framing's static row count) must not move Adam's moments or step.
    has_samples = jnp.sum(batch.weights) > 0
    keep = lambda new, old: jax.tree.map(
        lambda n, o: jnp.where(has_samples, n, o), new, old)
    state = (keep(optax.apply_updates(params, updates), params),
             keep(new_opt_state, opt_state))
    return state, (loss, accuracy, jnp.sum(batch.weights))

  def epoch_data(epoch_key, variant) -> Samples:
    return batch_samples(
        frame_many(task, epoch_key, task.sequences_per_epoch, variant),
        task.batch_size or config.batch_size)

  def epoch_step(state: train_lib.TrainState, batches: Samples, _):
    (params, opt_state), (loss_K, accuracy_K, weight_K) = jax.lax.scan(
        batch_step, (state.params, state.opt_state), batches)
    total = jnp.maximum(jnp.sum(weight_K), 1.0)
    return (train_lib.TrainState(params, opt_state, state.data_key,
                                 state.epoch + 1),
            (jnp.sum(loss_K * weight_K) / total,
             jnp.sum(accuracy_K * weight_K) / total))

  return train_lib.epoch_loop(
      epoch_data, epoch_step, num_epochs,
      train_lib.needs_guard(config.epochs, num_epochs))


def make_evaluate(task: Task):
  """evaluate(params, sequences_SxL, variant) -> (correct, weight) summed
  over the test sequences, per sample position (targets' shape)."""

  def one_sequence(params, sequence_L, variant):
    samples = task.frame(sequence_L, variant)
    predicted = jnp.argmax(task.apply(params, samples.inputs), -1)
    correct = (predicted == samples.targets).astype(jnp.float32)
    return correct * samples.weights, samples.weights

  def evaluate(params, sequences_SxL, variant):
    # lax.map in chunks, not one vmap: all test sequences of all models at
    # once can take gigabytes.
    correct, weight = jax.lax.map(
        lambda seq: one_sequence(params, seq, variant), sequences_SxL,
        batch_size=min(250, len(sequences_SxL)))
    return correct.sum(0), weight.sum(0)

  return evaluate


def num_params(params: chex.ArrayTree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def epochs_to_reach(accuracy_SxE: np.ndarray, level: float, window: int
                    ) -> list[int | None]:
  """Per seed, the first epoch (1-based) at which the mean training accuracy
  of the last `window` epochs reaches `level`; None if it never does. A
  window, because one epoch's accuracy over a few samples is noisy."""
  accuracy_SxE = np.asarray(accuracy_SxE, np.float64)
  window = min(window, accuracy_SxE.shape[1])
  kernel = np.ones(window) / window
  reached = []
  for accuracy_E in accuracy_SxE:
    trailing = np.convolve(accuracy_E, kernel, mode="valid")
    hits = np.nonzero(trailing >= level)[0]
    reached.append(int(hits[0]) + window if hits.size else None)
  return reached


class Compiled(NamedTuple):
  task: Task
  mesh: Mesh
  train_keys: chex.Array
  variants: chex.Array
  training: programs.TrainPrograms
  evaluate_many: Any  # compiled: (params_M, sequences_SxL, variants_M) ->
                      # (correct_M, weight_M)
  chunk_epochs: int
  compile_seconds: float
  num_models: int     # padded to a multiple of the devices


def compile_task(task: Task, max_devices: int | None = None,
                 chunk_epochs: int | None = None) -> Compiled:
  """Compiles initialisation, one chunk of `chunk_epochs` epochs of training
  and evaluation of all variants x seeds models (each traced once)."""
  config = task.config
  chunk_epochs = experiment.chunk_length(chunk_epochs, config.epochs)
  total = len(task.variants) * config.seeds
  mesh = programs.seed_mesh(total, max_devices)
  count = programs.padded_models(total, mesh)
  keys_M, variants_M = experiment.variant_grid(config, task.variants, count)
  train_keys, variants = jax.device_put((keys_M, variants_M),
                                        programs.seed_sharding(mesh))
  evaluate = make_evaluate(task)

  def evaluate_local(params_M, sequences_SxL, variants_M):
    return jax.vmap(evaluate, in_axes=(0, None, 0))(params_M, sequences_SxL,
                                                    variants_M)

  start = time.perf_counter()
  training = programs.compile_training(
      config, make_run_epochs(task, chunk_epochs), mesh, train_keys,
      variants, task.init)
  seeds = P(programs.SEED_AXIS)
  evaluate_many = programs.per_device(
      evaluate_local, mesh, (seeds, P(), seeds)).lower(
          training.state_spec.params, programs.test_sequences_spec(config),
          variants).compile()
  return Compiled(task, mesh, train_keys, variants, training, evaluate_many,
                  chunk_epochs, time.perf_counter() - start, count)


def summarise(values_S) -> dict[str, Any]:
  mean, low, high = experiment.mean_and_ci95(values_S)
  return {"mean": mean, "ci95": [low, high],
          "per_seed": np.asarray(values_S, np.float64).tolist()}


def run_identity(task: Task) -> dict[str, Any]:
  """What a task's run folder is claimed for (its config.json): resuming
  is refused if any of it differs."""
  return {**task.config.to_dict(), "task": task.name,
          "variants": list(task.variants),
          "variant_names": list(task.row_names()),
          "sequences_per_epoch": task.sequences_per_epoch,
          "samples_per_update": task.batch_size or task.config.batch_size}


def run_compiled(compiled: Compiled, run_dir: str | None = None,
                 stop_after_chunks: int | None = None,
                 on_chunk: chunked.ChunkCallback | None = None
                 ) -> tuple[list[dict[str, Any]], train_lib.TrainResult]:
  """Trains chunk by chunk (with `run_dir`: checkpointed, resumable, with
  metrics.jsonl, as `experiment.run_compiled`) and evaluates every model:
  one row per variant, and the trained models with a leading (variant,
  seed) pair of axes."""
  task, config = compiled.task, compiled.task.config
  v, s = len(task.variants), config.seeds
  run = chunked.run_chunks(
      lambda state, end: compiled.training.run_chunk(state, end,
                                                     compiled.variants),
      compiled.training.init(compiled.train_keys), name=task.name,
      total_epochs=config.epochs, num_models=v * s,
      metrics_rows=chunked.metrics_by_variant(task.row_names(), s),
      restore_sharding=programs.seed_sharding(compiled.mesh),
      run_dir=run_dir, identity=run_identity(task),
      stop_after_chunks=stop_after_chunks, on_chunk=on_chunk)
  state = run.state
  start = time.perf_counter()
  correct_M, weight_M = jax.block_until_ready(compiled.evaluate_many(
      state.params, experiment.eval_sequences(config), compiled.variants))
  eval_seconds = time.perf_counter() - start
  unpad = lambda x: np.asarray(x)[:v * s].reshape((v, s) + x.shape[1:])
  split = lambda x: x.reshape((v, s) + x.shape[1:])
  trained = train_lib.TrainResult(jax.tree.map(unpad, state.params),
                       split(run.loss_MxE), split(run.accuracy_MxE))
  correct_VS = unpad(correct_M).astype(np.float64)
  weight_VS = unpad(weight_M).astype(np.float64)
  one_model_params = num_params(jax.tree.map(lambda x: x[0, 0],
                                             trained.params))
  rows = []
  for i, name in enumerate(task.row_names()):
    correct_S, weight_S = correct_VS[i], weight_VS[i]
    reduce_axes = tuple(range(1, correct_S.ndim))
    accuracy_S = correct_S.sum(reduce_axes) / weight_S.sum(reduce_axes)
    # Positions with no target (e.g. before the lag) are reported as null.
    scored = weight_S.sum(0) > 0
    per_position = np.where(
        scored, correct_S.sum(0) / np.maximum(weight_S.sum(0), 1), np.nan)
    rows.append({
        "variant": name,
        "variant_value": int(task.variants[i]),
        "eval_accuracy": summarise(accuracy_S),
        "eval_accuracy_per_position": [
            None if np.isnan(a) else float(a) for a in per_position.ravel()],
        "eval_accuracy_per_position_shape": list(per_position.shape),
        "chance_accuracy": 1.0 / config.n_unique,
        "params": one_model_params,
        "final_train_loss": summarise(trained.loss_E[i, :, -1]),
        "epochs_to_99pct_train_accuracy": epochs_to_reach(
            trained.accuracy_E[i], 0.99, 50),
        "train_accuracy_per_epoch": trained.accuracy_E[i].mean(0).tolist(),
        # Shared by every variant of this task: they train in one program.
        **run.timing_fields(compiled.compile_seconds, compiled.chunk_epochs,
                           eval_seconds),
        "models_trained_together": compiled.num_models,
        "config": config.to_dict(),
        "sequences_per_epoch": task.sequences_per_epoch,
        "batch_size": task.batch_size or config.batch_size,
    })
  return rows, trained


def run_task(task: Task, max_devices: int | None = None,
             run_dir: str | None = None, chunk_epochs: int | None = None,
             stop_after_chunks: int | None = None,
             on_chunk: chunked.ChunkCallback | None = None
             ) -> tuple[list[dict[str, Any]], train_lib.TrainResult]:
  return run_compiled(compile_task(task, max_devices, chunk_epochs), run_dir,
                      stop_after_chunks, on_chunk)


def experiment_row(name: str, record: dict[str, Any],
                   trained: train_lib.TrainResult) -> dict[str, Any]:
  """A row in the same shape from `experiment.run_experiment`'s output, so
  the tutorial's own (stateful) training sits in the same tables."""
  low, high = record["eval_accuracy_ci95"]
  per_position = record["eval_accuracy_per_position"]
  return {
      "variant": name,
      "eval_accuracy": {"mean": record["eval_accuracy"], "ci95": [low, high],
                        "per_seed": record["eval_accuracy_per_seed"]},
      "eval_accuracy_per_position": per_position,
      "eval_accuracy_per_position_shape": [len(per_position)],
      "chance_accuracy": record["chance_accuracy"],
      "params": num_params(jax.tree.map(lambda x: x[0], trained.params)),
      "final_train_loss": summarise(trained.loss_E[:, -1]),
      "epochs_to_99pct_train_accuracy": epochs_to_reach(
          trained.accuracy_E, 0.99, 50),
      "train_accuracy_per_epoch": record["train_accuracy_per_epoch"],
      "compile_seconds": record["compile_seconds"],
      "train_seconds": record["train_seconds"],
      "eval_seconds": record["eval_seconds"],
      "models_trained_together": record["models_trained_in_parallel"],
      "config": record["config"],
      "sequences_per_epoch": 1,
  }


def result_record(name: str, config: config_lib.EchoConfig,
                  rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
  """The file every extension binary writes: `rows` (one per variant) and
  `eval_accuracy`, each variant's mean accuracy by name; `config` is the
  binary's base config, so `--config_json=<this file>` reruns it."""
  return {
      "experiment": name,
      "config": config.to_dict(),
      "eval_accuracy": {row["variant"]: row["eval_accuracy"]["mean"]
                        for row in rows},
      "rows": rows,
      **extra,
      "versions": results.versions(),
  }


def echo_lstm_task(name: str, config: config_lib.EchoConfig,
                   frame: Callable[[chex.Array, chex.Array], Samples]
                   | None = None, sequences_per_epoch: int = 1) -> Task:
  """The tutorial's classifier (`models.EchoLSTM`, as `config` builds it) on
  a framing; by default the tutorial's own windows, fitted statelessly."""
  model = models.make_model(config)

  def tutorial_frame(sequence_L, variant):
    del variant
    windows_NxC, targets_N = data.frame_windows(sequence_L, config.lag,
                                                config.context)
    return Samples(windows_NxC, targets_N,
                   jnp.ones(targets_N.shape, jnp.float32))

  def apply(params, ids_BxC):
    logits_BxV, _ = model.apply({"params": params},
                                train_lib.model_inputs(config, ids_BxC))
    return logits_BxV

  return Task(name, config, frame or tutorial_frame,
              lambda key: models.init_params(config, key), apply,
              sequences_per_epoch)
