"""Stateless training of any model on any framing of fresh sequences (the
extensions'; the tutorial's own fit is `core.train`): each epoch frames
`sequences_per_epoch` sequences into `Samples` and fits them in order, in
batches, with Adam, each sample from a zero state. Targets are one per
sample (N,) or per timestep (N, T); `weights` of the same shape say which
count (0: padding or no target).
"""

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import train as train_lib


class Samples(NamedTuple):
  """One sequence framed: every leaf has the sample axis N first."""
  inputs: chex.ArrayTree  # what `apply` takes, e.g. ids (N, T)
  targets: chex.Array     # int32 (N,) or (N, T)
  weights: chex.Array     # float32, targets' shape; 0 = not scored


# frame(sequence_L, variant) -> Samples; `variant` is a traced int32 scalar.
Frame = Callable[[chex.Array, chex.Array], Samples]
# apply(params, inputs_B...) -> logits with targets' shape plus a class axis.
Apply = Callable[[chex.ArrayTree, chex.ArrayTree], chex.Array]


def batch_samples(samples: Samples, batch_size: int) -> Samples:
  """(N, ...) -> (K, B, ...) in order; a partial last batch is padded with
  weight-0 rows so it counts like Keras' smaller last batch."""
  n = samples.targets.shape[0]
  k = -(-n // batch_size)
  pad = k * batch_size - n

  def split(x):
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape((k, batch_size) + x.shape[1:])

  return jax.tree.map(split, samples)


def make_train(config: config_lib.EchoConfig,
               init_params: Callable[[chex.PRNGKey, Any], chex.ArrayTree],
               frame: Frame, apply: Apply, sequences_per_epoch: int = 1,
               batch_size: int | None = None, clip_norm: float | None = None
               ) -> train_lib.Train:
  """A `train.Train` of `apply`'s model, initialised by init_params(key,
  variant), on `frame`d fresh sequences, `batch_size` samples per Adam
  update (default config.batch_size), the gradients clipped to global norm
  `clip_norm` if given."""
  optimizer = train_lib.make_optimizer(config, clip_norm)
  batch_size = batch_size or config.batch_size

  def loss_fn(params, batch: Samples):
    """Mean cross-entropy and accuracy over weight-1 targets (0 if none)."""
    logits = apply(params, batch.inputs)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits,
                                                             batch.targets)
    correct = train_lib.argmax_matches(logits, batch.targets)
    total = jnp.maximum(jnp.sum(batch.weights), 1.0)
    return (jnp.sum(losses * batch.weights) / total,
            jnp.sum(correct.astype(jnp.float32) * batch.weights) / total)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def batch_step(state, batch):
    params, opt_state = state
    (loss, accuracy), grads = grad_fn(params, batch)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    # A batch of padding only (a variant with fewer samples than the
    # framing's static row count) must not move Adam's moments or step.
    has_samples = jnp.sum(batch.weights) > 0
    keep = lambda new, old: jax.tree.map(
        lambda n, o: jnp.where(has_samples, n, o), new, old)
    state = (keep(optax.apply_updates(params, updates), params),
             keep(new_opt_state, opt_state))
    return state, (loss, accuracy, jnp.sum(batch.weights))

  def epoch_data(epoch_key, variant) -> Samples:
    """The epoch's fresh sequences framed, concatenated, in batches."""
    sequences_SxL = jax.vmap(
        lambda k: data.generate_sequence(k, config.length, config.n_unique))(
            jax.random.split(epoch_key, sequences_per_epoch))
    framed = jax.vmap(frame, in_axes=(0, None))(sequences_SxL, variant)
    return batch_samples(
        jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), framed),
        batch_size)

  def epoch_step(state: train_lib.TrainState, batches: Samples, _):
    (params, opt_state), (loss_K, accuracy_K, weight_K) = jax.lax.scan(
        batch_step, (state.params, state.opt_state), batches)
    total = jnp.maximum(jnp.sum(weight_K), 1.0)
    return (train_lib.TrainState(params, opt_state, state.data_key,
                                 state.epoch + 1),
            (jnp.sum(loss_K * weight_K) / total,
             jnp.sum(accuracy_K * weight_K) / total))

  sequence = jax.ShapeDtypeStruct((config.length,), jnp.int32)
  variant = jax.ShapeDtypeStruct((), jnp.int32)
  rows = jax.eval_shape(frame, sequence, variant).targets.shape[0]
  return train_lib.Train(
      config.epochs, -(-rows * sequences_per_epoch // batch_size),
      train_lib.make_init(config, init_params, clip_norm),
      lambda num_epochs: train_lib.epoch_loop(
          epoch_data, epoch_step, num_epochs,
          config.epochs % num_epochs != 0))


def make_evaluate(frame: Frame, apply: Apply):
  """evaluate(params, sequences_SxL, variant) -> Scores of (correct, weight)
  summed over the test sequences, per sample position (targets' shape)."""

  def one_sequence(params, sequence_L, variant):
    samples = frame(sequence_L, variant)
    predicted = jnp.argmax(apply(params, samples.inputs), -1)
    correct = (predicted == samples.targets).astype(jnp.float32)
    return correct * samples.weights, samples.weights

  def evaluate(params, sequences_SxL, variant):
    # In batches (evaluate.sum_over_sequences): all test sequences of all
    # models at once can take gigabytes. Sums of 0/1 values: exact.
    return evaluate_lib.sum_over_sequences(
        lambda seq: evaluate_lib.Scores(one_sequence(params, seq, variant)),
        sequences_SxL)

  return evaluate
