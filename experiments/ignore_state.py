r"""Ignore internal state: the windowed echo trained stateful (the tutorial's
carry across batches, reset each epoch) vs stateless (every sample starts
from zeros), same windows, batches, epochs and seeds.

  python -m experiments.ignore_state [--seeds=8 --epochs=2000 --workdir=DIR]

Writes ignore_state.json (rows: stateful, stateless) and ignore_state.png
(training accuracy per epoch).
"""

import os

import numpy as np

from experiments import common
from experiments import extensions_common as ext


def ignore_state():
  # pylint: disable=g-import-not-at-top
  from echo_jax import multiseed
  from echo_jax import plots
  base = ext.resolve("ignore_state")
  configs = {"stateful": base.replace(stateful=True),
             "stateless": base.replace(stateful=False)}
  workdir = common.resolve_workdir("ignore_state")
  rows = []
  for name, config in configs.items():
    record, trained = ext.run_experiment(workdir, "ignore_state", name,
                                         config)
    rows.append(multiseed.experiment_row(name, record, trained))
  record = multiseed.result_record("ignore_state", base, rows)
  table = []
  for row in rows:
    reached = [e for e in row["epochs_to_99pct_train_accuracy"]
               if e is not None]
    table.append([
        row["variant"], ext.ci_cell(row["eval_accuracy"]),
        f"{np.median(reached):.0f}" if reached else "-",
        f"{len(reached)}/{ext.seeds_of(row)}",
        f"{row['final_train_loss']['mean']:.4f}",
        f"{row['train_seconds']:.2f}"])
  ext.finish("ignore_state", workdir, record,
             ("variant", "accuracy [95% CI]", "median epochs to 99%",
              "seeds reaching 99%", "final train loss", "train s"), table)
  plots.accuracy_lines(
      os.path.join(workdir, "ignore_state.png"),
      f"Windowed echo: training accuracy (50-epoch mean, "
      f"{ext.seeds_of(rows[0])} seeds)", "epoch",
      [(row["variant"], *ext.trailing_mean(row["train_accuracy_per_epoch"]))
       for row in rows])


def main():
  common.run_main(ignore_state)


if __name__ == "__main__":
  main()
