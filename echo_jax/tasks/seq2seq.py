"""A prediction at every timestep: the LSTM's output sequence through one
Dense layer applied per step (Keras' TimeDistributed(Dense)).

Used twice: to echo a lag *sequence* from each window ("Echo Lag Sequence"),
and to echo a whole stream one value at a time (`streaming`).
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
  """Wraps a cell so no gradient flows into the state it starts from:
  backpropagation through time truncated to one step, which is what a
  stateful Keras fit with one timestep per sample does."""
  cell: nn.RNNCellBase

  def __call__(self, carry, x_t):
    return self.cell(jax.lax.stop_gradient(carry), x_t)

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    return self.cell.initialize_carry(rng, input_shape)

  @property
  def num_feature_axes(self) -> int:
    return self.cell.num_feature_axes


class SequenceLSTM(nn.Module):
  """ids (B, T) -> logits (B, T, V): Keras-layout LSTM, Dense per step.

  Attributes: as `models.EchoLSTM`, plus `truncate_bptt` (stop the gradient
  at every step's incoming state) and `unroll`.
  """
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
  model = SequenceLSTM(config.hidden, config.n_unique, config.init,
                       config.recurrent_activation, truncate_bptt,
                       unroll=min(width, 5))

  def init(key):
    return model.init(key, jnp.zeros((1, width), jnp.int32))["params"]

  def apply(params, ids_BxT):
    return model.apply({"params": params}, ids_BxT)

  return framed.framed_task(name, config, init, frame, apply,
                            sequences_per_epoch, batch_size, variants,
                            variant_names)


def frame_lag_sequence(sequence_L: chex.Array, lag, context: int,
                       rows: int) -> samples_lib.Samples:
  """Windows of `context` values; the target at window step s is the value
  `lag` steps before it, X(t_s - lag), scored where it lies inside the
  window (s >= lag: a stateless model never saw the others).

  Row i's window is X(i + lag .. i + lag + context - 1), as the tutorial's
  framing; `rows` is static, rows past the sequence have weight 0 (so a
  traced `lag` can share one program).
  Returns ids (rows, C), targets (rows, C), weights (rows, C).
  """
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

  def frame(sequence_L, lag):
    return frame_lag_sequence(sequence_L, lag, config.context, rows)

  return sequence_lstm_task("lag_sequence", config, frame, config.context,
                            variants=tuple(lags),
                            variant_names=tuple(f"lag {l}" for l in lags))
