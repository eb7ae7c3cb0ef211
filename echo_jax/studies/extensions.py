"""What the extension studies share: one run folder per trained program,
the result file, its printed table and figure."""

import os
import re
from typing import Any

from echo_jax.core import config as config_lib
from echo_jax.report import plots
from echo_jax.report import records
from echo_jax.report import rows as rows_lib
from echo_jax.report import study_plots
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.runtime import runner
from echo_jax.studies import claims
from echo_jax.studies import runs
from echo_jax.tasks import task as task_lib


def claim_study(workdir: str, name: str, config: config_lib.EchoConfig,
                **params: Any) -> None:
  """Claims <workdir>/<name>/ (study.json) before any run trains: a rerun
  with other settings is refused at once (replaced if nothing trained)."""
  folder = os.path.join(workdir, name)
  path = os.path.join(folder, "study.json")
  identity = {"config": config.to_dict(), **params}
  trained = os.path.isdir(folder) and any(
      claims.has_trained(os.path.join(folder, part))
      for part in os.listdir(folder))
  if claims.check_claim(path, identity, trained) and parallel.is_writer():
    files.write_json_atomic(path, identity)


def run_dir(workdir: str, binary: str, part: str) -> str:
  """<workdir>/<binary>/<part>: one run folder per trained program."""
  return os.path.join(workdir, binary, re.sub(r"[^A-Za-z0-9_.=-]+", "_", part))


def run_framed_in(task: task_lib.Task, run_dir: str,
                  options: runs.RunOptions = runs.RunOptions(),
                  compiled: runner.Compiled | None = None,
                  on_chunk: runner.ChunkCallback | None = None
                  ) -> runner.RunOutput:
  """Runs (or resumes) a framed task in its run folder, with its programs
  `compiled` (here if None) and `on_chunk` called after every chunk."""
  compiled = compiled or runner.compile_task(
      task, chunk_epochs=options.chunk_epochs)
  with runs.summaries(run_dir, options, on_chunk) as callback:
    output = runner.run(compiled, run_dir, callback)
  trained = output.trained(by_variant=True)
  plots.learning_curves(
      {name: (trained.loss_E[i], trained.accuracy_E[i])
       for i, name in enumerate(task.row_names())},
      os.path.join(run_dir, "learning_curves.png"),
      f"{task.config.experiment}: {task.name}",
      chance=1.0 / task.config.n_unique)
  return output


def run_tasks(workdir: str, binary: str, tasks: list[task_lib.Task],
              options: runs.RunOptions, resumable: bool = True
              ) -> list[dict[str, Any]]:
  """The rows (`rows.variant_rows`) of framed tasks run in turn, each in its
  `run_dir` (`run_framed_in`); `resumable=False` runs without a run folder
  (timing runs)."""
  rows = []
  for task in tasks:
    output = (run_framed_in(task, run_dir(workdir, binary, task.name), options)
              if resumable else
              runner.run_task(task, chunk_epochs=options.chunk_epochs))
    rows += rows_lib.variant_rows(output)
  return rows


def read_records(name: str, sources) -> list[dict[str, Any]]:
  """<source>/<name>.json of each earlier run to --combine; ConfigError
  (one line) if one holds none or cannot be read."""
  records_ = []
  for source in sources:
    path = os.path.join(source, f"{name}.json")
    if not os.path.isfile(path):
      raise config_lib.ConfigError(
          f"combine={','.join(sources)}: {source} holds no {name}.json")
    records_.append(files.read_json(
        path, "rerun the run that wrote it, or leave it out of --combine"))
  return records_


def by_lag_cells(by_t: dict[int, float | None], lag: int) -> list[str]:
  """A streaming row's accuracy at t = lag, at t = lag + 1 and over
  t >= lag + 2 (the table columns "t = lag", "t = lag+1", "t >= lag+2")."""
  later = [a for t, a in by_t.items() if t >= lag + 2 and a is not None]
  return [records.percent(by_t[lag]), records.percent(by_t[lag + 1]),
          records.percent(sum(later) / len(later))]


def finish(name: str, workdir: str, config: config_lib.EchoConfig,
           rows: list[dict[str, Any]], header, table_rows, figure=None,
           **extra: Any) -> dict[str, Any]:
  """Writes <name>.json (`rows.result_record` of `rows` and `extra`), prints
  the table and draws the `figure` if any: the title, x label, series (and
  chance) of a `study_plots.accuracy_lines` <name>.png; returns the record."""
  record = rows_lib.result_record(name, config, rows, **extra)
  path = os.path.join(workdir, f"{name}.json")
  files.write_json_atomic(path, record)
  print(records.format_table(header, table_rows))
  print(f"wrote {path}")
  if figure:
    study_plots.accuracy_lines(os.path.join(workdir, f"{name}.png"), *figure)
  return record


def compare(name: str, config: config_lib.EchoConfig,
            tasks: list[task_lib.Task], workdir: str,
            options: runs.RunOptions = runs.RunOptions()) -> dict[str, Any]:
  """A study that only compares tasks: <name>.json, one row per variant of
  each, and a table of their accuracies."""
  claim_study(workdir, name, config, tasks=[task.name for task in tasks])
  rows = run_tasks(workdir, name, tasks, options)
  return finish(
      name, workdir, config, rows,
      ("variant", "accuracy [95% CI]", "params", "train s"),
      [[row["variant"], records.ci_cell(row["eval_accuracy"]),
        row["params"], f"{row['train_seconds']:.2f}"] for row in rows])
