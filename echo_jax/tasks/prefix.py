"""The tutorial's "Entire Sequence as Timesteps": sample t is the prefix
X(0..t) instead of the last 5 values, padded to the sequence length and
masked (or marked with a special value) so the padding carries no
information; target X(t - lag) for every t >= lag.
"""

import chex

from echo_jax.core import config as config_lib
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import masking
from echo_jax.tasks import task as task_lib


def frame_prefixes(sequence_L: chex.Array, lag: int, mode: str,
                   n_unique: int) -> samples_lib.Samples:
  """Rows t = lag .. L-1: the prefix X(0..t) in L slots, padded for `mode`
  (`masking.frame_all_rows`)."""
  (length,) = sequence_L.shape
  # A context as long as the sequence: the window is the whole prefix.
  return masking.frame_all_rows(sequence_L, lag, length, n_unique, mode)


def prefix_task(config: config_lib.EchoConfig, mode: str,
                sequences_per_epoch: int = 1,
                batch_size: int | None = None) -> task_lib.Task:
  if mode not in masking.MODES:
    raise ValueError(f"mode={mode!r} must be one of {masking.MODES}")

  frame = lambda sequence_L, _: frame_prefixes(sequence_L, config.lag, mode,
                                               config.n_unique)
  return framed.lstm_task(f"prefix_{mode}", config, frame, config.length,
                         sequences_per_epoch=sequences_per_epoch,
                         batch_size=batch_size,
                         special_value=mode == "special_value")
