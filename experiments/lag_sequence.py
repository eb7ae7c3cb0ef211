r"""Echo a lag sequence: from each window of 5, output at every timestep s the
value `lag` steps before it (a Dense layer applied per step, Keras'
TimeDistributed), for lags 1..4. Steps whose target lies before the window
(s < lag) are not scored: a stateless model never saw those values.
Stateless, the tutorial's batches of 5 and 2000 epochs; all lags in one
program.

  python -m experiments.lag_sequence [--lags=1,2,3,4 --seeds=8 --workdir=DIR]

Writes lag_sequence.json (one row per lag) and lag_sequence.png (accuracy per
window step).
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

from echo_jax.core import config as config_lib

_LAGS = flags.DEFINE_list("lags", ["1", "2", "3", "4"],
                          "Lags to echo at every step (each < --context).")
# The shared flags it refuses (-> what to give instead), for the run and
# for --help.
REPLACED = {"lag": "give --lags"}


def lag_sequence():
  config = ext.resolve("lag_sequence", REPLACED)
  lags = list_flags.int_list("lags", _LAGS.value)
  for lag in lags:
    if not 1 <= lag < config.context or (
        config.length - lag - config.context + 1 < 1):
      raise config_lib.ConfigError(
          f"lag={lag} must be in [1, context={config.context}) and leave a "
          f"window in length={config.length}")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import lag_sequence as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            lags=lags)


def main():
  common.run_main(lag_sequence, lambda: ext.preset("lag_sequence"),
                  REPLACED)


if __name__ == "__main__":
  main()
