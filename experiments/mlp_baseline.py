r"""MLP vs LSTM on the windowed echo: the same windows of 5 (target X(t-1)),
stateless, the tutorial's batches of 5 and 2000 epochs, Adam 1e-3; an MLP
over the flattened one-hot window against the tutorial's LSTM(50).

  python -m experiments.mlp_baseline [--mlp_hidden=50 --seeds=8 --workdir=DIR]

Writes mlp_baseline.json (rows: lstm, mlp_<hidden>) and mlp_baseline.png
(training accuracy per epoch).
"""

import os

import numpy as np
from absl import flags

from experiments import common
from experiments import extensions_common as ext


_MLP_HIDDEN = flags.DEFINE_list("mlp_hidden", ["50"],
                                "Hidden sizes of the MLPs to compare.")


def mlp_baseline():
  # pylint: disable=g-import-not-at-top
  from echo_jax import mlp
  from echo_jax import multiseed
  from echo_jax import plots
  config = ext.resolve("mlp_baseline")
  sizes = list(common.int_list("mlp_hidden", _MLP_HIDDEN.value, minimum=1))
  workdir = common.resolve_workdir("mlp_baseline")
  tasks = [multiseed.echo_lstm_task(f"lstm_{config.hidden}", config)] + [
      mlp.mlp_task(config, size) for size in sizes]
  rows = []
  for task in tasks:
    rows.extend(ext.run_task(workdir, "mlp_baseline", task)[0])
  table = []
  for row in rows:
    reached = [e for e in row["epochs_to_99pct_train_accuracy"]
               if e is not None]
    table.append([
        row["variant"], ext.ci_cell(row["eval_accuracy"]), row["params"],
        f"{np.median(reached):.0f} ({len(reached)}/{ext.seeds_of(row)})"
        if reached else "-",
        f"{row['compile_seconds']:.2f}", f"{row['train_seconds']:.2f}"])
  record = multiseed.result_record("mlp_baseline", config, rows)
  ext.finish("mlp_baseline", workdir, record,
             ("model", "accuracy [95% CI]", "params",
              "median epochs to 99% (seeds)", "compile s",
              f"train s ({ext.seeds_of(rows[0])} models)"), table)
  plots.accuracy_lines(
      os.path.join(workdir, "mlp_baseline.png"),
      "Windowed echo, MLP vs LSTM: training accuracy (50-epoch mean)",
      "epoch",
      [(row["variant"], *ext.trailing_mean(row["train_accuracy_per_epoch"]))
       for row in rows])


def main():
  common.run_main(mlp_baseline)


if __name__ == "__main__":
  main()
