"""The entire sequence so far as timesteps: sample t is the prefix X(0..t).

The tutorial's extension "Entire Sequence as Timesteps": instead of the last
5 values, each sample holds everything seen up to t, padded to the sequence
length so every sample has the same shape, and masked (or marked with a
special value) so the padding carries no information. Target: X(t - lag),
for every t >= lag, so there is one accuracy per position t.
"""

import chex

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import masking
from echo_jax.tasks import task as task_lib


def frame_prefixes(sequence_L: chex.Array, lag: int, mode: str,
                   n_unique: int) -> samples_lib.Samples:
  """Rows t = lag .. L-1: the prefix X(0..t) in L slots.

  mode "mask": left-aligned, X(0..t) then padding, lengths t + 1 (the LSTM
  skips the padding); "special_value": pre-padded with id n_unique.
  """
  (length,) = sequence_L.shape
  # A context as long as the sequence: the window is the whole prefix.
  return masking.frame_all_rows(sequence_L, lag, length, n_unique, mode)


def prefix_task(config: config_lib.EchoConfig, mode: str,
                sequences_per_epoch: int = 1,
                batch_size: int | None = None) -> task_lib.Task:
  if mode not in masking.MODES:
    raise ValueError(f"mode={mode!r} must be one of {masking.MODES}")

  def frame(sequence_L, variant):
    del variant
    return frame_prefixes(sequence_L, config.lag, mode, config.n_unique)

  return masking.padded_lstm_task(f"prefix_{mode}", config,
                                  mode == "special_value", frame,
                                  config.length, sequences_per_epoch,
                                  batch_size=batch_size)
