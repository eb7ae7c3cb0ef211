"""Speed, measured side by side in one process: compile and training time,
update and model throughput, fast paths, FLOPs against the machine's matmul
peak, checkpoint overhead, cold/warm start and a peer (the binary passes the
PyTorch port, benchmarks/torch_peer.py, when torch is installed).

Timings are medians of `repeats` runs; ratios compare numbers measured in
this same process.
"""

import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import cost_model
from benchmarks import gpu_check
from echo_jax.core import config as config_lib
from echo_jax.core import train
from echo_jax.report import records
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.runtime import runner
from echo_jax.tasks import sweep_cell
from echo_jax.tasks import task as task_lib

REPO = gpu_check.REPO
SECTIONS = ("one_model", "paths", "scaling", "checkpointing", "cost_model",
            "layouts", "gpu_command_buffers")
# Models per block the layouts section tries (None: all vmapped together).
LAYOUT_BLOCKS = (None, 1, 2, 4, 6, 8, 16)
EXPERIMENTS = ("echo_current", "echo_lag_no_context", "echo_lag")


median_seconds = cost_model.median_seconds


def matmul_peak_gflops(repeats: int, n: int = 2048,
                       precision: jax.lax.Precision | None = None) -> float:
  """Large float32 matmul on one device: the machine's practical peak (at
  the default precision, which on a GPU may use TF32; HIGHEST: float32)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  matmul = jax.jit(functools.partial(jnp.dot, precision=precision))
  jax.block_until_ready(matmul(a, a))
  if jax.default_backend() != "cpu":
    # A GPU's product takes well under a millisecond and its clocks rise
    # only under load: with --repeats=1 two processes of one H200 run timed
    # 5.3 and 23.6 TFLOP/s at HIGHEST. Warm it, then take many calls: five
    # processes then read 26.5-32.6 TFLOP/s (2026-12-04).
    for _ in range(20):
      matmul(a, a)
    repeats = max(repeats, 50)
  return 2 * n**3 / median_seconds(lambda: matmul(a, a), repeats) / 1e9


def compile_whole_runs(config: config_lib.EchoConfig, num_models: int,
                       max_devices: int | None = None):
  """The binaries' training programs (`runner.compile_task` of the tutorial
  task, without evaluation) for `num_models` models, seeds sharded over the
  devices, the whole run as one chunk. Returns (train(keys_M) -> (state_M,
  EpochMetrics_M), keys_M, compile seconds: tracing, lowering and compiling
  all of them)."""
  task = task_lib.tutorial_task(config.replace(seeds=num_models))
  # Training only: every call is a cold compile.
  compiled = runner.compile_task(task, max_devices, chunk_epochs=config.epochs,
                                 with_evaluation=False)
  end_epoch = np.int32(config.epochs)
  train_all = lambda keys: compiled.chunk(compiled.init(keys), end_epoch)
  return train_all, compiled.keys_M, compiled.compile_seconds


def time_single(config: config_lib.EchoConfig, repeats: int) -> dict:
  """Compile and training time of one model, the whole run as one call of
  the training programs (initialisation, then every epoch). Compile time is
  the median of `repeats` cold compilations (new functions each time, so
  nothing is reused; the persistent cache is off)."""
  compiles = [compile_whole_runs(config, 1, 1) for _ in range(repeats)]
  train_one, keys, _ = compiles[-1]
  jax.block_until_ready(train_one(keys))  # first call: allocation, warm caches
  train_seconds = median_seconds(lambda: train_one(keys), repeats)
  updates = config.epochs * config.num_batches
  compile_all = [seconds for _, _, seconds in compiles]
  flops = cost_model.run_matmul_flops(config)
  return {"compile_seconds": statistics.median(compile_all),
          "compile_seconds_all": compile_all,
          "train_seconds": train_seconds,
          "updates_per_second": updates / train_seconds,
          "gflop": flops / 1e9,
          "gflops_per_second": flops / train_seconds / 1e9}


def time_scaling(config: config_lib.EchoConfig, counts: list[int],
                 repeats: int, max_sequential: int) -> list[dict]:
  """models/s: N sequential calls of one compiled model vs one call that
  trains all N (vmapped, seeds sharded over every device). Sequential calls
  are timed up to N = max_sequential; a larger N is compared with the rate
  of the largest N timed."""
  train_one, one_key, _ = compile_whole_runs(config, 1, 1)
  jax.block_until_ready(train_one(one_key))  # allocation, warm caches
  rows = []
  sequential_rate = None
  for n in counts:
    timed = n <= max_sequential or sequential_rate is None
    if timed:
      keys = train.model_keys(config.seed, n)
      sequential = median_seconds(
          lambda keys=keys, n=n: [train_one(keys[i:i + 1]) for i in range(n)],
          max(1, repeats - 1))
      sequential_rate = n / sequential
    train_many, sharded_keys, compile_seconds = compile_whole_runs(config, n)
    jax.block_until_ready(train_many(sharded_keys))
    together = median_seconds(lambda: train_many(sharded_keys), repeats)
    devices = len(sharded_keys.sharding.device_set)
    rows.append({"seeds": n, "devices": devices,
                 "sequential_models_per_second":
                     sequential_rate if timed else None,
                 "one_call_models_per_second": n / together,
                 "one_call_compile_seconds": compile_seconds,
                 "speedup": n / together / sequential_rate})
    logging.info("scaling N=%d: %s vs %.2f models/s", n,
                 f"{sequential_rate:.2f}" if timed else "-", n / together)
  return rows


def time_checkpointing(config: config_lib.EchoConfig, repeats: int) -> dict:
  """Training with an orbax checkpoint after every chunk vs without."""
  compiled = runner.compile_task(task_lib.tutorial_task(config))
  plain, saved = [], []
  for _ in range(repeats):
    record = records.tutorial_record(runner.run(compiled))
    plain.append(record["train_seconds"])
    run_dir = tempfile.mkdtemp()
    try:
      record = records.tutorial_record(runner.run(compiled, run_dir=run_dir))
      saved.append(record["train_seconds"] + record["checkpoint_seconds"])
    finally:
      shutil.rmtree(run_dir, ignore_errors=True)
  without, with_ = statistics.median(plain), statistics.median(saved)
  return {"seeds": config.seeds, "chunk_epochs": compiled.chunk_epochs,
          "train_seconds_without": without, "train_seconds_with": with_,
          "overhead_fraction": with_ / without - 1}


def time_reproduce_start(seeds: int | None) -> dict:
  """Process wall time of the reproduction: cold (empty compilation cache),
  then warm (the cache the cold run filled)."""
  cache = tempfile.mkdtemp()
  out = {}
  try:
    for label in ("cold", "warm"):
      workdir = tempfile.mkdtemp()
      cmd = [sys.executable, "-m", "experiments.reproduce",
             f"--workdir={workdir}", f"--compilation_cache={cache}"]
      if seeds:
        cmd.append(f"--seeds={seeds}")
      start = time.perf_counter()
      subprocess.run(cmd, check=True, capture_output=True,
                     cwd=REPO)
      out[f"{label}_seconds"] = time.perf_counter() - start
      shutil.rmtree(workdir, ignore_errors=True)
  finally:
    shutil.rmtree(cache, ignore_errors=True)
  return out


def time_peer(train_and_evaluate, eval_sequences: int, seeds: int,
              info: dict) -> dict:
  """The peer (`train_and_evaluate(config, seed=, eval_sequences=)` -> dict
  with train_seconds, seconds, eval_accuracy; `info` e.g. its version):
  `seeds` models per experiment, one after another."""
  out = {**info, "seeds": seeds}
  for name in EXPERIMENTS:
    runs = [train_and_evaluate(config_lib.preset(name), seed=s,
                               eval_sequences=eval_sequences)
            for s in range(seeds)]
    out[name] = {
        "train_seconds": statistics.median(r["train_seconds"] for r in runs),
        "seconds": sum(r["seconds"] for r in runs),
        "eval_accuracy": statistics.mean(r["eval_accuracy"] for r in runs)}
    logging.info("peer %s: %s", name, out[name])
  out["all_three_seconds"] = sum(out[n]["seconds"] for n in EXPERIMENTS)
  return out


def time_peer_many(train_many, config: config_lib.EchoConfig,
                   counts: list[int]) -> list[dict]:
  """The peer training N models at once (`train_many(config, n)` -> dict
  with models_per_second), for each N of `counts`."""
  rows = []
  for n in counts:
    row = train_many(config, n)
    rows.append(row)
    logging.info("peer, %d models at once: %.2f models/s", n,
                 row["models_per_second"])
  return rows


def time_cost_model(config: config_lib.EchoConfig, report: dict,
                    repeats: int) -> dict:
  """The cost model (`cost_model.measure`) of one echo_lag model and of the
  largest one-call run of the scaling section, with the fraction of the
  limit each reaches (from the one_model and scaling sections' times)."""
  devices = len(jax.devices())
  largest = max(report.get("scaling", []), key=lambda r: r["seeds"],
                default=None)
  per_device = -(-largest["seeds"] // largest["devices"]) if largest else 1
  out = cost_model.measure(config, per_device, repeats)
  if "one_model" in report:
    lag = config_lib.preset("echo_lag")
    seconds = (report["one_model"]["echo_lag"]["train_seconds"]
               / (lag.epochs * lag.num_batches))
    out["measured_seconds_per_update_one_model"] = seconds
    out["fraction_one_model"] = cost_model.fraction(
        out["limit_seconds_per_update_one_model"], seconds)
  if largest:
    # One update of every model of a device, all devices in parallel.
    seconds = (largest["seeds"] / largest["one_call_models_per_second"]
               / (config.epochs * config.num_batches))
    out["device_models_of_run"] = largest["seeds"]
    out["measured_seconds_per_update_device"] = seconds
    out["fraction_device"] = cost_model.fraction(
        out["limit_seconds_per_update_device"], seconds)
  out["devices"] = devices
  return out


def layout_tasks(epochs: int) -> dict:
  """The programs the layouts section times: the windowed echo with 64
  models, and two sweep groups of 9 lags x 8 seeds (hidden 64: 0.56 MB of
  training state a model, 7 to a 4 MB block; hidden 8: all 36 of a device's
  models in 1.8 MB)."""
  lag = config_lib.preset("echo_lag").replace(epochs=epochs)
  group = lambda hidden: sweep_cell.group_task(
      lag.replace(stateful=False, seeds=8, experiment="sweep"), 10, hidden,
      tuple(range(9)))
  return {"echo_lag, 64 models": task_lib.tutorial_task(lag.replace(seeds=64)),
          "sweep group, context 10, hidden 64": group(64),
          "sweep group, context 10, hidden 8": group(8)}


def time_layouts(epochs: int, repeats: int,
                 blocks=LAYOUT_BLOCKS) -> list[dict]:
  """models/s of each `layout_tasks` program with a device's models in
  vmapped blocks of b (`parallel.BLOCK_ENV`; None: all vmapped together,
  "all"), for the b dividing its models per device; one call of the
  whole run, the layouts alternated `repeats` times, medians."""
  rows = []
  saved = os.environ.get(parallel.BLOCK_ENV)
  try:
    for name, task in layout_tasks(epochs).items():
      mesh = parallel.seed_mesh(task.num_models)
      per_device = parallel.padded_models(task.num_models, mesh) // mesh.size
      runs, auto, order = {}, None, list(blocks)
      for block in order:  # reaches the block auto picks, appended below
        if block is not None and (block >= per_device or per_device % block):
          continue  # over_models would vmap them all: a duplicate row
        os.environ[parallel.BLOCK_ENV] = "all" if block is None else str(block)
        compiled = runner.compile_task(task, chunk_epochs=epochs,
                                       with_evaluation=False)
        end = np.int32(epochs)
        train = lambda c=compiled: c.chunk(c.initial_state(), end)
        jax.block_until_ready(train())  # first call: allocation
        runs[block] = (train, compiled.keys_M.shape[0])
        if len(runs) == 1:
          # The block `auto` picks (parallel.over_models), timed too.
          auto = parallel.cache_block(per_device, parallel.tree_bytes(
              compiled.init.out_info) // runs[block][1])
          if auto not in order:
            order.append(auto)
      times = {block: [] for block in runs}
      for _ in range(repeats):
        for block, (train, _) in runs.items():
          times[block].append(median_seconds(train, 1))
      for block, (_, models) in runs.items():
        rows.append({"program": name, "block": block, "models": models,
                     "models_per_device": per_device, "auto_block": auto,
                     "updates_per_model": epochs * task.train.updates_per_epoch,
                     "models_per_second": models
                     / statistics.median(times[block])})
        logging.info("layout %s, block %s: %.2f models/s", name, block,
                     rows[-1]["models_per_second"])
  finally:
    if saved is None:
      os.environ.pop(parallel.BLOCK_ENV, None)
    else:
      os.environ[parallel.BLOCK_ENV] = saved
  return rows


def time_sweep_cost(layout_rows: list[dict], epochs: int, repeats: int
                    ) -> list[dict]:
  """The cost model of each sweep group the layouts section timed, in the
  layout `auto` picks: its limit per update of a device's models (bandwidth
  at the working set of the models vmapped together: a block, or all of a
  device's) and the fraction of it the timed run reached."""
  tasks = layout_tasks(epochs)
  out = []
  for row in layout_rows:
    if not row["program"].startswith("sweep group") or (
        row["block"] != row["auto_block"]):
      continue
    config = tasks[row["program"]].config
    cost = cost_model.update_cost(config)
    per_device = row["models_per_device"]
    together = row["block"] or per_device
    gflops = cost_model.matmul_gflops(config.batch_size, config.hidden,
                                      repeats)
    gbytes = cost_model.stream_gbytes(cost.bytes * together, repeats)
    limit = cost_model.limit_seconds(cost, gflops, gbytes, per_device)
    measured = (row["models"] / row["models_per_second"]
                / row["updates_per_model"])
    out.append({"program": row["program"], "block": row["block"],
                "models_per_device": per_device,
                "matmul_flops_per_update": cost.matmul_flops,
                "bytes_per_update": cost.bytes,
                "matmul_gflops_at_shape": gflops,
                "stream_gbytes_working_set": gbytes,
                "limit_seconds_per_update_device": limit,
                "measured_seconds_per_update_device": measured,
                "fraction_device": cost_model.fraction(limit, measured)})
    logging.info("cost model %s: %s", row["program"], out[-1])
  return out


def fmt(x: float, digits: int = 2) -> str:
  return f"{x:.{digits}f}"


def percent(fraction: float) -> str:
  return f"{100 * fraction:.0f}%"


def us(seconds: float) -> str:
  return fmt(seconds * 1e6, 1)


# Each table of docs/performance.md: report -> (header, rows), or None when
# the report lacks its section. The binary prints them; tests/test_results.py
# checks the page against docs/results/benchmark.json with them.
def one_model_table(report: dict):
  if "one_model" not in report:
    return None
  peak, peer = report["matmul_peak_gflops"], report.get("peer")
  return (["one model, tutorial settings", "compile s", "train s",
           "updates/s", "GFLOP", "GFLOP/s (of peak)", "PyTorch port train s",
           "port / ours"],
          [[name, fmt(row["compile_seconds"]), fmt(row["train_seconds"], 3),
            fmt(row["updates_per_second"], 0), fmt(row["gflop"], 1),
            f"{fmt(row['gflops_per_second'], 1)} "
            f"({100 * row['gflops_per_second'] / peak:.1f}%)",
            fmt(peer[name]["train_seconds"]) if peer else "-",
            fmt(peer[name]["train_seconds"] / row["train_seconds"], 1)
            if peer else "-"]
           for name, row in report["one_model"].items()])


def paths_table(report: dict):
  if "echo_lag_paths" not in report:
    return None
  paths = report["echo_lag_paths"]
  base = paths["fused+gather (default)"]["train_seconds"]
  return (["echo_lag path", "compile s", "train s", "train s / default"],
          [[label, fmt(r["compile_seconds"]), fmt(r["train_seconds"], 3),
            fmt(r["train_seconds"] / base)] for label, r in paths.items()])


def scaling_table(report: dict):
  if "scaling" not in report:
    return None
  many = {r["models"]: r["models_per_second"]
          for r in report.get("peer_many") or []}
  rows = []
  for r in report["scaling"]:
    ours, peer = r["one_call_models_per_second"], many.get(r["seeds"])
    rows.append([
        r["seeds"], r["devices"],
        "-" if r["sequential_models_per_second"] is None
        else fmt(r["sequential_models_per_second"]), fmt(ours),
        fmt(r["speedup"]), fmt(peer) if peer else "-",
        fmt(ours / peer, 1) if peer else "-"])
  return (["echo_lag models", "devices", "sequential models/s",
           "one call models/s", "speedup", "torch.func models/s",
           "ours / torch.func"], rows)


def cost_model_table(report: dict):
  if "cost_model" not in report:
    return None
  cost = report["cost_model"]
  rows = [["one echo_lag model", 1, fmt(cost["stream_gbytes_one_model"], 1),
           us(cost["limit_seconds_per_update_one_model"]),
           us(cost["measured_seconds_per_update_one_model"])
           if "fraction_one_model" in cost else "-",
           percent(cost["fraction_one_model"])
           if "fraction_one_model" in cost else "-"]]
  if "fraction_device" in cost:
    rows.append([f"{cost['device_models_of_run']} models, one call, "
                 f"{cost['devices']} devices", cost["models_per_device"],
                 fmt(cost["stream_gbytes_device_models"], 1),
                 us(cost["limit_seconds_per_update_device"]),
                 us(cost["measured_seconds_per_update_device"]),
                 percent(cost["fraction_device"])])
  return (["run", "models per device", "stream GB/s at working set",
           "limit us/update (device)", "measured us/update", "of limit"],
          rows)


def sweep_cost_table(report: dict):
  if not report.get("cost_model_sweep"):
    return None
  return (["sweep program (auto layout)", "models per device", "block",
           "MFLOP / MB per update", "stream GB/s at working set",
           "limit us/update (device)", "measured us/update", "of limit"],
          [[r["program"], r["models_per_device"],
            "all" if r["block"] is None else r["block"],
            f"{fmt(r['matmul_flops_per_update'] / 1e6)} / "
            f"{fmt(r['bytes_per_update'] / 1e6)}",
            fmt(r["stream_gbytes_working_set"], 1),
            us(r["limit_seconds_per_update_device"]),
            us(r["measured_seconds_per_update_device"]),
            percent(r["fraction_device"])]
           for r in report["cost_model_sweep"]])


def layouts_table(report: dict):
  if "layouts" not in report:
    return None
  names = list(dict.fromkeys(r["program"] for r in report["layouts"]))
  models = {r["program"]: r["models"] for r in report["layouts"]}
  rate = {(r["program"], r["block"]): r["models_per_second"]
          for r in report["layouts"]}
  return (["models/s by block (2 devices)", "all vmapped"]
          + [f"blocks of {b}" for b in LAYOUT_BLOCKS[1:]],
          [[name if "models" in name else f"{name} ({models[name]} models)"]
           + [fmt(rate[name, b]) if (name, b) in rate else "-"
              for b in LAYOUT_BLOCKS] for name in names])


def start_up_table(report: dict):
  if "reproduce_default" not in report:
    return None
  peer = report.get("peer")
  rows = []
  for key, label, seeds in (("reproduce_default", "4 seeds each", 4),
                            ("reproduce_one_seed", "1 seed each", 1)):
    r = report[key]
    port = peer["all_three_seconds"] if peer and peer["seeds"] == seeds else None
    rows.append([label, f"{fmt(r['cold_seconds'], 1)} s",
                 f"{fmt(r['warm_seconds'], 1)} s",
                 f"{fmt(port, 1)} s" if port else "-",
                 f"{fmt(port / r['cold_seconds'], 1)}x" if port else "-",
                 f"{fmt(port / r['warm_seconds'], 1)}x" if port else "-"])
  return (["reproduce, process wall", "echo_jax cold (empty cache)",
           "echo_jax warm", "PyTorch port", "port / ours, cold",
           "port / ours, warm"], rows)


def checkpointing_table(report: dict):
  if "checkpointing" not in report:
    return None
  ck = report["checkpointing"]
  return (["echo_lag, checkpointed", "seeds", "chunk epochs", "train s",
           "overhead"],
          [["without", ck["seeds"], ck["chunk_epochs"],
            fmt(ck["train_seconds_without"]), "-"],
           ["every chunk", ck["seeds"], ck["chunk_epochs"],
            fmt(ck["train_seconds_with"]),
            f"{100 * ck['overhead_fraction']:.1f}%"]])


def goals_table(report: dict):
  """The speed goals the project set itself, each with what this run
  measured and whether it is reached."""
  needed = ("one_model", "peer", "scaling", "peer_many", "cost_model",
            "cost_model_sweep", "reproduce_default")
  if not all(report.get(key) for key in needed):
    return None
  lag, peer = report["one_model"]["echo_lag"], report["peer"]
  start = report["reproduce_default"]
  cost, sweep = report["cost_model"], report["cost_model_sweep"]
  many = {r["models"]: r["models_per_second"] for r in report["peer_many"]}
  ours = {r["seeds"]: r["one_call_models_per_second"]
          for r in report["scaling"]}
  port_ratio = peer["all_three_seconds"] / start["cold_seconds"]
  loop_ratio = peer["echo_lag"]["train_seconds"] / lag["train_seconds"]
  rows = [
      ("`reproduce` under 20 s cold", f"{fmt(start['cold_seconds'], 1)} s",
       start["cold_seconds"] < 20),
      ("`reproduce` under 8 s warm", f"{fmt(start['warm_seconds'], 1)} s",
       start["warm_seconds"] < 8),
      ("`reproduce` at 10x the PyTorch port or more, cold",
       f"{fmt(port_ratio, 1)}x", port_ratio >= 10),
      ("echo_lag compilation under 2 s",
       f"{fmt(lag['compile_seconds'])} s", lag["compile_seconds"] < 2),
      ("echo_lag training in 0.5 s", f"{fmt(lag['train_seconds'], 3)} s",
       lag["train_seconds"] <= 0.5),
      ("echo_lag at 25x the PyTorch loop or more", f"{fmt(loop_ratio, 1)}x",
       loop_ratio >= 25)]
  if 64 in many and 64 in ours:
    rows.append(("64 models in one call at 10x torch.func or more",
                 f"{fmt(ours[64] / many[64], 1)}x", ours[64] / many[64] >= 10))
  rows += [
      ("one echo_lag model at 60% of the cost model's limit or more",
       percent(cost["fraction_one_model"]), cost["fraction_one_model"] >= 0.6),
      (f"a device's models ({cost['device_models_of_run']} models) at 50% "
       "of the limit or more", percent(cost["fraction_device"]),
       cost["fraction_device"] >= 0.5)]
  rows += [(f"{r['program']} at 50% of its limit or more",
            percent(r["fraction_device"]), r["fraction_device"] >= 0.5)
           for r in sweep]
  return (["goal", "measured", "verdict"],
          [[goal, value, "reached" if reached else "not reached"]
           for goal, value, reached in rows])


TABLES = (goals_table, one_model_table, paths_table, scaling_table, cost_model_table,
          sweep_cost_table, layouts_table, start_up_table,
          checkpointing_table)


def run(workdir: str, sections, repeats: int, counts: list[int],
        gpu_counts, scaling_epochs: int, max_sequential: int,
        start_up: bool, peer=None, peer_seeds: int = 4,
        peer_info: dict | None = None, peer_many=None,
        peer_many_counts: tuple[int, ...] = (8, 64),
        gpu_check_counts=gpu_check.GPU_CHECK_SEEDS,
        gpu_check_timeout: float = gpu_check.SETTING_TIMEOUT_SECONDS,
        gpu_check_settings: dict | None = None) -> dict:
  """Times the `sections` (see SECTIONS), optionally the reproduction's
  start-up, the `peer` (see `time_peer`; None: not timed) and `peer_many`
  (see `time_peer_many`, with the scaling section) and, on a GPU, the
  command-buffer check for `gpu_check_counts` models (`gpu_check`, each
  setting of `gpu_check_settings`, default all, bounded by
  `gpu_check_timeout` seconds), writes benchmark.json
  into `workdir` and prints the tables."""
  # In-process compile times are cold: no persistent cache here.
  jax.config.update("jax_enable_compilation_cache", False)
  counts = list(counts)
  if jax.default_backend() == "gpu":
    counts += [n for n in gpu_counts if n not in counts]
  report = {"versions": files.versions(), "repeats": repeats,
            "scaling_epochs": scaling_epochs,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "matmul_peak_gflops": matmul_peak_gflops(repeats)}
  # XLA:CPU computes float32 dots in float32 at every precision: measured
  # again only where the default may be lower (TF32 on a GPU).
  report["matmul_peak_gflops_fp32"] = (
      report["matmul_peak_gflops"] if jax.default_backend() == "cpu"
      else matmul_peak_gflops(repeats, precision=jax.lax.Precision.HIGHEST))
  logging.info("matmul peak %.1f GFLOP/s (precision HIGHEST %.1f)",
               report["matmul_peak_gflops"],
               report["matmul_peak_gflops_fp32"])
  if "one_model" in sections:
    single = {}
    for name in EXPERIMENTS:
      config = config_lib.preset(name)
      row = time_single(config, repeats)
      single[name] = row
      logging.info("%s: %s", name, row)
    report["one_model"] = single

  lag = config_lib.preset("echo_lag")
  if "paths" in sections:
    variants = {}
    for label, changes in (("fused+gather (default)", {}),
                           ("fused+gather, optax_adam",
                            {"optimizer": "optax_adam"}),
                           ("fused+one_hot", {"input_encoding": "one_hot"}),
                           ("cell+gather", {"lstm_backend": "cell"}),
                           ("cell+one_hot", {"lstm_backend": "cell",
                                             "input_encoding": "one_hot"})):
      row = time_single(lag.replace(**changes), repeats)
      variants[label] = row
      logging.info("echo_lag %s: %s", label, row)
    report["echo_lag_paths"] = variants

  if "scaling" in sections:
    report["scaling"] = time_scaling(
        lag.replace(epochs=scaling_epochs), counts, repeats, max_sequential)
  if "cost_model" in sections:
    report["cost_model"] = time_cost_model(
        lag.replace(epochs=scaling_epochs), report, repeats)
  if "layouts" in sections:
    report["layouts"] = time_layouts(scaling_epochs, repeats)
    if "cost_model" in sections:
      report["cost_model_sweep"] = time_sweep_cost(
          report["layouts"], scaling_epochs, repeats)
  if peer_many is not None and "scaling" in sections:
    report["peer_many"] = time_peer_many(
        peer_many, lag.replace(epochs=scaling_epochs), list(peer_many_counts))
  if "checkpointing" in sections:
    report["checkpointing"] = time_checkpointing(lag, repeats)
  if "gpu_command_buffers" in sections:
    report["gpu_command_buffers"] = gpu_check.time_command_buffers(
        gpu_check_counts, scaling_epochs, repeats, gpu_check_settings,
        timeout=gpu_check_timeout)
  if start_up:
    report["reproduce_one_seed"] = time_reproduce_start(seeds=1)
    report["reproduce_default"] = time_reproduce_start(seeds=None)
  report["peer"] = (time_peer(peer, lag.eval_sequences, peer_seeds,
                              peer_info or {})
                    if peer is not None else None)

  path = os.path.join(workdir, "benchmark.json")
  files.write_json_atomic(path, report)
  print_report(report)
  print(f"wrote {path}")
  return report


def print_report(report: dict) -> None:
  print(f"backend {report['backend']}: {', '.join(report['devices'])}")
  print(f"matmul peak (2048^2 float32, one device): "
        f"{fmt(report['matmul_peak_gflops'], 1)} GFLOP/s")
  if "cost_model" in report:
    cost = report["cost_model"]
    print(f"cost model (echo_lag update): "
          f"{fmt(cost['matmul_flops_per_update'] / 1e6)} MFLOP of matmuls, "
          f"{fmt(cost['bytes_per_update'] / 1e6)} MB moved "
          f"({cost['params']} parameters); matmul at its shape "
          f"{fmt(cost['matmul_gflops_at_shape'], 1)} GFLOP/s")
  for table in TABLES:
    made = table(report)
    if made is not None:
      print(records.format_table(*made))
  if "gpu_command_buffers" in report:
    gpu_check.print_command_buffers(report["gpu_command_buffers"])
  peer = report.get("peer")
  if peer:
    print(f"peer: torch {peer['torch']} ({peer['threads']} threads), "
          f"{peer['seeds']} seeds per experiment; accuracy "
          + ", ".join(f"{n} {100 * peer[n]['eval_accuracy']:.2f}%"
                      for n in EXPERIMENTS))
