"""Streaming echo: can an LSTM that sees one integer per step echo the
integer `lag` steps back? Yes, trained many-to-many with full
backpropagation (per lag). Next to it, why the tutorial's beginner's setup
fails: the same model with truncated backpropagation (as a stateful fit
has), and the setup itself at batch size 6 (sample j starts from the state
sample j-6 left) and 1 (the right state, gradient still truncated)."""

import os
from typing import Sequence

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.report import study_plots
from echo_jax.report import rows as rows_lib
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import streaming

NAME = "streaming_echo"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(),
        lags: Sequence[int] = tuple(range(1, 11)),
        sequences_per_update: int = 16,
        beginner_epochs: int = 2000) -> dict:
  """The streaming models for `lags` (full backprop) and lag 1 (truncated),
  then the beginner's setup at batch 6 and 1; writes streaming_echo.json,
  streaming_echo.png and streaming_echo_lags.png."""
  # The tutorial's beginner's mistake, with this run's seeds and data.
  beginners = [
      config_lib.validate(config_lib.preset("echo_lag_no_context").replace(
          experiment=f"beginner_batch_{batch}", batch_size=batch,
          epochs=beginner_epochs, seeds=config.seeds, seed=config.seed,
          eval_sequences=config.eval_sequences, length=config.length,
          n_unique=config.n_unique, hidden=config.hidden))
      for batch in (6, 1)]
  ext.claim_study(workdir, NAME, config, lags=list(lags),
                  sequences_per_update=sequences_per_update,
                  beginner_epochs=beginner_epochs)
  rows = ext.run_tasks(
      workdir, NAME,
      [streaming.streaming_task(config, lags, sequences_per_update),
       streaming.streaming_task(config, (1,), sequences_per_update,
                                truncate_bptt=True)], options)
  for row in rows:
    row["lag"] = row["variant_value"]
    row["positions_t"] = list(range(config.length))
  for beginner in beginners:
    record, trained = runs.run_tutorial_in(
        beginner, ext.run_dir(workdir, NAME, beginner.experiment), options)
    row = rows_lib.experiment_row(beginner.experiment, record, trained)
    row["lag"] = 1
    # The no_context framing keeps samples t = 1 .. L-1.
    row["positions_t"] = list(range(1, beginner.length))
    row["keras_state_source"] = streaming.keras_state_source(
        beginner.num_samples, beginner.batch_size).tolist()
    rows.append(row)
  table = []
  for row in rows:
    by_t = dict(zip(row["positions_t"], row["eval_accuracy_per_position"]))
    table.append([row["variant"], records.ci_cell(row["eval_accuracy"])]
                 + ext.by_lag_cells(by_t, row["lag"])
                 + [f"{row['train_seconds']:.2f}"])
  record = ext.finish(
      NAME, workdir, config, rows,
      ("variant", "accuracy [95% CI]", "t = lag", "t = lag+1", "t >= lag+2",
       "train s"), table,
      figure=(f"Echo X(t-1), one value per step: accuracy per position "
              f"({config.seeds} seeds)", "position t",
              [(r["variant"], r["positions_t"], r["eval_accuracy_per_position"])
               for r in rows if r["lag"] == 1], 1 / config.n_unique))
  # The beginners' rows are the last ones.
  for beginner, row in zip(beginners, rows[-len(beginners):]):
    print(f"batch {beginner.batch_size}: sample j (t = j+1) starts from the "
          f"state of sample {row['keras_state_source'][:8]} ... (-1: zeros)")
  full = [r for r in rows if r["variant"].startswith("streaming_full_bptt")]
  study_plots.accuracy_lines(
      os.path.join(workdir, f"{NAME}_lags.png"),
      f"Streaming echo, full backprop, {config.epochs} updates: accuracy by "
      f"lag ({config.seeds} seeds)", "lag",
      [("full backprop", [r["lag"] for r in full],
        [r["eval_accuracy"]["mean"] for r in full])],
      chance=1 / config.n_unique)
  return record
