"""Results: statistics over seeds (means with Student-t intervals), the
tutorial's record of a run (<experiment>.json) and the printed tables.
(`report.rows`: the extensions' records.)"""

import math
from typing import Any, Sequence

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
  """Mean and a Student-t 95% interval over seeds, clipped to `bounds`: an
  accuracy's interval never passes 0 or 100%. One seed has no interval: it
  returns (mean, mean, mean), kept so that records stay two numbers for every
  reader; tables (`ci_cell`) and figures say "no interval" instead."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return mean, mean, mean
  t = t_quantile_975(values.size - 1)
  half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
  return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def summarise(values_S, bounds=(0.0, 1.0)) -> dict[str, Any]:
  """{"mean", "ci95" (`mean_and_ci95`), "per_seed"} of one value per seed."""
  mean, low, high = mean_and_ci95(values_S, bounds)
  return {"mean": mean, "ci95": [low, high],
          "per_seed": np.asarray(values_S, np.float64).tolist()}


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
      # Epoch its training loss passed 1000 x ln(n_unique) (None: never).
      "diverged_at_epoch_per_seed": output.diverged,
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
  seeds = len(record["eval_accuracy_per_seed"])
  return [record["experiment"], percent(record["tutorial_accuracy"]),
          interval_text(record["eval_accuracy"],
                        *record["eval_accuracy_ci95"], seeds),
          str(seeds),
          f"{record['compile_seconds']:.2f}", f"{record['train_seconds']:.2f}"]


def print_summary(records: Sequence[dict[str, Any]]) -> None:
  """Each tutorial record's Expected / Predicted check, then their table."""
  for record in records:
    print(f"{record['experiment']} (seed {record['config']['seed']}, model 0):")
    print(f"  Expected:  {record['example']['expected']}")
    print(f"  Predicted: {record['example']['predicted']}")
  print(format_table(("experiment", "tutorial", "ours: mean [95% CI]", "seeds",
                      "compile s", "train s"),
                     [summary_row(r) for r in records]))


# What a table or figure says in place of a one-seed run's interval.
NO_INTERVAL = "1 seed: no interval"


def interval_text(mean: float, low: float, high: float,
                  seeds: int | None = None) -> str:
  """"mean [low, high]" in percent; with `seeds` < 2, "mean (1 seed: no
  interval)": a Student-t interval needs two seeds, and [mean, mean] would
  read as certainty."""
  if seeds is not None and seeds < 2:
    return f"{percent(mean)} ({NO_INTERVAL})"
  return f"{percent(mean)} [{percent(low)}, {percent(high)}]"


def ci_cell(summary: dict[str, Any]) -> str:
  """`interval_text` of a `summarise` summary (seeds: its per_seed)."""
  seeds = len(summary["per_seed"]) if "per_seed" in summary else None
  return interval_text(summary["mean"], *summary["ci95"], seeds)
