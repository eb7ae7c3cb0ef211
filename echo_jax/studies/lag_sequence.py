"""Echo a lag sequence: from each window, can a stateless LSTM output at
every timestep s the value `lag` steps before it (`tasks.seq2seq`), and how
accurate is each window step? Steps whose target lies before the window
(s < lag) are not scored."""

import warnings

import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import seq2seq

NAME = "lag_sequence"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(), *,
        lags: tuple[int, ...]) -> dict:
  """Every lag in `lags` (each in [1, context)); writes lag_sequence.json
  and .png (accuracy per window step)."""
  ext.claim_study(workdir, NAME, config, lags=list(lags))
  rows = ext.run_tasks(workdir, NAME, [seq2seq.lag_sequence_task(config, lags)],
                       options)
  table = []
  for row in rows:
    per_position = np.array(  # None (unscored) becomes NaN
        row["eval_accuracy_per_position"], float).reshape(
            row["eval_accuracy_per_position_shape"])
    with warnings.catch_warnings():  # all-NaN columns: unscored steps
      warnings.simplefilter("ignore", RuntimeWarning)
      per_step = np.nanmean(per_position, axis=0)
    row["eval_accuracy_per_window_step"] = [
        None if np.isnan(a) else float(a) for a in per_step]
    table.append([row["variant"], records.ci_cell(row["eval_accuracy"])]
                 + [records.percent(a)
                    for a in row["eval_accuracy_per_window_step"]]
                 + [f"{row['train_seconds']:.2f}"])
  return ext.finish(
      NAME, workdir, config, rows,
      ["variant", "accuracy [95% CI]"]
      + [f"step {s}" for s in range(config.context)]
      + ["train s (all lags)"], table,
      figure=(f"Echo a lag sequence: accuracy per window step "
              f"({config.seeds} seeds)", "step s in the window",
              [(row["variant"], list(range(config.context)),
                row["eval_accuracy_per_window_step"]) for row in rows]))
