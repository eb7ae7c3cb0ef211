r"""The state map: when does Keras' carried state help the windowed echo,
and when does it break learning? Stateful vs stateless training over batch
size, lag and window (hidden 50, 2000 epochs, Adam 1e-3, 8 seeds, 1000 test
sequences), with the carried state measured (norms, linear probe) and both
kinds of model evaluated both ways.

  python -m experiments.state_map [--lags=1,3 --windows=5,7 \
      --batch_sizes=1,4,5,whole --seeds=8 --workdir=DIR]

The full grid (120 cells, an estimated 1.5-2 hours on the 2-core CPU, see
docs/extensions.md#state_map): --lags=0,1,2,3,4 --windows=1,2,...,8
--batch_sizes=1,2,...,25 (every divisor of every cell's samples).

Writes into --workdir: cells/*.json (one per finished cell: a rerun with
the same --workdir resumes), runs/<cell>/ (checkpoints while it trains),
state_map.json and state_map.png.
"""

import time

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

_LAGS = flags.DEFINE_list("lags", ["1", "3"], "Lags to map.")
_WINDOWS = flags.DEFINE_list("windows", ["5", "7"], "Window lengths to map.")
_BATCH_SIZES = flags.DEFINE_list(
    "batch_sizes", ["1", "4", "5", "whole"],
    "Batch sizes to map; 'whole' is each cell's whole sequence. A size that "
    "does not divide a cell's samples per sequence is reported, not trained.")
# The shared flags it refuses (-> what to give instead), for the run and
# for --help.
REPLACED = {"lag": "give --lags", "context": "give --windows",
            "batch_size": "give --batch_sizes",
            "stateful": "it trains both ways"}


def state_map():
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import state_map as study
  from echo_jax.tasks import state_cell
  start = time.perf_counter()
  config = ext.resolve(study.NAME, replaced=REPLACED)
  batches = [str(state_cell.WHOLE) if b == "whole" else b
             for b in _BATCH_SIZES.value]
  grid = state_cell.Grid(list_flags.int_list("lags", _LAGS.value),
                         list_flags.int_list("windows", _WINDOWS.value),
                         list_flags.int_list("batch_sizes", batches))
  state_cell.validate(config, grid)
  study.run(config, grid, common.resolve_workdir(study.NAME),
            common.run_options(), start)


def main():
  common.run_main(state_map, lambda: ext.preset("state_map"), REPLACED)


if __name__ == "__main__":
  main()
