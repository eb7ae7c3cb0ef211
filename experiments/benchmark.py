r"""Speed, measured side by side in one run: compile and training time, update
and model throughput, fast paths, FLOPs against the machine's matmul peak,
checkpoint overhead, cold/warm start and (when torch is installed,
requirements-bench.txt) an idiomatic PyTorch port of the same experiments.

  python -m experiments.benchmark --workdir=runs/benchmark

Writes benchmark.json into --workdir and prints tables. Timings are medians
of --repeats runs; ratios compare numbers measured in this same process.
"""

from experiments import common  # first: exposes one host device per core
from experiments import list_flags

import os
from typing import Sequence

from absl import flags

from benchmarks import benchmark as study
from benchmarks import keras_peer
from echo_jax.core import config as config_lib

_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per measurement.")
_SCALING_SEEDS = flags.DEFINE_list(
    "scaling_seeds", ["1", "8", "64"], "Seed counts for models/s.")
_SCALING_EPOCHS = flags.DEFINE_integer(
    "scaling_epochs", 200,
    "Epochs per model in the models/s measurement (the windowed echo); "
    "throughput scales linearly with epochs, this keeps N=64 sequential short.")
_PEER = flags.DEFINE_boolean(
    "peer", True,
    "Time the peers too: the PyTorch port when torch is importable, the "
    "tutorial's Keras code on Keras 3's JAX backend (benchmarks/keras_peer.py, "
    "each model in a subprocess) when keras is.")
_START_UP = flags.DEFINE_boolean(
    "start_up", True,
    "Time `python -m experiments.reproduce` cold and warm in subprocesses.")
_PEER_SEEDS = flags.DEFINE_integer(
    "peer_seeds", 4,
    "Models per experiment each peer trains, one after another: the "
    "same work as `reproduce` (which trains 4 seeds per experiment).")
_GPU_SEEDS = flags.DEFINE_list(
    "gpu_seeds", ["1024"],
    "Seed counts added to --scaling_seeds when JAX's default backend is a "
    "GPU.")
_GPU_CHECK_SEEDS = flags.DEFINE_list(
    "gpu_check_seeds", ["1024", "8192", "65536"],
    "Model counts of the gpu_command_buffers section (on a GPU only: one "
    "subprocess per command-buffer setting, each bounded in time).")
_GPU_CHECK_TIMEOUT = flags.DEFINE_integer(
    "gpu_check_timeout_s", 600,
    "Seconds each gpu_command_buffers setting's subprocess may run before "
    "it is stopped (its row then says so).")
_GPU_CHECK_SETTINGS = flags.DEFINE_list(
    "gpu_check_settings", list(study.gpu_check.COMMAND_BUFFER_SETTINGS),
    "Command-buffer settings the gpu_command_buffers section times, any of "
    f"{', '.join(study.gpu_check.COMMAND_BUFFER_SETTINGS)}.")
_MAX_SEQUENTIAL = flags.DEFINE_integer(
    "max_sequential_seeds", 64,
    "Largest N whose N sequential calls are timed; above it only the one "
    "call is (N calls of one compiled program run at the rate measured for "
    "the largest N timed, which the speedup is taken against).")
SECTIONS = study.SECTIONS
_SECTIONS = flags.DEFINE_list(
    "sections", list(SECTIONS),
    f"What to time, any of {', '.join(SECTIONS)} (with --start_up and --peer: "
    "e.g. a short GPU check).")


def name_list(name: str, values: Sequence[str], allowed: Sequence[str],
              allow_empty: bool = False) -> list[str]:
  """A list flag's names, each one of `allowed`; one-line ConfigError
  naming the flag and the allowed names otherwise (or, unless
  `allow_empty`, if it names none)."""
  unknown = [value for value in values if value not in allowed]
  if unknown or not (values or allow_empty):
    raise config_lib.ConfigError(
        f"{name}={','.join(values)}: "
        + (f"{unknown[0]!r} is not one of " if unknown else "name any of ")
        + ", ".join(allowed))
  return list(values)


def peer():
  """(the PyTorch port's module, info), or (None, None)."""
  # pylint: disable=g-import-not-at-top
  try:
    import torch
  except ImportError:
    return None, None
  from benchmarks import torch_peer
  return torch_peer, {
      "torch": torch.__version__, "threads": torch.get_num_threads()}


def benchmark():
  counts = list_flags.int_list("scaling_seeds", _SCALING_SEEDS.value,
                               minimum=1)
  gpu_counts = list_flags.int_list("gpu_seeds", _GPU_SEEDS.value, minimum=1)
  check_counts = list_flags.int_list("gpu_check_seeds",
                                     _GPU_CHECK_SEEDS.value, minimum=1)
  for name, value in (("repeats", _REPEATS.value),
                      ("max_sequential_seeds", _MAX_SEQUENTIAL.value),
                      ("gpu_check_timeout_s", _GPU_CHECK_TIMEOUT.value)):
    if value < 1:
      raise config_lib.ConfigError(f"{name}={value} must be >= 1")
  sections = name_list("sections", _SECTIONS.value, SECTIONS, allow_empty=True)
  settings = study.gpu_check.COMMAND_BUFFER_SETTINGS
  chosen = name_list("gpu_check_settings", _GPU_CHECK_SETTINGS.value,
                     list(settings))
  if "gpu_command_buffers" in sections:
    # Each setting trains in a subprocess of its own: this process must not
    # hold the GPU's memory (XLA's default preallocates 75% of it on first
    # use) or the subprocesses' large model counts run out.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  port, info = peer() if _PEER.value else (None, None)
  workdir = common.resolve_workdir("benchmark")
  report = study.run(
      workdir, sections, _REPEATS.value, list(counts), gpu_counts,
      _SCALING_EPOCHS.value, _MAX_SEQUENTIAL.value, _START_UP.value,
      port.train_and_evaluate if port else None, _PEER_SEEDS.value, info,
      port.train_many if port else None,
      tuple(n for n in (8, 64) if n in counts), check_counts,
      _GPU_CHECK_TIMEOUT.value, {name: settings[name] for name in chosen})
  if _PEER.value and keras_peer.available():
    keras_peer.add_to_benchmark(report, workdir, _PEER_SEEDS.value)


def main():
  common.run_main(benchmark)


if __name__ == "__main__":
  main()
