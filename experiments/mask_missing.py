r"""Mask missing data: keep the rows the tutorial drops (windows reaching
before X(0)) and mark the missing steps with a special value, or mask them
(the LSTM skips them); compare with dropping the rows. All stateless, the
tutorial's batches of 5, 2000 epochs.

  python -m experiments.mask_missing [--seeds=8 --workdir=DIR]

Writes mask_missing.json (rows: drop, special_value, mask) and
mask_missing.png (accuracy per position t).
"""

import os

import numpy as np

from experiments import common
from experiments import extensions_common as ext


def mask_missing():
  # pylint: disable=g-import-not-at-top
  from echo_jax import masking
  from echo_jax import multiseed
  from echo_jax import plots
  config = ext.resolve("mask_missing")
  workdir = common.resolve_workdir("mask_missing")
  tasks = [multiseed.echo_lstm_task("drop", config)] + [
      masking.missing_value_task(config, mode) for mode in masking.MODES]
  rows = []
  for task in tasks:
    rows.extend(ext.run_task(workdir, "mask_missing", task)[0])
  # Positions as time steps t: dropping keeps t >= lag + context - 1, the
  # other two every t >= lag.
  first_kept = config.lag + config.context - 1
  for row in rows:
    first = first_kept if row["variant"] == "drop" else config.lag
    row["positions_t"] = list(range(first, first + len(
        row["eval_accuracy_per_position"])))
  record = multiseed.result_record(
      "mask_missing", config, rows, tutorial_first_row=first_kept)
  table = []
  for row in rows:
    by_t = dict(zip(row["positions_t"], row["eval_accuracy_per_position"]))
    dropped = [by_t[t] for t in range(config.lag, first_kept) if t in by_t]
    kept = [a for t, a in by_t.items() if t >= first_kept]
    table.append([
        row["variant"], len(row["positions_t"]),
        ext.ci_cell(row["eval_accuracy"]),
        common.percent(np.mean(dropped)) if dropped else "-",
        common.percent(np.mean(kept)), row["params"],
        f"{row['train_seconds']:.2f}"])
  ext.finish("mask_missing", workdir, record,
             ("variant", "rows/seq", "accuracy [95% CI]",
              f"rows t<{first_kept}", f"rows t>={first_kept}", "params",
              "train s"), table)
  plots.accuracy_lines(
      os.path.join(workdir, "mask_missing.png"),
      f"Missing steps: accuracy per position ({ext.seeds_of(rows[0])} seeds)",
      "position t in the sequence",
      [(row["variant"], row["positions_t"], row["eval_accuracy_per_position"])
       for row in rows])


def main():
  common.run_main(mask_missing)


if __name__ == "__main__":
  main()
