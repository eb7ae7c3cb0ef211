"""MLP vs LSTM on the windowed echo: does a model with no recurrence, an
MLP over the flattened one-hot window, learn the echo as well (and as fast)
as the tutorial's LSTM on the same windows, batches, epochs and seeds?"""

from typing import Sequence

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.report import rows as rows_lib
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import mlp
from echo_jax.tasks import framed

NAME = "mlp_baseline"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(),
        mlp_hidden: Sequence[int] = (50,)) -> dict:
  """The LSTM of `config`, then one MLP per hidden size in `mlp_hidden`;
  writes mlp_baseline.json and mlp_baseline.png."""
  ext.claim_study(workdir, NAME, config, mlp_hidden=list(mlp_hidden))
  tasks = [framed.echo_lstm_task(f"lstm_{config.hidden}", config)] + [
      mlp.mlp_task(config, size) for size in mlp_hidden]
  rows = ext.run_tasks(workdir, NAME, tasks, options)
  table = [[row["variant"], records.ci_cell(row["eval_accuracy"]),
            row["params"],
            rows_lib.epochs_cell(row["epochs_to_99pct_train_accuracy"]),
            f"{row['compile_seconds']:.2f}", f"{row['train_seconds']:.2f}"]
           for row in rows]
  return ext.finish(
      NAME, workdir, config, rows,
      ("model", "accuracy [95% CI]", "params", "median epochs to 99% (seeds)",
       "compile s", f"train s ({config.seeds} models)"), table,
      figure=("Windowed echo, MLP vs LSTM: training accuracy (50-epoch mean)",
              "epoch",
              [(row["variant"],
                *rows_lib.trailing_mean(row["train_accuracy_per_epoch"]))
               for row in rows]))
