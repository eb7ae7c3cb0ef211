"""The sweep binary's --benchmark: S models trained in one vmapped call
against S sequential calls of a one-model program, on one sweep cell."""

import os
import time
from typing import Any

from absl import logging
import jax
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.report import records
from echo_jax.runtime import files
from echo_jax.runtime import runner
from echo_jax.tasks import sweep_cell


def benchmark_vmap(config: config_lib.EchoConfig, lag: int, context: int,
                   hidden: int, sizes: tuple[int, ...],
                   max_devices: int | None = None) -> list[dict[str, Any]]:
  """Seconds per model training S models in one call (sharded over the
  devices, vmapped within one) vs S sequential calls of the one-model
  program (one device); compilation excluded from both."""
  # One chunk: the whole run is one call, as in one model's train(key).
  group = lambda seeds, devices: runner.compile_task(
      sweep_cell.group_task(config.replace(seeds=seeds), context, hidden,
                            (lag,)), devices, chunk_epochs=config.epochs)
  single = group(1, 1)
  train = lambda compiled, keys_M: jax.block_until_ready(compiled.chunk(
      compiled.init(keys_M, *compiled.extra), config.epochs))
  train(single, single.keys_M)  # warm
  rows = []
  for size in sizes:
    many = group(size, max_devices)
    start = time.perf_counter()
    train(many, many.keys_M)
    vmapped = time.perf_counter() - start
    keys_S = np.asarray(many.keys_M)[:size]
    start = time.perf_counter()
    for key in keys_S:
      train(single, jax.device_put(key[None], single.keys_M.sharding))
    sequential = time.perf_counter() - start
    rows.append({"models": size, "devices": many.mesh.size,
                 "vmapped_seconds": vmapped,
                 "sequential_seconds": sequential,
                 "vmapped_models_per_second": size / vmapped,
                 "sequential_models_per_second": size / sequential,
                 "speedup_per_model": sequential / vmapped})
    logging.info("benchmark S=%d: one call %.2fs, %d calls %.2fs, ratio %.2f",
                 size, vmapped, size, sequential, sequential / vmapped)
  return rows


def run_benchmark(config: config_lib.EchoConfig, sizes: tuple[int, ...],
                  workdir: str) -> list[dict[str, Any]]:
  """`benchmark_vmap` on the config's cell, written to benchmark.json."""
  rows = benchmark_vmap(config, config.lag, config.context, config.hidden,
                        sizes)
  files.write_json_atomic(os.path.join(workdir, "benchmark.json"), {
      "config": config.to_dict(), "rows": rows,
      "versions": files.versions()})
  print(records.format_table(
      ("models S", "devices", "one call s", "S calls s", "ratio"),
      [(r["models"], r["devices"], f"{r['vmapped_seconds']:.2f}",
        f"{r['sequential_seconds']:.2f}", f"{r['speedup_per_model']:.2f}")
       for r in rows]))
  print(f"wrote {os.path.join(workdir, 'benchmark.json')}")
  return rows
