"""The tutorial reproduced: its three experiments as it ran them, each in
its run folder with its record, then reproduce.json and one table."""

from concurrent import futures
import os
import time
from typing import Sequence

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.runtime import files
from echo_jax.studies import claims
from echo_jax.studies import runs

# Left out of reproduce.json, the results of record (a few kB, committed as
# docs/results/reproduce.json): each <experiment>.json beside it keeps them.
PER_EPOCH = ("train_loss_per_epoch", "train_accuracy_per_epoch")


def reproduce(configs: Sequence[config_lib.EchoConfig], workdir: str,
              options: runs.RunOptions = runs.RunOptions(),
              start: float | None = None) -> dict:
  """The three experiments in order, then reproduce.json (the records
  without their per-epoch curves, and the wall time since `start`) and the
  table."""
  start = time.perf_counter() if start is None else start
  # Every run folder is checked before any experiment trains: a workdir
  # holding another config is refused with nothing written.
  for config in configs:
    run_dir = os.path.join(workdir, config.experiment)
    claims.check_claim(os.path.join(run_dir, "config.json"),
                       config.to_dict(), claims.has_trained(run_dir))
  # The experiments compile in order in a worker while earlier ones train
  # and write their files (XLA releases the GIL): each waits only for its
  # own programs.
  with futures.ThreadPoolExecutor(max_workers=1) as pool:
    pending = [pool.submit(runs.compile_tutorial, config, options)
               for config in configs]
    try:
      results = [runs.run_and_write(config, workdir, options, done.result())
                 for config, done in zip(configs, pending)]
    finally:
      for done in pending:
        done.cancel()
  wall_seconds = time.perf_counter() - start
  summary = {"experiments": [{k: v for k, v in record.items()
                              if k not in PER_EPOCH} for record in results],
             "wall_seconds_after_imports": wall_seconds,
             "versions": files.versions()}
  files.write_json_atomic(os.path.join(workdir, "reproduce.json"), summary)
  records.print_summary(results)
  print(f"chance is {records.percent(results[0]['chance_accuracy'])}; "
        f"{wall_seconds:.1f} s after imports; wrote {workdir}")
  return summary
