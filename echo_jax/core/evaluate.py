"""Evaluation: accuracy over many fresh sequences, vmapped in batches.

A sequence is predicted the way the tutorial's `model.predict` does after
`reset_states()`: from a zero state, batch by batch in order, a stateful
model carrying row i of each batch into row i of the next.
"""

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import models


class Scores(NamedTuple):
  """What an evaluator returns for some test sequences: `sums` are sums
  over the sequences (so the scores of consecutive pieces of a test set add
  up); `first` is about the first of them (the tutorial's Expected /
  Predicted example)."""
  sums: Any
  first: Any = ()


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


# The tutorial's windows are small: its default test set (1000 sequences)
# is scored as one vmapped batch.
TUTORIAL_EVAL_BATCH = 1000


def make_evaluate(config: config_lib.EchoConfig):
  """evaluate(params, sequences, variant=None) -> Scores over S test
  sequences (an (S, L) array or a `data.TestSet`): sums = correct
  predictions per sample position (int32, N), first = (targets_N,
  predicted_N) of the first sequence, predicted the way the tutorial
  does."""
  predict_logits = make_predict_logits(config)

  def score(params, sequence_L):
    chex.assert_shape(sequence_L, (config.length,))
    windows_NxC, targets_N = data.frame_windows(sequence_L, config.lag,
                                                config.context)
    predicted_N = data.one_hot_decode(predict_logits(params, windows_NxC))
    return Scores((predicted_N == targets_N).astype(jnp.int32),
                  (targets_N, predicted_N))

  def evaluate(params, sequences_SxL, variant=None):
    del variant
    return sum_over_sequences(lambda seq: score(params, seq), sequences_SxL,
                              TUTORIAL_EVAL_BATCH)

  return evaluate


def fraction(count, total: int):
  """count / total in float32, in a program (jnp) or on the host (numpy)
  with the same bits: as a product with the float32 reciprocal, which is
  what XLA makes of a division by a constant (a correctly rounded division
  on the host would differ from it in the last bit)."""
  return count.astype(np.float32) * (np.float32(1) / np.float32(total))


# Test sequences scored together: bounds evaluation memory (logits of all
# models x all sequences at once can take gigabytes), whatever the test set.
EVAL_BATCH = 250


def sum_over_sequences(fn: Callable[[chex.Array], Scores], sequences_SxL,
                       batch: int = EVAL_BATCH) -> Scores:
  """The Scores of an (S, L) array of sequences or a `data.TestSet` from
  fn(sequence) -> Scores of one: its sums summed over the sequences, its
  first of sequence 0. `batch` sequences at a time (a scan over vmapped
  batches; a TestSet's batch is drawn from its keys when scored): memory
  does not grow with S beyond the array itself (a TestSet's keys). The sums
  must be counts (integers, or floats holding integers), so the order of
  the additions cannot change them."""
  num = data.num_sequences(sequences_SxL)
  batch = min(batch, num)
  steps = -(-num // batch)
  score = lambda items: jax.vmap(fn)(data.sequences_of(items))
  first_of = lambda scores: jax.tree.map(lambda v: v[0], scores.first)
  if steps == 1:
    scores = score(sequences_SxL)
    return Scores(jax.tree.map(lambda v: v.sum(0), scores.sums),
                  first_of(scores))
  first = jax.tree.map(lambda x: x[:1], sequences_SxL)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape[1:], s.dtype),
                       jax.eval_shape(score, first))

  def step(total, index):
    # Slices, not a padded copy of the test set: the last batch starts
    # early enough to be whole, and rows an earlier batch counted are
    # masked out.
    first = index * batch
    start = jnp.minimum(first, num - batch)
    items = jax.tree.map(
        lambda x: jax.lax.dynamic_slice_in_dim(x, start, batch),
        sequences_SxL)
    valid_B = start + jnp.arange(batch) >= first
    values = score(items)
    masked = jax.tree.map(
        lambda v: jnp.where(valid_B.reshape((-1,) + (1,) * (v.ndim - 1)),
                            v, jnp.zeros_like(v)), values.sums)
    sums = jax.tree.map(lambda t, v: t + v.sum(0), total.sums, masked)
    kept = jax.tree.map(lambda t, v: jnp.where(index == 0, v, t),
                        total.first, first_of(values))
    return Scores(sums, kept), None

  total, _ = jax.lax.scan(step, zeros, jnp.arange(steps))
  return total
