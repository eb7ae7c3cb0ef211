r"""Echo different lags: X(t - lag) for lag 1..10, the window grown to fit
(the tutorial's 5 steps, or lag + 1 when longer), for several LSTM sizes:
accuracy, epochs to 99% and the smallest hidden size that reaches 99%.
Stateless; each Adam update takes the rows of --sequences_per_epoch fresh
sequences (learning rate 1e-2 by default). All lags of one hidden size train
in one program (windows masked to their own length, see echo_jax/lags.py).

  python -m experiments.lag_values [--lags=1,...,10 --hiddens=8,16,32,64 \
      --seeds=8 --epochs=600 --workdir=DIR]

Writes lag_values.json (one row per lag and hidden size) and lag_values.png.
"""

import dataclasses
import os

import numpy as np
from absl import flags

from experiments import common
from experiments import extensions_common as ext

from echo_jax import config as config_lib

_LAGS = flags.DEFINE_list("lags", [str(l) for l in range(1, 11)],
                          "Lags to echo.")
_HIDDENS = flags.DEFINE_list("hiddens", ["8", "16", "32", "64"],
                             "LSTM sizes to try for every lag.")
_SEQUENCES = flags.DEFINE_integer("sequences_per_epoch", 2,
                                  "Fresh sequences per Adam update.")


def lag_values():
  # pylint: disable=g-import-not-at-top
  from echo_jax import lags as lags_lib
  from echo_jax import multiseed
  from echo_jax import plots
  config = ext.resolve("lag_values", epochs=600, learning_rate=1e-2)
  lags = common.int_list(_LAGS.name, _LAGS.value, minimum=1)
  hiddens = sorted(common.int_list(_HIDDENS.name, _HIDDENS.value, minimum=1))
  if _SEQUENCES.value < 1:
    raise config_lib.ConfigError(
        f"sequences_per_epoch={_SEQUENCES.value} must be >= 1")
  for lag in lags:
    if lags_lib.samples_per_sequence(config.length, lag, config.context) < 1:
      raise config_lib.ConfigError(
          f"lag={lag} leaves no complete window in length={config.length}")
  workdir = common.resolve_workdir("lag_values")
  first_rows = lags_lib.samples_per_sequence(config.length, min(lags),
                                             config.context)
  rows = []
  for hidden in hiddens:
    task = dataclasses.replace(
        lags_lib.lags_task(config.replace(hidden=hidden), lags,
                           _SEQUENCES.value),
        batch_size=first_rows * _SEQUENCES.value)
    for row in ext.run_task(workdir, "lag_values", task)[0]:
      row["lag"], row["hidden"] = row["variant_value"], hidden
      row["context"] = int(lags_lib.context_for_lag(row["lag"],
                                                    config.context))
      row["samples_per_sequence"] = lags_lib.samples_per_sequence(
          config.length, row["lag"], config.context)
      rows.append(row)
  by_key = {(row["lag"], row["hidden"]): row for row in rows}
  summary = []
  table = []
  for lag in lags:
    accuracies = [by_key[lag, h]["eval_accuracy"]["mean"] for h in hiddens]
    smallest = next((h for h, a in zip(hiddens, accuracies) if a >= 0.99),
                    None)
    largest = by_key[lag, hiddens[-1]]
    reached = [e for e in largest["epochs_to_99pct_train_accuracy"]
               if e is not None]
    summary.append({"lag": lag, "smallest_hidden_reaching_99pct": smallest,
                    "median_epochs_to_99pct_at_largest_hidden":
                        float(np.median(reached)) if reached else None})
    table.append(
        [lag, largest["context"], largest["samples_per_sequence"]]
        + [ext.ci_cell(by_key[lag, h]["eval_accuracy"]) for h in hiddens]
        + [smallest or f">{hiddens[-1]}",
           f"{np.median(reached):.0f} ({len(reached)}/{ext.seeds_of(largest)})"
           if reached else "-"])
  train_seconds = {h: by_key[lags[0], h]["train_seconds"] for h in hiddens}
  record = multiseed.result_record(
      "lag_values", config, rows, summary=summary,
      train_seconds_per_hidden_all_lags=train_seconds)
  ext.finish("lag_values", workdir, record,
             ["lag", "context", "rows/seq"]
             + [f"hidden {h} [95% CI]" for h in hiddens]
             + ["smallest hidden >= 99%",
                f"epochs to 99% at {hiddens[-1]} (seeds)"], table)
  print("train seconds, all lags x seeds of one hidden size: "
        + ", ".join(f"{h}: {s:.1f}" for h, s in train_seconds.items()))
  plots.accuracy_lines(
      os.path.join(workdir, "lag_values.png"),
      f"Echo X(t-lag): accuracy by lag and LSTM size "
      f"({ext.seeds_of(rows[0])} seeds)", "lag",
      [(f"hidden {h}", lags,
        [by_key[l, h]["eval_accuracy"]["mean"] for l in lags])
       for h in hiddens], chance=1 / config.n_unique)


def main():
  common.run_main(lag_values)


if __name__ == "__main__":
  main()
