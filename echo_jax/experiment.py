"""Runs one experiment for many seeds at once and summarises it.

All seeds train in one jitted call: the seed axis is split over the visible
devices with `shard_map` (one CPU core, many GPUs or a TPU slice, unchanged),
and within a device the per-seed train function is `vmap`ped. Model i of a
run always has key fold_in(PRNGKey(seed), i), so adding seeds never changes
the earlier ones; all models are scored on the same fresh test sequences.
"""

import math
import time
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from echo_jax import config as config_lib
from echo_jax import evaluate as evaluate_lib
from echo_jax import models
from echo_jax import results
from echo_jax import train as train_lib

_SEED_AXIS = "seed"


def model_keys(config: config_lib.EchoConfig, count: int) -> chex.Array:
  """Training key of model i, for i < count: fold_in(fold_in(seed, 0), i)."""
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(count))


def eval_key(config: config_lib.EchoConfig) -> chex.PRNGKey:
  """One test set for every model of a run, disjoint from training keys."""
  return jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)


def seed_mesh(num_models: int, max_devices: int | None = None) -> Mesh:
  """A 1-D mesh over as many devices as there are models (at most all, or
  at most `max_devices`)."""
  available = jax.devices()[:max_devices or jax.device_count()]
  return Mesh(np.array(available[:max(1, min(num_models, len(available)))]),
              (_SEED_AXIS,))


def padded_models(num_models: int, mesh: Mesh) -> int:
  """Models rounded up to a multiple of the mesh size (extras discarded)."""
  return math.ceil(num_models / mesh.size) * mesh.size


def make_train_many(config: config_lib.EchoConfig, mesh: Mesh):
  """train_many(keys_S) -> TrainResult with a leading seed axis, sharded."""
  train_from = train_lib.make_train_from_params(config)

  def train_local(keys_S):
    init_keys, data_keys = jax.vmap(train_lib.split_key)(keys_S)
    # lax.map, not vmap: a batched orthogonal init (QR) deadlocked with
    # several host devices; initialisation is cheap either way.
    params_S = jax.lax.map(lambda k: models.init_params(config, k), init_keys)
    return jax.vmap(train_from)(params_S, data_keys)

  # check_vma=False: models never communicate, and zero initial carries are
  # device-invariant values inside per-device scans.
  return jax.jit(jax.shard_map(train_local, mesh=mesh, in_specs=P(_SEED_AXIS),
                               out_specs=P(_SEED_AXIS), check_vma=False))


def make_evaluate_many(config: config_lib.EchoConfig, mesh: Mesh):
  """evaluate_many(params_S, key) -> accuracy_SxN (per model and sample
  position) on the same test sequences."""
  evaluate = evaluate_lib.make_evaluate(config)

  def evaluate_local(params_S, key):
    return jax.vmap(evaluate, in_axes=(0, None))(params_S, key)

  return jax.jit(jax.shard_map(evaluate_local, mesh=mesh,
                               in_specs=(P(_SEED_AXIS), P()),
                               out_specs=P(_SEED_AXIS), check_vma=False))


class CompiledExperiment(NamedTuple):
  config: config_lib.EchoConfig
  mesh: Mesh
  train_keys: chex.Array
  train_many: Any    # compiled
  evaluate_many: Any  # compiled
  compile_seconds: float


def compile_experiment(config: config_lib.EchoConfig,
                       max_devices: int | None = None) -> CompiledExperiment:
  """Validates, then compiles training and evaluation for all seeds."""
  config_lib.validate(config)
  mesh = seed_mesh(config.seeds, max_devices)
  num = padded_models(config.seeds, mesh)
  train_keys = jax.device_put(model_keys(config, num),
                              NamedSharding(mesh, P(_SEED_AXIS)))
  start = time.perf_counter()
  train_many = make_train_many(config, mesh).lower(train_keys).compile()
  params_spec = jax.eval_shape(
      jax.vmap(lambda k: models.init_params(config, k)), train_keys)
  params_spec = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                     sharding=NamedSharding(mesh, P(_SEED_AXIS))),
      params_spec)
  evaluate_many = make_evaluate_many(config, mesh).lower(
      params_spec, eval_key(config)).compile()
  return CompiledExperiment(config, mesh, train_keys, train_many,
                            evaluate_many, time.perf_counter() - start)


_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
          2.228)


def t_quantile_975(df: int) -> float:
  """Student-t 97.5% quantile: exact table to df 10, then a series that is
  within 0.003 of the exact value (2.042 at df 30, 2.000 at df 60)."""
  if df <= len(_T_975):
    return _T_975[df - 1]
  return 1.96 + 2.37 / df + 2.8 / df**2


def mean_and_ci95(values: np.ndarray) -> tuple[float, float, float]:
  """Mean and a Student-t 95% interval over seeds (degenerate for one)."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return mean, mean, mean
  df = values.size - 1
  t = t_quantile_975(df)
  half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
  return mean, mean - half, mean + half


def run_compiled(compiled: CompiledExperiment
                 ) -> tuple[dict[str, Any], train_lib.TrainResult]:
  """Trains and evaluates every seed; returns the result record and the
  (unpadded) training outputs."""
  config = compiled.config
  start = time.perf_counter()
  trained = jax.block_until_ready(compiled.train_many(compiled.train_keys))
  train_seconds = time.perf_counter() - start
  start = time.perf_counter()
  accuracy_SxN = np.asarray(jax.block_until_ready(
      compiled.evaluate_many(trained.params, eval_key(config))))
  eval_seconds = time.perf_counter() - start
  trained = jax.tree.map(lambda x: np.asarray(x)[:config.seeds], trained)
  accuracy_SxN = accuracy_SxN[:config.seeds]
  accuracy_S = accuracy_SxN.mean(axis=1)
  mean, low, high = mean_and_ci95(accuracy_S)
  first_params = jax.tree.map(lambda x: x[0], trained.params)
  expected, predicted = evaluate_lib.expected_and_predicted(
      config, first_params, jax.random.fold_in(eval_key(config), 1))
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
      "compile_seconds": compiled.compile_seconds,
      "train_seconds": train_seconds,
      "eval_seconds": eval_seconds,
      "models_trained_in_parallel": int(compiled.train_keys.shape[0]),
      "devices_used": compiled.mesh.size,
      "example": {"expected": expected, "predicted": predicted},
      "versions": results.versions(),
  }
  return record, trained


def run_experiment(config: config_lib.EchoConfig,
                   max_devices: int | None = None
                   ) -> tuple[dict[str, Any], train_lib.TrainResult]:
  return run_compiled(compile_experiment(config, max_devices))
