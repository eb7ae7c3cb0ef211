"""Training: `make_train(config) -> train(key)`, the whole run as one function:
each epoch fits a fresh sequence, batch by batch in order, with Adam, in
nested `lax.scan`s, one XLA program to jit, vmap over seeds and shard. Epoch
e trains on fold_in(data_key, e), so the runtime's chunks (`init`, then
`chunk(n)`s, checkpointed between) see the same sequences.

Stateful mode is Keras' `stateful=True`: row i of batch k starts from the
final state of row i of batch k-1, the carry is a constant to the gradient
(no backpropagation across batches), and it is zeroed every epoch."""

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import keras_adam
from echo_jax.core import models


class TrainState(NamedTuple):
  """All a run needs to resume: no LSTM carry (zero each epoch), no length."""
  params: chex.ArrayTree
  opt_state: chex.ArrayTree
  data_key: chex.PRNGKey  # epoch e trains on fold_in(data_key, e)
  epoch: chex.Array       # int32 scalar: epochs done


class EpochMetrics(NamedTuple):
  """Per epoch of a chunk; epochs past the run's end hold zeros."""
  loss_C: chex.Array      # mean training loss
  accuracy_C: chex.Array  # mean training accuracy (Keras' "acc")


class TrainResult(NamedTuple):
  params: chex.ArrayTree
  loss_E: chex.Array      # mean training loss per epoch
  accuracy_E: chex.Array  # mean training accuracy per epoch


class Chunk(NamedTuple):
  """Some epochs of a run: data(state, variant) makes their data, fit(state,
  data, end_epoch, variant) -> (state, EpochMetrics) trains on them, none past
  `end_epoch` (may be traced, so programs do not depend on the run's length).
  `variant` is a traced per-model int32 or None. Two programs: random-number
  generation compiled slowly inside the fit's."""
  data: Callable[..., Any]
  fit: Callable[..., tuple[TrainState, EpochMetrics]]

  def __call__(self, state: TrainState, end_epoch, variant=None):
    return self.fit(state, self.data(state, variant), end_epoch, variant)


@dataclasses.dataclass(frozen=True)
class Train:
  """init(key, variant=None) -> TrainState at epoch 0; chunk(num_epochs)
  -> `Chunk`. Called, the whole run: train(key, variant=None) ->
  TrainResult."""
  epochs: int
  updates_per_epoch: int  # Adam updates per model and epoch
  init: Callable[..., TrainState]
  chunk: Callable[[int], Chunk]

  def __call__(self, key: chex.PRNGKey, variant=None) -> TrainResult:
    state, metrics = self.chunk(self.epochs)(self.init(key, variant),
                                             self.epochs, variant)
    return TrainResult(state.params, metrics.loss_C, metrics.accuracy_C)


def model_keys(seed: int, count: int) -> np.ndarray:
  """Training keys of models 0..count-1: fold_in(fold_in(PRNGKey(seed), 0),
  i), so adding seeds never changes the earlier ones."""
  base = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
  return np.asarray(jax.vmap(lambda i: jax.random.fold_in(base, i))(
      jnp.arange(count)))


def test_keys(seed: int, count: int) -> np.ndarray:
  """Keys of a run's `count` test sequences (`data.TestSet`): split of
  fold_in(PRNGKey(seed), 1), disjoint from every training key."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
  return np.asarray(jax.random.split(key, count))


def make_optimizer(config: config_lib.EchoConfig,
                   clip_norm: float | None = None
                   ) -> optax.GradientTransformation:
  """The config's Adam; with `clip_norm`, after clipping the gradients to
  that global norm."""
  if config.optimizer == "optax_adam":
    adam = optax.adam(config.learning_rate, b1=config.adam_b1,
                      b2=config.adam_b2, eps=config.adam_eps)
  else:
    learning_rate = config.learning_rate
    if config.optimizer == "keras_adam_decay":
      learning_rate = keras_adam.time_decay(config.learning_rate)
    adam = keras_adam.keras_adam(learning_rate, b1=config.adam_b1,
                                 b2=config.adam_b2, eps=config.adam_eps)
  if clip_norm is None:
    return adam
  return optax.chain(optax.clip_by_global_norm(clip_norm), adam)


def make_init(config: config_lib.EchoConfig,
              init_params: Callable[[chex.PRNGKey, Any], chex.ArrayTree],
              clip_norm: float | None = None):
  """init(key, variant=None) -> TrainState at epoch 0: init_params(init
  key, variant) and a data key, both split from key."""
  optimizer = make_optimizer(config, clip_norm)

  def init(key, variant=None):
    init_key, data_key = jax.random.split(key)
    params = init_params(init_key, variant)
    return TrainState(params, optimizer.init(params), data_key,
                      jnp.zeros((), jnp.int32))

  return init


def argmax_matches(logits_NxV: chex.Array, targets_N: chex.Array
                   ) -> chex.Array:
  """argmax(logits, -1) == targets (first index wins ties; no NaNs), as two
  max-reductions: cheaper on a CPU than argmax's (value, index) one."""
  target_N = jnp.take_along_axis(logits_NxV, targets_N[..., None], -1)[..., 0]
  before_NxV = jnp.arange(logits_NxV.shape[-1]) < targets_N[..., None]
  best_before_N = jnp.max(jnp.where(before_NxV, logits_NxV, -jnp.inf), -1)
  return (target_N >= jnp.max(logits_NxV, -1)) & (best_before_N < target_N)


def split_batches(config: config_lib.EchoConfig, windows_NxC: chex.Array,
                  targets_N: chex.Array):
  """(N, C), (N,) -> (K, B, C), (K, B), weights (K, B); a last partial batch
  (stateless only) is padded with weight-0 rows, like Keras' smaller one."""
  n, b, k = config.num_samples, config.batch_size, config.num_batches
  pad = k * b - n
  weights_N = jnp.ones((n,), jnp.float32)
  if pad:
    windows_NxC = jnp.pad(windows_NxC, ((0, pad), (0, 0)))
    targets_N = jnp.pad(targets_N, (0, pad))
    weights_N = jnp.pad(weights_N, (0, pad))
  return (windows_NxC.reshape(k, b, -1), targets_N.reshape(k, b),
          weights_N.reshape(k, b))


def make_loss_fn(config: config_lib.EchoConfig):
  """loss(params, ids_BxC, targets_B, weights_B, carry) -> (loss, aux)."""
  apply = models.make_apply(config)

  def loss_fn(params, ids_BxC, targets_B, weights_B, carry):
    logits_BxV, final_carry = apply(params, ids_BxC, carry)
    losses_B = optax.softmax_cross_entropy_with_integer_labels(
        logits_BxV, targets_B)
    loss = jnp.sum(losses_B * weights_B) / jnp.sum(weights_B)
    correct_B = argmax_matches(logits_BxV, targets_B).astype(jnp.float32)
    accuracy = jnp.sum(correct_B * weights_B) / jnp.sum(weights_B)
    return loss, (accuracy, final_carry)

  return loss_fn


def make_fit_sequence(config: config_lib.EchoConfig):
  """fit_sequence(params, opt_state, windows_NxC, targets_N[, stateful]) ->
  (params, opt_state, loss_K, accuracy_K): one Keras `fit` epoch from a zero
  LSTM state; a traced `stateful` overrides config.stateful."""
  optimizer = make_optimizer(config)
  grad_fn = jax.value_and_grad(make_loss_fn(config), has_aux=True)
  zero_carry = lambda: models.zero_carry(config.batch_size, config.hidden)

  def next_carry(final_carry, stateful):
    # Keras carries the state forward as a constant; stateless restarts.
    if stateful is None:
      return (jax.lax.stop_gradient(final_carry) if config.stateful
              else zero_carry())
    # A traced choice (the state map trains both kinds in one program).
    return jax.tree.map(
        lambda final, zero: jnp.where(stateful, final, zero),
        jax.lax.stop_gradient(final_carry), zero_carry())

  def batch_step(state, batch, stateful=None):
    params, opt_state, carry = state
    ids_BxC, targets_B, weights_B = batch
    (loss, (accuracy, final_carry)), grads = grad_fn(
        params, ids_BxC, targets_B, weights_B, carry)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    carry = next_carry(final_carry, stateful)
    return (params, opt_state, carry), (loss, accuracy)

  def fit_sequence(params, opt_state, windows_NxC, targets_N, stateful=None):
    batches = split_batches(config, windows_NxC, targets_N)
    (params, opt_state, _), (loss_K, accuracy_K) = jax.lax.scan(
        functools.partial(batch_step, stateful=stateful),
        (params, opt_state, zero_carry()), batches)
    return params, opt_state, loss_K, accuracy_K

  return fit_sequence


# frame_fn(sequence_L, variant) -> an epoch's (windows_NxC, targets_N).
FrameFn = Callable[[chex.Array, Any], tuple[chex.Array, chex.Array]]


def make_train(config: config_lib.EchoConfig,
               frame_fn: FrameFn | None = None,
               stateful_fn: Callable[[Any], Any] | None = None) -> Train:
  """The tutorial's run as a `Train`, epochs fitting `frame_fn`'s rows (default:
  the config's windows); a traced `stateful_fn(variant)` overrides stateful."""
  config_lib.validate(config)
  fit_sequence = make_fit_sequence(config)
  if frame_fn is None:
    frame_fn = lambda sequence_L, _: data.frame_windows(
        sequence_L, config.lag, config.context)

  def epoch_sequence(key, _):
    return data.generate_sequence(key, config.length, config.n_unique)

  def epoch_step(state: TrainState, sequence_L, variant):
    windows_NxC, targets_N = frame_fn(sequence_L, variant)
    stateful = None if stateful_fn is None else stateful_fn(variant)
    params, opt_state, loss_K, accuracy_K = fit_sequence(
        state.params, state.opt_state, windows_NxC, targets_N, stateful)
    return (TrainState(params, opt_state, state.data_key, state.epoch + 1),
            (loss_K.mean(), accuracy_K.mean()))

  return Train(
      config.epochs, config.num_batches,
      make_init(config, lambda key, _: models.init_params(config, key)),
      lambda num_epochs: epoch_loop(epoch_sequence, epoch_step, num_epochs,
                                    config.epochs % num_epochs != 0))


def epoch_loop(epoch_data: Callable[[chex.PRNGKey, Any], Any],
               epoch_step: Callable[[TrainState, Any, Any],
                                    tuple[TrainState, Any]],
               num_epochs: int, guarded: bool) -> Chunk:
  """A `Chunk` of `num_epochs` epochs: epoch_data(fold_in(data_key, e),
  variant) for all at once (vmapped: RNG is a CPU loop of its own), then
  epoch_step(state, data, variant) -> (state, (loss, accuracy)) in a scan;
  `guarded` skips epochs >= end_epoch (for a chunk overshooting the run)."""

  def data(state: TrainState, variant=None):
    epochs_C = state.epoch + jnp.arange(num_epochs, dtype=jnp.int32)
    return jax.vmap(lambda e: epoch_data(
        jax.random.fold_in(state.data_key, e), variant))(epochs_C)

  def fit(state: TrainState, data_C, end_epoch, variant=None):
    step = lambda state, inputs: epoch_step(state, inputs, variant)

    def guarded_step(state, inputs):
      skip = lambda s, _: (s, (jnp.zeros((), jnp.float32),) * 2)
      return jax.lax.cond(state.epoch < end_epoch, step, skip, state,
                          inputs)

    state, (loss_C, accuracy_C) = jax.lax.scan(
        guarded_step if guarded else step, state, data_C)
    return state, EpochMetrics(loss_C, accuracy_C)

  return Chunk(data, fit)
