"""The negative control: predict the *next* random integer from the window.

The next value is drawn independently of everything before it, so no model
can beat chance (1/n_unique) on fresh sequences; an evaluation that showed
more would be leaking the answer. Same windows, model and training as the
echo, only the target moves from X(t - lag) to X(t + 1).
"""

import chex
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib


def frame_next_value(sequence_L: chex.Array, context: int
                     ) -> samples_lib.Samples:
  """Windows X(t-C+1 .. t) for t = C-1 .. L-2, target X(t + 1)."""
  windows_NxC, _ = data.frame_windows(sequence_L[:-1], 0, context)
  targets_N = sequence_L[context:]
  return samples_lib.Samples(windows_NxC, targets_N,
                           jnp.ones(targets_N.shape, jnp.float32))


def next_value_task(config: config_lib.EchoConfig) -> task_lib.Task:
  def frame(sequence_L, variant):
    del variant
    return frame_next_value(sequence_L, config.context)

  return framed.echo_lstm_task("predict_next", config, frame)
