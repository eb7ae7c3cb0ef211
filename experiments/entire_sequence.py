r"""Entire sequence as timesteps: sample t is the whole prefix X(0..t), padded
to the sequence length, target X(t-1); the padding is masked (skipped) or
marked with a special value. Accuracy per position t. Stateless; one Adam
update per sequence (its 24 prefixes), learning rate 1e-2 by default.

  python -m experiments.entire_sequence [--seeds=8 --epochs=1000 --workdir=DIR]

Writes entire_sequence.json (rows: prefix_mask, prefix_special_value) and
entire_sequence.png (accuracy per position t).
"""

import dataclasses
import os

from experiments import common
from experiments import extensions_common as ext


def entire_sequence():
  # pylint: disable=g-import-not-at-top
  from echo_jax import masking
  from echo_jax import multiseed
  from echo_jax import plots
  from echo_jax import prefix
  config = ext.resolve("entire_sequence", epochs=1000, learning_rate=1e-2)
  workdir = common.resolve_workdir("entire_sequence")
  samples = config.length - config.lag
  rows = []
  for mode in masking.MODES:
    task = dataclasses.replace(prefix.prefix_task(config, mode),
                               batch_size=samples)
    rows.extend(ext.run_task(workdir, "entire_sequence", task)[0])
  for row in rows:
    row["positions_t"] = list(range(config.lag, config.length))
  record = multiseed.result_record("entire_sequence", config, rows)
  table = []
  for row in rows:
    per_t = row["eval_accuracy_per_position"]
    table.append([
        row["variant"], ext.ci_cell(row["eval_accuracy"]),
        common.percent(min(per_t)), common.percent(per_t[-1]),
        row["params"], f"{row['compile_seconds']:.2f}",
        f"{row['train_seconds']:.2f}"])
  ext.finish("entire_sequence", workdir, record,
             ("variant", "accuracy [95% CI]", "worst position",
              f"t={config.length - 1} (longest prefix)", "params",
              "compile s", "train s"), table)
  plots.accuracy_lines(
      os.path.join(workdir, "entire_sequence.png"),
      f"Whole prefix as timesteps: accuracy per position "
      f"({ext.seeds_of(rows[0])} seeds)", "position t (prefix length t+1)",
      [(row["variant"], row["positions_t"], row["eval_accuracy_per_position"])
       for row in rows])


def main():
  common.run_main(entire_sequence)


if __name__ == "__main__":
  main()
