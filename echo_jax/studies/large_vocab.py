"""Large vocabularies: does the windowed echo still train with n_unique in
the thousands, and what does an embedding lookup (the ids gather rows of the
input kernel) save over one-hot rows times the kernel, the same numbers
without the (batch x vocab x 4H) matmul? Their accuracies after the same
timing updates must agree (the check)."""

import os
from typing import Sequence

import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import plots
from echo_jax.report import records
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import framed

NAME = "large_vocab"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(),
        vocabs: Sequence[int] = (1000, 10000), sequences_per_epoch: int = 16,
        timing_epochs: int = 10) -> dict:
  """Per vocabulary in `vocabs`: gather for the full schedule, then gather
  vs one_hot for `timing_epochs` updates; writes large_vocab.json and
  large_vocab.png (time per update)."""
  ext.claim_study(workdir, NAME, config, vocabs=list(vocabs),
                  sequences_per_epoch=sequences_per_epoch,
                  timing_epochs=timing_epochs)
  per_update = config.num_samples * sequences_per_epoch

  def run_variant(name, vocab, encoding, epochs, timing=False):
    variant = config_lib.validate(config.replace(
        n_unique=vocab, input_encoding=encoding, epochs=epochs))
    task = framed.echo_lstm_task(name, variant, None, sequences_per_epoch,
                                 per_update)
    # Timing runs are a few updates, timed afresh: no run folder to resume.
    (row,) = ext.run_tasks(workdir, NAME, [task], options,
                           resumable=not timing)
    row["vocab"], row["encoding"], row["updates"] = vocab, encoding, epochs
    row["ms_per_update"] = 1000 * row["train_seconds"] / epochs
    return row

  rows = [run_variant(f"V={vocab} gather", vocab, "gather", config.epochs)
          for vocab in vocabs]
  timing = {}
  for vocab in vocabs:
    for encoding in ("gather", "one_hot"):
      timing[vocab, encoding] = run_variant(
          f"V={vocab} {encoding}, {timing_epochs} updates", vocab, encoding,
          timing_epochs, timing=True)
      rows.append(timing[vocab, encoding])
    gather, one_hot = (timing[vocab, e]["eval_accuracy"]["per_seed"]
                       for e in ("gather", "one_hot"))
    timing[vocab, "one_hot"]["max_abs_accuracy_diff_vs_gather"] = float(
        np.max(np.abs(np.subtract(gather, one_hot))))
  table = []
  for row in rows:
    diff = row.get("max_abs_accuracy_diff_vs_gather")
    table.append([
        row["variant"], records.ci_cell(row["eval_accuracy"]), row["params"],
        f"{row['ms_per_update']:.1f}", f"{row['compile_seconds']:.2f}",
        f"{row['train_seconds']:.2f}",
        "-" if diff is None else f"{100 * diff:.2f} pts"])
  record = ext.finish(
      NAME, workdir, config, rows,
      ("variant", "accuracy [95% CI]", "params",
       f"ms/update ({config.seeds} models)", "compile s", "train s",
       "max |gather - one_hot| per seed"), table,
      samples_per_update=per_update)
  figure, axes = plots.plt.subplots(figsize=(5, 3))
  width = 0.38
  x = np.arange(len(vocabs))
  for i, encoding in enumerate(("gather", "one_hot")):
    axes.bar(x + (i - 0.5) * width,
             [timing[v, encoding]["ms_per_update"] for v in vocabs], width,
             label=encoding)
  axes.set_xticks(x, [f"V = {v}" for v in vocabs])
  axes.set_ylabel(f"ms per update ({config.seeds} models)")
  axes.set_title("Embedding lookup (gather) vs one-hot matmul", fontsize=10)
  axes.legend(fontsize=8)
  plots.save_atomic(figure, os.path.join(workdir, f"{NAME}.png"))
  return record
