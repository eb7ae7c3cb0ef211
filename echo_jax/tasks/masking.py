"""Missing steps: windows that reach before the sequence starts, and an LSTM
that either sees a special value there or skips them (true masking).

The tutorial drops the rows whose window reaches before X(0). Keeping them
needs a value for the missing steps. Two ways, as the tutorial suggests:
- a special value: missing steps hold the extra id `n_unique` (Keras'
  `pad_sequences` pre-padding with a reserved value); the LSTM must learn to
  ignore it;
- true masking: missing steps are skipped, the state passes through them
  unchanged (Keras' `Masking` layer). With Flax that is `nn.RNN`'s
  `seq_lengths`, which needs the present values first and padding last, so
  masked windows are left-aligned; since skipped steps change nothing, where
  the padding sits does not matter (tested).
"""

import chex
import flax.linen as nn
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import models
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib

ALIGNS = ("right", "left")


def pad_windows(sequence_L: chex.Array, ends_N: chex.Array, context,
                width: int, align: str, fill: int
                ) -> tuple[chex.Array, chex.Array]:
  """The last `context` values up to each X(t), t in ends_N, as `width` slots.

  Values before X(0) are missing. `context` may be traced (<= width).
  align "right": slot j holds X(t - width + 1 + j) for the window's slots
    (the last `context`), `fill` before it and for missing values
    (pre-padding, what a special value needs);
  align "left": the present values X(max(0, t-context+1)) .. X(t) first,
    then `fill` (what `seq_lengths` needs).

  Returns ids_NxW int32 and lengths_N, the number of present values.
  """
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


class PaddedLSTM(nn.Module):
  """The tutorial's classifier (Keras-layout LSTM, Dense head on the last
  state) with an input vocabulary that may hold a special value, and
  optional true masking.

  Attributes:
    hidden: LSTM units.
    input_vocab: distinct input ids (n_unique, or n_unique + 1 with a
      special value for missing steps).
    classes: output classes (n_unique).
    init_scheme, recurrent_activation: as `models.KerasLSTMCell`.
  """
  hidden: int
  input_vocab: int
  classes: int
  init_scheme: str = "keras"
  recurrent_activation: str = "sigmoid"

  @nn.compact
  def __call__(self, ids_BxT: chex.Array,
               lengths_B: chex.Array | None = None) -> chex.Array:
    """ids (B, T) -> logits (B, classes) from the state after step
    lengths_B - 1 (the last step when lengths_B is None); later steps are
    skipped entirely."""
    cell = models.KerasLSTMCell(self.hidden, self.input_vocab,
                                self.init_scheme, self.recurrent_activation,
                                name="lstm")
    carry = models.zero_carry(ids_BxT.shape[0], self.hidden)
    (_, h_BxH), _ = nn.RNN(cell, return_carry=True, name="rnn")(
        ids_BxT, initial_carry=carry, seq_lengths=lengths_B)
    head_init = models.INITIALIZERS[self.init_scheme][3]
    return nn.Dense(self.classes, kernel_init=head_init, name="head")(h_BxH)


MODES = ("special_value", "mask")


def frame_all_rows(sequence_L: chex.Array, lag: int, context: int,
                   n_unique: int, mode: str) -> samples_lib.Samples:
  """Every row that has a target, t = lag .. L-1 (the tutorial keeps
  t >= lag + context - 1 only), its window padded for `mode`: "special_value" fills missing steps with id n_unique,
  "mask" left-aligns the present values and passes their count."""
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


def padded_lstm(config: config_lib.EchoConfig, special_value: bool
                ) -> PaddedLSTM:
  return PaddedLSTM(config.hidden,
                    config.n_unique + (1 if special_value else 0),
                    config.n_unique, config.init, config.recurrent_activation)


def padded_lstm_task(name: str, config: config_lib.EchoConfig,
                     special_value: bool, frame, width: int,
                     sequences_per_epoch: int = 1,
                     variants: tuple[int, ...] = (0,),
                     variant_names: tuple[str, ...] | None = None,
                     batch_size: int | None = None) -> task_lib.Task:
  """A `PaddedLSTM` on a framing whose inputs are {"ids", maybe "lengths"}."""
  model = padded_lstm(config, special_value)

  def init(key):
    return model.init(key, jnp.zeros((1, width), jnp.int32))["params"]

  def apply(params, inputs):
    return model.apply({"params": params}, inputs["ids"],
                       inputs.get("lengths"))

  return framed.framed_task(name, config, init, frame, apply,
                            sequences_per_epoch, batch_size, variants,
                            variant_names)


def missing_value_task(config: config_lib.EchoConfig, mode: str
                       ) -> task_lib.Task:
  """The windowed echo on every row with a target, missing steps handled
  by `mode` (see `frame_all_rows`)."""
  if mode not in MODES:
    raise ValueError(f"mode={mode!r} must be one of {MODES}")

  def frame(sequence_L, variant):
    del variant
    return frame_all_rows(sequence_L, config.lag, config.context,
                          config.n_unique, mode)

  return padded_lstm_task(mode, config, mode == "special_value", frame,
                          config.context)
