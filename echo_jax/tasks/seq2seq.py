"""A prediction at every timestep (Keras' TimeDistributed(Dense)): to echo
a lag *sequence* from each window ("Echo Lag Sequence"), and a whole stream
one value at a time (`streaming`).
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import models
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib


class _TruncatedCell(nn.RNNCellBase):
  """No gradient into the state a step starts from: backpropagation through
  time truncated to one step, as a stateful Keras fit of timestep 1 has."""
  cell: nn.RNNCellBase

  def __call__(self, carry, x_t):
    return self.cell(jax.lax.stop_gradient(carry), x_t)

  @property
  def num_feature_axes(self) -> int:
    return self.cell.num_feature_axes


class SequenceLSTM(nn.Module):
  """ids (B, T) -> logits (B, T, V): Keras-layout LSTM, Dense per step;
  `truncate_bptt` stops the gradient at every step's incoming state."""
  hidden: int
  vocab: int
  init_scheme: str = "keras"
  recurrent_activation: str = "sigmoid"
  truncate_bptt: bool = False
  unroll: int = 1

  @nn.compact
  def __call__(self, ids_BxT: chex.Array) -> chex.Array:
    cell = models.KerasLSTMCell(self.hidden, self.vocab, self.init_scheme,
                                self.recurrent_activation, name="lstm")
    if self.truncate_bptt:
      cell = _TruncatedCell(cell)
    outputs_BxTxH = nn.RNN(cell, unroll=self.unroll, name="rnn")(
        ids_BxT, initial_carry=models.zero_carry(ids_BxT.shape[0],
                                                 self.hidden))
    head_init = models.INITIALIZERS[self.init_scheme][3]
    # Dense on the last axis is TimeDistributed(Dense): same weights per step.
    return nn.Dense(self.vocab, kernel_init=head_init, name="head")(
        outputs_BxTxH)


def sequence_lstm_task(name: str, config: config_lib.EchoConfig, frame,
                       width: int, sequences_per_epoch: int = 1,
                       variants: tuple[int, ...] = (0,),
                       variant_names: tuple[str, ...] | None = None,
                       truncate_bptt: bool = False,
                       batch_size: int | None = None) -> task_lib.Task:
  # A short window unrolls whole; a stream of 25 steps scans step by step
  # (at 50-100 units on XLA:CPU an update took 1.2x as long at unroll 5).
  model = SequenceLSTM(config.hidden, config.n_unique, config.init,
                       config.recurrent_activation, truncate_bptt,
                       unroll=width if width <= 5 else 1)

  init = lambda key: model.init(
      key, jnp.zeros((1, width), jnp.int32))["params"]
  apply = lambda params, ids_BxT: model.apply({"params": params}, ids_BxT)
  return framed.framed_task(name, config, init, frame, apply,
                            sequences_per_epoch, batch_size, variants,
                            variant_names)


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
