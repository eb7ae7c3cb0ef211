"""Echo different lags: X(t - lag) from a window grown to fit the lag
(`context_for_lag`), on the tutorial's rows (complete windows only). So that
one program trains every lag (a traced value), windows are left-aligned in
`max context` slots and the slots after a window are masked with
`seq_lengths`: skipped steps change nothing, so lag L's model is exactly an
LSTM over its own window (tested).
"""

import chex
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import masking
from echo_jax.tasks import task as task_lib


def context_for_lag(lag, min_context: int):
  """The window: `min_context` (the tutorial's 5) or lag + 1 if longer."""
  return jnp.maximum(min_context, lag + 1)


def frame_lag_windows(sequence_L: chex.Array, lag, min_context: int,
                      width: int, rows: int) -> samples_lib.Samples:
  """Rows i: window of context_for_lag(lag) values ending at
  t = i + lag + context - 1, left-aligned in `width` slots; target
  X(t - lag); rows with t past the sequence have weight 0."""
  (length,) = sequence_L.shape
  context = context_for_lag(lag, min_context)
  ends_N = jnp.arange(rows) + lag + context - 1
  valid_N = ends_N <= length - 1
  ends_N = jnp.minimum(ends_N, length - 1)
  ids_NxW, lengths_N = masking.pad_windows(sequence_L, ends_N, context, width,
                                           "left", 0)
  targets_N = sequence_L[ends_N - lag]
  return samples_lib.Samples({"ids": ids_NxW, "lengths": lengths_N},
                             targets_N, valid_N.astype(jnp.float32))


def lags_task(config: config_lib.EchoConfig, lags: tuple[int, ...],
              sequences_per_epoch: int = 1) -> task_lib.Task:
  """All `lags` in one program, windows of at least `config.context`; each
  Adam update on every row of the epoch's sequences (the smallest lag's row
  count: a longer lag's rows past the sequence are weight-0 padding)."""
  width = max(int(context_for_lag(l, config.context)) for l in lags)
  rows = samples_per_sequence(config.length, min(lags), config.context)
  if samples_per_sequence(config.length, max(lags), config.context) < 1:
    raise ValueError(f"lag={max(lags)} leaves no complete window in "
                     f"length={config.length}")

  frame = lambda sequence_L, lag: frame_lag_windows(
      sequence_L, lag, config.context, width, rows)
  return framed.lstm_task(
      f"lags_h{config.hidden}", config, frame, width,
      sequences_per_epoch=sequences_per_epoch, variants=tuple(lags),
      variant_names=tuple(f"lag {l}, hidden {config.hidden}" for l in lags),
      batch_size=rows * sequences_per_epoch)


def samples_per_sequence(length: int, lag: int, min_context: int) -> int:
  # Python ints: a binary checks its flags with it before JAX starts.
  return length - lag - max(min_context, lag + 1) + 1
