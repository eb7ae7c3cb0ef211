"""The lag x context x hidden-size map, resumable, one file per cell.

Each (context, hidden) pair with a possible lag is one group
(`tasks.sweep_cell.group_task`), trained in checkpointed chunks
(<workdir>/groups/), its cells written to <workdir>/cells/ atomically: an
interrupted sweep resumes bit-identically. Seeds are paired across cells and
every model is scored on the same fresh test sequences.
"""

import concurrent.futures
import dataclasses
import json
import os
import shutil
import time
from typing import Any, Iterator

from absl import logging
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import evaluate
from echo_jax.report import records
from echo_jax.report import rows as rows_lib
from echo_jax.report import sweep_plots
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.runtime import runner
from echo_jax.studies import claims
from echo_jax.studies import runs
from echo_jax.tasks import sweep_cell
from echo_jax.tasks import task as task_lib


def cell_path(workdir: str, lag: int, context: int, hidden: int) -> str:
  return os.path.join(workdir, "cells",
                      f"lag{lag}_context{context}_hidden{hidden}.json")


def run_in_turn(tasks: list[task_lib.Task], run_dirs: list[str],
                max_devices: int | None = None,
                chunk_epochs: int | None = None
                ) -> Iterator[runner.RunOutput]:
  """Runs (or resumes) each task in its run folder, yielding its output,
  while the next one compiles: XLA compiles on one thread, a task trains on
  every device. Its compile thread ends when it is consumed to the end. A
  run's checkpoints are removed when the caller, having written its results,
  asks for the next output."""
  compile_next = lambda i: compiler.submit(
      runner.compile_task, tasks[i], max_devices, chunk_epochs)
  with concurrent.futures.ThreadPoolExecutor(1) as compiler:
    pending = compile_next(0) if tasks else None
    for i, run_dir in enumerate(run_dirs):
      compiled = pending.result()
      pending = compile_next(i + 1) if i + 1 < len(tasks) else None
      try:
        output = runner.run(compiled, run_dir)
      except BaseException:
        if pending is not None:
          pending.cancel()
        raise
      yield output
      if parallel.is_writer():
        shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)


def read_cell(path: str) -> dict[str, Any]:
  """A finished cell's record (cells/*.json)."""
  return files.read_json(path, "delete it: a rerun trains that cell again")


def _load_cell(workdir: str, lag: int, context: int, hidden: int
               ) -> dict[str, Any] | None:
  path = cell_path(workdir, lag, context, hidden)
  return read_cell(path) if os.path.exists(path) else None


def group_dir(workdir: str, context: int, hidden: int,
              lags: tuple[int, ...]) -> str:
  """A group's run folder (checkpoints while it trains, metrics.jsonl)."""
  return os.path.join(workdir, "groups", f"context{context}_hidden{hidden}_"
                      f"lags{'-'.join(map(str, lags))}")


def cell_records(output, config: config_lib.EchoConfig
                 ) -> list[dict[str, Any]]:
  """The cells/*.json records of a finished group's run, one per lag."""
  lags = output.task.variants
  shape_config = output.task.config
  context, hidden = shape_config.context, shape_config.hidden
  accuracy_LxS = output.by_variant(evaluate.fraction(
      output.evaluation.sums, config.eval_sequences * shape_config.num_samples))
  trained = output.trained(by_variant=True)
  train_seconds = output.timing["train_seconds"]
  cells = []
  for i, lag in enumerate(lags):
    accuracy_S = accuracy_LxS[i].astype(np.float64)
    mean, low, high = records.mean_and_ci95(accuracy_S)
    train_accuracy_E = trained.accuracy_E[i].mean(0)
    cells.append({
        "lag": lag, "context": context, "hidden": hidden,
        "status": "ok", "seeds": config.seeds,
        "mean": mean, "ci_low": low, "ci_high": high,
        "eval_accuracy_per_seed": accuracy_S.tolist(),
        # No trailing window: one epoch's accuracy is already a mean over
        # seeds of many samples.
        "epochs_to_99": rows_lib.epochs_to_reach(
            train_accuracy_E[None], 0.99, 1)[0],
        # The group trains its lags together: each cell's share of it.
        "train_seconds": train_seconds / len(lags),
        "group_train_seconds": train_seconds,
        "group_eval_seconds": output.timing["eval_seconds"],
        "group_compile_seconds": output.compiled.compile_seconds,
        "models_in_program": output.compiled.num_models,
        "devices_used": output.compiled.mesh.size,
        "samples_per_sequence": config.length - context + 1,
        "framing": sweep_cell.FRAMING,
        "final_train_loss_per_seed":
            trained.loss_E[i, :, -1].astype(np.float64).tolist(),
        "diverged_at_epoch_per_seed": output.diverged_per_seed(i),
        # Learning curves, mean over seeds.
        "train_loss_per_epoch": np.round(
            trained.loss_E[i].mean(0).astype(np.float64), 6).tolist(),
        "train_accuracy_per_epoch": np.round(
            train_accuracy_E.astype(np.float64), 6).tolist(),
        "config": config.replace(lag=lag, context=context,
                                 hidden=hidden).to_dict(),
    })
  return cells


def impossible_record(lag: int, context: int, hidden: int) -> dict[str, Any]:
  """A cell with lag >= context: reported, never trained."""
  return {"lag": lag, "context": context, "hidden": hidden,
          "status": "impossible", "seeds": 0, "mean": None, "ci_low": None,
          "ci_high": None, "epochs_to_99": None, "train_seconds": None}


def run_sweep(config: config_lib.EchoConfig, grid: sweep_cell.Grid,
              workdir: str,
              max_devices: int | None = None,
              chunk_epochs: int | None = None) -> dict[str, Any]:
  """Trains every possible cell not already in <workdir>/cells; returns the
  sweep record (rows for every cell, impossible ones too). Validates first."""
  sweep_cell.validate(config, grid)
  claims.claim_workdir(workdir, "sweep_config.json",
                       sweep_cell.sweep_settings(config), "sweep")
  start = time.perf_counter()
  todo = []  # (context, hidden, lags still missing)
  for context, hidden in grid.groups():
    missing = tuple(l for l in sweep_cell.possible_lags(grid, context)
                    if _load_cell(workdir, l, context, hidden) is None)
    if missing:
      todo.append((context, hidden, missing))
  # Every process must train the same groups: it reads the same cells only
  # if the workdir is one folder they all see.
  parallel.check_same_everywhere(
      repr(todo), "the finished cells it sees in --workdir",
      "put --workdir on a file system every process shares")
  possible = sum(len(sweep_cell.possible_lags(grid, context))
                 for context, _ in grid.groups())
  to_train = sum(len(lags) for _, _, lags in todo)
  reused, impossible = possible - to_train, len(grid.cells()) - possible
  models_todo = to_train * config.seeds
  logging.info("sweep: %d cells to train, %d already done, %d impossible "
               "(lag >= context, not trained); %d programs, %d models",
               to_train, reused, impossible, len(todo), models_todo)
  done, models_done = reused, 0
  # The cells trained now, as their files read back: the rows below do not
  # read them (process 0 writes them; the others may not see them yet).
  trained_now = {}
  compile_seconds = train_seconds = 0.0
  outputs = run_in_turn(
      [sweep_cell.group_task(config, *group) for group in todo],
      [group_dir(workdir, *group) for group in todo], max_devices,
      chunk_epochs)
  for output, (context, hidden, lags) in zip(outputs, todo):
    compile_seconds += output.compiled.compile_seconds
    train_seconds += output.timing["train_seconds"]
    models_done += len(lags) * config.seeds
    for record in cell_records(output, config):
      files.write_json_atomic(
          cell_path(workdir, record["lag"], context, hidden), record)
      trained_now[record["lag"], context, hidden] = json.loads(
          json.dumps(record))
      done += 1
      elapsed = time.perf_counter() - start
      # Cost is about proportional to models: estimate from models done.
      remaining = elapsed * (models_todo - models_done) / models_done
      logging.info(
          "cell %d/%d  lag %d context %d hidden %d: %.2f%% [%.2f, %.2f]  "
          "elapsed %.0fs  eta %.0fs", done, possible, record["lag"], context,
          hidden, 100 * record["mean"], 100 * record["ci_low"],
          100 * record["ci_high"], elapsed, remaining)
  # Cells (lag, context, hidden) with lag >= context are impossible.
  rows = [impossible_record(*cell) if cell[0] >= cell[1]
          else trained_now.get(cell) or _load_cell(workdir, *cell)
          for cell in grid.cells()]
  return {
      "experiment": "sweep",
      "framing": sweep_cell.FRAMING,
      "framing_note": sweep_cell.FRAMING_NOTE,
      "settings": sweep_cell.sweep_settings(config),
      "grid": dataclasses.asdict(grid),
      "chance_accuracy": 1.0 / config.n_unique,
      "cells_total": len(rows),
      "cells_trained_now": to_train,
      "cells_reused": reused,
      "cells_impossible": impossible,
      "programs_compiled": len(todo),
      "compile_seconds": compile_seconds,
      "train_seconds": train_seconds,
      "rows": rows,
  }


CSV_COLUMNS = ("lag", "context", "hidden", "seeds", "mean", "ci_low",
               "ci_high", "status", "epochs_to_99", "train_seconds")
CURVE_FIELDS = ("train_loss_per_epoch", "train_accuracy_per_epoch", "config")


def csv_text(rows: list[dict[str, Any]]) -> str:
  """sweep.csv: one line per cell; empty fields where there is no value."""

  def field(value):
    if value is None:
      return ""
    if isinstance(value, float):
      return f"{value:.6g}"
    return str(value)

  lines = [",".join(CSV_COLUMNS)]
  lines += [",".join(field(row[c]) for c in CSV_COLUMNS) for row in rows]
  return "\n".join(lines) + "\n"


def run(config: config_lib.EchoConfig, grid: sweep_cell.Grid, workdir: str,
        options: runs.RunOptions, start: float) -> dict[str, Any]:
  """The sweep (`run_sweep`), then sweep.csv, sweep.json (rows without the
  cells' learning curves), the plots and a table of the largest context;
  `start` is when the binary began (`time.perf_counter`)."""
  record = run_sweep(config, grid, workdir, chunk_epochs=options.chunk_epochs)
  title = (f"echo X(t-lag): {config.seeds} seeds/cell, {config.epochs} "
           f"epochs, batch {config.batch_size}, "
           f"{'stateful' if config.stateful else 'stateless'}, "
           f"{config.eval_sequences} test sequences")
  record["wall_seconds_after_imports"] = time.perf_counter() - start
  files.write_text_atomic(os.path.join(workdir, "sweep.csv"),
                          csv_text(record["rows"]))
  files.write_json_atomic(os.path.join(workdir, "sweep.json"), {
      **record, "versions": files.versions(),
      "rows": [{k: v for k, v in row.items() if k not in CURVE_FIELDS}
               for row in record["rows"]]})
  sweep_plots.write_all(record["rows"], workdir, title, config.n_unique)
  ok = [r for r in record["rows"] if r["status"] == "ok"]
  print(records.format_table(
      ("hidden", "lag", "context", "accuracy [95% CI]", "epochs to 99%"),
      [(r["hidden"], r["lag"], r["context"],
        records.interval_text(r["mean"], r["ci_low"], r["ci_high"],
                              r["seeds"]), r["epochs_to_99"] or "-")
       for r in ok if r["context"] == max(grid.contexts)]))
  print(f"{len(ok)} cells trained or reused, {record['cells_impossible']} "
        f"impossible; {record['wall_seconds_after_imports']:.1f} s after "
        f"imports; wrote {workdir}")
  return record
