"""Training: `make_train(config) -> train(key)`, the whole run as one function.

`train` generates a fresh sequence per epoch, frames it, and fits it in order,
batch by batch, with Adam; epochs and batches are nested `lax.scan`s, so the
entire run is one XLA program that can be jitted, vmapped over seeds and
sharded over devices.

Stateful mode is Keras' `stateful=True`: row i of batch k starts from the
final state of row i of batch k-1 (so with batch size b, sample j starts from
the state left by sample j-b), the carried state is a constant to the
gradient (no backpropagation across batches), and it is reset to zeros at the
start of every epoch.
"""

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import keras_adam
from echo_jax.core import losses
from echo_jax.core import models


class TrainResult(NamedTuple):
  params: chex.ArrayTree
  loss_E: chex.Array      # mean training loss per epoch
  accuracy_E: chex.Array  # mean training accuracy per epoch (Keras' "acc")


def make_optimizer(config: config_lib.EchoConfig) -> optax.GradientTransformation:
  if config.optimizer == "optax_adam":
    return optax.adam(config.learning_rate, b1=config.adam_b1,
                      b2=config.adam_b2, eps=config.adam_eps)
  learning_rate = config.learning_rate
  if config.optimizer == "keras_adam_decay":
    learning_rate = keras_adam.time_decay(config.learning_rate)
  return keras_adam.keras_adam(learning_rate, b1=config.adam_b1,
                               b2=config.adam_b2, eps=config.adam_eps)


def split_batches(config: config_lib.EchoConfig, windows_NxC: chex.Array,
                  targets_N: chex.Array):
  """(N, C), (N,) -> (K, B, C), (K, B), weights (K, B) in order.

  A last partial batch (stateless only) is padded with weight-0 rows, so it
  counts like Keras' smaller last batch.
  """
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
  model = models.make_model(config)

  def loss_fn(params, ids_BxC, targets_B, weights_B, carry):
    logits_BxV, final_carry = model.apply(
        {"params": params}, models.model_inputs(config, ids_BxC), carry)
    losses_B = optax.softmax_cross_entropy_with_integer_labels(
        logits_BxV, targets_B)
    loss = jnp.sum(losses_B * weights_B) / jnp.sum(weights_B)
    correct_B = losses.argmax_matches(logits_BxV, targets_B).astype(
        jnp.float32)
    accuracy = jnp.sum(correct_B * weights_B) / jnp.sum(weights_B)
    return loss, (accuracy, final_carry)

  return loss_fn


def make_fit_sequence(config: config_lib.EchoConfig):
  """fit_sequence(params, opt_state, windows_NxC, targets_N[, stateful]) ->
  (params, opt_state, loss_K, accuracy_K): one Keras `fit` epoch over one
  sequence, batch by batch in order, from a zero LSTM state; a traced
  `stateful` overrides config.stateful."""
  optimizer = make_optimizer(config)
  grad_fn = jax.value_and_grad(make_loss_fn(config), has_aux=True)
  # Made inside the traced functions: built eagerly here, the zeros would
  # compile two tiny programs of their own.
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
    """`stateful`: None for config.stateful, else a traced bool."""
    batches = split_batches(config, windows_NxC, targets_N)
    step = batch_step if stateful is None else (
        lambda state, batch: batch_step(state, batch, stateful))
    (params, opt_state, _), (loss_K, accuracy_K) = jax.lax.scan(
        step, (params, opt_state, zero_carry()), batches)
    return params, opt_state, loss_K, accuracy_K

  return fit_sequence


class TrainState(NamedTuple):
  """Everything a run needs to continue: checkpointing this (with the
  metrics so far) is resuming. Nothing in it depends on the run's length,
  so runs that differ only in their number of epochs share every program.

  The LSTM carry is not here: it is zeroed at the start of every epoch, so at
  an epoch boundary it is always zero.
  """
  params: chex.ArrayTree
  opt_state: chex.ArrayTree
  data_key: chex.PRNGKey  # epoch e trains on fold_in(data_key, e)
  epoch: chex.Array       # int32 scalar: epochs done


class EpochMetrics(NamedTuple):
  """Per epoch of a chunk; epochs past the run's end hold zeros."""
  loss_C: chex.Array      # mean training loss
  accuracy_C: chex.Array  # mean training accuracy (Keras' "acc")


def split_key(key: chex.PRNGKey) -> tuple[chex.PRNGKey, chex.PRNGKey]:
  """(init_key, data_key) of a run's key; one place, so every path agrees."""
  init_key, data_key = jax.random.split(key)
  return init_key, data_key


def make_init_state(config: config_lib.EchoConfig):
  """init_state(params, data_key) -> TrainState at epoch 0."""
  optimizer = make_optimizer(config)

  def init_state(params, data_key):
    return TrainState(params, optimizer.init(params), data_key,
                      jnp.zeros((), jnp.int32))

  return init_state


# frame_fn(sequence_L, variant) -> (windows_NxC, targets_N): an epoch's
# training rows from its sequence; `variant` is a traced per-model value
# (the sweep's lag).
FrameFn = Callable[[chex.Array, chex.Array], tuple[chex.Array, chex.Array]]


def needs_guard(epochs: int, chunk_epochs: int) -> bool:
  """A chunk overshoots the run's end unless its length divides the run."""
  return epochs % chunk_epochs != 0


class ChunkFns(NamedTuple):
  """`num_epochs` epochs as two functions, so that they can be compiled as
  two programs (see `programs`): the epochs' data (random-number loops:
  quick to run, slow to compile, exact at any optimisation level), then the
  fit. Calling it runs both in one: run_epochs(state, end_epoch,
  variant=None) -> (state, EpochMetrics).

  make_data(state, variant) -> data_C: the data of epochs state.epoch, ...,
    state.epoch + num_epochs - 1, epoch e's from fold_in(data_key, e).
  fit(state, data_C, end_epoch, variant) -> (state, EpochMetrics): trains on
    it, none past `end_epoch` (a traced int32: the programs do not depend on
    the run's length).
  """
  make_data: Callable[[TrainState, Any], Any]
  fit: Callable[[TrainState, Any, Any, Any], tuple[TrainState, EpochMetrics]]

  def __call__(self, state: TrainState, end_epoch, variant=None):
    return self.fit(state, self.make_data(state, variant), end_epoch, variant)


def make_run_epochs(config: config_lib.EchoConfig, num_epochs: int,
                    frame_fn: FrameFn | None = None,
                    stateful_fn: Callable[[Any], Any] | None = None
                    ) -> ChunkFns:
  """`num_epochs` more epochs as `ChunkFns`. Epoch e trains on the rows
  `frame_fn` makes of a fresh sequence drawn from fold_in(data_key, e)
  (default: the config's framing); keys depend only on the epoch index, so
  any split of a run into chunks trains on the same sequences as one scan.
  The data are the sequences alone; framing happens in the fit.
  `stateful_fn(variant)`, if given, is a traced bool that decides per model
  whether the carry crosses batches (instead of config.stateful)."""
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

  return epoch_loop(epoch_sequence, epoch_step, num_epochs,
                    needs_guard(config.epochs, num_epochs))


def epoch_loop(epoch_data: Callable[[chex.PRNGKey, Any], Any],
               epoch_step: Callable[[TrainState, Any, Any],
                                    tuple[TrainState, Any]],
               num_epochs: int, guarded: bool) -> ChunkFns:
  """`ChunkFns` of `num_epochs` epochs.

  epoch_data(fold_in(data_key, e), variant) makes epoch e's data; the
  chunk's are made in one vmapped call (random number generation is a loop
  of its own on CPU: once per chunk, not once per epoch). epoch_step(state,
  data, variant) -> (state, (loss, accuracy)) runs in one lax.scan. With
  `guarded`, steps at state.epoch >= end_epoch are no-ops (only a chunk that
  overshoots the run's end needs the guard).
  """

  def make_data(state: TrainState, variant=None):
    epochs_C = state.epoch + jnp.arange(num_epochs, dtype=jnp.int32)
    return jax.vmap(lambda e: epoch_data(
        jax.random.fold_in(state.data_key, e), variant))(epochs_C)

  def fit(state: TrainState, data_C, end_epoch, variant=None):
    def step(state, data):
      return epoch_step(state, data, variant)

    def guarded_step(state, data):
      skip = lambda s, _: (s, (jnp.zeros((), jnp.float32),) * 2)
      return jax.lax.cond(state.epoch < end_epoch, step, skip, state, data)

    state, (loss_C, accuracy_C) = jax.lax.scan(
        guarded_step if guarded else step, state, data_C)
    return state, EpochMetrics(loss_C, accuracy_C)

  return ChunkFns(make_data, fit)


def make_train_from_params(config: config_lib.EchoConfig,
                           frame_fn: FrameFn | None = None
                           ) -> Callable[..., TrainResult]:
  """train_from(params, data_key, variant=None): the run in one call,
  starting from given parameters; `frame_fn` as in `make_run_epochs`."""
  init_state = make_init_state(config)
  run_all = make_run_epochs(config, config.epochs, frame_fn)

  def train_from(params, data_key, variant=None):
    state, metrics = run_all(init_state(params, data_key), config.epochs,
                             variant)
    return TrainResult(state.params, metrics.loss_C, metrics.accuracy_C)

  return train_from


def make_train(config: config_lib.EchoConfig
               ) -> Callable[[chex.PRNGKey], TrainResult]:
  """train(key) -> TrainResult: initialisation and the whole run, pure."""
  train_from = make_train_from_params(config)

  def train(key):
    init_key, data_key = split_key(key)
    return train_from(models.init_params(config, init_key), data_key)

  return train
