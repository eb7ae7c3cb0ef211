"""The tutorial's windowed echo classifier as tasks.

`tutorial_task` is the tutorial itself: `models.EchoLSTM` on windows of the
config's lag and context, fitted as Keras does (`train.make_run_epochs`:
stateful carry across batches when config.stateful), scored the way the
tutorial predicts (`evaluate`). `echo_lstm_task` is the same classifier on
any framing, fitted statelessly over framed samples (the extensions').
"""

import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import models
from echo_jax.core import samples as samples_lib
from echo_jax.core import train as train_lib
from echo_jax.tasks import task as task_lib


def windows_frame(config: config_lib.EchoConfig) -> samples_lib.Frame:
  """The tutorial's windows of the config's lag and context, all weight 1."""

  def frame(sequence_L, variant):
    del variant
    windows_NxC, targets_N = data.frame_windows(sequence_L, config.lag,
                                                config.context)
    return samples_lib.Samples(windows_NxC, targets_N,
                               jnp.ones(targets_N.shape, jnp.float32))

  return frame


def lstm_apply(config: config_lib.EchoConfig) -> samples_lib.Apply:
  """apply(params, ids_BxC) -> logits_BxV of the config's EchoLSTM from a
  zero state."""
  model = models.make_model(config)

  def apply(params, ids_BxC):
    logits_BxV, _ = model.apply({"params": params},
                                models.model_inputs(config, ids_BxC))
    return logits_BxV

  return apply


def tutorial_task(config: config_lib.EchoConfig) -> task_lib.Task:
  """One of the tutorial's experiments (config.experiment): one model per
  seed, no variants, the Keras fit (stateful or not, as configured) and the
  tutorial's evaluation (accuracy per sample position, the Expected /
  Predicted example). Runs differing only in seed or epochs share their
  compiled programs (the key leaves both out)."""
  config_lib.validate(config)
  return task_lib.Task(
      name=config.experiment, config=config, frame=windows_frame(config),
      init=lambda key: models.init_params(config, key),
      apply=lstm_apply(config), variants=None,
      make_chunk=lambda task, n: train_lib.make_run_epochs(task.config, n),
      make_evaluate=lambda task: evaluate_lib.make_score(task.config),
      eval_batch=evaluate_lib.TUTORIAL_EVAL_BATCH,
      combine_pieces=evaluate_lib.combine_counts,
      identity=config.to_dict(),
      program_key=("tutorial", config.replace(experiment="program", seed=0,
                                              epochs=0)))


def echo_lstm_task(name: str, config: config_lib.EchoConfig,
                   frame: samples_lib.Frame | None = None,
                   sequences_per_epoch: int = 1) -> task_lib.Task:
  """The tutorial's classifier (`models.EchoLSTM`, as `config` builds it) on
  a framing; by default the tutorial's own windows, fitted statelessly."""
  return task_lib.Task(name, config, frame or windows_frame(config),
                       lambda key: models.init_params(config, key),
                       lstm_apply(config), sequences_per_epoch)
