"""Evaluation: accuracy over many fresh sequences, vmapped; one printout.

A sequence is predicted the way the tutorial's `model.predict` does after
`reset_states()`: from a zero state, batch by batch in order, a stateful
model carrying row i of each batch into row i of the next.
"""

import functools
import time
from typing import Any, Callable, NamedTuple, Sequence

from absl import logging
import chex
import jax
import jax.numpy as jnp
import numpy as np

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


class Counts(NamedTuple):
  """What `make_score` gives for some test sequences: an `Evaluation`
  before its division, so that counts of consecutive pieces of a test set
  add up (`combine_counts`)."""
  correct_N: chex.Array           # int32: correct predictions per position
  example_targets_N: chex.Array   # the pieces' first sequence's targets
  example_predicted_N: chex.Array


def make_score(config: config_lib.EchoConfig
               ) -> Callable[[chex.ArrayTree, chex.Array], Counts]:
  """score(params, sequences_SxL) -> Counts over S test sequences
  (`data.test_sequences`, or the same as a `data.TestSet`), scored
  TUTORIAL_EVAL_BATCH at a time, predicted the way the tutorial does."""
  predict_logits = make_predict_logits(config)

  def predict(params, sequence_L):
    windows_NxC, targets_N = data.frame_windows(sequence_L, config.lag,
                                                config.context)
    return targets_N, data.one_hot_decode(predict_logits(params, windows_NxC))

  def correct(params, sequence_L):
    targets_N, predicted_N = predict(params, sequence_L)
    return (predicted_N == targets_N).astype(jnp.int32)

  def score(params, sequences_SxL):
    first_L = data.sequences_of(jax.tree.map(lambda x: x[0], sequences_SxL))
    chex.assert_shape(first_L, (config.length,))
    count_N = sum_over_sequences(lambda seq: correct(params, seq),
                                 sequences_SxL, TUTORIAL_EVAL_BATCH)
    return Counts(count_N, *predict(params, first_L))

  return score


def make_evaluate(config: config_lib.EchoConfig
                  ) -> Callable[[chex.ArrayTree, chex.Array], Evaluation]:
  """evaluate(params, sequences_SxL) -> Evaluation over S test sequences
  (`data.test_sequences`, or the same as a `data.TestSet`): accuracy at each
  of the N sample positions (its mean is the overall accuracy, every
  sequence having N samples), plus the tutorial's Expected/Predicted check
  on the first of them. In one call; the runner scores a large test set in
  pieces (`make_score`, `combine_counts`), with the same result."""
  score = make_score(config)

  def evaluate(params, sequences_SxL):
    counts = score(params, sequences_SxL)
    return Evaluation(
        fraction(counts.correct_N, data.num_sequences(sequences_SxL)),
        counts.example_targets_N, counts.example_predicted_N)

  return evaluate


def fraction(count, total: int):
  """count / total in float32, in a program (jnp) or on the host (numpy)
  with the same bits: as a product with the float32 reciprocal, which is
  what XLA makes of a division by a constant (a correctly rounded division
  on the host would differ from it in the last bit)."""
  return count.astype(np.float32) * (np.float32(1) / np.float32(total))


# combine(pieces, num_sequences) -> the evaluation of a whole test set, from
# an evaluator's outputs (host arrays) on consecutive pieces of it.
Combine = Callable[[Sequence[Any], int], Any]


def sum_pieces(pieces: Sequence[Any], num_sequences: int) -> Any:
  """`Combine` of evaluators whose outputs are sums over the sequences
  (counts, or floats holding integers: exact in any order)."""
  del num_sequences
  return jax.tree.map(lambda *values: functools.reduce(np.add, values),
                      *pieces)


def combine_counts(pieces: Sequence[Counts], num_sequences: int
                   ) -> Evaluation:
  """`Combine` of `make_score`'s Counts: the Evaluation `make_evaluate`
  gives for the whole test set (`fraction` on the host)."""
  correct_N = sum_pieces([piece.correct_N for piece in pieces], 0)
  return Evaluation(
      fraction(np.asarray(correct_N), num_sequences),
      pieces[0].example_targets_N, pieces[0].example_predicted_N)


# Test sequences scored together: bounds evaluation memory (logits of all
# models x all sequences at once can take gigabytes), whatever the test set.
EVAL_BATCH = 250
# The tutorial's windows are small: its default test set (1000 sequences)
# is one batch, one vmap as before (a scan over batches compiled ~10%
# slower in a cold reproduce).
TUTORIAL_EVAL_BATCH = 1000
# From this many batches on, evaluation reports progress from inside its
# scan (a host callback per batch, cheap beside a batch): 10 million test
# sequences take minutes and must not look like a hang. Below it the
# compiled programs are the same as without progress.
PROGRESS_MIN_BATCHES = 100
PROGRESS_SECONDS = 30.0

_last_report = {"time": 0.0, "done": 0}


def _report_progress(done, total):
  # Called once per model and batch (vmapped, on every device): throttled
  # to a line every PROGRESS_SECONDS, and monotone (devices run at their
  # own pace; the line gives the furthest batch reached).
  done, now = int(done), time.monotonic()
  if done < _last_report["done"] and done <= 1:
    _last_report["done"] = 0  # a new evaluation
  _last_report["done"] = max(_last_report["done"], done)
  if now - _last_report["time"] >= PROGRESS_SECONDS:
    _last_report["time"] = now
    logging.info("evaluating: batch %d/%d", _last_report["done"], int(total))


def sum_over_sequences(fn: Callable[[chex.Array], chex.ArrayTree],
                       sequences_SxL, batch: int = EVAL_BATCH
                       ) -> chex.ArrayTree:
  """sum over s of fn(sequence s) for an (S, L) array of sequences or a
  `data.TestSet`, `batch` sequences at a time (a scan over vmapped batches;
  a TestSet's batch is drawn from its keys when scored): memory does not
  grow with S beyond the array itself (a TestSet's keys). fn's outputs must
  be sums of counts (integers, or floats holding integers), so the order of
  the additions cannot change them."""
  num = data.num_sequences(sequences_SxL)
  batch = min(batch, num)
  steps = -(-num // batch)
  score = lambda items: jax.vmap(fn)(data.sequences_of(items))
  if steps == 1:
    return jax.tree.map(lambda v: v.sum(0), score(sequences_SxL))
  first = jax.tree.map(lambda x: x[:1], sequences_SxL)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape[1:], s.dtype),
                       jax.eval_shape(score, first))
  with_progress = steps >= PROGRESS_MIN_BATCHES

  def step(total, index):
    if with_progress:
      jax.debug.callback(_report_progress, index + 1, steps)
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
                            v, jnp.zeros_like(v)), values)
    return jax.tree.map(lambda t, v: t + v.sum(0), total, masked), None

  total, _ = jax.lax.scan(step, zeros, jnp.arange(steps))
  return total
