"""What one experiment is: a `Task`, the one value the runner accepts: how
a model trains (`core.train.Train`) and is scored, and its variants (e.g. a
sweep group's lags), all variants x seeds models in one program. Devices,
programs and test-set pieces are the runtime's business."""

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import train as train_lib

# evaluate(params, sequences, variant) -> Scores of one model on test
# sequences (an (S, L) array or a data.TestSet).
Evaluate = Callable[..., evaluate_lib.Scores]


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """One experiment: `config` supplies the data size, the schedule, Adam's
  settings, the seeds and the test-set size.

  variants: the values models receive (None: one model per seed and no
    variant input, the tutorial's programs).
  settings: what shapes the runs besides the config (e.g. sequences per
    epoch), saved in its run folder's config.json with it.
  """
  name: str
  config: config_lib.EchoConfig
  train: train_lib.Train
  evaluate: Evaluate
  variants: tuple[int, ...] | None = (0,)
  variant_names: tuple[str, ...] | None = None  # default: from `name`
  settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def row_names(self) -> tuple[str, ...]:
    if self.variant_names is not None:
      return self.variant_names
    if self.variants is None or len(self.variants) == 1:
      return (self.name,)
    return tuple(f"{self.name}={v}" for v in self.variants)

  @property
  def num_models(self) -> int:
    return len(self.variants or (0,)) * self.config.seeds

  def model_keys(self, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Training keys and variants of the task's models, variant-major,
    `count` of them: the variants reuse the same seeds' keys (paired
    initialisations and data), padded by repeats of model 0."""
    if self.variants is None:
      return train_lib.model_keys(self.config.seed, count), None
    seeds = self.config.seeds
    keys_M = np.tile(train_lib.model_keys(self.config.seed, seeds),
                     (len(self.variants), 1))
    variants_M = np.repeat(np.asarray(self.variants, np.int32), seeds)
    pad = count - len(variants_M)
    return (np.concatenate([keys_M, np.repeat(keys_M[:1], pad, 0)]),
            np.concatenate([variants_M, np.repeat(variants_M[:1], pad)]))

  def identity(self) -> dict[str, Any]:
    """What the task's run folder is claimed for (its config.json): a rerun
    that differs in any of it is refused."""
    if self.variants is None and not self.settings:
      return self.config.to_dict()
    return {**self.config.to_dict(), "task": self.name,
            "variants": list(self.variants or ()),
            "variant_names": list(self.row_names()), **self.settings}


def tutorial_task(config: config_lib.EchoConfig) -> Task:
  """One of the tutorial's experiments (config.experiment): one model per
  seed, no variants, fitted as Keras does (`train.make_train`: stateful or
  not, as configured) and scored the way the tutorial predicts."""
  return Task(config.experiment, config, train_lib.make_train(config),
              evaluate_lib.make_evaluate(config), variants=None)
