"""A sweep cell (lag, context, hidden) asks how reliably an LSTM learns to
echo X(t - lag) from a window of `context` values (`config.seeds` models).

Framing (`all_windows`, not the tutorial's on purpose): every full window is
a sample, N = length - context + 1 rows, so the lag is a traced value, not a
shape: all lags x seeds of one (context, hidden) pair train on the same rows
in one program (a "group", `group_task`) with the tutorial's own fit
(`train.make_train`). Cells with lag >= context are impossible (the target
is not in the window): reported, never trained.
"""

import collections
import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import train as train_lib
from echo_jax.tasks import task as task_lib

FRAMING = "all_windows"
FRAMING_NOTE = (
    "every full window is a sample (length - context + 1 rows); target "
    "X(t - lag) of the window ending at t; lags of one context share rows and "
    "updates (the tutorial also drops the first `lag` rows; same at lag 0)")
# Sequences per lax.map step when scoring: bounds evaluation memory (all
# models x 1000 sequences at once can take gigabytes).
EVAL_BATCH = 50


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


def possible_lags(grid: Grid, context: int) -> tuple[int, ...]:
  return tuple(l for l in sorted(grid.lags) if l < context)


def group_config(config: config_lib.EchoConfig, context: int, hidden: int
                 ) -> config_lib.EchoConfig:
  """The static shapes of a group. Lag 0 stands for every lag: its
  num_samples, length - context + 1, is the all-windows row count."""
  return config.replace(lag=0, context=context, hidden=hidden)


def sweep_settings(config: config_lib.EchoConfig) -> dict[str, Any]:
  """What a sweep's cells share: the config less the grid's three fields."""
  return {k: v for k, v in config.to_dict().items()
          if k not in ("lag", "context", "hidden")}


def check_axis(name: str, values: tuple[int, ...], low: int,
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
  check_axis("contexts", grid.contexts, 1,
             config.length - config.batch_size + 1,
             f" (length={config.length} must leave batch_size="
             f"{config.batch_size} full windows)")
  check_axis("hidden_sizes", grid.hidden_sizes, 1, None)
  check_axis("lags", grid.lags, 0, max(grid.contexts) - 1,
             " (a lag must be below the largest context to be possible)")
  config_lib.validate(config.replace(lag=0, context=1))
  for context, hidden in grid.groups():
    try:
      config_lib.validate(group_config(config, context, hidden))
    except config_lib.ConfigError as e:
      raise config_lib.ConfigError(f"context={context}: {e}") from None


def all_windows(sequence_L: chex.Array, lag: chex.Array, context: int
                ) -> tuple[chex.Array, chex.Array]:
  """Every full window (oldest value first) and the target X(t - lag) of
  the window ending at t. Rows lag.. are `data.frame_windows(sequence_L,
  lag, context)`'s; the tutorial drops the first `lag` rows (a side effect
  of how it shifts data), so at lag 0 the two are the same (tested)."""
  windows_NxC, _ = data.frame_windows(sequence_L, 0, context)
  targets_N = jax.lax.dynamic_index_in_dim(windows_NxC, context - 1 - lag,
                                           axis=1, keepdims=False)
  return windows_NxC, targets_N


def group_task(config: config_lib.EchoConfig, context: int, hidden: int,
               lags: tuple[int, ...]) -> task_lib.Task:
  """One (context, hidden) pair: `lags` x config.seeds models, each model's
  lag a traced variant, scored by its count of correct echoes."""
  shape_config = group_config(config, context, hidden)
  if not lags or max(lags) >= context:
    raise ValueError(f"lags {lags} must be non-empty and < context={context}")
  predict_logits = evaluate_lib.make_predict_logits(shape_config)

  def correct(params, sequences_SxL, lag):
    """The int32 count of correct echoes over all windows,
    EVAL_BATCH sequences at a time (bounded memory)."""

    def one_sequence(sequence_L):
      # An item of a TestSet is drawn here, inside the batch.
      sequence_L = data.sequences_of(sequence_L)
      windows_NxC, targets_N = all_windows(sequence_L, lag, context)
      predicted_N = jnp.argmax(predict_logits(params, windows_NxC), -1)
      return jnp.sum(predicted_N == targets_N, dtype=jnp.int32)

    batch = min(EVAL_BATCH, data.num_sequences(sequences_SxL))
    return evaluate_lib.Scores(jnp.sum(
        jax.lax.map(one_sequence, sequences_SxL, batch_size=batch)))

  return task_lib.Task(
      f"context {context} hidden {hidden}", shape_config,
      train_lib.make_train(
          shape_config, lambda sequence_L, lag: all_windows(sequence_L, lag,
                                                            context)),
      correct, variants=tuple(lags),
      variant_names=tuple(f"lag {l}" for l in lags))
