"""Result records: what a finished run (`runner.RunOutput`) becomes on disk
and on screen: statistics over seeds (means with Student-t intervals), the
tutorial's record (<experiment>.json), the extensions' rows (one per
variant, in <binary>.json) and the printed tables.
"""

import math
from typing import Any, Sequence

import chex
import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import evaluate
from echo_jax.runtime import files


_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
          2.228)


def t_quantile_975(df: int) -> float:
  """Student-t 97.5% quantile: exact table to df 10, then a series that is
  within 0.003 of the exact value (2.042 at df 30, 2.000 at df 60)."""
  if df <= len(_T_975):
    return _T_975[df - 1]
  return 1.96 + 2.37 / df + 2.8 / df**2


def mean_and_ci95(values: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)
                  ) -> tuple[float, float, float]:
  """Mean and a Student-t 95% interval over seeds (degenerate for one),
  clipped to `bounds`: an accuracy's interval never passes 0 or 100%."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return mean, mean, mean
  df = values.size - 1
  t = t_quantile_975(df)
  half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
  return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def summarise(values_S) -> dict[str, Any]:
  """{"mean", "ci95", "per_seed"} of one value per seed."""
  mean, low, high = mean_and_ci95(values_S)
  return {"mean": mean, "ci95": [low, high],
          "per_seed": np.asarray(values_S, np.float64).tolist()}


def epochs_to_reach(accuracy_SxE: np.ndarray, level: float, window: int
                    ) -> list[int | None]:
  """Per seed, the first epoch (1-based) at which the mean training accuracy
  of the last `window` epochs reaches `level`; None if it never does. A
  window, because one epoch's accuracy over a few samples is noisy."""
  accuracy_SxE = np.asarray(accuracy_SxE, np.float64)
  window = min(window, accuracy_SxE.shape[1])
  kernel = np.ones(window) / window
  reached = []
  for accuracy_E in accuracy_SxE:
    trailing = np.convolve(accuracy_E, kernel, mode="valid")
    hits = np.nonzero(trailing >= level)[0]
    reached.append(int(hits[0]) + window if hits.size else None)
  return reached


def epochs_to_level(accuracy_E: np.ndarray, level: float = 0.99
                    ) -> int | None:
  """First epoch (from 1) whose training accuracy (here a mean over seeds
  of many samples, the sweep's) reaches `level`."""
  hits = np.nonzero(np.asarray(accuracy_E) >= level)[0]
  return int(hits[0]) + 1 if hits.size else None


def num_params(params: chex.ArrayTree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def tutorial_record(output) -> dict[str, Any]:
  """The record of a tutorial task's run (`tasks.task.tutorial_task`)."""
  config = output.task.config
  trained = output.trained()
  accuracy_SxN = evaluate.fraction(output.evaluation.sums,
                                   config.eval_sequences)
  targets_SxN, predicted_SxN = output.evaluation.first
  accuracy_S = accuracy_SxN.mean(axis=1)
  mean, low, high = mean_and_ci95(accuracy_S)
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
      **output.timing,
      "models_trained_in_parallel": output.compiled.num_models,
      "devices_used": output.compiled.mesh.size,
      # The tutorial's check: model 0 on the first test sequence.
      "example": {"expected": targets_SxN[0].tolist(),
                  "predicted": predicted_SxN[0].tolist()},
      "versions": files.versions(),
  }


def variant_rows(output) -> list[dict[str, Any]]:
  """One row per variant of a framed task's run (the extensions')."""
  task, config = output.task, output.task.config
  trained = output.trained(by_variant=True)
  correct_M, weight_M = output.evaluation.sums
  correct_VS = output.by_variant(correct_M).astype(np.float64)
  weight_VS = output.by_variant(weight_M).astype(np.float64)
  one_model_params = num_params(jax.tree.map(lambda x: x[0, 0],
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
        "eval_accuracy": summarise(accuracy_S),
        "eval_accuracy_per_position": [
            None if np.isnan(a) else float(a) for a in per_position.ravel()],
        "eval_accuracy_per_position_shape": list(per_position.shape),
        "chance_accuracy": 1.0 / config.n_unique,
        "params": one_model_params,
        "final_train_loss": summarise(trained.loss_E[i, :, -1]),
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
      "params": num_params(jax.tree.map(lambda x: x[0],
                                              trained.params)),
      "final_train_loss": summarise(trained.loss_E[:, -1]),
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


# Printed tables.


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A plain fixed-width text table (also valid Markdown)."""
  cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  line = lambda row: "| " + " | ".join(
      c.ljust(w) for c, w in zip(row, widths)) + " |"
  rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
  return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def percent(x: float | None) -> str:
  return "-" if x is None else f"{100 * x:.2f}%"


def summary_row(record: dict[str, Any]) -> list[str]:
  low, high = record["eval_accuracy_ci95"]
  return [record["experiment"], percent(record["tutorial_accuracy"]),
          f"{percent(record['eval_accuracy'])} [{percent(low)}, {percent(high)}]",
          str(len(record["eval_accuracy_per_seed"])),
          f"{record['compile_seconds']:.2f}", f"{record['train_seconds']:.2f}"]


SUMMARY_HEADER = ("experiment", "tutorial", "ours: mean [95% CI]", "seeds",
                  "compile s", "train s")


def print_example(record: dict[str, Any]) -> None:
  """The tutorial's Expected / Predicted check of a tutorial record."""
  print(f"{record['experiment']} (seed {record['config']['seed']}, model 0):")
  print(f"  Expected:  {record['example']['expected']}")
  print(f"  Predicted: {record['example']['predicted']}")


def ci_cell(summary: dict[str, Any]) -> str:
  """"mean [low, high]" of a `stats.summarise` summary, in percent."""
  low, high = summary["ci95"]
  return f"{percent(summary['mean'])} [{percent(low)}, {percent(high)}]"
