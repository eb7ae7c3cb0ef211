"""Streaming echo: one integer per step, output the integer `lag` steps back.

A many-to-many LSTM learns it with backpropagation through the whole
sequence (the loss at step t reaches the input at t - lag through the
state). The tutorial's beginner's setup (one timestep per sample, stateful,
batch 6) cannot: (a) Keras carries row i of batch k into row i of batch k+1,
so with batch size b sample j starts from the state sample j - b left
(`keras_state_source`): at b = 6 the value to echo never entered it; (b) the
carried state is a constant to the gradient, so even at b = 1 nothing
teaches the state to keep X(t-1), as the many-to-many model with
`truncate_bptt` (no gradient into each step's incoming state) shows.
"""

import chex
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import seq2seq
from echo_jax.tasks import task as task_lib


def keras_state_source(num_samples: int, batch_size: int) -> np.ndarray:
  """For each sample j of a stateful fit, the sample whose final state it
  starts from (-1: the zero state after a reset). Samples are split into
  batches in order; row i of batch k continues row i of batch k-1."""
  sample_KxB = np.arange(num_samples).reshape(-1, batch_size)
  source_KxB = np.full_like(sample_KxB, -1)
  source_KxB[1:] = sample_KxB[:-1]
  return source_KxB.reshape(-1)


def frame_stream(sequence_L: chex.Array, lag) -> samples_lib.Samples:
  """The whole sequence as one sample (1, L): target X(t - lag) at every
  step t, weight 0 before t = lag; `lag` may be traced."""
  (length,) = sequence_L.shape
  t_L = jnp.arange(length)
  targets_L = sequence_L[jnp.clip(t_L - lag, 0, length - 1)]
  weights_L = (t_L >= lag).astype(jnp.float32)
  return samples_lib.Samples(sequence_L[None, :], targets_L[None, :],
                             weights_L[None, :])


def streaming_task(config: config_lib.EchoConfig, lags: tuple[int, ...],
                   sequences_per_update: int, truncate_bptt: bool = False,
                   name: str | None = None) -> task_lib.Task:
  """One task for all `lags`: a many-to-many LSTM over whole sequences,
  `sequences_per_update` fresh sequences per epoch, one Adam update each."""
  kind = "streaming_truncated" if truncate_bptt else "streaming_full_bptt"
  return seq2seq.sequence_lstm_task(
      name or kind, config, frame_stream, config.length,
      sequences_per_epoch=sequences_per_update, variants=tuple(lags),
      variant_names=tuple(f"{kind} lag {l}" for l in lags),
      truncate_bptt=truncate_bptt, batch_size=sequences_per_update)
