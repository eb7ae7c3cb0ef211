"""Evaluation: accuracy over many fresh sequences, vmapped; one printout.

A sequence is predicted the way the tutorial's `model.predict` does after
`reset_states()`: from a zero state, batch by batch in order, a stateful
model carrying row i of each batch into row i of the next.
"""

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import models


def make_predict_logits(config: config_lib.EchoConfig
                        ) -> Callable[[chex.ArrayTree, chex.Array], chex.Array]:
  """predict_logits(params, windows_NxC) -> logits_NxV for one sequence."""
  model = models.make_model(config)

  def apply(params, ids_BxC, carry):
    return model.apply({"params": params},
                       models.model_inputs(config, ids_BxC), carry)

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


class Evaluation(NamedTuple):
  accuracy_N: chex.Array          # accuracy at each sample position
  example_targets_N: chex.Array   # the first test sequence's targets
  example_predicted_N: chex.Array  # and the model's predictions for it


def make_evaluate(config: config_lib.EchoConfig
                  ) -> Callable[[chex.ArrayTree, chex.Array], Evaluation]:
  """evaluate(params, sequences_SxL) -> Evaluation over S test sequences
  (e.g. `data.test_sequences`): accuracy at each of the N sample positions
  (its mean is the overall accuracy, every sequence having N samples), plus
  the tutorial's Expected/Predicted check on the first of them."""
  predict_logits = make_predict_logits(config)

  def predict(params, sequence_L):
    windows_NxC, targets_N = data.frame_windows(sequence_L, config.lag,
                                                config.context)
    return targets_N, data.one_hot_decode(predict_logits(params, windows_NxC))

  def evaluate(params, sequences_SxL):
    chex.assert_shape(sequences_SxL, (None, config.length))
    targets_SxN, predicted_SxN = jax.vmap(predict, in_axes=(None, 0))(
        params, sequences_SxL)
    accuracy_N = jnp.mean((predicted_SxN == targets_SxN).astype(jnp.float32),
                          axis=0)
    return Evaluation(accuracy_N, targets_SxN[0], predicted_SxN[0])

  return evaluate
