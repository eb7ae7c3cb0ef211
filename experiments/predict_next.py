r"""The negative control: predict the next random integer X(t+1) from the
window of the last 5 values. It must stay at chance (1/n_unique): the next
value is independent of the past. The echo X(t-1) with the same model,
windows and training is the positive control. Stateless, the tutorial's
batches of 5 and 2000 epochs.

  python -m experiments.predict_next [--seeds=8 --workdir=DIR]

Writes predict_next.json (rows: predict_next, echo_control).
"""

from experiments import common
from experiments import extensions_common as ext


def predict_next():
  # pylint: disable=g-import-not-at-top
  from echo_jax import multiseed
  from echo_jax import next_value
  config = ext.resolve("predict_next")
  workdir = common.resolve_workdir("predict_next")
  rows = []
  for task in (next_value.next_value_task(config),
               multiseed.echo_lstm_task("echo_control", config)):
    rows.extend(ext.run_task(workdir, "predict_next", task)[0])
  chance = 1 / config.n_unique
  table = []
  for row in rows:
    low, high = row["eval_accuracy"]["ci95"]
    row["ci95_contains_chance"] = bool(low <= chance <= high)
    table.append([row["variant"], ext.ci_cell(row["eval_accuracy"]),
                  common.percent(chance), "yes" if row["ci95_contains_chance"]
                  else "no", f"{row['final_train_loss']['mean']:.3f}",
                  f"{row['train_seconds']:.2f}"])
  record = multiseed.result_record("predict_next", config, rows,
                                   chance_accuracy=chance)
  ext.finish("predict_next", workdir, record,
             ("variant", "accuracy [95% CI]", "chance", "CI holds chance",
              "final train loss", "train s"), table)


def main():
  common.run_main(predict_next)


if __name__ == "__main__":
  main()
