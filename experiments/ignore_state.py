r"""Ignore internal state: the windowed echo trained stateful (the tutorial's
carry across batches, reset each epoch) vs stateless (every sample starts
from zeros), same windows, batches, epochs and seeds.

  python -m experiments.ignore_state [--seeds=8 --epochs=2000 --workdir=DIR]

Writes ignore_state.json (rows: stateful, stateless) and ignore_state.png
(training accuracy per epoch).
"""

from experiments import common
from experiments import extensions_common as ext


def ignore_state():
  config = ext.resolve("ignore_state")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import ignore_state as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options())


def main():
  common.run_main(ignore_state, lambda: ext.preset("ignore_state"))


if __name__ == "__main__":
  main()
