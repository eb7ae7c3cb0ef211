r"""Large vocabularies: the windowed echo with n_unique = 1,000 and 10,000.
The LSTM's input is an embedding lookup (the ids gather rows of the input
kernel) instead of one-hot rows times the kernel: the same numbers, without
the (batch x vocab x 4H) matmul. Stateless; each Adam update takes the rows
of 16 fresh sequences (320 samples), learning rate 1e-2, 300 updates.

Accuracy: gather, the full schedule. Speed: gather vs one_hot on the same
models for --timing_epochs updates (one-hot at 10,000 for the full schedule
would not fit the 5-minute budget); their accuracies after those updates
agree, which is the check that the two encodings compute the same thing.

  python -m experiments.large_vocab [--vocabs=1000,10000 --seeds=8 --workdir=DIR]

Writes large_vocab.json and large_vocab.png (time per update).
"""

import dataclasses
import os

import numpy as np
from absl import flags

from experiments import common
from experiments import extensions_common as ext

from echo_jax import config as config_lib

_VOCABS = flags.DEFINE_list("vocabs", ["1000", "10000"],
                            "Vocabulary sizes (n_unique) to run.")
_SEQUENCES = flags.DEFINE_integer("sequences_per_epoch", 16,
                                  "Fresh sequences per Adam update.")
_TIMING_EPOCHS = flags.DEFINE_integer(
    "timing_epochs", 10, "Updates of the gather vs one_hot timing runs.")


def large_vocab():
  # pylint: disable=g-import-not-at-top
  from echo_jax import multiseed
  from echo_jax import plots
  config = ext.resolve("large_vocab", epochs=300, learning_rate=1e-2)
  vocabs = list(common.int_list("vocabs", _VOCABS.value, minimum=2))
  if _SEQUENCES.value < 1 or _TIMING_EPOCHS.value < 1:
    raise config_lib.ConfigError(
        "sequences_per_epoch and timing_epochs must be >= 1")
  workdir = common.resolve_workdir("large_vocab")
  per_update = config.num_samples * _SEQUENCES.value

  def run(name, vocab, encoding, epochs, timing=False):
    variant = config_lib.validate(config.replace(
        n_unique=vocab, input_encoding=encoding, epochs=epochs))
    task = dataclasses.replace(
        multiseed.echo_lstm_task(name, variant, None, _SEQUENCES.value),
        batch_size=per_update)
    # Timing runs are a few updates, timed afresh: no run folder to resume.
    (row,), _ = ext.run_task(workdir, "large_vocab", task,
                             checkpoint=not timing)
    row["vocab"], row["encoding"], row["updates"] = vocab, encoding, epochs
    row["ms_per_update"] = 1000 * row["train_seconds"] / epochs
    return row

  rows = []
  for vocab in vocabs:
    rows.append(run(f"V={vocab} gather", vocab, "gather", config.epochs))
  timing = {}
  for vocab in vocabs:
    for encoding in ("gather", "one_hot"):
      row = run(f"V={vocab} {encoding}, {_TIMING_EPOCHS.value} updates",
                vocab, encoding, _TIMING_EPOCHS.value, timing=True)
      timing[vocab, encoding] = row
      rows.append(row)
  for vocab in vocabs:
    gather = timing[vocab, "gather"]["eval_accuracy"]["per_seed"]
    one_hot = timing[vocab, "one_hot"]["eval_accuracy"]["per_seed"]
    timing[vocab, "one_hot"]["max_abs_accuracy_diff_vs_gather"] = float(
        np.max(np.abs(np.subtract(gather, one_hot))))
  table = []
  for row in rows:
    diff = row.get("max_abs_accuracy_diff_vs_gather")
    table.append([
        row["variant"], ext.ci_cell(row["eval_accuracy"]), row["params"],
        f"{row['ms_per_update']:.1f}", f"{row['compile_seconds']:.2f}",
        f"{row['train_seconds']:.2f}",
        "-" if diff is None else f"{100 * diff:.2f} pts"])
  record = multiseed.result_record("large_vocab", config, rows,
                                   samples_per_update=per_update)
  ext.finish("large_vocab", workdir, record,
             ("variant", "accuracy [95% CI]", "params",
              f"ms/update ({ext.seeds_of(rows[0])} models)", "compile s",
              "train s", "max |gather - one_hot| per seed"), table)
  figure, axes = plots.plt.subplots(figsize=(5, 3))
  width = 0.38
  x = np.arange(len(vocabs))
  for i, encoding in enumerate(("gather", "one_hot")):
    axes.bar(x + (i - 0.5) * width,
             [timing[v, encoding]["ms_per_update"] for v in vocabs], width,
             label=encoding)
  axes.set_xticks(x, [f"V = {v}" for v in vocabs])
  axes.set_ylabel(f"ms per update ({ext.seeds_of(rows[0])} models)")
  axes.set_title("Embedding lookup (gather) vs one-hot matmul", fontsize=10)
  axes.legend(fontsize=8)
  plots.save_atomic(figure, os.path.join(workdir, "large_vocab.png"))


def main():
  common.run_main(large_vocab)


if __name__ == "__main__":
  main()
