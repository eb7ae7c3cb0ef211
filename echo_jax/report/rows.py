"""The extensions' records (<binary>.json): one row per variant of a task's
run (a model, framing or lag), with intervals over seeds."""

from typing import Any

import chex
import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.runtime import files


def trailing_mean(values, window: int = 50):
  """(epochs, mean of the last `window` values) for a per-epoch curve; one
  epoch's accuracy over a few samples is too noisy to plot raw."""
  values = np.asarray(values, np.float64)
  window = max(1, min(window, len(values)))
  smooth = np.convolve(values, np.ones(window) / window, mode="valid")
  return np.arange(window, len(values) + 1), smooth


def epochs_to_reach(accuracy_SxE: np.ndarray, level: float, window: int
                    ) -> list[int | None]:
  """Per seed, the first epoch (1-based) at which the mean training accuracy
  of the last `window` epochs (`trailing_mean`) reaches `level`; None if it
  never does."""
  reached = []
  for accuracy_E in accuracy_SxE:
    epochs, trailing = trailing_mean(accuracy_E, window)
    hits = np.nonzero(trailing >= level)[0]
    reached.append(int(epochs[hits[0]]) if hits.size else None)
  return reached


def median_epochs(epochs: list[int | None]) -> tuple[float | None, int]:
  """The median of `epochs_to_reach`'s epochs over the seeds that reached
  the level (None if none did), and how many did."""
  reached = [e for e in epochs if e is not None]
  return (float(np.median(reached)) if reached else None), len(reached)


def epochs_cell(epochs: list[int | None]) -> str:
  """A table's "median (seeds reached/seeds)" of `median_epochs`, or "-"."""
  median, reached = median_epochs(epochs)
  return "-" if median is None else f"{median:.0f} ({reached}/{len(epochs)})"


def num_params(params: chex.ArrayTree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def accuracy_per_seed(evaluation, seeds: int) -> np.ndarray:
  """(variants, seeds) accuracy from a samples evaluation (correct, weight),
  per model summed over positions."""
  correct_M, weight_M = (np.asarray(x, np.float64) for x in evaluation)
  axes = tuple(range(1, correct_M.ndim))
  return (correct_M.sum(axes) / weight_M.sum(axes)).reshape(-1, seeds)


def variant_rows(output) -> list[dict[str, Any]]:
  """One row per variant of a framed task's run (the extensions')."""
  task, config = output.task, output.task.config
  trained = output.trained(by_variant=True)
  correct_VS, weight_VS = (output.by_variant(x).astype(np.float64)
                           for x in output.evaluation.sums)
  accuracy_VS = accuracy_per_seed(output.evaluation.sums, config.seeds)
  one_model_params = num_params(
      jax.tree.map(lambda x: x[0, 0], trained.params))
  rows = []
  for i, name in enumerate(task.row_names()):
    correct, weight = correct_VS[i].sum(0), weight_VS[i].sum(0)
    # Positions with no target (e.g. before the lag) are reported as null.
    per_position = np.where(weight > 0, correct / np.maximum(weight, 1),
                            np.nan)
    rows.append({
        "variant": name,
        "variant_value": int(task.variants[i]),
        "eval_accuracy": records.summarise(accuracy_VS[i]),
        "eval_accuracy_per_position": [
            None if np.isnan(a) else float(a) for a in per_position.ravel()],
        "eval_accuracy_per_position_shape": list(per_position.shape),
        "chance_accuracy": 1.0 / config.n_unique,
        "params": one_model_params,
        "final_train_loss": records.summarise(trained.loss_E[i, :, -1]),
        "diverged_at_epoch_per_seed": output.diverged_per_seed(i),
        "epochs_to_99pct_train_accuracy": epochs_to_reach(
            trained.accuracy_E[i], 0.99, 50),
        "train_accuracy_per_epoch": trained.accuracy_E[i].mean(0).tolist(),
        # Shared by every variant of this task: they train in one program.
        **output.timing,
        "models_trained_together": output.compiled.num_models,
        "config": config.to_dict(),
        "sequences_per_epoch": task.settings["sequences_per_epoch"],
        "batch_size": task.settings["samples_per_update"],
    })
  return rows


def experiment_row(name: str, record: dict[str, Any], trained
                   ) -> dict[str, Any]:
  """A tutorial record and its trained models as a `variant_rows` row, so
  the tutorial's own (stateful) training sits in the same tables."""
  per_position = record["eval_accuracy_per_position"]
  return {
      "variant": name,
      "eval_accuracy": {"mean": record["eval_accuracy"],
                        "ci95": list(record["eval_accuracy_ci95"]),
                        "per_seed": record["eval_accuracy_per_seed"]},
      "eval_accuracy_per_position": per_position,
      "eval_accuracy_per_position_shape": [len(per_position)],
      "chance_accuracy": record["chance_accuracy"],
      "params": num_params(jax.tree.map(lambda x: x[0], trained.params)),
      "final_train_loss": records.summarise(trained.loss_E[:, -1]),
      "diverged_at_epoch_per_seed": record["diverged_at_epoch_per_seed"],
      "epochs_to_99pct_train_accuracy": epochs_to_reach(
          trained.accuracy_E, 0.99, 50),
      "train_accuracy_per_epoch": record["train_accuracy_per_epoch"],
      "compile_seconds": record["compile_seconds"],
      "train_seconds": record["train_seconds"],
      "eval_seconds": record["eval_seconds"],
      "models_trained_together": record["models_trained_in_parallel"],
      "config": record["config"],
      "sequences_per_epoch": 1,
  }


def result_record(name: str, config: config_lib.EchoConfig,
                  rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
  """The file every extension binary writes: `rows` (one per variant) and
  `eval_accuracy`, each variant's mean accuracy by name; `config` is the
  binary's base config, so `--config_json=<this file>` reruns it."""
  return {
      "experiment": name,
      "config": config.to_dict(),
      "eval_accuracy": {row["variant"]: row["eval_accuracy"]["mean"]
                        for row in rows},
      "rows": rows,
      **extra,
      "versions": files.versions(),
  }
