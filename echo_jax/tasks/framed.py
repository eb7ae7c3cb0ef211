"""Tasks of framed samples (`core.samples`), as every extension is: the
tutorial's classifier on its windows, and a Flax-cell LSTM for framings
that mask steps or predict at every step."""

from typing import Callable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import models
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import task as task_lib


def framed_task(name: str, config: config_lib.EchoConfig,
                init: Callable[[chex.PRNGKey], chex.ArrayTree],
                frame: samples_lib.Frame, apply: samples_lib.Apply,
                sequences_per_epoch: int = 1, batch_size: int | None = None,
                variants: tuple[int, ...] = (0,),
                variant_names: tuple[str, ...] | None = None
                ) -> task_lib.Task:
  """A model (`init`, `apply`) on a framing, fitted by `core.samples`."""
  batch_size = batch_size or config.batch_size
  return task_lib.Task(
      name, config,
      samples_lib.make_train(config, lambda key, _: init(key), frame, apply,
                             sequences_per_epoch, batch_size),
      samples_lib.make_evaluate(frame, apply), variants, variant_names,
      {"sequences_per_epoch": sequences_per_epoch,
       "samples_per_update": batch_size})


def windows_frame(config: config_lib.EchoConfig) -> samples_lib.Frame:
  """The tutorial's windows of the config's lag and context, all weight 1."""

  def frame(sequence_L, variant):
    del variant
    windows_NxC, targets_N = data.frame_windows(sequence_L, config.lag,
                                                config.context)
    return samples_lib.Samples(windows_NxC, targets_N,
                               jnp.ones(targets_N.shape, jnp.float32))

  return frame


def echo_lstm_task(name: str, config: config_lib.EchoConfig,
                   frame: samples_lib.Frame | None = None,
                   sequences_per_epoch: int = 1,
                   batch_size: int | None = None) -> task_lib.Task:
  """The tutorial's classifier (`models.EchoLSTM`, as `config` builds it) on
  a framing; by default the tutorial's own windows, fitted statelessly."""
  apply = models.make_apply(config)
  return framed_task(name, config,
                     lambda key: models.init_params(config, key),
                     frame or windows_frame(config),
                     lambda params, ids_BxC: apply(params, ids_BxC)[0],
                     sequences_per_epoch, batch_size)


def module_task(name: str, config: config_lib.EchoConfig, module: nn.Module,
                width: int, frame: samples_lib.Frame | None = None,
                sequences_per_epoch: int = 1, batch_size: int | None = None,
                variants: tuple[int, ...] = (0,),
                variant_names: tuple[str, ...] | None = None
                ) -> task_lib.Task:
  """A Flax `module` of ids (B, width), or of a framing's inputs dict as
  keyword arguments, on `frame` (default: the tutorial's windows)."""

  def apply(params, inputs):
    if isinstance(inputs, dict):
      return module.apply({"params": params}, **inputs)
    return module.apply({"params": params}, inputs)

  init = lambda key: module.init(
      key, jnp.zeros((1, width), jnp.int32))["params"]
  return framed_task(name, config, init, frame or windows_frame(config),
                     apply, sequences_per_epoch, batch_size, variants,
                     variant_names)


class _TruncatedCell(nn.RNNCellBase):
  """No gradient into the state a step starts from: backpropagation through
  time truncated to one step, as a stateful Keras fit of timestep 1 has."""
  cell: nn.RNNCellBase

  def __call__(self, carry, x_t):
    return self.cell(jax.lax.stop_gradient(carry), x_t)

  @property
  def num_feature_axes(self) -> int:
    return self.cell.num_feature_axes


class RecurrentLSTM(nn.Module):
  """ids (B, T) -> logits: a Keras-layout LSTM, then a Dense head on the
  state after step lengths - 1 (default: the last; later steps are
  skipped), or with `per_step` on every step's output (B, T, classes).
  `input_vocab` may hold a special value beyond the classes;
  `truncate_bptt` stops the gradient at every step's incoming state."""
  hidden: int
  input_vocab: int
  classes: int
  init_scheme: str = "keras"
  recurrent_activation: str = "sigmoid"
  per_step: bool = False
  truncate_bptt: bool = False
  unroll: int = 1

  @nn.compact
  def __call__(self, ids: chex.Array,
               lengths: chex.Array | None = None) -> chex.Array:
    cell = models.KerasLSTMCell(self.hidden, self.input_vocab,
                                self.init_scheme, self.recurrent_activation,
                                name="lstm")
    if self.truncate_bptt:
      cell = _TruncatedCell(cell)
    carry = models.zero_carry(ids.shape[0], self.hidden)
    (_, h_BxH), h_BxTxH = nn.RNN(
        cell, unroll=self.unroll, return_carry=True, name="rnn")(
            ids, initial_carry=carry, seq_lengths=lengths)
    head_init = models.INITIALIZERS[self.init_scheme][3]
    # Dense on the last axis is TimeDistributed(Dense): same weights per step.
    return nn.Dense(self.classes, kernel_init=head_init, name="head")(
        h_BxTxH if self.per_step else h_BxH)


def lstm_task(name: str, config: config_lib.EchoConfig, frame, width: int,
              *, special_value: bool = False, per_step: bool = False,
              truncate_bptt: bool = False, unroll: int = 1, **options
              ) -> task_lib.Task:
  """`module_task` of a `RecurrentLSTM`; `special_value`: id n_unique is an
  input too."""
  model = RecurrentLSTM(config.hidden, config.n_unique + special_value,
                        config.n_unique, config.init,
                        config.recurrent_activation, per_step, truncate_bptt,
                        unroll)
  return module_task(name, config, model, width, frame, **options)
