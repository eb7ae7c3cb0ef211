"""Tasks of framed samples (`core.samples`), as every extension is, and the
tutorial's classifier on its windows."""

from typing import Callable

import chex
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
  model = models.make_model(config)

  def apply(params, ids_BxC):  # from a zero state
    logits_BxV, _ = model.apply({"params": params},
                                models.model_inputs(config, ids_BxC))
    return logits_BxV

  return framed_task(name, config,
                     lambda key: models.init_params(config, key),
                     frame or windows_frame(config), apply,
                     sequences_per_epoch, batch_size)
