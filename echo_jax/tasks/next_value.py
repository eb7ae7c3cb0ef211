"""The negative control: the echo's windows, model and training, the target
moved from X(t - lag) to the *next* random integer X(t + 1). It is drawn
independently of the past, so no model can beat chance (1/n_unique) on fresh
sequences: an evaluation that showed more would be leaking the answer.
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
  return framed.echo_lstm_task(
      "predict_next", config,
      lambda sequence_L, _: frame_next_value(sequence_L, config.context))
