r"""Reproduces the tutorial: its three experiments with its settings, one table.

  python -m experiments.reproduce [--seeds=4 --workdir=runs/reproduce]

Flags given (e.g. --seeds, --epochs, --init) apply to all three experiments.
Writes echo_current.json, echo_lag_no_context.json, echo_lag.json and
reproduce.json (the three records without their per-epoch curves, and the
wall time) into --workdir, and a
run folder per experiment (config, checkpoints, metrics.jsonl, learning
curves); rerunning with the same --workdir resumes an interrupted run.
"""

import time

from experiments import common

from echo_jax.core import config as config_lib


def presets():
  """The configs before the flags, for --help: the tutorial's three."""
  return [config_lib.preset(name) for name in config_lib.TUTORIAL_EXPERIMENTS]


def reproduce():
  start = time.perf_counter()
  if common.flags.FLAGS["config_json"].present:
    raise config_lib.ConfigError(
        "--config_json is not used by reproduce: it runs the tutorial's "
        "three presets (run one experiment's binary with it)")
  configs = [common.resolve_config(name)
             for name in config_lib.TUTORIAL_EXPERIMENTS]
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import reproduce as study
  study.reproduce(configs, common.resolve_workdir("reproduce"),
                  common.run_options(), start)


def main():
  common.run_main(reproduce, presets, ["config_json"])


if __name__ == "__main__":
  main()
