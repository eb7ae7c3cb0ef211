"""Entire sequence as timesteps: can a stateless LSTM echo X(t-1) when each
sample is the prefix X(0..t), its padding masked or a special value? Accuracy
per position t, one Adam update per sequence (all its prefixes)."""

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import masking
from echo_jax.tasks import prefix

NAME = "entire_sequence"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions()) -> dict:
  """Each padding mode of `config`; writes entire_sequence.json and .png
  (accuracy per position t)."""
  ext.claim_study(workdir, NAME, config)
  # One update per sequence: all its prefixes, t = lag .. length - 1.
  rows = ext.run_tasks(
      workdir, NAME,
      [prefix.prefix_task(config, mode, batch_size=config.length - config.lag)
       for mode in masking.MODES], options)
  table = []
  for row in rows:
    row["positions_t"] = list(range(config.lag, config.length))
    per_t = row["eval_accuracy_per_position"]
    table.append([
        row["variant"], records.ci_cell(row["eval_accuracy"]),
        records.percent(min(per_t)), records.percent(per_t[-1]),
        row["params"], f"{row['compile_seconds']:.2f}",
        f"{row['train_seconds']:.2f}"])
  return ext.finish(
      NAME, workdir, config, rows,
      ("variant", "accuracy [95% CI]", "worst position",
       f"t={config.length - 1} (longest prefix)", "params", "compile s",
       "train s"), table,
      figure=(f"Whole prefix as timesteps: accuracy per position "
              f"({config.seeds} seeds)", "position t (prefix length t+1)",
              [(row["variant"], row["positions_t"],
                row["eval_accuracy_per_position"]) for row in rows]))
