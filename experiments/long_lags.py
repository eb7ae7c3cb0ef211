r"""How far back a recurrent net echoes: the streaming echo (one integer per
step, output the one `lag` steps back) at lags up to 20. Per (model, recipe,
hidden), all lags train in one program for up to --updates Adam updates,
scored every --eval_every updates on fresh test sequences: the tutorial's
LSTM under the tutorial's recipe, under `full` (64 sequences per update,
Adam at 3e-3 with gradient clipping, a delay-line initialisation, sequences
of 50), under `long` (full at Adam 1e-3, for lags past 11), under
`<base>-<ingredient>` / `+<ingredient>` (one ingredient set back or
changed, e.g. full+every_lag: a readout per lag),
and a GRU, a linear recurrent unit and one causal attention layer at the
LSTM's parameter count; beside them a hand-set shift
register that echoes every lag exactly. Resumable: rerun the same command.
--quick runs a small version in about 2 minutes on 2 CPU cores.

  python -m experiments.long_lags [--models=lstm --recipes=tutorial,full \
      --hiddens=64 --lags=1,...,10 --updates=2000 --eval_every=250 \
      --seeds=8 --workdir=DIR]

Writes long_lags.json (one row per model, recipe, hidden and lag),
long_lags.png (updates to 99% against the lag) and long_lags_width.png
(the smallest LSTM width reaching 99% against the lag, with the hand-set
register's units). With --combine=DIR1,DIR2,... it trains nothing and
merges those runs' results into one table and figures.
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

from echo_jax.core import config as config_lib

_MODELS = flags.DEFINE_list("models", ["lstm"],
                            "Models: lstm, gru, lru, attention.")
_RECIPES = flags.DEFINE_list(
    "recipes", ["tutorial", "full"],
    "Recipes: tutorial, full, long (full at Adam 1e-3), span (long, the "
    "chain init spanning the lag), or "
    "<base>-<ingredient> (set back to the tutorial's) / +<ingredient> "
    "(changed), several in turn (span+decay-clip); ingredients: every_lag, "
    "batch, learning_rate, clip, init, length, decay.")
_HIDDENS = flags.DEFINE_list(
    "hiddens", ["64"], "LSTM sizes (other models: the width matching the "
    "LSTM's parameter count).")
_LAGS = flags.DEFINE_list("lags", [str(l) for l in range(1, 11)],
                          "Lags to echo (each >= 1, below every recipe's "
                          "sequence length).")
_UPDATES = flags.DEFINE_integer("updates", 2000, "Adam updates per model.")
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", 250, "Updates between scorings on the test sequences.")
_QUICK = flags.DEFINE_boolean(
    "quick", False, "A small version: lags 1-3, hidden 16, every model, "
    "recipes tutorial and full, 300 updates, 2 seeds, 200 test sequences "
    "(flags given still apply).")

_COMBINE = flags.DEFINE_list(
    "combine", [],
    "Instead of training: workdirs of earlier runs whose results are merged "
    "into one table and figures in --workdir (a point two runs hold: the "
    "row of the one with more updates).")

# The shared flags it refuses (-> what to give instead): the recipe sets
# the schedule, the sequence length and the initialisation.
REPLACED = {
    "lag": "give --lags", "hidden": "give --hiddens",
    "epochs": "give --updates", "chunk_epochs": "give --eval_every",
    **{name: "the recipe sets it (--recipes)" for name in (
        "learning_rate", "length", "batch_size", "init", "optimizer")},
    **{name: "the streaming echo has no windows" for name in (
        "context", "framing", "stateful")},
    **{name: "long_lags' models are fixed" for name in (
        "recurrent_activation", "input_encoding", "lstm_backend")},
}
QUICK = {"lags": "1,2,3", "hiddens": "16", "models": "lstm,gru,lru,attention",
         "recipes": "tutorial,full", "updates": 300, "eval_every": 100,
         "seeds": 2, "eval_sequences": 200}


def value(flag):
  """A flag's value; with --quick, QUICK's unless the flag was given."""
  if _QUICK.value and not flag.present:
    quick = QUICK[flag.name]
    return quick.split(",") if isinstance(flag.value, list) else quick
  return flag.value


def long_lags():
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import long_lags as study
  from echo_jax.tasks import long_lags as models
  if _COMBINE.value:
    ext.refuse_beside_combine(_MODELS, _RECIPES, _HIDDENS, _LAGS, _UPDATES,
                              _EVAL_EVERY, _QUICK)
    loaded = study.load_runs(list(_COMBINE.value))  # checked before writing
    study.combine(loaded, common.resolve_workdir(study.NAME))
    return
  defaults = ({k: QUICK[k] for k in ("seeds", "eval_sequences")}
              if _QUICK.value else {})
  config = ext.resolve(study.NAME, REPLACED, windowless=True, **defaults)
  if config.n_unique > 2**models.BITS:
    raise config_lib.ConfigError(
        f"n_unique={config.n_unique} must be in [2, {2**models.BITS}] (the "
        f"hand-set register's {models.BITS}-bit code)")
  names = list_flags.name_list("models", value(_MODELS), models.MODELS)
  recipes = value(_RECIPES)
  if not recipes or len(set(recipes)) < len(recipes):
    raise config_lib.ConfigError(
        f"recipes={','.join(recipes)} must be distinct and not empty")
  lengths = {r: study.recipe(r).length for r in recipes}  # names checked
  lags = list_flags.int_list("lags", value(_LAGS), minimum=1)
  hiddens = list_flags.int_list("hiddens", value(_HIDDENS), minimum=1)
  shortest = min(lengths.values())
  if max(lags) >= shortest:
    raise config_lib.ConfigError(
        f"lags={','.join(map(str, lags))} must be in [1, {shortest}) (the "
        f"sequence length of recipe {min(lengths, key=lengths.get)})")
  updates, eval_every = value(_UPDATES), value(_EVAL_EVERY)
  for name, number in (("updates", updates), ("eval_every", eval_every)):
    if number < 1:
      raise config_lib.ConfigError(f"{name}={number} must be >= 1")
  if updates % eval_every:
    raise config_lib.ConfigError(
        f"updates={updates} must be a multiple of eval_every={eval_every}")
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            models=names, recipes=recipes, hiddens=hiddens, lags=lags,
            updates=updates, eval_every=eval_every)


def main():
  common.run_main(long_lags, lambda: ext.preset("long_lags"), REPLACED)


if __name__ == "__main__":
  main()
