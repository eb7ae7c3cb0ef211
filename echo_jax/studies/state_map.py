"""The state map: stateful vs stateless training of the windowed echo over
batch size, lag and window, with what the carried state holds.

Each (lag, window, batch) cell is one program (`tasks.state_cell`), trained
in checkpointed chunks (<workdir>/runs/<cell>/) while the next compiles, its
record written to <workdir>/cells/ atomically: a rerun with the same
--workdir resumes. Then state_map.json (every cell, impossible and
non-dividing ones too, without learning curves), state_map.png and a table.
"""

import itertools
import os
import time
from typing import Any

from absl import logging

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.report import state_map_records
from echo_jax.runtime import files
from echo_jax.studies import claims
from echo_jax.studies import runs
from echo_jax.studies import sweep
from echo_jax.tasks import state_cell

NAME = "state_map"


def cell_name(lag: int, window: int, batch: int) -> str:
  return f"lag{lag}_window{window}_batch{batch}"


def _settings(config: config_lib.EchoConfig) -> dict[str, Any]:
  """What a map's cells share: the config less the mapped fields."""
  mapped = ("lag", "context", "batch_size", "stateful", "experiment")
  settings = {k: v for k, v in config.to_dict().items() if k not in mapped}
  return {**settings, "probe_sequences": state_cell.PROBE_SEQUENCES}


def run_map(config: config_lib.EchoConfig, grid: state_cell.Grid,
            workdir: str, options: runs.RunOptions = runs.RunOptions()
            ) -> dict[str, Any]:
  """Trains every cell not already in <workdir>/cells; returns the map's
  record. Validates first."""
  state_cell.validate(config, grid)
  claims.claim_workdir(workdir, "state_map_config.json", _settings(config),
                       "state map")
  start = time.perf_counter()
  path = lambda cell: os.path.join(workdir, "cells", f"{cell_name(*cell)}.json")
  all_cells = state_cell.cells(config, grid)
  todo = [cell for cell in all_cells if not os.path.exists(path(cell))]
  logging.info("state map: %d cells to train, %d already done",
               len(todo), len(all_cells) - len(todo))
  outputs = sweep.run_in_turn(
      [state_cell.cell_task(config, *cell) for cell in todo],
      [os.path.join(workdir, "runs", cell_name(*cell)) for cell in todo],
      chunk_epochs=options.chunk_epochs)
  for i, (output, cell) in enumerate(zip(outputs, todo)):
    record = state_map_records.cell_record(output)
    files.write_json_atomic(path(cell), record)
    logging.info(
        "cell %d/%d  lag %d window %d batch %d: stateful %.2f%%, "
        "stateless %.2f%%  elapsed %.0fs", i + 1, len(todo), *cell,
        100 * record["stateful"]["accuracy"]["mean"],
        100 * record["stateless"]["accuracy"]["mean"],
        time.perf_counter() - start)
  rows = []
  for window, lag, spec in itertools.product(
      sorted(grid.windows), sorted(grid.lags), grid.batch_sizes):
    status = state_cell.cell_status(config, lag, window, spec)
    cell = None if status != "ok" else sweep.read_cell(path(
        (lag, window, state_cell.batch_of(config, lag, window, spec))))
    rows.append(state_map_records.summary_row(cell, lag, window, spec,
                                              status))
  return {
      "experiment": NAME,
      "framing": "tutorial windows (data.frame_windows): N = length - lag "
                 "- window + 1 samples per sequence",
      "settings": _settings(config),
      "config": config.to_dict(),
      "grid": grid.to_dict(),
      "chance_accuracy": 1.0 / config.n_unique,
      "cells_trained": len(all_cells),
      "cells_trained_now": len(todo),
      "rows": rows,
  }


def _percent_or_dash(summary):
  return "-" if summary is None else records.percent(summary["mean"])


def _epochs(mode):
  median = mode["epochs_to_99_median"]
  return f"{median:.0f} ({mode['seeds_reaching_99']})" if median else "-"


def table_row(r):
  """A trained cell's line of the printed (and documented) table."""
  full, free = r["stateful"], r["stateless"]
  return [
      r["lag"], r["window"], r["batch"], records.ci_cell(full["accuracy"]),
      records.ci_cell(free["accuracy"]),
      f"{100 * r['difference']['mean']:+.2f}",
      _epochs(full), _epochs(free),
      records.percent(full["accuracy_other_way"]["mean"]),
      records.percent(free["accuracy_other_way"]["mean"]),
      "-" if full["carried_h_norm"] is None
      else f"{full['carried_h_norm']['mean']:.2f}",
      _percent_or_dash(full["probe_previous_window_mean"]),
      _percent_or_dash(full["probe_target"])]


TABLE_HEADER = (
    "lag", "window", "batch", "stateful [95% CI]", "stateless [95% CI]",
    "diff (points)", "stateful epochs to 99% (seeds)",
    "stateless epochs to 99% (seeds)", "stateful-trained, zero state",
    "stateless-trained, carried", "carried |h|", "probe: previous window",
    "probe: target")


def run(config: config_lib.EchoConfig, grid: state_cell.Grid, workdir: str,
        options: runs.RunOptions, start: float) -> dict[str, Any]:
  """The map (`run_map`), then state_map.json, state_map.png and the
  table; `start` is when the binary began (`time.perf_counter`)."""
  record = run_map(config, grid, workdir, options)
  record["wall_seconds_after_imports"] = time.perf_counter() - start
  record["versions"] = files.versions()
  files.write_json_atomic(os.path.join(workdir, f"{NAME}.json"), record)
  state_map_records.difference_heatmap(
      record["rows"], os.path.join(workdir, f"{NAME}.png"),
      f"stateful - stateless test accuracy: {config.seeds} seeds/cell, "
      f"hidden {config.hidden}, {config.epochs} epochs, "
      f"{config.eval_sequences} test sequences")
  table = [table_row(r) for r in record["rows"] if r["status"] == "ok"]
  print(records.format_table(TABLE_HEADER, table))
  print(f"{len(table)} cells (rows), {record['cells_trained']} programs; "
        f"{record['wall_seconds_after_imports']:.1f} s after imports; "
        f"wrote {workdir}")
  return record
