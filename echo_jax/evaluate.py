"""Evaluation: accuracy over many fresh sequences, vmapped; one printout.

A sequence is predicted the way the tutorial's `model.predict` does after
`reset_states()`: from a zero state, batch by batch in order, a stateful
model carrying row i of each batch into row i of the next.
"""

from typing import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax import config as config_lib
from echo_jax import data
from echo_jax import models
from echo_jax import train as train_lib


def make_predict_logits(config: config_lib.EchoConfig
                        ) -> Callable[[chex.ArrayTree, chex.Array], chex.Array]:
  """predict_logits(params, windows_NxC) -> logits_NxV for one sequence."""
  model = models.make_model(config)

  def apply(params, ids_BxC, carry):
    return model.apply({"params": params},
                       train_lib.model_inputs(config, ids_BxC), carry)

  def predict_logits(params, windows_NxC):
    if not config.stateful:
      # Samples are independent: one batch of all of them is the same math.
      logits_NxV, _ = apply(params, windows_NxC, None)
      return logits_NxV
    k, b = config.num_batches, config.batch_size
    windows_KxBxC = windows_NxC.reshape(k, b, -1)

    def batch_step(carry, ids_BxC):
      logits_BxV, carry = apply(params, ids_BxC, carry)
      return carry, logits_BxV

    _, logits_KxBxV = jax.lax.scan(
        batch_step, models.zero_carry(b, config.hidden), windows_KxBxC)
    return logits_KxBxV.reshape(k * b, -1)

  return predict_logits


def make_evaluate(config: config_lib.EchoConfig
                  ) -> Callable[[chex.ArrayTree, chex.PRNGKey], chex.Array]:
  """evaluate(params, key) -> accuracy_N: accuracy at each of the N sample
  positions of a sequence, over `config.eval_sequences` fresh sequences.
  Its mean is the overall accuracy (every sequence has N samples)."""
  predict_logits = make_predict_logits(config)

  def correct_N(params, key):
    windows_NxC, targets_N = data.generate_samples(
        key, config.length, config.n_unique, config.lag, config.context)
    predicted_N = data.one_hot_decode(predict_logits(params, windows_NxC))
    return (predicted_N == targets_N).astype(jnp.float32)

  def evaluate(params, key):
    keys = jax.random.split(key, config.eval_sequences)
    correct_SxN = jax.vmap(correct_N, in_axes=(None, 0))(params, keys)
    return jnp.mean(correct_SxN, axis=0)

  return evaluate


def expected_and_predicted(config: config_lib.EchoConfig,
                           params: chex.ArrayTree, key: chex.PRNGKey
                           ) -> tuple[list[int], list[int]]:
  """The tutorial's check: decoded targets and predictions of one sequence."""
  windows_NxC, targets_N = data.generate_samples(
      key, config.length, config.n_unique, config.lag, config.context)
  logits_NxV = jax.jit(make_predict_logits(config))(params, windows_NxC)
  predicted_N = data.one_hot_decode(logits_NxV)
  return (np.asarray(targets_N).tolist(), np.asarray(predicted_N).tolist())
