"""Mask missing data: does keeping the rows the tutorial drops (windows
reaching before X(0)), their missing steps marked with a special value or
masked (the LSTM skips them), match dropping those rows? All stateless."""

import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import masking
from echo_jax.tasks import framed

NAME = "mask_missing"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions()) -> dict:
  """Drop vs each masking mode of `config`; writes mask_missing.json and
  .png (accuracy per position t)."""
  ext.claim_study(workdir, NAME, config)
  tasks = [framed.echo_lstm_task("drop", config)] + [
      masking.missing_value_task(config, mode) for mode in masking.MODES]
  rows = ext.run_tasks(workdir, NAME, tasks, options)
  # Positions as time steps t: dropping keeps t >= lag + context - 1, the
  # other two every t >= lag.
  first_kept = config.lag + config.context - 1
  table = []
  for row in rows:
    first = first_kept if row["variant"] == "drop" else config.lag
    row["positions_t"] = list(range(first, first + len(
        row["eval_accuracy_per_position"])))
    by_t = dict(zip(row["positions_t"], row["eval_accuracy_per_position"]))
    dropped = [by_t[t] for t in range(config.lag, first_kept) if t in by_t]
    kept = [a for t, a in by_t.items() if t >= first_kept]
    table.append([
        row["variant"], len(row["positions_t"]),
        records.ci_cell(row["eval_accuracy"]),
        records.percent(np.mean(dropped)) if dropped else "-",
        records.percent(np.mean(kept)), row["params"],
        f"{row['train_seconds']:.2f}"])
  return ext.finish(
      NAME, workdir, config, rows,
      ("variant", "rows/seq", "accuracy [95% CI]", f"rows t<{first_kept}",
       f"rows t>={first_kept}", "params", "train s"), table,
      tutorial_first_row=first_kept,
      figure=(f"Missing steps: accuracy per position ({config.seeds} seeds)",
              "position t in the sequence",
              [(row["variant"], row["positions_t"],
                row["eval_accuracy_per_position"]) for row in rows]))
