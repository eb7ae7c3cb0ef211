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

  def correct(params, sequence_L):
    targets_N, predicted_N = predict(params, sequence_L)
    return (predicted_N == targets_N).astype(jnp.int32)

  def evaluate(params, sequences_SxL):
    chex.assert_shape(sequences_SxL, (None, config.length))
    count_N = sum_over_sequences(lambda seq: correct(params, seq),
                                 sequences_SxL, TUTORIAL_EVAL_BATCH)
    # Exact integer counts: the same float32 means as averaging 0/1 values.
    accuracy_N = count_N.astype(jnp.float32) / sequences_SxL.shape[0]
    targets_N, predicted_N = predict(params, sequences_SxL[0])
    return Evaluation(accuracy_N, targets_N, predicted_N)

  return evaluate


# Test sequences scored together: bounds evaluation memory (logits of all
# models x all sequences at once can take gigabytes), whatever the test set.
EVAL_BATCH = 250
# The tutorial's windows are small: its default test set (1000 sequences)
# is one batch, one vmap as before (a scan over batches compiled ~10%
# slower in a cold reproduce).
TUTORIAL_EVAL_BATCH = 1000


def sum_over_sequences(fn: Callable[[chex.Array], chex.ArrayTree],
                       sequences_SxL: chex.Array,
                       batch: int = EVAL_BATCH) -> chex.ArrayTree:
  """sum over s of fn(sequences_SxL[s]), `batch` sequences at a time (a
  scan over vmapped batches, the last padded and masked): memory does not
  grow with S. fn's outputs must be sums of counts (integers, or floats
  holding integers), so the order of the additions cannot change them."""
  num = sequences_SxL.shape[0]
  batch = min(batch, num)
  steps = -(-num // batch)
  if steps == 1:
    return jax.tree.map(lambda v: v.sum(0), jax.vmap(fn)(sequences_SxL))
  padded = jnp.pad(sequences_SxL, ((0, steps * batch - num), (0, 0)))
  valid_KxB = (jnp.arange(steps * batch) < num).reshape(steps, batch)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape[1:], s.dtype),
                       jax.eval_shape(jax.vmap(fn), sequences_SxL[:1]))

  def step(total, chunk):
    sequences_BxL, valid_B = chunk
    values = jax.vmap(fn)(sequences_BxL)
    masked = jax.tree.map(
        lambda v: jnp.where(valid_B.reshape((-1,) + (1,) * (v.ndim - 1)),
                            v, jnp.zeros_like(v)), values)
    return jax.tree.map(lambda t, v: t + v.sum(0), total, masked), None

  total, _ = jax.lax.scan(
      step, zeros, (padded.reshape(steps, batch, -1), valid_KxB))
  return total
