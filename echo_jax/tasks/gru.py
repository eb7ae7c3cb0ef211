"""A GRU on the tutorial's windows, the worked example of adding an
experiment (docs/architecture.md): a Flax model and the task pairing it with
a framing; the runner, checkpoints, records and flags come for free."""

import chex
import flax.linen as nn
import jax

from echo_jax.core import config as config_lib
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib


class WindowGRU(nn.Module):
  """ids (B, C) -> logits (B, V): one-hot ids into a GRU, a Dense head on
  its last state."""
  hidden: int
  vocab: int

  @nn.compact
  def __call__(self, ids_BxC: chex.Array) -> chex.Array:
    x_BxCxV = jax.nn.one_hot(ids_BxC, self.vocab)
    h_BxH = nn.RNN(nn.GRUCell(self.hidden))(x_BxCxV)[:, -1]
    return nn.Dense(self.vocab)(h_BxH)


def gru_task(config: config_lib.EchoConfig) -> task_lib.Task:
  """The tutorial's windows of config.lag and config.context, fitted
  statelessly by a GRU of config.hidden units."""
  return framed.module_task(f"gru_{config.hidden}", config,
                            WindowGRU(config.hidden, config.n_unique),
                            config.context)
