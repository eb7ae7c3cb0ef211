"""Result records: what a finished run (`runner.RunOutput`) becomes on disk.

Three shapes, one per kind of binary: the tutorial's record (one
experiment, <experiment>.json), the extensions' rows (one per variant, in
<binary>.json) and the sweep's cells (one per lag of a group, cells/*.json).
"""

from typing import Any

import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import stats
from echo_jax.runtime import results
from echo_jax.tasks import sweep_cell


def tutorial_record(output) -> dict[str, Any]:
  """The record of a tutorial task's run (`tasks.tutorial.tutorial_task`)."""
  config = output.task.config
  evaluation = output.evaluation
  trained = output.trained()
  accuracy_SxN = evaluation.accuracy_N
  accuracy_S = accuracy_SxN.mean(axis=1)
  mean, low, high = stats.mean_and_ci95(accuracy_S)
  return {
      "experiment": config.experiment,
      "config": config.to_dict(),
      "eval_accuracy": mean,
      "eval_accuracy_ci95": [low, high],
      "eval_accuracy_per_seed": accuracy_S.tolist(),
      # Sample position within a sequence, mean over seeds.
      "eval_accuracy_per_position": accuracy_SxN.mean(axis=0).tolist(),
      "chance_accuracy": 1.0 / config.n_unique,
      "tutorial_accuracy": config_lib.TUTORIAL_ACCURACY.get(config.experiment),
      "final_train_loss_per_seed": trained.loss_E[:, -1].tolist(),
      "train_loss_per_epoch": trained.loss_E.mean(0).tolist(),
      "train_accuracy_per_epoch": trained.accuracy_E.mean(0).tolist(),
      **output.timing_fields(),
      "models_trained_in_parallel": output.compiled.num_models,
      "devices_used": output.compiled.mesh.size,
      # The tutorial's check: model 0 on the first test sequence.
      "example": {"expected": evaluation.example_targets_N[0].tolist(),
                  "predicted": evaluation.example_predicted_N[0].tolist()},
      "versions": results.versions(),
  }


def variant_rows(output) -> list[dict[str, Any]]:
  """One row per variant of a framed task's run (the extensions')."""
  task, config = output.task, output.task.config
  trained = output.trained(by_variant=True)
  correct_M, weight_M = output.evaluation
  correct_VS = output.by_variant(correct_M).astype(np.float64)
  weight_VS = output.by_variant(weight_M).astype(np.float64)
  one_model_params = stats.num_params(jax.tree.map(lambda x: x[0, 0],
                                                   trained.params))
  rows = []
  for i, name in enumerate(task.row_names()):
    correct_S, weight_S = correct_VS[i], weight_VS[i]
    reduce_axes = tuple(range(1, correct_S.ndim))
    accuracy_S = correct_S.sum(reduce_axes) / weight_S.sum(reduce_axes)
    # Positions with no target (e.g. before the lag) are reported as null.
    scored = weight_S.sum(0) > 0
    per_position = np.where(
        scored, correct_S.sum(0) / np.maximum(weight_S.sum(0), 1), np.nan)
    rows.append({
        "variant": name,
        "variant_value": int(task.variants[i]),
        "eval_accuracy": stats.summarise(accuracy_S),
        "eval_accuracy_per_position": [
            None if np.isnan(a) else float(a) for a in per_position.ravel()],
        "eval_accuracy_per_position_shape": list(per_position.shape),
        "chance_accuracy": 1.0 / config.n_unique,
        "params": one_model_params,
        "final_train_loss": stats.summarise(trained.loss_E[i, :, -1]),
        "epochs_to_99pct_train_accuracy": stats.epochs_to_reach(
            trained.accuracy_E[i], 0.99, 50),
        "train_accuracy_per_epoch": trained.accuracy_E[i].mean(0).tolist(),
        # Shared by every variant of this task: they train in one program.
        **output.timing_fields(),
        "models_trained_together": output.compiled.num_models,
        "config": config.to_dict(),
        "sequences_per_epoch": task.sequences_per_epoch,
        "batch_size": task.samples_per_update,
    })
  return rows


def experiment_row(name: str, record: dict[str, Any], trained
                   ) -> dict[str, Any]:
  """A row in `variant_rows`' shape from a tutorial record and its trained
  models, so the tutorial's own (stateful) training sits in the same
  tables."""
  low, high = record["eval_accuracy_ci95"]
  per_position = record["eval_accuracy_per_position"]
  return {
      "variant": name,
      "eval_accuracy": {"mean": record["eval_accuracy"], "ci95": [low, high],
                        "per_seed": record["eval_accuracy_per_seed"]},
      "eval_accuracy_per_position": per_position,
      "eval_accuracy_per_position_shape": [len(per_position)],
      "chance_accuracy": record["chance_accuracy"],
      "params": stats.num_params(jax.tree.map(lambda x: x[0],
                                              trained.params)),
      "final_train_loss": stats.summarise(trained.loss_E[:, -1]),
      "epochs_to_99pct_train_accuracy": stats.epochs_to_reach(
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
      "versions": results.versions(),
  }


def cell_records(output, config: config_lib.EchoConfig
                 ) -> list[dict[str, Any]]:
  """One record per lag of a finished sweep group's run
  (`tasks.sweep_cell.group_task`): what cells/*.json hold."""
  lags = output.task.variants
  context, hidden = output.task.config.context, output.task.config.hidden
  accuracy_LxS = output.by_variant(output.evaluation)
  trained = output.trained(by_variant=True)
  train_seconds = output.chunks.train_seconds
  records = []
  for i, lag in enumerate(lags):
    accuracy_S = accuracy_LxS[i].astype(np.float64)
    mean, low, high = stats.mean_and_ci95(accuracy_S)
    train_accuracy_E = trained.accuracy_E[i].mean(0)
    records.append({
        "lag": lag, "context": context, "hidden": hidden,
        "status": "ok", "seeds": config.seeds,
        "mean": mean, "ci_low": low, "ci_high": high,
        "eval_accuracy_per_seed": accuracy_S.tolist(),
        "epochs_to_99": stats.epochs_to_level(train_accuracy_E, 0.99),
        # The group trains its lags together: each cell's share of it.
        "train_seconds": train_seconds / len(lags),
        "group_train_seconds": train_seconds,
        "group_eval_seconds": output.eval_seconds,
        "group_compile_seconds": output.compiled.compile_seconds,
        "models_in_program": output.compiled.num_models,
        "devices_used": output.compiled.mesh.size,
        "samples_per_sequence": config.length - context + 1,
        "framing": sweep_cell.FRAMING,
        "final_train_loss_per_seed":
            trained.loss_E[i, :, -1].astype(np.float64).tolist(),
        # Learning curves, mean over seeds.
        "train_loss_per_epoch": np.round(
            trained.loss_E[i].mean(0).astype(np.float64), 6).tolist(),
        "train_accuracy_per_epoch": np.round(
            train_accuracy_E.astype(np.float64), 6).tolist(),
        "config": sweep_cell.cell_config(config, lag, context,
                                         hidden).to_dict(),
    })
  return records


def impossible_record(lag: int, context: int, hidden: int) -> dict[str, Any]:
  """A cell with lag >= context: reported, never trained."""
  return {"lag": lag, "context": context, "hidden": hidden,
          "status": "impossible", "seeds": 0, "mean": None, "ci_low": None,
          "ci_high": None, "epochs_to_99": None, "train_seconds": None}
