"""The tutorial's experiments: one of them, or all three as the tutorial ran
them (`reproduce`), each in its run folder with its record and one table."""

from concurrent import futures
import os
import time
from typing import Sequence

from echo_jax.core import config as config_lib
from echo_jax.report import tables
from echo_jax.runtime import chunked
from echo_jax.runtime import results
from echo_jax.studies import runs

EXPERIMENTS = ("echo_current", "echo_lag_no_context", "echo_lag")


def run_single(config: config_lib.EchoConfig, workdir: str,
               options: runs.RunOptions = runs.RunOptions()) -> dict:
  """One experiment: run (or resume), write <experiment>.json, print the
  example and the table."""
  record = runs.run_and_write(config, workdir, options)
  tables.print_example(record)
  print(tables.format_table(tables.SUMMARY_HEADER,
                            [tables.summary_row(record)]))
  print(f"wrote {os.path.join(workdir, f'{config.experiment}.json')}")
  return record


def reproduce(configs: Sequence[config_lib.EchoConfig], workdir: str,
              options: runs.RunOptions = runs.RunOptions(),
              start: float | None = None) -> dict:
  """The three experiments in order, then reproduce.json (the records and
  the wall time since `start`) and the table."""
  start = time.perf_counter() if start is None else start
  # Every run folder is checked before any experiment trains: a workdir
  # holding another config is refused with nothing written.
  for config in configs:
    chunked.check_run_dir(os.path.join(workdir, config.experiment),
                          config.to_dict())
  # One worker compiles the experiments' programs in order while earlier
  # experiments train, evaluate and write their files (XLA releases the
  # GIL); each experiment waits only for its own programs.
  pool = futures.ThreadPoolExecutor(max_workers=1)
  try:
    pending = [pool.submit(runs.compile_tutorial, config, options)
               for config in configs]
    records = [runs.run_and_write(config, workdir, options, compiled.result())
               for config, compiled in zip(configs, pending)]
  finally:
    pool.shutdown(cancel_futures=True)
  wall_seconds = time.perf_counter() - start
  summary = {"experiments": records,
             "wall_seconds_after_imports": wall_seconds,
             "versions": results.versions()}
  results.write_json_atomic(os.path.join(workdir, "reproduce.json"), summary)
  for record in records:
    tables.print_example(record)
  print(tables.format_table(tables.SUMMARY_HEADER,
                            [tables.summary_row(r) for r in records]))
  print(f"chance is {tables.percent(records[0]['chance_accuracy'])}; "
        f"{wall_seconds:.1f} s after imports; wrote {workdir}")
  return summary
