r"""Echo a lag sequence: from each window of 5, output at every timestep s the
value `lag` steps before it (a Dense layer applied per step, Keras'
TimeDistributed), for lags 1..4. Steps whose target lies before the window
(s < lag) are not scored: a stateless model never saw those values.
Stateless, the tutorial's batches of 5 and 2000 epochs; all lags in one
program.

  python -m experiments.lag_sequence [--lags=1,2,3,4 --seeds=8 --workdir=DIR]

Writes lag_sequence.json (one row per lag) and lag_sequence.png (accuracy per
window step).
"""

import os
import warnings

import numpy as np
from absl import flags

from experiments import common
from experiments import extensions_common as ext

from echo_jax import config as config_lib

_LAGS = flags.DEFINE_list("lags", ["1", "2", "3", "4"],
                          "Lags to echo at every step (each < --context).")


def lag_sequence():
  # pylint: disable=g-import-not-at-top
  from echo_jax import multiseed
  from echo_jax import plots
  from echo_jax import seq2seq
  config = ext.resolve("lag_sequence")
  lags = common.int_list("lags", _LAGS.value)
  for lag in lags:
    if not 1 <= lag < config.context or (
        config.length - lag - config.context + 1 < 1):
      raise config_lib.ConfigError(
          f"lag={lag} must be in [1, context={config.context}) and leave a "
          f"window in length={config.length}")
  workdir = common.resolve_workdir("lag_sequence")
  rows, _ = ext.run_task(workdir, "lag_sequence",
                         seq2seq.lag_sequence_task(config, lags))
  table = []
  for row in rows:
    per_position = np.array(
        [np.nan if a is None else a for a in row["eval_accuracy_per_position"]],
        float).reshape(row["eval_accuracy_per_position_shape"])
    with warnings.catch_warnings():  # all-NaN columns: unscored steps
      warnings.simplefilter("ignore", RuntimeWarning)
      per_step = np.nanmean(per_position, axis=0)
    row["eval_accuracy_per_window_step"] = [
        None if np.isnan(a) else float(a) for a in per_step]
    table.append([row["variant"], ext.ci_cell(row["eval_accuracy"])] + [
        "-" if a is None else common.percent(a)
        for a in row["eval_accuracy_per_window_step"]] + [
            f"{row['train_seconds']:.2f}"])
  record = multiseed.result_record("lag_sequence", config, rows)
  ext.finish("lag_sequence", workdir, record,
             ["variant", "accuracy [95% CI]"]
             + [f"step {s}" for s in range(config.context)]
             + ["train s (all lags)"], table)
  plots.accuracy_lines(
      os.path.join(workdir, "lag_sequence.png"),
      f"Echo a lag sequence: accuracy per window step "
      f"({ext.seeds_of(rows[0])} seeds)", "step s in the window",
      [(row["variant"], list(range(config.context)),
        row["eval_accuracy_per_window_step"]) for row in rows])


def main():
  common.run_main(lag_sequence)


if __name__ == "__main__":
  main()
