"""The readers' baseline: a multilayer perceptron over the flattened window
(C x V one-hot features). Its first layer sums gathered kernel rows, one per
window step: the one-hot (B, C*V) @ (C*V, H) matmul's numbers, without the
zeros.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import models
from echo_jax.tasks import framed
from echo_jax.tasks import task as task_lib


class WindowMLP(nn.Module):
  """ids (B, C) -> logits (B, V): Dense(hidden, relu) on the flattened
  one-hot window, then Dense(V). Keras-style glorot-uniform kernels."""
  hidden: int
  vocab: int
  context: int

  @nn.compact
  def __call__(self, ids_BxC: chex.Array) -> chex.Array:
    kernel_CVxH = self.param("kernel", nn.initializers.glorot_uniform(),
                             (self.context * self.vocab, self.hidden))
    bias_H = self.param("bias", nn.initializers.zeros_init(), (self.hidden,))
    # Row c * V + id of the flattened one-hot kernel, for each window step.
    rows_BxC = jnp.arange(self.context) * self.vocab + ids_BxC
    hidden_BxH = jax.nn.relu(
        jnp.take(kernel_CVxH, rows_BxC, axis=0).sum(axis=1) + bias_H)
    head_init = models.INITIALIZERS["keras"][3]
    return nn.Dense(self.vocab, kernel_init=head_init, name="head")(
        hidden_BxH)


def mlp_task(config: config_lib.EchoConfig, hidden: int) -> task_lib.Task:
  """The tutorial's windows (lag, context), fitted statelessly, by an MLP."""
  return framed.module_task(f"mlp_{hidden}", config,
                            WindowMLP(hidden, config.n_unique, config.context),
                            config.context)
