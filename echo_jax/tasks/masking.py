"""Missing steps: keeping the rows the tutorial drops (windows reaching
before X(0)) needs a value for the steps before X(0); as the tutorial says:
- a special value: the extra id `n_unique` (Keras' `pad_sequences` with a
  reserved value); the LSTM must learn to ignore it;
- true masking: the steps are skipped, the state passes through unchanged
  (Keras' `Masking`). Flax `nn.RNN`'s `seq_lengths` needs the present values
  first, so masked windows are left-aligned; skipped steps change nothing,
  so where the padding sits does not matter (tested).
"""

import chex
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib

ALIGNS = ("right", "left")


def pad_windows(sequence_L: chex.Array, ends_N: chex.Array, context,
                width: int, align: str, fill: int
                ) -> tuple[chex.Array, chex.Array]:
  """(ids_NxW, lengths_N): the last `context` (<= width, may be traced)
  values up to each X(t), t in ends_N, in `width` slots, and how many are
  present (values before X(0) are missing). align "right": the window in the
  last slots, `fill` before it and for missing values (pre-padding); "left":
  the present values first, then `fill` (what `seq_lengths` needs)."""
  (length,) = sequence_L.shape
  slots_W = jnp.arange(width)
  start_N = jnp.maximum(ends_N - context + 1, 0)
  lengths_N = ends_N - start_N + 1
  if align == "right":
    index_NxW = ends_N[:, None] - width + 1 + slots_W[None, :]
    present_NxW = index_NxW >= start_N[:, None]
  elif align == "left":
    index_NxW = start_N[:, None] + slots_W[None, :]
    present_NxW = slots_W[None, :] < lengths_N[:, None]
  else:
    raise ValueError(f"align={align!r} must be one of {ALIGNS}")
  values_NxW = sequence_L[jnp.clip(index_NxW, 0, length - 1)]
  ids_NxW = jnp.where(present_NxW, values_NxW, fill).astype(jnp.int32)
  return ids_NxW, lengths_N.astype(jnp.int32)


MODES = ("special_value", "mask")


def frame_all_rows(sequence_L: chex.Array, lag: int, context: int,
                   n_unique: int, mode: str) -> samples_lib.Samples:
  """Every row with a target, t = lag .. L-1 (the tutorial keeps t >= lag +
  context - 1 only): missing steps hold id n_unique ("special_value"), or
  the present values come first and "lengths" counts them ("mask")."""
  (length,) = sequence_L.shape
  ends_N = jnp.arange(lag, length)
  align, fill = ("right", n_unique) if mode == "special_value" else ("left", 0)
  ids_NxC, lengths_N = pad_windows(sequence_L, ends_N, context, context,
                                   align, fill)
  inputs = {"ids": ids_NxC}
  if mode == "mask":
    inputs["lengths"] = lengths_N
  targets_N = sequence_L[ends_N - lag]
  return samples_lib.Samples(inputs, targets_N,
                             jnp.ones(targets_N.shape, jnp.float32))


def missing_value_task(config: config_lib.EchoConfig, mode: str
                       ) -> task_lib.Task:
  """The windowed echo on every row with a target (`frame_all_rows`)."""
  if mode not in MODES:
    raise ValueError(f"mode={mode!r} must be one of {MODES}")

  frame = lambda sequence_L, _: frame_all_rows(
      sequence_L, config.lag, config.context, config.n_unique, mode)
  return framed.lstm_task(mode, config, frame, config.context,
                         special_value=mode == "special_value")
