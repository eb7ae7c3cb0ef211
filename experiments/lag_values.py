r"""Echo different lags: X(t - lag) for lag 1..10, the window grown to fit
(the tutorial's 5 steps, or lag + 1 when longer), for several LSTM sizes:
accuracy, epochs to 99% and the smallest hidden size that reaches 99%.
Stateless; each Adam update takes the rows of --sequences_per_epoch fresh
sequences (learning rate 1e-2 by default). All lags of one hidden size train
in one program (windows masked to their own length, see echo_jax/tasks/lags.py).

  python -m experiments.lag_values [--lags=1,...,10 --hiddens=8,16,32,64 \
      --seeds=8 --epochs=600 --workdir=DIR]

Writes lag_values.json (one row per lag and hidden size) and lag_values.png.
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

from echo_jax.core import config as config_lib

_LAGS = flags.DEFINE_list("lags", [str(l) for l in range(1, 11)],
                          "Lags to echo.")
_HIDDENS = flags.DEFINE_list("hiddens", ["8", "16", "32", "64"],
                             "LSTM sizes to try for every lag.")
_SEQUENCES = flags.DEFINE_integer("sequences_per_epoch", 2,
                                  "Fresh sequences per Adam update.")
# The study's defaults (over the extensions') and the shared flags it
# refuses (-> what to give instead), for the run and for --help.
DEFAULTS = {"epochs": 600, "learning_rate": 1e-2}
REPLACED = {"lag": "give --lags", "hidden": "give --hiddens"}


def lag_values():
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import lag_values as study
  from echo_jax.tasks import lags as lags_lib
  config = ext.resolve(study.NAME, REPLACED, **DEFAULTS)
  lags = list_flags.int_list(_LAGS.name, _LAGS.value, minimum=1)
  hiddens = sorted(list_flags.int_list(_HIDDENS.name, _HIDDENS.value,
                                       minimum=1))
  if _SEQUENCES.value < 1:
    raise config_lib.ConfigError(
        f"sequences_per_epoch={_SEQUENCES.value} must be >= 1")
  for lag in lags:
    if lags_lib.samples_per_sequence(config.length, lag, config.context) < 1:
      raise config_lib.ConfigError(
          f"lag={lag} leaves no complete window in length={config.length}")
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            lags=lags, hiddens=hiddens, sequences_per_epoch=_SEQUENCES.value)


def main():
  common.run_main(lag_values,
                  lambda: ext.preset("lag_values", **DEFAULTS), REPLACED)


if __name__ == "__main__":
  main()
