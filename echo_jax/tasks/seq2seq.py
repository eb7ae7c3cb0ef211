"""A prediction at every timestep (Keras' TimeDistributed(Dense)): to echo
a lag *sequence* from each window ("Echo Lag Sequence"), and a whole stream
one value at a time (`streaming`).
"""

import chex
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib


def sequence_lstm_task(name: str, config: config_lib.EchoConfig, frame,
                       width: int, **options) -> task_lib.Task:
  """`framed.lstm_task` predicting at every step."""
  # A short window unrolls whole; a stream of 25 steps scans step by step
  # (at 50-100 units on XLA:CPU an update took 1.2x as long at unroll 5).
  return framed.lstm_task(name, config, frame, width, per_step=True,
                          unroll=width if width <= 5 else 1, **options)


def frame_lag_sequence(sequence_L: chex.Array, lag, context: int,
                       rows: int) -> samples_lib.Samples:
  """Row i: the tutorial's window X(i + lag .. i + lag + context - 1) and,
  at each window step s, the target X(t_s - lag), scored where it lies in
  the window (s >= lag: a stateless model never saw the others). Rows past
  the sequence (`rows` is static, `lag` may be traced) have weight 0."""
  (length,) = sequence_L.shape
  i_N = jnp.arange(rows)
  s_C = jnp.arange(context)
  window_index_NxC = i_N[:, None] + lag + s_C[None, :]
  target_index_NxC = window_index_NxC - lag
  valid_N = i_N + lag + context - 1 <= length - 1
  ids_NxC = sequence_L[jnp.clip(window_index_NxC, 0, length - 1)]
  targets_NxC = sequence_L[jnp.clip(target_index_NxC, 0, length - 1)]
  weights_NxC = (valid_N[:, None] & (s_C[None, :] >= lag)).astype(
      jnp.float32)
  return samples_lib.Samples(ids_NxC, targets_NxC, weights_NxC)


def lag_sequence_task(config: config_lib.EchoConfig, lags: tuple[int, ...]
                      ) -> task_lib.Task:
  """One task for all `lags` (window length `config.context`)."""
  rows = config.length - config.context - min(lags) + 1

  frame = lambda sequence_L, lag: frame_lag_sequence(
      sequence_L, lag, config.context, rows)
  return sequence_lstm_task("lag_sequence", config, frame, config.context,
                            variants=tuple(lags),
                            variant_names=tuple(f"lag {l}" for l in lags))
