"""Runs one experiment for many seeds at once and summarises it.

All seeds train in one jitted call: the seed axis is split over the visible
devices with `shard_map` (one CPU core, many GPUs or a TPU slice, unchanged),
and within a device the per-seed train function is `vmap`ped. Model i of a
run always has key fold_in(fold_in(PRNGKey(seed), 0), i), so adding seeds
never changes the earlier ones; all models are scored on the same fresh test
sequences. Training runs as compiled chunks of epochs; between chunks the
state can be checkpointed (orbax) and a killed run resumed bit-identically.
"""

import functools
import math
import time
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from echo_jax import chunked
from echo_jax import config as config_lib
from echo_jax import evaluate as evaluate_lib
from echo_jax import programs
from echo_jax import results
from echo_jax import train as train_lib


def model_keys(config: config_lib.EchoConfig, count: int) -> chex.Array:
  """Training key of model i, for i < count: fold_in(fold_in(seed, 0), i)."""
  return _model_keys(config.seed, count)


def eval_key(config: config_lib.EchoConfig) -> chex.PRNGKey:
  """One test set for every model of a run, disjoint from training keys."""
  return _eval_key(config.seed)


def eval_sequences(config: config_lib.EchoConfig) -> chex.Array:
  """The run's test set, (config.eval_sequences, length) sequences drawn
  from `eval_key`: what every runner scores every model on."""
  return programs.test_sequences(config, eval_key(config))


# One small program each (op by op they were seven, ~0.3 s of a cold start).
@functools.partial(jax.jit, static_argnums=1)
def _model_keys(seed, count: int) -> chex.Array:
  base = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(count))


@jax.jit
def _eval_key(seed) -> chex.PRNGKey:
  return jax.random.fold_in(jax.random.PRNGKey(seed), 1)


DEFAULT_CHUNK_EPOCHS = 1000


def variant_grid(config: config_lib.EchoConfig, variants: tuple[int, ...],
                 count: int) -> tuple[np.ndarray, np.ndarray]:
  """Keys and variant values (e.g. lags) of all models, variant-major,
  padded to `count` by repeating model 0 (padding is discarded). Every
  variant uses the same seeds' keys, so variants are compared on paired
  initialisations and training data."""
  keys_S = np.asarray(model_keys(config, config.seeds))
  keys_M = np.concatenate([keys_S] * len(variants))
  variants_M = np.repeat(np.asarray(variants, np.int32), config.seeds)
  pad = count - len(variants_M)
  return (np.concatenate([keys_M, np.repeat(keys_M[:1], pad, 0)]),
          np.concatenate([variants_M, np.repeat(variants_M[:1], pad)]))


def chunk_length(chunk_epochs: int | None, epochs: int) -> int:
  """Epochs per compiled chunk: as asked (default DEFAULT_CHUNK_EPOCHS),
  at most the whole run."""
  return min(chunk_epochs or DEFAULT_CHUNK_EPOCHS, epochs)


def make_evaluate_many(config: config_lib.EchoConfig, mesh: Mesh):
  """evaluate_many(params_S, sequences_SxL) -> Evaluation_S on the same
  test sequences for every model."""
  evaluate = evaluate_lib.make_evaluate(config)
  return programs.per_device(jax.vmap(evaluate, in_axes=(0, None)), mesh,
                             (P(programs.SEED_AXIS), P()))


class CompiledExperiment(NamedTuple):
  config: config_lib.EchoConfig
  mesh: Mesh
  train_keys: chex.Array
  training: programs.TrainPrograms
  evaluate_many: Any  # compiled
  chunk_epochs: int
  compile_seconds: float


def program_config(config: config_lib.EchoConfig, chunk_epochs: int
                   ) -> config_lib.EchoConfig:
  """`config` as its compiled programs see it: the seed is data and the
  run's length only decides whether a chunk needs the end-of-run guard, so
  runs that differ only in those share their programs."""
  guarded = train_lib.needs_guard(config.epochs, chunk_epochs)
  return config.replace(experiment="program", seed=0,
                        epochs=chunk_epochs + int(guarded))


@functools.lru_cache(maxsize=16)
def _compile_programs(config: config_lib.EchoConfig, mesh: Mesh,
                      chunk_epochs: int
                      ) -> tuple[programs.TrainPrograms, Any]:
  """(training programs, evaluate_many), compiled once per process for
  each `program_config`."""
  keys_spec = programs.with_sharding(
      jax.ShapeDtypeStruct((programs.padded_models(config.seeds, mesh), 2),
                           jnp.uint32), mesh)
  training = programs.compile_training(
      config, train_lib.make_run_epochs(config, chunk_epochs), mesh,
      keys_spec)
  evaluate_many = make_evaluate_many(config, mesh).lower(
      training.state_spec.params,
      programs.test_sequences_spec(config)).compile()
  return training, evaluate_many


def compile_experiment(config: config_lib.EchoConfig,
                       max_devices: int | None = None,
                       chunk_epochs: int | None = None) -> CompiledExperiment:
  """Validates, then compiles initialisation, one chunk of training and
  evaluation for all seeds (each traced once, whatever the chunk count;
  reused by later runs of this process that differ only in seed or
  epochs)."""
  config_lib.validate(config)
  chunk_epochs = chunk_length(chunk_epochs, config.epochs)
  mesh = programs.seed_mesh(config.seeds, max_devices)
  num = programs.padded_models(config.seeds, mesh)
  # Placed from host memory: resharding a device array compiles a program.
  train_keys = jax.device_put(np.asarray(model_keys(config, num)),
                              programs.seed_sharding(mesh))
  start = time.perf_counter()
  training, evaluate_many = _compile_programs(
      program_config(config, chunk_epochs), mesh, chunk_epochs)
  return CompiledExperiment(config, mesh, train_keys, training,
                            evaluate_many, chunk_epochs,
                            time.perf_counter() - start)


_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
          2.228)


def t_quantile_975(df: int) -> float:
  """Student-t 97.5% quantile: exact table to df 10, then a series that is
  within 0.003 of the exact value (2.042 at df 30, 2.000 at df 60)."""
  if df <= len(_T_975):
    return _T_975[df - 1]
  return 1.96 + 2.37 / df + 2.8 / df**2


def mean_and_ci95(values: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)
                  ) -> tuple[float, float, float]:
  """Mean and a Student-t 95% interval over seeds (degenerate for one),
  clipped to `bounds`: an accuracy's interval never passes 0 or 100%."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return mean, mean, mean
  df = values.size - 1
  t = t_quantile_975(df)
  half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
  return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


# Re-exported: the chunk loop lives in `chunked`, shared with `multiseed`.
NonFiniteLossError = chunked.NonFiniteLossError
Interrupted = chunked.Interrupted
check_finite = chunked.check_finite
ChunkCallback = chunked.ChunkCallback


def metrics_rows(loss_SxE: np.ndarray, accuracy_SxE: np.ndarray,
                 first: int, end: int) -> list[dict[str, Any]]:
  """metrics.jsonl rows for epochs [first, end) (numbered from 1)."""
  # Whole-chunk numpy conversions: per-epoch ones cost more than the saves.
  loss_SxC, accuracy_SxC = loss_SxE[:, first:end], accuracy_SxE[:, first:end]
  columns = zip(loss_SxC.mean(0).tolist(), accuracy_SxC.mean(0).tolist(),
                loss_SxC.T.tolist(), accuracy_SxC.T.tolist())
  return [{"epoch": e + 1, "loss": loss, "accuracy": accuracy,
           "loss_per_seed": loss_S, "accuracy_per_seed": accuracy_S}
          for e, (loss, accuracy, loss_S, accuracy_S)
          in zip(range(first, end), columns)]


def run_compiled(compiled: CompiledExperiment, run_dir: str | None = None,
                 stop_after_chunks: int | None = None,
                 on_chunk: ChunkCallback | None = None
                 ) -> tuple[dict[str, Any], train_lib.TrainResult]:
  """Trains every seed chunk by chunk, then evaluates.

  With `run_dir`, the state is checkpointed after every chunk and a rerun
  with the same `run_dir` resumes from the newest checkpoint, bit-identical
  to an uninterrupted run; `metrics.jsonl` there holds the epochs so far.
  `on_chunk(first_epoch, end_epoch, loss_SxE, accuracy_SxE)` is called after
  each chunk (e.g. to write TensorBoard summaries).
  Returns the result record and the (unpadded) training outputs.
  """
  config = compiled.config
  num_models = compiled.train_keys.shape[0]
  run = chunked.run_chunks(
      compiled.training.run_chunk,
      compiled.training.init(compiled.train_keys),
      name=config.experiment, total_epochs=config.epochs,
      num_models=config.seeds, metrics_rows=metrics_rows,
      restore_sharding=programs.seed_sharding(compiled.mesh),
      run_dir=run_dir, identity=config.to_dict(),
      stop_after_chunks=stop_after_chunks, on_chunk=on_chunk)
  state = run.state

  start = time.perf_counter()
  evaluation = jax.tree.map(np.asarray, jax.block_until_ready(
      compiled.evaluate_many(state.params, eval_sequences(config))))
  eval_seconds = time.perf_counter() - start
  accuracy_SxN = evaluation.accuracy_N
  trained = train_lib.TrainResult(
      jax.tree.map(lambda x: np.asarray(x)[:config.seeds], state.params),
      run.loss_MxE, run.accuracy_MxE)
  accuracy_SxN = accuracy_SxN[:config.seeds]
  accuracy_S = accuracy_SxN.mean(axis=1)
  mean, low, high = mean_and_ci95(accuracy_S)
  record = {
      "experiment": config.experiment,
      "config": config.to_dict(),
      "eval_accuracy": mean,
      "eval_accuracy_ci95": [low, high],
      "eval_accuracy_per_seed": accuracy_S.tolist(),
      # Sample position within a sequence, mean over seeds.
      "eval_accuracy_per_position": accuracy_SxN.mean(axis=0).tolist(),
      "chance_accuracy": 1.0 / config.n_unique,
      "tutorial_accuracy": config_lib.TUTORIAL_ACCURACY.get(config.experiment),
      "final_train_loss_per_seed": trained.loss_E[:, -1].tolist(),
      "train_loss_per_epoch": trained.loss_E.mean(0).tolist(),
      "train_accuracy_per_epoch": trained.accuracy_E.mean(0).tolist(),
      **run.timing_fields(compiled.compile_seconds, compiled.chunk_epochs,
                         eval_seconds),
      "models_trained_in_parallel": int(num_models),
      "devices_used": compiled.mesh.size,
      # The tutorial's check: model 0 on the first test sequence.
      "example": {"expected": evaluation.example_targets_N[0].tolist(),
                  "predicted": evaluation.example_predicted_N[0].tolist()},
      "versions": results.versions(),
  }
  return record, trained


def run_experiment(config: config_lib.EchoConfig,
                   max_devices: int | None = None,
                   run_dir: str | None = None,
                   chunk_epochs: int | None = None,
                   stop_after_chunks: int | None = None,
                   on_chunk: ChunkCallback | None = None
                   ) -> tuple[dict[str, Any], train_lib.TrainResult]:
  return run_compiled(compile_experiment(config, max_devices, chunk_epochs),
                      run_dir, stop_after_chunks, on_chunk)
