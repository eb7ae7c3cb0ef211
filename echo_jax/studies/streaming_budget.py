"""Streaming echo at every lag: the budget at which it is learned.

Each (hidden size, recipe) trains all its lags in one program for up to
`--updates` Adam updates, scoring every model on the test sequences every
`--eval_every` updates. The budget to 99% is the first scored point whose
mean over seeds reaches 99%; where none does, the curve shows where it
stalls, and the end point is split by position (t = lag, lag + 1, later).

Recipes (`RECIPES`): the streaming model's own (Keras' initialisation, Adam
at 1e-2, constant) and, each alone, chrono initialisation of the gate biases
(Tallec & Ollivier 2018, `models.chrono_lstm_bias_init`: where a forget bias
of 1 keeps a unit's cell for a few steps, chrono spreads the units' initial
memory over 1 to 25 steps, the sequence's length) or Keras 2's time-based
learning-rate decay (`keras_adam.time_decay`: a constant 1e-2 leaves the
means wobbling by a point or two near 99%; the decay needs no run length, so
one run still gives every budget).
"""

import json
import os
from typing import Any, Sequence

import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import train as train_lib
from echo_jax.report import study_plots
from echo_jax.report import records
from echo_jax.report import rows as rows_lib
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.runtime import runner
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.tasks import streaming

NAME = "streaming_budget"
RECIPES = {"tutorial": {}, "chrono": {"init": "chrono"},
           "decay": {"optimizer": "keras_adam_decay"}}
LEVEL = 0.99


def run_scored(task, run_dir: str, options: runs.RunOptions):
  """(RunOutput, {update: Scores.sums as JSON}): the task run (or resumed)
  in `run_dir`, every model scored on the test set after each chunk; the
  scores are kept in <run_dir>/chunk_evaluations.json, so a resume keeps
  the earlier ones."""
  compiled = runner.compile_task(task, chunk_epochs=options.chunk_epochs)
  path = os.path.join(run_dir, "chunk_evaluations.json")
  scores = {}
  if os.path.exists(path):
    scores = {int(u): sums for u, sums in files.read_json(path).items()}
  test_keys = train_lib.test_keys(task.config.seed, task.config.eval_sequences)

  def score_chunk(first, end, loss, accuracy, params_M):
    del first, loss, accuracy
    if end not in scores:  # else scored before a resume
      sums = runner.score(compiled, params_M, test_keys).sums
      # As JSON holds it (a tuple becomes a list), fresh or resumed.
      scores[end] = json.loads(json.dumps(jax.tree.map(
          lambda x: np.asarray(x).tolist(), sums)))
      files.write_json_atomic(path, {str(u): scores[u] for u in sorted(scores)})

  output = ext.run_framed_in(task, run_dir, options, compiled, score_chunk)
  return output, dict(sorted(scores.items()))


def curve_rows(output: runner.RunOutput, scores: dict[int, Any], hidden: int,
               recipe: str, sequences: int) -> list[dict[str, Any]]:
  """Per lag: the test-accuracy curve (over seeds, at every scored update),
  the updates to LEVEL, and the end point by position."""
  seeds = output.task.config.seeds
  updates = list(scores)
  per_point = [rows_lib.accuracy_per_seed(scores[u], seeds) for u in updates]
  rows = []
  for i, row in enumerate(rows_lib.variant_rows(output)):
    curve = [records.summarise(point[i]) for point in per_point]
    reached = next((u for u, c in zip(updates, curve)
                    if c["mean"] >= LEVEL), None)
    rows.append({
        "variant": f"lag {row['variant_value']}, hidden {hidden}, {recipe}",
        "eval_accuracy": row["eval_accuracy"],
        "lag": row["variant_value"], "hidden": hidden, "recipe": recipe,
        "updates": updates, "curve": curve,
        "updates_to_99pct": reached,
        "sequences_to_99pct": None if reached is None else reached * sequences,
        "at_99pct": None if reached is None else curve[updates.index(reached)],
        "final_per_position": row["eval_accuracy_per_position"],
        "diverged_at_epoch_per_seed": row["diverged_at_epoch_per_seed"],
        "train_seconds": row["train_seconds"]})
  return rows


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(),
        lags: Sequence[int] = tuple(range(1, 11)),
        hiddens: Sequence[int] = (50,),
        recipes: Sequence[str] = ("tutorial",),
        updates: int = 12_000, eval_every: int = 500,
        sequences_per_update: int = 16) -> dict:
  """Trains each (hidden, recipe), scoring the test set every `eval_every`
  updates; writes streaming_budget.json and streaming_budget.png."""
  configs = {(h, r): config_lib.validate(config.replace(
      experiment=f"{NAME}_h{h}_{r}", hidden=h, epochs=updates, **RECIPES[r]))
             for h in hiddens for r in recipes}
  ext.claim_study(workdir, NAME, config, lags=list(lags),
                  hiddens=list(hiddens), recipes=list(recipes),
                  updates=updates, eval_every=eval_every,
                  sequences_per_update=sequences_per_update)
  rows = []
  for (hidden, recipe), run_config in configs.items():
    task = streaming.streaming_task(run_config, tuple(lags),
                                    sequences_per_update,
                                    name=f"hidden {hidden} {recipe}")
    output, scores = run_scored(
        task, ext.run_dir(workdir, NAME, task.name),
        options._replace(chunk_epochs=eval_every))
    rows += curve_rows(output, scores, hidden, recipe, sequences_per_update)
  rows.sort(key=lambda r: (r["lag"], r["hidden"], r["recipe"]))
  return write(workdir, config, rows, TABLE_HEADER,
               [table_row(r) for r in rows], sequences_per_update,
               updates=updates, eval_every=eval_every,
               sequences_per_update=sequences_per_update)


def load_runs(workdirs: Sequence[str]) -> dict[str, Any]:
  """The results of earlier runs to `combine`; ConfigError (one line) if one
  holds none or two hold the same lag, hidden, recipe and budget."""
  runs_ = ext.read_records(NAME, workdirs)
  rows = [{**row, "source": source, "run_updates": record["updates"]}
          for source, record in zip(workdirs, runs_)
          for row in record["rows"]]
  keys = [(r["lag"], r["hidden"], r["recipe"], r["run_updates"]) for r in rows]
  if len(set(keys)) < len(keys):
    raise config_lib.ConfigError(
        "combine: two runs hold the same lag, hidden, recipe and budget")
  rows.sort(key=lambda r: (r["lag"], r["hidden"], r["recipe"],
                           r["run_updates"]))
  return {"runs": runs_, "rows": rows, "workdirs": list(workdirs)}


def combine(loaded: dict[str, Any], workdir: str) -> dict:
  """streaming_budget.json and .png in `workdir` from several runs' results
  (`load_runs`; e.g. longer budgets for the long lags); trains nothing."""
  first, rows = loaded["runs"][0], loaded["rows"]
  config = config_lib.from_dict(first["config"])
  sources = [{"workdir": w, "updates": r["updates"],
              "eval_every": r["eval_every"]}
             for w, r in zip(loaded["workdirs"], loaded["runs"])]
  return write(workdir, config, rows, ("run updates",) + TABLE_HEADER,
               [[r["run_updates"]] + table_row(r) for r in rows],
               first["sequences_per_update"], combined_from=sources)


def write(workdir: str, config: config_lib.EchoConfig, rows, header,
          table_rows, sequences: int, **extra: Any) -> dict[str, Any]:
  """streaming_budget.json (`ext.finish`), the printed table and (process 0)
  the figure; returns the record."""
  record = ext.finish(NAME, workdir, config, rows, header, table_rows, **extra)
  if parallel.is_writer():
    study_plots.accuracy_vs_budget(
        os.path.join(workdir, f"{NAME}.png"), rows, sequences, config.seeds,
        LEVEL)
  return record


TABLE_HEADER = ("lag", "hidden", "recipe", "updates to 99%",
                "accuracy there [95% CI]", "at the end [95% CI]",
                "end: t = lag", "t = lag+1", "t >= lag+2", "train s")


def table_row(row: dict[str, Any]) -> list[Any]:
  lag, reached = row["lag"], row["updates_to_99pct"]
  return ([lag, row["hidden"], row["recipe"],
           "not reached" if reached is None else reached,
           "-" if reached is None else records.ci_cell(row["at_99pct"]),
           records.ci_cell(row["eval_accuracy"])]
          + ext.by_lag_cells(dict(enumerate(row["final_per_position"])), lag)
          + [f"{row['train_seconds']:.0f}"])
