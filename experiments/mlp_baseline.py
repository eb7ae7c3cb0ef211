r"""MLP vs LSTM on the windowed echo: the same windows of 5 (target X(t-1)),
stateless, the tutorial's batches of 5 and 2000 epochs, Adam 1e-3; an MLP
over the flattened one-hot window against the tutorial's LSTM(50).

  python -m experiments.mlp_baseline [--mlp_hidden=50 --seeds=8 --workdir=DIR]

Writes mlp_baseline.json (rows: lstm, mlp_<hidden>) and mlp_baseline.png
(training accuracy per epoch).
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags


_MLP_HIDDEN = flags.DEFINE_list("mlp_hidden", ["50"],
                                "Hidden sizes of the MLPs to compare.")


def mlp_baseline():
  config = ext.resolve("mlp_baseline")
  sizes = list_flags.int_list("mlp_hidden", _MLP_HIDDEN.value, minimum=1)
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import mlp_baseline as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            mlp_hidden=sizes)


def main():
  common.run_main(mlp_baseline, lambda: ext.preset("mlp_baseline"))


if __name__ == "__main__":
  main()
