"""The benchmark's GPU check: models/s of N echo_lag models trained in one
call, with XLA's command buffers (CUDA graphs) for loops on and off, and
the fractions of the GPU's float32 matmul peak and of its memory-bound
limit that the training reaches.

XLA reads XLA_FLAGS once per process, so each setting runs the benchmark's
scaling section (`benchmark.time_scaling`) in a subprocess of its own with
the setting's flags appended; every subprocess has a time bound. The
training's loops are `lax.scan`s (a `while` in XLA, with a `conditional`
for the end-of-run guard): without command buffers for them every
iteration's kernels are launched from the host one by one, which is what
limits small models on a GPU.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from absl import logging
import jax

from benchmarks import cost_model
from echo_jax.core import config as config_lib
from echo_jax.report import records

# Where the benchmark's subprocesses run (`python -m experiments...`).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Name -> flags appended to XLA_FLAGS. "" is XLA's own default set.
COMMAND_BUFFER_SETTINGS = {
    "XLA default": "",
    "off": "--xla_gpu_enable_command_buffer=",
    "loops on": "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL",
}
# Default model counts (the range: 1,024 to 65,536).
GPU_CHECK_SEEDS = (1024, 8192, 65536)
# Seconds one setting's subprocess may take before it is stopped.
SETTING_TIMEOUT_SECONDS = 600
# Working set of the bandwidth measurement: far beyond the H200's 60 MB L2,
# as are the Adam states of a thousand models or more (~0.4 MB each).
HBM_WORKING_SET_BYTES = 4e9


def settings_command(workdir: str, counts, epochs: int, repeats: int
                     ) -> list[str]:
  """The scaling section alone: N = 1 first (its one sequential call is
  the baseline every larger N is compared with), then one call per N."""
  counts = [1] + [n for n in counts if n != 1]
  return [sys.executable, "-m", "experiments.benchmark",
          f"--workdir={workdir}", "--sections=scaling", "--peer=false",
          "--start_up=false", f"--repeats={repeats}",
          f"--scaling_seeds={','.join(str(n) for n in counts)}",
          "--gpu_seeds=" + ",".join(str(n) for n in counts),
          "--max_sequential_seeds=1", f"--scaling_epochs={epochs}"]


# `benchmark.time_scaling` logs each N's one-call rate as soon as it is
# measured: what a setting that fails at a larger N (out of memory or of
# time) had measured before.
SCALING_LOG = re.compile(r"scaling N=(\d+): \S+ vs ([0-9.]+) models/s")


def measured_before_failure(stderr: str | bytes | None) -> dict[int, float]:
  """models/s by N from a failed setting's log (`SCALING_LOG` lines)."""
  if isinstance(stderr, bytes):
    stderr = stderr.decode(errors="replace")
  return {int(n): float(rate)
          for n, rate in SCALING_LOG.findall(stderr or "")}


def run_setting(flags: str, counts, epochs: int, repeats: int,
                timeout: float = SETTING_TIMEOUT_SECONDS) -> dict:
  """One setting's benchmark.json (scaling rows, matmul peaks), or
  {"error": one line, "measured": models/s by N measured before it} when
  its subprocess failed or ran out of time."""
  workdir = tempfile.mkdtemp()
  env = dict(os.environ)
  env["XLA_FLAGS"] = " ".join(x for x in (env.get("XLA_FLAGS", ""), flags)
                              if x)
  try:
    done = subprocess.run(settings_command(workdir, counts, epochs, repeats),
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode:
      last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
      return {"error": f"exit {done.returncode}: {last}",
              "measured": measured_before_failure(done.stderr)}
    with open(os.path.join(workdir, "benchmark.json")) as f:
      return json.load(f)
  except subprocess.TimeoutExpired as e:
    return {"error": f"stopped after {timeout:g} s",
            "measured": measured_before_failure(e.stderr)}
  finally:
    shutil.rmtree(workdir, ignore_errors=True)


def time_command_buffers(counts=GPU_CHECK_SEEDS, epochs: int = 200,
                         repeats: int = 1, settings=None,
                         timeout: float = SETTING_TIMEOUT_SECONDS,
                         require_gpu: bool = True,
                         hbm_working_set_bytes: float = HBM_WORKING_SET_BYTES
                         ) -> dict:
  """models/s per N and setting (`COMMAND_BUFFER_SETTINGS`), each with the
  fraction of its process's measured float32 matmul peak (precision
  HIGHEST: no TF32) and of its default-precision peak that the training's
  matmul FLOPs reach, and the fraction of the memory-bound limit: the
  cost model's bytes per update (Adam's dense passes over every parameter,
  the activations) for every update of a model's run, at the bandwidth a
  triad kernel measures here over `hbm_working_set_bytes`
  (`cost_model.stream_gbytes`, one kernel a call).
  Without a GPU (and `require_gpu`): {"skipped": why}."""
  if require_gpu and jax.default_backend() != "gpu":
    return {"skipped": f"no GPU visible (backend {jax.default_backend()})"}
  config = config_lib.preset("echo_lag").replace(epochs=epochs)
  flops = cost_model.run_matmul_flops(config)
  run_bytes = (cost_model.update_cost(config).bytes * config.num_batches
               * config.epochs)
  gbytes = cost_model.stream_gbytes(hbm_working_set_bytes, repeats=30,
                                    one_kernel=True)
  memory_bound = gbytes * 1e9 / run_bytes
  logging.info("GPU check: %.0f GB/s streamed; memory-bound limit %.0f "
               "models/s", gbytes, memory_bound)
  rows = []
  for name, flags in (settings or COMMAND_BUFFER_SETTINGS).items():
    report = run_setting(flags, counts, epochs, repeats, timeout)
    if "error" in report:
      logging.warning("GPU check, %s: %s", name, report["error"])
      # The peaks are lost with the process: rates and memory fractions only.
      rates, peaks = report["measured"], None
    else:
      rates = {r["seeds"]: r["one_call_models_per_second"]
               for r in report["scaling"]}
      peaks = report
    for n, rate in rates.items():
      if n not in counts:
        continue  # the N = 1 baseline
      gflops = rate * flops / 1e9
      row = {"setting": name, "flags": flags, "models": n,
             "models_per_second": rate, "gflops_per_second": gflops,
             "fraction_of_fp32_peak": None, "fraction_of_default_peak": None,
             "fraction_of_memory_bound": rate / memory_bound}
      if peaks is not None:
        row.update({
            "fraction_of_fp32_peak":
                gflops / peaks["matmul_peak_gflops_fp32"],
            "fraction_of_default_peak": gflops / peaks["matmul_peak_gflops"],
            "fp32_peak_gflops": peaks["matmul_peak_gflops_fp32"],
            "device": peaks["devices"][0]})
      rows.append(row)
      logging.info("GPU check, %s, N=%d: %.1f models/s", name, n, rate)
    if "error" in report:
      rows.append({"setting": name, "flags": flags, "error": report["error"]})
  return {"epochs": epochs, "stream_gbytes": gbytes,
          "hbm_working_set_bytes": hbm_working_set_bytes,
          "bytes_per_model_run": run_bytes,
          "memory_bound_models_per_second": memory_bound, "rows": rows}


def percent(fraction: float | None) -> str:
  return "-" if fraction is None else f"{100 * fraction:.1f}%"


def print_command_buffers(check: dict) -> None:
  if "skipped" in check:
    print(f"GPU check (command buffers): skipped, {check['skipped']}")
    return
  print(records.format_table(
      [f"echo_lag models at once ({check['epochs']} epochs)", "setting",
       "models/s", "GFLOP/s", "of fp32 peak", "of default-precision peak",
       "of memory-bound limit"],
      [[r.get("models", "-"), r["setting"],
        r["error"] if "error" in r else f"{r['models_per_second']:.1f}",
        "-" if "error" in r else f"{r['gflops_per_second']:.0f}",
        percent(r.get("fraction_of_fp32_peak")),
        percent(r.get("fraction_of_default_peak")),
        percent(r.get("fraction_of_memory_bound"))]
       for r in check["rows"]]))
  print(f"memory-bound limit: {check['memory_bound_models_per_second']:.0f} "
        f"models/s ({check['bytes_per_model_run'] / 1e9:.2f} GB moved per "
        f"model's run at {check['stream_gbytes']:.0f} GB/s: "
        f"{check['hbm_working_set_bytes'] / 1e9:g} GB through one triad "
        "kernel)")
