"""What one experiment is: a `Task`, the one value the runner accepts.

A task is a framing of fresh random sequences, a model's init and apply, the
training schedule and data size of its `config`, and its variants (e.g. the
lags of a sweep group): all variants x seeds models train in one compiled
program, a variant being a traced int32 that each model receives. How the
models fit (the tutorial's Keras-stateful fit over windows, or the weighted
fit over framed samples) and how they are scored are properties of the task,
not separate runners: `make_chunk` and `make_evaluate` default to the
framed-samples ones (`core.samples`).
"""

import dataclasses
from typing import Any, Callable, Hashable

import chex

from echo_jax.core import config as config_lib
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import samples as samples_lib
from echo_jax.core import train as train_lib


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """One experiment. `config` supplies the data size, the schedule, Adam's
  settings, the seeds and the test-set size.

  frame(sequence_L, variant) -> Samples; init(key) -> params;
  apply(params, inputs_B...) -> logits with targets' shape plus a class axis.
  variants: the values models receive (None: one model per seed and no
    variant input, the tutorial's programs).
  make_chunk(task, num_epochs) -> train.ChunkFns: a chunk of training
    (default: `core.samples.make_run_epochs`, stateless, weighted).
  make_evaluate(task) -> evaluate(params, sequences_SxL, variant) -> a
    pytree per model (default: correct and weight per sample position).
  eval_batch: test sequences its evaluator scores at once (the run's
    memory estimate counts them; default: the samples evaluator's).
  combine_pieces(outputs, num_sequences) -> the evaluation: the runner
    scores a large test set in consecutive pieces (`runner.EVAL_PIECE_BATCHES`
    batches each) and combines the evaluator's outputs on them (host arrays,
    models first) with this (default: their sum, for outputs that are sums
    over sequences); None: the evaluator needs the whole test set at once.
  identity: what the run folder's config.json claims (default
    `run_identity`); a rerun with any of it changed is refused.
  program_key: all that shapes the task's programs besides the runner's
    layout: runs whose tasks share a key share compiled programs in a
    process, and the processes of a multi-process run share them by it
    without each tracing them (None: compiled afresh, shared by their text).
  keep_programs: whether a process keeps them for a later task with the same
    key (False: the key only names them across processes; a sweep's groups
    never repeat).
  """
  name: str
  config: config_lib.EchoConfig
  frame: samples_lib.Frame
  init: Callable[[chex.PRNGKey], chex.ArrayTree]
  apply: samples_lib.Apply
  sequences_per_epoch: int = 1
  variants: tuple[int, ...] | None = (0,)
  variant_names: tuple[str, ...] | None = None  # default: `name`
  # Samples per Adam update; None: config.batch_size (whose validation
  # assumes one sequence per epoch).
  batch_size: int | None = None
  make_chunk: Callable[["Task", int], train_lib.ChunkFns] | None = None
  make_evaluate: Callable[["Task"], Callable[..., Any]] | None = None
  eval_batch: int = evaluate_lib.EVAL_BATCH
  combine_pieces: evaluate_lib.Combine | None = evaluate_lib.sum_pieces
  identity: dict[str, Any] | None = None
  program_key: Hashable | None = None
  keep_programs: bool = True

  def row_names(self) -> tuple[str, ...]:
    if self.variant_names is not None:
      return self.variant_names
    if self.variants is None or len(self.variants) == 1:
      return (self.name,)
    return tuple(f"{self.name}={v}" for v in self.variants)

  @property
  def samples_per_update(self) -> int:
    return self.batch_size or self.config.batch_size

  @property
  def updates_per_epoch(self) -> int:
    """Adam updates per model per epoch; for a framing other than the
    tutorial's windows an estimate (sequences x length / samples per
    update), which sizes the default chunk."""
    if self.make_chunk is not None:
      return self.config.num_batches
    rows = self.sequences_per_epoch * self.config.length
    return max(1, -(-rows // self.samples_per_update))

  @property
  def num_models(self) -> int:
    return len(self.variants or (0,)) * self.config.seeds

  def chunk(self, num_epochs: int) -> train_lib.ChunkFns:
    if self.make_chunk is not None:
      return self.make_chunk(self, num_epochs)
    return samples_lib.make_run_epochs(
        self.config, self.frame, self.apply, self.sequences_per_epoch,
        self.samples_per_update, num_epochs)

  def evaluator(self) -> Callable[..., Any]:
    if self.make_evaluate is not None:
      return self.make_evaluate(self)
    return samples_lib.make_evaluate(self.frame, self.apply)

  def run_identity(self) -> dict[str, Any]:
    if self.identity is not None:
      return self.identity
    return run_identity(self)


def run_identity(task: Task) -> dict[str, Any]:
  """What a framed task's run folder is claimed for (its config.json)."""
  return {**task.config.to_dict(), "task": task.name,
          "variants": list(task.variants),
          "variant_names": list(task.row_names()),
          "sequences_per_epoch": task.sequences_per_epoch,
          "samples_per_update": task.samples_per_update}
