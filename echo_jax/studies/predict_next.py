"""The negative control: can the windowed model predict the next random
integer X(t+1) from the last 5 values? It must not (`tasks.next_value`):
accuracy must stay at chance. The echo X(t-1) with the same model, windows
and training is the positive control."""

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import next_value
from echo_jax.tasks import framed

NAME = "predict_next"


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions()) -> dict:
  """Both tasks of `config`; writes predict_next.json."""
  ext.claim_study(workdir, NAME, config)
  rows = ext.run_tasks(workdir, NAME,
                       [next_value.next_value_task(config),
                        framed.echo_lstm_task("echo_control", config)],
                       options)
  chance = 1 / config.n_unique
  contains = {True: "yes", False: "no", None: "-"}
  table = []
  for row in rows:
    low, high = row["eval_accuracy"]["ci95"]
    # One seed has no interval: None, not a claim about chance.
    row["ci95_contains_chance"] = (
        bool(low <= chance <= high)
        if len(row["eval_accuracy"]["per_seed"]) > 1 else None)
    table.append([row["variant"], records.ci_cell(row["eval_accuracy"]),
                  records.percent(chance),
                  contains[row["ci95_contains_chance"]],
                  f"{row['final_train_loss']['mean']:.3f}",
                  f"{row['train_seconds']:.2f}"])
  return ext.finish(
      NAME, workdir, config, rows,
      ("variant", "accuracy [95% CI]", "chance", "CI holds chance",
       "final train loss", "train s"), table, chance_accuracy=chance)
