"""The lag x context x hidden-size map: many models per compiled program.

A cell (lag, context, hidden) asks how reliably an LSTM learns to echo
X(t - lag) from a window of `context` values; `config.seeds` models answer it.

Framing (differs from the tutorial's on purpose, see `all_windows`): every
full window is a sample, N = length - context + 1 rows, the target X(t - lag)
of the window ending at t. Then the lag is a traced value, not a shape, and
every lag of one (context, hidden) pair trains for the same number of updates
on the same rows: all lags x seeds of that pair train in one compiled program
(a "group"), sharded over devices with `shard_map` and `vmap`ped within one.
At lag 0 this is exactly the tutorial's framing (tested against
`train.make_train`). Cells with lag >= context are impossible (the target is
not in the window): reported, never trained.

Seeds are paired across cells: model s of every cell trains with key
fold_in(fold_in(PRNGKey(seed), 0), s), as in `experiment`, and every model is
scored on the same `eval_sequences` fresh test sequences.

Each finished cell is written to <workdir>/cells/ atomically, so an
interrupted sweep resumes without recomputing finished cells; a group trains
in checkpointed chunks of epochs (<workdir>/groups/), so it also resumes
inside the group that was training, bit-identically (see `chunked`).
"""

import collections
import concurrent.futures
import dataclasses
import json
import os
import shutil
import time
from typing import Any, Callable, NamedTuple

from absl import logging

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from echo_jax import chunked
from echo_jax import config as config_lib
from echo_jax import data
from echo_jax import evaluate as evaluate_lib
from echo_jax import experiment
from echo_jax import programs
from echo_jax import results
from echo_jax import train as train_lib

FRAMING = "all_windows"
FRAMING_NOTE = (
    "every full window is a sample (length - context + 1 rows); target "
    "X(t - lag) of the window ending at t; lags of one context share rows and "
    "updates (the tutorial also drops the first `lag` rows; same at lag 0)")
# Sequences per lax.map step when scoring: bounds evaluation memory (all
# models x 1000 sequences at once can take gigabytes).
DEFAULT_EVAL_BATCH = 50

# Traces of each group's programs, by (kind, context, hidden): tests check
# that a group compiles once, whatever its number of lags and seeds.
trace_counts: collections.Counter = collections.Counter()


@dataclasses.dataclass(frozen=True)
class Grid:
  lags: tuple[int, ...]
  contexts: tuple[int, ...]
  hidden_sizes: tuple[int, ...]

  def groups(self) -> list[tuple[int, int]]:
    """(context, hidden) pairs with at least one possible lag, context-major
    (so the models-per-second seen early represents every hidden size)."""
    return [(c, h) for c in sorted(self.contexts)
            for h in sorted(self.hidden_sizes) if possible_lags(self, c)]

  def cells(self) -> list[tuple[int, int, int]]:
    """Every (lag, context, hidden), hidden-major, for tables and plots."""
    return [(l, c, h) for h in sorted(self.hidden_sizes)
            for c in sorted(self.contexts) for l in sorted(self.lags)]

  def to_dict(self) -> dict[str, list[int]]:
    return {"lags": list(self.lags), "contexts": list(self.contexts),
            "hidden_sizes": list(self.hidden_sizes)}


DEFAULT_GRID = Grid(tuple(range(9)), tuple(range(1, 11)), (4, 8, 16, 32, 64))


def possible_lags(grid: Grid, context: int) -> tuple[int, ...]:
  return tuple(l for l in sorted(grid.lags) if l < context)


def is_possible(lag: int, context: int) -> bool:
  """The target X(t - lag) is inside the window of the last `context`."""
  return lag < context


def cell_config(config: config_lib.EchoConfig, lag: int, context: int,
                hidden: int) -> config_lib.EchoConfig:
  return config.replace(lag=lag, context=context, hidden=hidden)


def group_config(config: config_lib.EchoConfig, context: int, hidden: int
                 ) -> config_lib.EchoConfig:
  """The static shapes of a group. Lag 0 stands for every lag: its
  num_samples, length - context + 1, is the all-windows row count."""
  return cell_config(config, 0, context, hidden)


def sweep_settings(config: config_lib.EchoConfig) -> dict[str, Any]:
  """What a sweep's cells share: the config less the grid's three fields."""
  settings = config.to_dict()
  for name in ("lag", "context", "hidden"):
    settings.pop(name)
  return settings


def _check_axis(name: str, values: tuple[int, ...], low: int,
                high: int | None, why: str = "") -> None:
  """One grid axis: non-empty, no repeats, integers in [low, high]."""
  if not values:
    raise config_lib.ConfigError(f"{name} is empty: give at least one value")
  repeated = [v for v, n in collections.Counter(values).items() if n > 1]
  if repeated:
    raise config_lib.ConfigError(f"{name}: {repeated[0]} is given twice")
  for v in values:
    if isinstance(v, bool) or not isinstance(v, int):
      raise config_lib.ConfigError(f"{name}: {v!r} must be an integer")
    if v < low or (high is not None and v > high):
      allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
      raise config_lib.ConfigError(f"{name}: {v} must be {allowed}{why}")


def validate(config: config_lib.EchoConfig, grid: Grid) -> None:
  """Raises ConfigError (one line) unless every group can be trained."""
  if config.framing != "window":
    raise config_lib.ConfigError(
        f"framing={config.framing} cannot be swept: the sweep's cells are "
        "windows of --contexts values (framing=window)")
  # Contexts first: the lags' range depends on them.
  _check_axis("contexts", grid.contexts, 1,
              config.length - config.batch_size + 1,
              f" (length={config.length} must leave batch_size="
              f"{config.batch_size} full windows)")
  _check_axis("hidden_sizes", grid.hidden_sizes, 1, None)
  _check_axis("lags", grid.lags, 0, max(grid.contexts) - 1,
              " (a lag must be below the largest context to be possible)")
  config_lib.validate(config.replace(lag=0, context=1))
  for context, hidden in grid.groups():
    try:
      config_lib.validate(group_config(config, context, hidden))
    except config_lib.ConfigError as e:
      raise config_lib.ConfigError(f"context={context}: {e}") from None


# --- Training and evaluation of one group ----------------------------------


def all_windows(sequence_L: chex.Array, lag: chex.Array, context: int
                ) -> tuple[chex.Array, chex.Array]:
  """Every full window (N = length - context + 1, oldest value first) and
  the target X(t - lag) of the window ending at t; `lag` may be traced.

  Rows lag.. are exactly `data.frame_windows(sequence_L, lag, context)`'s;
  the tutorial's framing drops the first `lag` rows, whose target has fewer
  than context - 1 values before it (a side effect of how it shifts data).
  """
  windows_NxC, _ = data.frame_windows(sequence_L, 0, context)
  targets_N = jax.lax.dynamic_index_in_dim(windows_NxC, context - 1 - lag,
                                           axis=1, keepdims=False)
  return windows_NxC, targets_N


def make_frame_fn(shape_config: config_lib.EchoConfig) -> train_lib.FrameFn:
  """frame(sequence_L, lag) -> all windows of the sequence, with the
  targets of a traced `lag`."""
  return lambda sequence_L, lag: all_windows(sequence_L, lag,
                                             shape_config.context)


def make_train_from(shape_config: config_lib.EchoConfig
                    ) -> Callable[..., train_lib.TrainResult]:
  """train_from(params, data_key, lag) -> TrainResult: one model's run in
  one call (the reference the chunked group programs are tested against):
  `train.make_train_from_params` on all windows with a traced lag."""
  return train_lib.make_train_from_params(shape_config,
                                          make_frame_fn(shape_config))


def make_accuracy(shape_config: config_lib.EchoConfig, eval_batch: int):
  """accuracy(params, lag, sequences_SxL) -> fraction of correct echoes
  over all windows of all sequences, scored `eval_batch` sequences at a time
  (lax.map), so memory does not grow with the test set."""
  predict_logits = evaluate_lib.make_predict_logits(shape_config)
  context = shape_config.context

  def accuracy(params, lag, sequences_SxL):

    def correct(sequence_L):
      windows_NxC, targets_N = all_windows(sequence_L, lag, context)
      predicted_N = jnp.argmax(predict_logits(params, windows_NxC), -1)
      return jnp.sum(predicted_N == targets_N, dtype=jnp.int32)

    num_sequences = sequences_SxL.shape[0]
    correct_S = jax.lax.map(correct, sequences_SxL,
                            batch_size=min(eval_batch, num_sequences))
    total = num_sequences * shape_config.num_samples
    return jnp.sum(correct_S).astype(jnp.float32) / total

  return accuracy


class Group(NamedTuple):
  """The compiled programs of one (context, hidden) pair, all its lags."""
  context: int
  hidden: int
  lags: tuple[int, ...]
  seeds: int
  mesh: Mesh
  keys_M: chex.Array  # model m = (lag index m // seeds, seed m % seeds)
  lags_M: chex.Array
  training: programs.TrainPrograms  # each model with its lag
  evaluate: Any       # compiled: (params_M, lags_M, sequences_SxL) ->
                      # accuracy_M
  chunk_epochs: int
  compile_seconds: float
  devices: int

  def run_chunk(self, state_M, end_epoch):
    return self.training.run_chunk(state_M, end_epoch, self.lags_M)


def compile_group(config: config_lib.EchoConfig, context: int, hidden: int,
                  lags: tuple[int, ...], max_devices: int | None = None,
                  eval_batch: int = DEFAULT_EVAL_BATCH,
                  chunk_epochs: int | None = None) -> Group:
  """Compiles initialisation, a chunk of `chunk_epochs` epochs of training
  and scoring of len(lags) x config.seeds models."""
  shape_config = group_config(config, context, hidden)
  if not lags or max(lags) >= context:
    raise ValueError(f"lags {lags} must be non-empty and < context={context}")
  chunk_epochs = experiment.chunk_length(chunk_epochs, config.epochs)
  count = len(lags) * config.seeds
  mesh = programs.seed_mesh(count, max_devices)
  keys_M, lags_M = experiment.variant_grid(
      config, lags, programs.padded_models(count, mesh))
  keys_M, lags_M = jax.device_put((keys_M, lags_M),
                                  programs.seed_sharding(mesh))
  chunk = train_lib.make_run_epochs(shape_config, chunk_epochs,
                                    make_frame_fn(shape_config))
  accuracy = make_accuracy(shape_config, eval_batch)

  def counted_fit(*args):
    trace_counts["train", context, hidden] += 1
    return chunk.fit(*args)

  def evaluate_local(params_M, lags_M, sequences_SxL):
    trace_counts["evaluate", context, hidden] += 1
    return jax.vmap(accuracy, in_axes=(0, 0, None))(params_M, lags_M,
                                                    sequences_SxL)

  start = time.perf_counter()
  training = programs.compile_training(
      shape_config, chunk._replace(fit=counted_fit), mesh, keys_M, lags_M)
  seeds = P(programs.SEED_AXIS)
  evaluate = programs.per_device(
      evaluate_local, mesh, (seeds, seeds, P())).lower(
          training.state_spec.params, lags_M,
          programs.test_sequences_spec(config)).compile()
  return Group(context, hidden, tuple(lags), config.seeds, mesh, keys_M,
               lags_M, training, evaluate, chunk_epochs,
               time.perf_counter() - start, mesh.size)


def epochs_to_level(accuracy_E: np.ndarray, level: float = 0.99
                    ) -> int | None:
  """First epoch (from 1) whose training accuracy reaches `level`."""
  hits = np.nonzero(np.asarray(accuracy_E) >= level)[0]
  return int(hits[0]) + 1 if hits.size else None


class GroupOutput(NamedTuple):
  accuracy_LxS: np.ndarray  # test accuracy per lag and seed
  trained: train_lib.TrainResult  # leaves (lags, seeds, ...)
  train_seconds: float
  eval_seconds: float


def group_identity(group: Group, config: config_lib.EchoConfig
                   ) -> dict[str, Any]:
  """What a group's run folder is claimed for."""
  return {**sweep_settings(config), "context": group.context,
          "hidden": group.hidden, "lags": list(group.lags)}


def run_group(group: Group, config: config_lib.EchoConfig,
              run_dir: str | None = None,
              stop_after_chunks: int | None = None) -> GroupOutput:
  """Trains the group chunk by chunk (with `run_dir`: checkpointed and
  resumable, see `chunked`), then scores it."""
  n, s = len(group.lags), group.seeds
  run = chunked.run_chunks(
      group.run_chunk, group.training.init(group.keys_M),
      name=f"context {group.context} hidden {group.hidden}",
      total_epochs=config.epochs, num_models=n * s,
      metrics_rows=chunked.metrics_by_variant(
          tuple(f"lag {l}" for l in group.lags), s),
      restore_sharding=programs.seed_sharding(group.mesh),
      run_dir=run_dir, identity=group_identity(group, config),
      stop_after_chunks=stop_after_chunks)
  state = run.state
  start = time.perf_counter()
  accuracy_M = np.asarray(group.evaluate(
      state.params, group.lags_M,
      experiment.eval_sequences(config)))
  eval_seconds = time.perf_counter() - start
  unpad = lambda x: np.asarray(x)[:n * s].reshape((n, s) + x.shape[1:])
  trained = train_lib.TrainResult(jax.tree.map(unpad, state.params),
                                  unpad(run.loss_MxE), unpad(run.accuracy_MxE))
  return GroupOutput(unpad(accuracy_M), trained, run.train_seconds,
                     eval_seconds)


def cell_records(group: Group, output: GroupOutput,
                 config: config_lib.EchoConfig) -> list[dict[str, Any]]:
  """One record per lag of a finished group (what cells/*.json hold)."""
  records = []
  for i, lag in enumerate(group.lags):
    accuracy_S = output.accuracy_LxS[i].astype(np.float64)
    mean, low, high = experiment.mean_and_ci95(accuracy_S)
    train_accuracy_E = output.trained.accuracy_E[i].mean(0)
    records.append({
        "lag": lag, "context": group.context, "hidden": group.hidden,
        "status": "ok", "seeds": group.seeds,
        "mean": mean, "ci_low": low, "ci_high": high,
        "eval_accuracy_per_seed": accuracy_S.tolist(),
        "epochs_to_99": epochs_to_level(train_accuracy_E, 0.99),
        # The group trains its lags together: each cell's share of it.
        "train_seconds": output.train_seconds / len(group.lags),
        "group_train_seconds": output.train_seconds,
        "group_eval_seconds": output.eval_seconds,
        "group_compile_seconds": group.compile_seconds,
        "models_in_program": int(group.keys_M.shape[0]),
        "devices_used": group.devices,
        "samples_per_sequence": config.length - group.context + 1,
        "framing": FRAMING,
        "final_train_loss_per_seed":
            output.trained.loss_E[i, :, -1].astype(np.float64).tolist(),
        # Learning curves, mean over seeds.
        "train_loss_per_epoch": np.round(
            output.trained.loss_E[i].mean(0).astype(np.float64), 6).tolist(),
        "train_accuracy_per_epoch": np.round(
            train_accuracy_E.astype(np.float64), 6).tolist(),
        "config": cell_config(config, lag, group.context,
                              group.hidden).to_dict(),
    })
  return records


def impossible_record(lag: int, context: int, hidden: int) -> dict[str, Any]:
  return {"lag": lag, "context": context, "hidden": hidden,
          "status": "impossible", "seeds": 0, "mean": None, "ci_low": None,
          "ci_high": None, "epochs_to_99": None, "train_seconds": None}


# --- The sweep: resumable, one file per finished cell ----------------------


def cell_path(workdir: str, lag: int, context: int, hidden: int) -> str:
  return os.path.join(workdir, "cells",
                      f"lag{lag}_context{context}_hidden{hidden}.json")


def _check_settings(workdir: str, config: config_lib.EchoConfig) -> None:
  """A workdir's cells belong to one config (the grid may grow)."""
  changed = results.claim_json(os.path.join(workdir, "sweep_config.json"),
                               sweep_settings(config))
  if changed:
    raise config_lib.ConfigError(
        f"workdir={workdir!r} holds a sweep of another config (differs in "
        f"{', '.join(changed)}): use a new --workdir")


def _load_cell(workdir: str, lag: int, context: int, hidden: int
               ) -> dict[str, Any] | None:
  path = cell_path(workdir, lag, context, hidden)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


# Raised after `stop_after_groups` groups or `stop_after_chunks` chunks of a
# group: a simulated kill, for tests.
Interrupted = chunked.Interrupted


def group_dir(workdir: str, context: int, hidden: int,
              lags: tuple[int, ...]) -> str:
  """A group's run folder (checkpoints while it trains, metrics.jsonl)."""
  return os.path.join(workdir, "groups", f"context{context}_hidden{hidden}_"
                      f"lags{'-'.join(map(str, lags))}")


def run_sweep(config: config_lib.EchoConfig, grid: Grid, workdir: str,
              max_devices: int | None = None,
              eval_batch: int = DEFAULT_EVAL_BATCH,
              stop_after_groups: int | None = None,
              chunk_epochs: int | None = None,
              stop_after_chunks: int | None = None) -> dict[str, Any]:
  """Trains every possible cell not already in <workdir>/cells, then
  returns the sweep record (rows for every cell, impossible ones too).
  A group trains in chunks of `chunk_epochs`, checkpointed in its
  `group_dir`, so a killed sweep also resumes inside a group.

  The caller validates first (`validate`), so bad input writes nothing.
  """
  validate(config, grid)
  _check_settings(workdir, config)
  start = time.perf_counter()
  todo = []  # (context, hidden, lags still missing)
  for context, hidden in grid.groups():
    missing = tuple(l for l in possible_lags(grid, context)
                    if _load_cell(workdir, l, context, hidden) is None)
    if missing:
      todo.append((context, hidden, missing))
  total = sum(len(possible_lags(grid, c)) for c, _ in grid.groups())
  reused = total - sum(len(m) for _, _, m in todo)
  models_todo = sum(len(m) for _, _, m in todo) * config.seeds
  impossible = len(grid.cells()) - total
  logging.info("sweep: %d cells to train, %d already done, %d impossible "
               "(lag >= context, not trained); %d programs, %d models",
               total - reused, reused, impossible, len(todo), models_todo)
  done, models_done, groups_run = reused, 0, 0
  compile_seconds = train_seconds = 0.0
  # XLA compiles on one thread while a group trains on every device: compile
  # the next group in the background so the cores idle less.
  compile_next = lambda i: compiler.submit(
      compile_group, config, *todo[i], max_devices, eval_batch, chunk_epochs)
  with concurrent.futures.ThreadPoolExecutor(1) as compiler:
    pending = compile_next(0) if todo else None
    for i, (context, hidden, lags) in enumerate(todo):
      group = pending.result()
      pending = compile_next(i + 1) if i + 1 < len(todo) else None
      run_dir = group_dir(workdir, context, hidden, lags)
      try:
        output = run_group(group, config, run_dir, stop_after_chunks)
      except BaseException:
        if pending is not None:
          pending.cancel()
        raise
      compile_seconds += group.compile_seconds
      train_seconds += output.train_seconds
      models_done += len(lags) * config.seeds
      for record in cell_records(group, output, config):
        results.write_json_atomic(
            cell_path(workdir, record["lag"], context, hidden), record)
        done += 1
        elapsed = time.perf_counter() - start
        # Cost is about proportional to models: estimate from models done.
        remaining = elapsed * (models_todo - models_done) / models_done
        logging.info(
            "cell %d/%d  lag %d context %d hidden %d: %.2f%% [%.2f, %.2f]  "
            "elapsed %.0fs  eta %.0fs", done, total, record["lag"], context,
            hidden, 100 * record["mean"], 100 * record["ci_low"],
            100 * record["ci_high"], elapsed, remaining)
      # Its cells are written: the group's checkpoints are spent.
      shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)
      groups_run += 1
      if stop_after_groups is not None and groups_run >= stop_after_groups:
        if pending is not None:
          pending.cancel()
        raise Interrupted(f"stopped after {groups_run} programs")
  rows = []
  for lag, context, hidden in grid.cells():
    if not is_possible(lag, context):
      rows.append(impossible_record(lag, context, hidden))
    else:
      rows.append(_load_cell(workdir, lag, context, hidden))
  return {
      "experiment": "sweep",
      "framing": FRAMING,
      "framing_note": FRAMING_NOTE,
      "settings": sweep_settings(config),
      "grid": grid.to_dict(),
      "chance_accuracy": 1.0 / config.n_unique,
      "cells_total": len(rows),
      "cells_trained_now": total - reused,
      "cells_reused": reused,
      "cells_impossible": impossible,
      "programs_compiled": len(todo),
      "compile_seconds": compile_seconds,
      "train_seconds": train_seconds,
      "rows": rows,
  }


CSV_COLUMNS = ("lag", "context", "hidden", "seeds", "mean", "ci_low",
               "ci_high", "status", "epochs_to_99", "train_seconds")
CURVE_FIELDS = ("train_loss_per_epoch", "train_accuracy_per_epoch", "config")


def csv_text(rows: list[dict[str, Any]]) -> str:
  """sweep.csv: one line per cell; empty fields where there is no value."""

  def field(value):
    if value is None:
      return ""
    if isinstance(value, float):
      return f"{value:.6g}"
    return str(value)

  lines = [",".join(CSV_COLUMNS)]
  lines += [",".join(field(row[c]) for c in CSV_COLUMNS) for row in rows]
  return "\n".join(lines) + "\n"


def write_summary(workdir: str, record: dict[str, Any]) -> None:
  """sweep.csv and sweep.json (rows without the learning curves, which
  stay in cells/*.json), both atomic."""
  results.write_text_atomic(os.path.join(workdir, "sweep.csv"),
                            csv_text(record["rows"]))
  summary = dict(record)
  summary["rows"] = [{k: v for k, v in row.items() if k not in CURVE_FIELDS}
                     for row in record["rows"]]
  summary["versions"] = results.versions()
  results.write_json_atomic(os.path.join(workdir, "sweep.json"), summary)


# --- Benchmark: one vmapped call vs one call per model ---------------------


def benchmark_vmap(config: config_lib.EchoConfig, lag: int, context: int,
                   hidden: int, sizes: tuple[int, ...],
                   max_devices: int | None = None) -> list[dict[str, Any]]:
  """Seconds per model training S models in one call (sharded over the
  devices, vmapped within one) vs S sequential calls of the one-model
  program (one device); compilation excluded from both."""
  # One chunk: the whole run is one call, as in one model's train(key).
  single = compile_group(config.replace(seeds=1), context, hidden, (lag,),
                         max_devices=1, chunk_epochs=config.epochs)
  train = lambda group, keys_M: jax.block_until_ready(group.run_chunk(
      group.training.init(keys_M), np.int32(config.epochs)))
  train(single, single.keys_M)  # warm
  rows = []
  for size in sizes:
    many = compile_group(config.replace(seeds=size), context, hidden, (lag,),
                         max_devices, chunk_epochs=config.epochs)
    start = time.perf_counter()
    train(many, many.keys_M)
    vmapped = time.perf_counter() - start
    keys_S = np.asarray(many.keys_M)[:size]
    start = time.perf_counter()
    for key in keys_S:
      train(single, jax.device_put(key[None], single.keys_M.sharding))
    sequential = time.perf_counter() - start
    rows.append({"models": size, "devices": many.devices,
                 "vmapped_seconds": vmapped,
                 "sequential_seconds": sequential,
                 "vmapped_models_per_second": size / vmapped,
                 "sequential_models_per_second": size / sequential,
                 "speedup_per_model": sequential / vmapped})
    logging.info("benchmark S=%d: one call %.2fs, %d calls %.2fs, ratio %.2f",
                 size, vmapped, size, sequential, sequential / vmapped)
  return rows
