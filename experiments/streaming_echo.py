r"""Streaming echo: an LSTM that sees one integer per step and outputs, at
every step, the integer `lag` steps back, trained with backpropagation
through the whole sequence (lags 1..10). Next to it, why the tutorial's
beginner's setup (one timestep per sample, stateful) fails:
- the same streaming model with the gradient stopped at every step's
  incoming state (truncated backpropagation, as a stateful fit has);
- the beginner's setup itself with batch size 6 (the tutorial's: sample j
  starts from the state sample j-6 left) and batch size 1 (the right state,
  gradient still truncated), 2000 epochs as the tutorial.
Streaming models: a batch of 16 whole sequences per Adam update, learning
rate 1e-2, 1000 updates by default.

  python -m experiments.streaming_echo [--lags=1,...,10 --seeds=8 \
      --sequences_per_update=16 --epochs=1000 --workdir=DIR]

Writes streaming_echo.json, streaming_echo.png (accuracy per position for
lag 1) and streaming_echo_lags.png (accuracy by lag).
"""

import dataclasses
import os

from absl import flags

from experiments import common
from experiments import extensions_common as ext

from echo_jax import config as config_lib

_LAGS = flags.DEFINE_list("lags", [str(l) for l in range(1, 11)],
                          "Lags for the streaming (full backprop) model.")
_SEQUENCES = flags.DEFINE_integer(
    "sequences_per_update", 16,
    "Whole sequences per Adam update of the streaming models.")
_BEGINNER_EPOCHS = flags.DEFINE_integer(
    "beginner_epochs", 2000, "Epochs of the beginner's setup (tutorial: 2000).")


def beginner_config(config: config_lib.EchoConfig, batch_size: int
                    ) -> config_lib.EchoConfig:
  """The tutorial's beginner's mistake, with this run's seeds and data."""
  return config_lib.validate(config_lib.preset("echo_lag_no_context").replace(
      experiment=f"beginner_batch_{batch_size}", batch_size=batch_size,
      epochs=_BEGINNER_EPOCHS.value, seeds=config.seeds, seed=config.seed,
      eval_sequences=config.eval_sequences, length=config.length,
      n_unique=config.n_unique, hidden=config.hidden))


def streaming_echo():
  # pylint: disable=g-import-not-at-top
  from echo_jax import multiseed
  from echo_jax import plots
  from echo_jax import streaming
  config = ext.resolve("streaming_echo", epochs=1000, learning_rate=1e-2)
  lags = common.int_list("lags", _LAGS.value)
  if _SEQUENCES.value < 1:
    raise config_lib.ConfigError(
        f"sequences_per_update={_SEQUENCES.value} must be >= 1")
  if not lags or min(lags) < 1 or max(lags) >= config.length:
    raise config_lib.ConfigError(
        f"lags={','.join(_LAGS.value)} must be in [1, length={config.length})")
  beginners = [beginner_config(config, b) for b in (6, 1)]
  workdir = common.resolve_workdir("streaming_echo")
  sequences = _SEQUENCES.value  # per update; each is one sample
  rows = []
  for task in (streaming.streaming_task(config, lags, sequences),
               streaming.streaming_task(config, (1,), sequences,
                                        truncate_bptt=True)):
    task = dataclasses.replace(task, batch_size=sequences)
    for row in ext.run_task(workdir, "streaming_echo", task)[0]:
      row["lag"] = row["variant_value"]
      row["positions_t"] = list(range(config.length))
      rows.append(row)
  for beginner in beginners:
    record, trained = ext.run_experiment(workdir, "streaming_echo",
                                         beginner.experiment, beginner)
    row = multiseed.experiment_row(beginner.experiment, record, trained)
    row["lag"] = 1
    # The no_context framing keeps samples t = 1 .. L-1.
    row["positions_t"] = list(range(1, beginner.length))
    row["keras_state_source"] = streaming.keras_state_source(
        beginner.num_samples, beginner.batch_size).tolist()
    rows.append(row)
  table = []
  for row in rows:
    by_t = dict(zip(row["positions_t"], row["eval_accuracy_per_position"]))
    first = row["lag"]
    later = [a for t, a in by_t.items() if t >= first + 2 and a is not None]
    table.append([
        row["variant"], ext.ci_cell(row["eval_accuracy"]),
        common.percent(by_t[first]), common.percent(by_t[first + 1]),
        common.percent(sum(later) / len(later)),
        f"{row['train_seconds']:.2f}"])
  record = multiseed.result_record("streaming_echo", config, rows)
  ext.finish("streaming_echo", workdir, record,
             ("variant", "accuracy [95% CI]", "t = lag", "t = lag+1",
              "t >= lag+2", "train s"), table)
  for beginner in beginners:
    source = streaming.keras_state_source(beginner.num_samples,
                                          beginner.batch_size)
    print(f"batch {beginner.batch_size}: sample j (t = j+1) starts from the "
          f"state of sample {source[:8].tolist()} ... (-1: zeros)")
  lag_one = [r for r in rows if r["lag"] == 1]
  plots.accuracy_lines(
      os.path.join(workdir, "streaming_echo.png"),
      f"Echo X(t-1), one value per step: accuracy per position "
      f"({ext.seeds_of(rows[0])} seeds)", "position t",
      [(r["variant"], r["positions_t"], r["eval_accuracy_per_position"])
       for r in lag_one], chance=1 / config.n_unique)
  full = [r for r in rows if r["variant"].startswith("streaming_full_bptt")]
  plots.accuracy_lines(
      os.path.join(workdir, "streaming_echo_lags.png"),
      f"Streaming echo, full backprop, {config.epochs} updates: accuracy by "
      f"lag ({ext.seeds_of(rows[0])} seeds)", "lag",
      [("full backprop", [r["lag"] for r in full],
        [r["eval_accuracy"]["mean"] for r in full])],
      chance=1 / config.n_unique)


def main():
  common.run_main(streaming_echo)


if __name__ == "__main__":
  main()
