r"""Streaming echo at every lag: the budget at which each lag is learned.
Per (hidden size, recipe), all lags train in one program (a many-to-many
LSTM reading one integer per step, backpropagation through the whole
sequence, 16 sequences per Adam update at learning rate 1e-2) for up to
--updates updates; every --eval_every updates each model is scored on the
1000 fresh test sequences. Recipes: `tutorial` (the streaming model's own),
`chrono` (chrono initialisation of the gate biases) and `decay` (Keras'
time-based learning-rate decay). Resumable: rerun the same command. The
defaults take about 18 minutes on 2 CPU cores.

  python -m experiments.streaming_budget [--lags=1,...,10 --hiddens=50 \
      --recipes=tutorial --updates=12000 --eval_every=500 --seeds=8 \
      --workdir=DIR]

Writes streaming_budget.json and streaming_budget.png (test accuracy
against updates, one panel per lag). With --combine=DIR1,DIR2,... it trains
nothing and merges those runs' results into one table and figure.
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

from echo_jax.core import config as config_lib

_LAGS = flags.DEFINE_list("lags", [str(l) for l in range(1, 11)],
                          "Lags to echo (each >= 1, below --length).")
_HIDDENS = flags.DEFINE_list("hiddens", ["50"], "LSTM sizes.")
_RECIPES = flags.DEFINE_list("recipes", ["tutorial"],
                             "Training recipes (tutorial, chrono, decay).")
_UPDATES = flags.DEFINE_integer(
    "updates", 12_000, "Adam updates per model (the largest budget).")
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", 500, "Updates between scorings on the test sequences.")
_SEQUENCES = flags.DEFINE_integer(
    "sequences_per_update", 16, "Whole sequences per Adam update.")
_COMBINE = flags.DEFINE_list(
    "combine", [],
    "Instead of training: workdirs of earlier runs whose results are merged "
    "into one table and figure in --workdir.")
# The shared flags it refuses (-> what to give instead), for the run and
# for --help.
REPLACED = {"lag": "give --lags", "hidden": "give --hiddens",
            "epochs": "give --updates", "chunk_epochs": "give --eval_every"}


# The streaming models' schedule (as streaming_echo): Adam at 1e-2.
DEFAULTS = {"learning_rate": 1e-2, "seeds": 8}


def preset():
  """The config before --config_json and the flags (also --help's)."""
  return ext.preset("streaming_budget", **DEFAULTS)


def streaming_budget():
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import streaming_budget as study
  if _COMBINE.value:
    ext.refuse_beside_combine(_LAGS, _HIDDENS, _RECIPES, _UPDATES,
                              _EVAL_EVERY, _SEQUENCES)
    loaded = study.load_runs(list(_COMBINE.value))  # checked before writing
    study.combine(loaded, common.resolve_workdir(study.NAME))
    return
  config = ext.resolve(study.NAME, REPLACED, **DEFAULTS)
  lags = list_flags.int_list("lags", _LAGS.value, minimum=1)
  hiddens = list_flags.int_list("hiddens", _HIDDENS.value, minimum=1)
  if max(lags) >= config.length:
    raise config_lib.ConfigError(
        f"lags={','.join(_LAGS.value)} must be in [1, length={config.length})")
  recipes = list_flags.name_list("recipes", _RECIPES.value, study.RECIPES)
  for name, value in (("updates", _UPDATES.value),
                      ("eval_every", _EVAL_EVERY.value),
                      ("sequences_per_update", _SEQUENCES.value)):
    if value < 1:
      raise config_lib.ConfigError(f"{name}={value} must be >= 1")
  if _UPDATES.value % _EVAL_EVERY.value:
    raise config_lib.ConfigError(
        f"updates={_UPDATES.value} must be a multiple of "
        f"eval_every={_EVAL_EVERY.value}")
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            lags=lags, hiddens=hiddens, recipes=recipes,
            updates=_UPDATES.value, eval_every=_EVAL_EVERY.value,
            sequences_per_update=_SEQUENCES.value)


def main():
  common.run_main(streaming_budget, preset, REPLACED)


if __name__ == "__main__":
  main()
