r"""Streaming echo: an LSTM that sees one integer per step and outputs, at
every step, the integer `lag` steps back, trained with backpropagation
through the whole sequence (lags 1..10). Next to it, why the tutorial's
beginner's setup (one timestep per sample, stateful) fails:
- the same streaming model with the gradient stopped at every step's
  incoming state (truncated backpropagation, as a stateful fit has);
- the beginner's setup itself with batch size 6 (the tutorial's: sample j
  starts from the state sample j-6 left) and batch size 1 (the right state,
  gradient still truncated), 2000 epochs as the tutorial.
Streaming models: a batch of 16 whole sequences per Adam update, learning
rate 1e-2, 1000 updates by default.

  python -m experiments.streaming_echo [--lags=1,...,10 --seeds=8 \
      --sequences_per_update=16 --epochs=1000 --workdir=DIR]

Writes streaming_echo.json, streaming_echo.png (accuracy per position for
lag 1) and streaming_echo_lags.png (accuracy by lag).
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

from echo_jax.core import config as config_lib

_LAGS = flags.DEFINE_list("lags", [str(l) for l in range(1, 11)],
                          "Lags for the streaming (full backprop) model.")
_SEQUENCES = flags.DEFINE_integer(
    "sequences_per_update", 16,
    "Whole sequences per Adam update of the streaming models.")
_BEGINNER_EPOCHS = flags.DEFINE_integer(
    "beginner_epochs", 2000, "Epochs of the beginner's setup (tutorial: 2000).")
# The shared flags it refuses (-> what to give instead), for the run and
# for --help.
REPLACED = {"lag": "give --lags"}


# The study's own defaults (before --config_json and the flags).
DEFAULTS = {"epochs": 1000, "learning_rate": 1e-2}


def preset():
  """The config before --config_json and the flags (also --help's)."""
  return ext.preset("streaming_echo", **DEFAULTS)


def streaming_echo():
  config = ext.resolve("streaming_echo", REPLACED, **DEFAULTS)
  lags = list_flags.int_list("lags", _LAGS.value)
  if _SEQUENCES.value < 1:
    raise config_lib.ConfigError(
        f"sequences_per_update={_SEQUENCES.value} must be >= 1")
  if not lags or min(lags) < 1 or max(lags) >= config.length:
    raise config_lib.ConfigError(
        f"lags={','.join(_LAGS.value)} must be in [1, length={config.length})")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import streaming_echo as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            lags=lags, sequences_per_update=_SEQUENCES.value,
            beginner_epochs=_BEGINNER_EPOCHS.value)


def main():
  common.run_main(streaming_echo, preset, REPLACED)


if __name__ == "__main__":
  main()
