"""Echo different lags: how accurately, and how fast, does a stateless LSTM
echo X(t - lag) as the lag grows (the window grown to fit, `tasks.lags`), and
what is the smallest hidden size that reaches 99% for each lag?"""

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.report import rows as rows_lib
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import lags as lags_lib

NAME = "lag_values"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(), *,
        lags: tuple[int, ...], hiddens: list[int],
        sequences_per_epoch: int) -> dict:
  """Every lag in `lags` for each hidden size in `hiddens` (ascending);
  writes lag_values.json and .png."""
  ext.claim_study(workdir, NAME, config, lags=list(lags), hiddens=list(hiddens),
                  sequences_per_epoch=sequences_per_epoch)
  rows = ext.run_tasks(
      workdir, NAME,
      [lags_lib.lags_task(config.replace(hidden=h), lags, sequences_per_epoch)
       for h in hiddens], options)
  for row in rows:
    row["lag"], row["hidden"] = row["variant_value"], row["config"]["hidden"]
    row["context"] = int(lags_lib.context_for_lag(row["lag"], config.context))
    row["samples_per_sequence"] = lags_lib.samples_per_sequence(
        config.length, row["lag"], config.context)
  by_key = {(row["lag"], row["hidden"]): row for row in rows}
  summary = []
  table = []
  for lag in lags:
    smallest = next((h for h in hiddens
                     if by_key[lag, h]["eval_accuracy"]["mean"] >= 0.99), None)
    largest = by_key[lag, hiddens[-1]]
    epochs = largest["epochs_to_99pct_train_accuracy"]
    summary.append({"lag": lag, "smallest_hidden_reaching_99pct": smallest,
                    "median_epochs_to_99pct_at_largest_hidden":
                        rows_lib.median_epochs(epochs)[0]})
    table.append(
        [lag, largest["context"], largest["samples_per_sequence"]]
        + [records.ci_cell(by_key[lag, h]["eval_accuracy"]) for h in hiddens]
        + [smallest or f">{hiddens[-1]}", rows_lib.epochs_cell(epochs)])
  train_seconds = {h: by_key[lags[0], h]["train_seconds"] for h in hiddens}
  record = ext.finish(
      NAME, workdir, config, rows,
      ["lag", "context", "rows/seq"]
      + [f"hidden {h} [95% CI]" for h in hiddens]
      + ["smallest hidden >= 99%", f"epochs to 99% at {hiddens[-1]} (seeds)"],
      table, summary=summary, train_seconds_per_hidden_all_lags=train_seconds,
      figure=(f"Echo X(t-lag): accuracy by lag and LSTM size "
              f"({config.seeds} seeds)", "lag",
              [(f"hidden {h}", lags,
                [by_key[l, h]["eval_accuracy"]["mean"] for l in lags])
               for h in hiddens], 1 / config.n_unique))
  print("train seconds, all lags x seeds of one hidden size: "
        + ", ".join(f"{h}: {s:.1f}" for h, s in train_seconds.items()))
  return record
