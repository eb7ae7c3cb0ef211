"""Evaluation: accuracy over fresh sequences, each predicted as the tutorial's
`model.predict` after `reset_states()`: from a zero state, batch by batch in
order, a stateful model carrying row i of each batch into row i of the next."""

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import models


class Scores(NamedTuple):
  """An evaluator's result: `sums` over the sequences (pieces of a test set
  add up), `first` about the first one (the tutorial's Expected/Predicted)."""
  sums: Any
  first: Any = ()


def make_predict_logits(config: config_lib.EchoConfig
                        ) -> Callable[[chex.ArrayTree, chex.Array], chex.Array]:
  """predict_logits(params, windows_NxC) -> logits_NxV for one sequence."""
  apply = models.make_apply(config)

  def predict_logits(params, windows_NxC):
    if not config.stateful:  # independent samples: one batch of them all
      return apply(params, windows_NxC)[0]
    k, b = config.num_batches, config.batch_size
    windows_KxBxC = windows_NxC.reshape(k, b, -1)

    def batch_step(carry, ids_BxC):
      logits_BxV, carry = apply(params, ids_BxC, carry)
      return carry, logits_BxV

    _, logits_KxBxV = jax.lax.scan(
        batch_step, models.zero_carry(b, config.hidden), windows_KxBxC)
    return logits_KxBxV.reshape(k * b, -1)

  return predict_logits


TUTORIAL_EVAL_BATCH = 1000  # the default test set, as one vmapped batch


def make_evaluate(config: config_lib.EchoConfig):
  """evaluate(params, sequences, variant=None) -> Scores: sums = correct
  predictions per position (int32, N), first = (targets_N, predicted_N)."""
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
  """count / total in float32 as XLA computes it (times the float32
  reciprocal), so a program and the host agree to the last bit."""
  return count.astype(np.float32) * (np.float32(1) / np.float32(total))


EVAL_BATCH = 250  # bounds memory: all logits at once can take gigabytes


def sum_over_sequences(fn: Callable[[chex.Array], Scores], sequences_SxL,
                       batch: int = EVAL_BATCH) -> Scores:
  """fn(sequence) -> Scores summed over an (S, L) array or `data.TestSet`
  (`first` of sequence 0) in a scan over vmapped batches: memory does not
  grow with S. Sums must be counts, so addition order cannot change them."""
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
    # Slices, not a padded copy: the last batch starts early enough to be
    # whole, and rows an earlier batch counted are masked out.
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
