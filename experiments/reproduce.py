r"""Reproduces the tutorial: its three experiments with its settings, one table.

  python -m experiments.reproduce [--seeds=4 --workdir=runs/reproduce]

Flags given (e.g. --seeds, --epochs, --init) apply to all three experiments.
Writes echo_current.json, echo_lag_no_context.json, echo_lag.json and
reproduce.json (the three records plus the wall time) into --workdir, and a
run folder per experiment (config, checkpoints, metrics.jsonl, learning
curves); rerunning with the same --workdir resumes an interrupted run.
"""

from concurrent import futures
import os
import time

from experiments import common

EXPERIMENTS = ("echo_current", "echo_lag_no_context", "echo_lag")


def reproduce():
  # pylint: disable=g-import-not-at-top
  from echo_jax import results
  start = time.perf_counter()
  configs = [common.resolve_config(name) for name in EXPERIMENTS]
  workdir = common.resolve_workdir("reproduce")
  # One worker compiles the experiments' programs in order while earlier
  # experiments train, evaluate and write their files (XLA releases the
  # GIL); each experiment waits only for its own programs.
  pool = futures.ThreadPoolExecutor(max_workers=1)
  try:
    pending = [pool.submit(common.compile_for, config) for config in configs]
    records = [common.run_and_write(config, workdir, compiled.result())
               for config, compiled in zip(configs, pending)]
  finally:
    pool.shutdown(cancel_futures=True)
  wall_seconds = time.perf_counter() - start
  results.write_json_atomic(os.path.join(workdir, "reproduce.json"), {
      "experiments": records,
      "wall_seconds_after_imports": wall_seconds,
      "versions": results.versions(),
  })
  for record in records:
    common.print_example(record)
  print(common.format_table(common.SUMMARY_HEADER,
                            [common.summary_row(r) for r in records]))
  print(f"chance is {common.percent(records[0]['chance_accuracy'])}; "
        f"{wall_seconds:.1f} s after imports; wrote {workdir}")


def main():
  common.run_main(reproduce)


if __name__ == "__main__":
  main()
