r"""The lag x context x hidden-size map: accuracy of echoing X(t - lag) from a
window of `context` values, `--seeds` models per cell, 95% CI over seeds.

  python -m experiments.sweep [--lags=0,...,8 --contexts=1,...,10 \
      --hidden_sizes=4,8,16,32,64 --seeds=8 --epochs=2000 --workdir=DIR]
  python -m experiments.sweep --quick            # a small grid, minutes
  python -m experiments.sweep --benchmark        # one vmapped call vs many

Every full window is a sample (see echo_jax/tasks/sweep_cell.py),
stateless training (--stateful=true needs --batch_size to divide every
context's row count), batch 5, the tutorial's 2000 epochs. Cells with
lag >= context are reported as impossible and not trained. All lags x seeds
of one (context, hidden) pair train in one compiled program, sharded over
the visible devices (one host device per core on a CPU, GPUs or a TPU slice
the same way). Several processes or hosts (the same command on each, with
--coordinator_address, --num_processes and --process_id, or started by
SLURM or on a TPU pod) run it as one program: docs/scaling.md.

Writes into --workdir: cells/*.json (one per finished cell: rerunning with
the same --workdir resumes), groups/<group>/ (checkpoints of the group in
training, every --chunk_epochs epochs, so a rerun also resumes inside it;
its metrics.jsonl), sweep.csv, sweep.json, heatmap.png,
accuracy_vs_hidden.png and learning_curves.png.
"""

import time

from absl import flags

from experiments import common
from experiments import list_flags

from echo_jax.core import config as config_lib

DEFAULTS = {"lags": "0,1,2,3,4,5,6,7,8", "contexts": "1,2,3,4,5,6,7,8,9,10",
            "hidden_sizes": "4,8,16,32,64", "seeds": 8, "epochs": 2000}
# The structure in minutes: the impossible triangle, near-perfect echoes
# with room to spare, and a small LSTM failing at longer lags.
QUICK = {"lags": "0,1,2,3,4", "contexts": "1,3,5", "hidden_sizes": "4,16,64",
         "seeds": 4, "epochs": 1000}
_NOT_SWEPT = {"lag": "lags", "context": "contexts", "hidden": "hidden_sizes"}

# resolve() takes a grid flag's value only if given (`present`): --quick
# replaces these defaults.
_LAGS = flags.DEFINE_list("lags", DEFAULTS["lags"],
                          f"Lags to sweep (--quick: {QUICK['lags']}).")
_CONTEXTS = flags.DEFINE_list(
    "contexts", DEFAULTS["contexts"],
    f"Window lengths to sweep (--quick: {QUICK['contexts']}).")
_HIDDEN_SIZES = flags.DEFINE_list(
    "hidden_sizes", DEFAULTS["hidden_sizes"],
    f"LSTM sizes to sweep (--quick: {QUICK['hidden_sizes']}).")
_QUICK = flags.DEFINE_boolean(
    "quick", False, "A small grid with fewer seeds and epochs that still "
    "shows the map's structure; flags given explicitly override it.")
_BENCHMARK = flags.DEFINE_boolean(
    "benchmark", False, "Instead of the sweep, time S models trained in one "
    "vmapped call vs S sequential one-model calls (--benchmark_sizes), on "
    "the tutorial's cell (lag 1, context 5, hidden 50).")
_BENCHMARK_SIZES = flags.DEFINE_list("benchmark_sizes", ["1", "8", "64"],
                                     "Model counts S for --benchmark.")


def preset(quick: bool = False) -> config_lib.EchoConfig:
  """The config before --config_json and the flags: the tutorial's
  echo_lag, stateless, with the seeds and epochs of DEFAULTS (or QUICK)."""
  defaults = QUICK if quick else DEFAULTS
  return config_lib.preset("echo_lag").replace(
      experiment="sweep", stateful=False, seeds=defaults["seeds"],
      epochs=defaults["epochs"])


def resolve():
  """(config, grid) from the flags, validated; nothing written."""
  from echo_jax.tasks import sweep_cell  # pylint: disable=g-import-not-at-top
  for single, plural in _NOT_SWEPT.items():
    if flags.FLAGS[single].present:
      raise config_lib.ConfigError(
          f"--{single} is not used by the sweep: give --{plural}")
  defaults = QUICK if _QUICK.value else DEFAULTS
  grid_flags = {"lags": _LAGS, "contexts": _CONTEXTS,
                "hidden_sizes": _HIDDEN_SIZES}
  grid = sweep_cell.Grid(**{
      name: list_flags.int_list(name, flag.value if flag.present
                                else defaults[name].split(","))
      for name, flag in grid_flags.items()})
  config = common.with_overrides(preset(_QUICK.value))
  sweep_cell.validate(config, grid)
  return config, grid


def run_sweep():
  from echo_jax.studies import sweep  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  config, grid = resolve()
  sweep.run(config, grid, common.resolve_workdir("sweep"),
            common.run_options(), start)


def run_benchmark():
  from benchmarks import sweep_vmap  # pylint: disable=g-import-not-at-top
  sizes = list_flags.int_list("benchmark_sizes", _BENCHMARK_SIZES.value,
                              minimum=1)
  config = config_lib.validate(common.with_overrides(config_lib.preset(
      "echo_lag").replace(experiment="sweep_benchmark", stateful=False)))
  sweep_vmap.run_benchmark(config, sizes,
                           common.resolve_workdir("sweep_benchmark"))


def main():
  common.run_main(
      lambda: run_benchmark() if _BENCHMARK.value else run_sweep(),
      preset, _NOT_SWEPT)


if __name__ == "__main__":
  main()
