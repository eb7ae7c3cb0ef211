"""Ignore internal state: the windowed echo trained stateful (the tutorial's
carry across batches, reset each epoch) vs stateless (every sample starts
from zeros), same windows, batches, epochs and seeds."""

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.report import rows as rows_lib
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs

NAME = "ignore_state"


def run(base: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions()) -> dict:
  """Both trainings of `base`; writes ignore_state.json and .png."""
  ext.claim_study(workdir, NAME, base)
  configs = {"stateful": base.replace(stateful=True),
             "stateless": base.replace(stateful=False)}
  rows = []
  for name, config in configs.items():
    record, trained = runs.run_tutorial_in(
        config, ext.run_dir(workdir, NAME, name), options)
    rows.append(rows_lib.experiment_row(name, record, trained))
  table = []
  for row in rows:
    median, reached = rows_lib.median_epochs(
        row["epochs_to_99pct_train_accuracy"])
    table.append([
        row["variant"], records.ci_cell(row["eval_accuracy"]),
        "-" if median is None else f"{median:.0f}", f"{reached}/{base.seeds}",
        f"{row['final_train_loss']['mean']:.4f}",
        f"{row['train_seconds']:.2f}"])
  return ext.finish(
      NAME, workdir, base, rows,
      ("variant", "accuracy [95% CI]", "median epochs to 99%",
       "seeds reaching 99%", "final train loss", "train s"), table,
      figure=(f"Windowed echo: training accuracy (50-epoch mean, "
              f"{base.seeds} seeds)", "epoch",
              [(row["variant"],
                *rows_lib.trailing_mean(row["train_accuracy_per_epoch"]))
               for row in rows]))
