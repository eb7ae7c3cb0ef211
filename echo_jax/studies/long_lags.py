"""How far back a recurrent net echoes: the streaming echo at long lags.

Each (model, recipe, hidden) trains all its lags in one program for up to
`updates` Adam updates, scored on the test sequences every `eval_every`
updates (`streaming_budget.run_scored`: resumable); the budget to 99% is
the first scored point whose mean over seeds reaches 99%. Models
(`tasks.long_lags`): the tutorial's LSTM at `hidden` units, and a GRU, a
linear recurrent unit and one layer of causal attention at the width whose
parameter count matches that LSTM's. Beside them, the hand-set shift
register that echoes each lag exactly, scored by the same evaluator.

A recipe is a set of ingredients (`Recipe`), each either the tutorial's
setting or the one `CHANGED` names. `full` has all but every_lag changed
(with the chain init the per-lag readouts hurt, measured); `long` is full
at Adam 1e-3 (at 3e-3, 128 units past lag 11 climbed, then diverged);
`span` is long with the chain spanning each model's lag
(`tasks.long_lags.span_chain`: at 256 units the chain's 36 slots of 7
learnt lag 17 slowly);
`<base>-<ingredient>` / `<base>+<ingredient>` (base tutorial, full, long
or span; several may follow, e.g. `span+decay-clip`) sets an ingredient back
to the tutorial's or to the changed one:
  every_lag  a readout per lag 1..L, each supervised, scored on lag L: the
             L - 1 intermediate slots of the delay line get targets of
             their own (after Trinh et al. 2018's auxiliary losses).
  batch      64 sequences per update instead of 16: less noisy gradients.
  learning_rate  3e-3 instead of 1e-2, with
  clip       the gradients clipped to global norm 1 (the settings that
             reproduce Hochreiter & Schmidhuber 1997's long-lag runs).
  init       the chain (delay-line) initialisation (`models.chain_lstm_*`)
             instead of Keras'.
  length     sequences of 50 instead of 25: at lag 20, 30 targets each, not 5.
  decay      Keras' time decay, lr / (1 + t / 1000) at update t: at lags 19
             and 20 under span, seeds found the line by ~1500 updates, then
             drifted off it or climbed back to chance at the constant rate.
"""

import dataclasses
import os
import re
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import train as train_lib
from echo_jax.report import long_lag_plots
from echo_jax.report import records
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.studies import extensions as ext
from echo_jax.studies import runs
from echo_jax.studies import streaming_budget
from echo_jax.tasks import long_lags

NAME = "long_lags"
LEVEL = 0.99


@dataclasses.dataclass(frozen=True)
class Recipe:
  every_lag: bool = False
  batch: int = 16             # sequences per update
  learning_rate: float = 1e-2
  clip: float | None = None   # global gradient norm
  init: str = "keras"         # the LSTM's: keras, chain or span
  length: int = 25            # training and test sequences
  decay: bool = False         # the learning rate's (core.keras_adam)


TUTORIAL = Recipe()
CHANGED = Recipe(every_lag=True, batch=64, learning_rate=3e-3, clip=1.0,
                 init="chain", length=50, decay=True)
FULL = dataclasses.replace(CHANGED, every_lag=False, decay=False)
LONG = dataclasses.replace(FULL, learning_rate=1e-3)
SPAN = dataclasses.replace(LONG, init="span")
BASES = {"tutorial": TUTORIAL, "full": FULL, "long": LONG, "span": SPAN}
INGREDIENTS = tuple(f.name for f in dataclasses.fields(Recipe))


def recipe(name: str) -> Recipe:
  """A base (`BASES`) then any number of `-<ingredient>` / `+<ingredient>`,
  each setting that ingredient to the tutorial's / the changed value (it
  must differ from the recipe's so far): `span+decay-clip` is span with
  decay, without clipping. ConfigError otherwise."""
  base, *steps = re.split(r"(?=[+-])", name)
  if base not in BASES or any(s[1:] not in INGREDIENTS for s in steps):
    raise config_lib.ConfigError(
        f"recipes: {name!r} is not {', '.join(BASES)} or <base><-|+>"
        f"<ingredient>... (ingredients: {', '.join(INGREDIENTS)})")
  made = BASES[base]
  for i, (sign, ingredient) in enumerate((s[0], s[1:]) for s in steps):
    value = getattr(TUTORIAL if sign == "-" else CHANGED, ingredient)
    if getattr(made, ingredient) == value:
      raise config_lib.ConfigError(
          f"recipes: {name!r} changes nothing ({base}{''.join(steps[:i])} "
          f"already has {ingredient} {'off' if sign == '-' else 'on'})")
    made = dataclasses.replace(made, **{ingredient: value})
  return made


def make_task(config: config_lib.EchoConfig, model: str, hidden: int,
              recipe_name: str, lags: Sequence[int]):
  """The task of one (model, recipe, hidden): an LSTM of `hidden` units, or
  another model at the width matching that LSTM's parameter count."""
  r = recipe(recipe_name)
  readouts = max(lags) if r.every_lag else 1
  span = model == "lstm" and r.init == "span"  # the chain, then stretched
  config = config_lib.validate(config.replace(
      experiment=f"{NAME}_{model}_h{hidden}_{recipe_name}",
      learning_rate=r.learning_rate, length=r.length,
      optimizer="keras_adam_decay" if r.decay else "keras_adam",
      init=("chain" if span else r.init) if model == "lstm"
      else "keras"))
  width = hidden
  if model != "lstm":
    target = long_lags.count_params(long_lags.make_model(
        "lstm", hidden, config.n_unique, readouts, r.length))
    width = long_lags.matched_width(model, target, config.n_unique, readouts,
                                    r.length)
  return long_lags.long_lag_task(
      config, model, width, tuple(lags), readouts, r.batch, r.clip,
      name=f"{model} hidden {hidden} {recipe_name}", span=span)


def accuracy_at(sums, lags: Sequence[int], readouts: int, seeds: int
                ) -> np.ndarray:
  """(lags, seeds) accuracy of each model on its lag's head."""
  heads = [long_lags.scored_readout(l, readouts) for l in lags]
  pick = lambda x_M: np.stack([x_M[i * seeds:(i + 1) * seeds, ..., h]
                               for i, h in enumerate(heads)])
  correct, weight = (pick(np.asarray(x, np.float64)) for x in sums)
  axes = tuple(range(2, correct.ndim))
  return correct.sum(axes) / weight.sum(axes)


def rows_of(task, output, scores: dict[int, Any], hidden: int,
            recipe_name: str) -> list[dict[str, Any]]:
  """One row per lag: accuracy at the end, its curve, the updates to LEVEL,
  and at the end the accuracy per position and per head."""
  settings, config, lags = task.settings, task.config, task.variants
  seeds, readouts = config.seeds, settings["readouts"]
  updates = list(scores)
  per_point = [accuracy_at(scores[u], lags, readouts, seeds) for u in updates]
  correct, weight = (np.asarray(x, np.float64)
                     for x in scores[updates[-1]])  # (M, 1, T, R)
  params = long_lags.count_params(long_lags.make_model(
      settings["model"], settings["width"], config.n_unique, readouts,
      config.length))
  rows = []
  for i, lag in enumerate(lags):
    models_ = slice(i * seeds, (i + 1) * seeds)
    head = long_lags.scored_readout(lag, readouts)
    curve = [records.summarise(point[i]) for point in per_point]
    reached = next((u for u, c in zip(updates, curve) if c["mean"] >= LEVEL),
                   None)
    by_t = correct[models_, 0, :, head].sum(0) / np.maximum(
        weight[models_, 0, :, head].sum(0), 1)
    by_head = correct[models_].sum((0, 1, 2)) / np.maximum(
        weight[models_].sum((0, 1, 2)), 1)
    final = curve[-1]
    rows.append({
        "model": settings["model"], "recipe": recipe_name,
        "hidden": settings["width"], "lstm_hidden_matched": hidden,
        "params": params, "lag": lag,
        "accuracy": final["mean"], "accuracy_ci95": final["ci95"],
        "accuracy_per_seed": final["per_seed"], "updates_to_99": reached,
        "seeds": seeds, "sequence_length": config.length,
        "sequences_per_update": settings["sequences_per_update"],
        "updates": updates, "curve": [c["mean"] for c in curve],
        "final_per_position": [float(a) if t >= lag else None
                               for t, a in enumerate(by_t)],
        "final_per_readout": [float(a) for a in by_head[:lag]]
                             if readouts > 1 else None,
        "train_seconds": output.timing["train_seconds"]})
  return rows


def hand_set_rows(config: config_lib.EchoConfig, lags: Sequence[int],
                  length: int) -> list[dict[str, Any]]:
  """The shift register's rows: its units and its accuracy on the study's
  test sequences of `length`."""
  keys = train_lib.test_keys(config.seed, config.eval_sequences)
  test = data.TestSet(jnp.asarray(keys), length, config.n_unique)
  rows = []
  for lag in lags:
    correct, weight = long_lags.shift_register_evaluate(
        lag, config.n_unique)(test).sums
    accuracy = float(jnp.sum(correct) / jnp.sum(weight))
    rows.append({
        "model": "shift_register", "recipe": "hand-set",
        "hidden": long_lags.shift_register_units(lag), "params": None,
        "lag": lag, "accuracy": accuracy,
        "accuracy_ci95": [accuracy, accuracy], "updates_to_99": 0,
        "seeds": 1, "sequence_length": length})
  return rows


PRODUCTS = 50  # matmuls in one timed program, one after another


def matmul_rate(models: int, rows: int, inner: int, outer: int) -> float:
  """FLOP/s of the float32 matmul (rows, inner) @ (inner, outer), one per
  model as vmap makes them, the models split over the devices as training
  splits them: PRODUCTS of them chained inside one program, as a scan's
  steps run them (dispatched one at a time, small shapes would read slow
  by the per-call overhead); the median of 5 windows of at least 0.1 s."""
  mesh = parallel.seed_mesh(models)
  models = parallel.padded_models(models, mesh)
  split = parallel.seed_sharding(mesh)
  a = jax.device_put(jnp.ones((models, rows, inner), jnp.float32), split)
  b = jax.device_put(jnp.ones((models, inner, outer), jnp.float32), split)

  def chain(a_RxI, b_IxO):
    # Each product scales the next one's input: none can be hoisted.
    step = lambda _, s: 1.0 + 1e-30 * jnp.sum((s * a_RxI) @ b_IxO)
    return jax.lax.fori_loop(0, PRODUCTS, step, jnp.float32(1))

  products = parallel.per_device(jax.vmap(chain), mesh,
                                 (split.spec, split.spec))
  products(a, b).block_until_ready()  # compiled once
  rates = []
  for _ in range(5):
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < 0.1:
      products(a, b).block_until_ready()
      calls += 1
    rates.append(calls * PRODUCTS * 2.0 * models * rows * inner * outer
                 / (time.perf_counter() - start))
  return float(np.median(rates))


def efficiency(task, output) -> dict[str, float]:
  """How near the LSTM's training runs to the matmuls it must do: the time
  those matmuls take at the float32 rate measured at their shapes (the
  recurrent kernel per step, the heads over the whole batch; the backward
  pass as twice the forward) against the measured training time."""
  s, config = task.settings, task.config
  models, batch, width = task.num_models, s["sequences_per_update"], s["width"]
  length, heads = config.length, s["readouts"] * config.n_unique
  flops = seconds = 0.0
  for rows, inner, outer, times in ((batch, width, 4 * width, length),
                                    (batch * length, width, heads, 1)):
    work = 3 * times * 2.0 * models * rows * inner * outer
    flops += work
    seconds += work / matmul_rate(models, rows, inner, outer)
  done = config.epochs - output.timing["resumed_from_epoch"]
  trained = output.timing["train_seconds_this_process"] / done
  return {"train_flops_per_second": flops / trained,
          "matmul_seconds_per_update": seconds,
          "train_seconds_per_update": trained,
          "fraction_of_matmul_rate": seconds / trained}


def run(config: config_lib.EchoConfig, workdir: str,
        options: runs.RunOptions = runs.RunOptions(),
        models: Sequence[str] = ("lstm",),
        recipes: Sequence[str] = ("tutorial", "full"),
        hiddens: Sequence[int] = (64,), lags: Sequence[int] = range(1, 11),
        updates: int = 2000, eval_every: int = 250) -> dict[str, Any]:
  """Trains each (model, recipe, hidden) over all lags; writes
  long_lags.json and the figures."""
  settings = {"models": list(models), "recipes": list(recipes),
              "hiddens": list(hiddens), "lags": list(lags),
              "updates": updates, "eval_every": eval_every}
  ext.claim_study(workdir, NAME, config, **settings)
  rows, rates = [], []
  for model in models:
    for recipe_name in recipes:
      for hidden in hiddens:
        task = make_task(config.replace(epochs=updates), model, hidden,
                         recipe_name, lags)
        output, scores = streaming_budget.run_scored(
            task, ext.run_dir(workdir, NAME, task.name),
            options._replace(chunk_epochs=eval_every))
        rows += rows_of(task, output, scores, hidden, recipe_name)
        if model == "lstm" and hidden >= 128 and output.timing[
            "train_seconds_this_process"] > 0:
          rate = efficiency(task, output)
          rates.append({"task": task.name, **rate})
          print(f"{task.name}: training at "
                f"{rate['train_flops_per_second'] / 1e9:.1f} GFLOP/s, "
                f"{100 * rate['fraction_of_matmul_rate']:.0f}% of the "
                "float32 matmul rate at its shapes "
                f"({rate['train_seconds_per_update']:.3f} s an update; its "
                f"matmuls alone {rate['matmul_seconds_per_update']:.3f} s)")
  rows += hand_set_rows(config, lags,
                        max(recipe(r).length for r in recipes))
  return write(workdir, config, rows, **settings, efficiency=rates)


def write(workdir: str, config: config_lib.EchoConfig, rows,
          **extra: Any) -> dict[str, Any]:
  """long_lags.json, the printed table and (process 0) the figures."""
  rows = sorted(rows, key=lambda r: (r["lag"], r["model"], r["recipe"],
                                     r["hidden"], r["sequence_length"]))
  smallest = smallest_width(rows)
  record = {"experiment": NAME, "config": config.to_dict(), **extra,
            "rows": rows, "smallest_width": smallest,
            "versions": files.versions()}
  path = os.path.join(workdir, f"{NAME}.json")
  files.write_json_atomic(path, record)
  print("accuracy at the end [95% CI], updates to 99%:")
  print(records.format_table(*table(rows)))
  print(f"wrote {path}")
  if parallel.is_writer():
    long_lag_plots.updates_vs_lag(os.path.join(workdir, f"{NAME}.png"),
                                  rows, LEVEL)
    long_lag_plots.width_vs_lag(os.path.join(workdir, f"{NAME}_width.png"),
                                smallest, rows)
  return record


def load_runs(sources: Sequence[str]) -> dict[str, Any]:
  """The results of earlier runs to `combine` (e.g. costlier points run on
  their own). A trained row held twice is the one of the run with more
  updates (a point rerun with a larger budget); ConfigError (one line) if a
  source holds none, or two hold the same row at the same budget. Each
  hand-set row is kept once."""
  loaded, kept = ext.read_records(NAME, sources), {}
  for source, record in zip(sources, loaded):
    budget = record.get("updates")
    for row in record["rows"]:
      key = (row["model"], row["recipe"], row["hidden"], row["lag"],
             row["sequence_length"])
      if key in kept and row["model"] == "shift_register":
        continue  # the same in every run
      if key in kept and kept[key][0] == budget:
        raise config_lib.ConfigError(
            f"combine: two runs hold {row['model']} {row['hidden']}, "
            f"{row['recipe']}, lag {row['lag']} after {budget} updates")
      if key not in kept or kept[key][0] < budget:
        kept[key] = (budget, {**row, "source": source})
  return {"sources": list(sources), "records": loaded,
          "rows": [row for _, row in kept.values()]}


def combine(loaded: dict[str, Any], workdir: str) -> dict[str, Any]:
  """long_lags.json and its figures in `workdir` from `load_runs`' results;
  trains nothing."""
  runs_ = zip(loaded["sources"], loaded["records"])
  return write(workdir, config_lib.from_dict(loaded["records"][0]["config"]),
               loaded["rows"], combined_from=[
                   {"workdir": w, **{k: r[k] for k in (
                       "models", "recipes", "hiddens", "lags", "updates",
                       "eval_every", "efficiency")}} for w, r in runs_])


def smallest_width(rows) -> dict[str, dict[str, int | None]]:
  """Per LSTM recipe trained at several widths: per lag, the smallest width
  whose mean reaches LEVEL (None: none of them did)."""
  lstm = [r for r in rows if r["model"] == "lstm"]
  out = {}
  for name in sorted({r["recipe"] for r in lstm}):
    mine = [r for r in lstm if r["recipe"] == name]
    out[name] = {str(lag): min((r["hidden"] for r in mine if r["lag"] == lag
                                and r["accuracy"] >= LEVEL), default=None)
                 for lag in sorted({r["lag"] for r in mine})}
  return out


def table(rows) -> tuple[list[str], list[list[str]]]:
  """A row per lag, a column per `long_lag_plots.series`: the accuracy at the
  end with its interval and the updates to 99% (the register: its units)."""
  series = long_lag_plots.series
  columns = sorted({series(r) for r in rows}, key=lambda c: (
      c == "hand-set register", c))
  cells = {(r["lag"], series(r)): r for r in rows}
  body = []
  for lag in sorted({r["lag"] for r in rows}):
    line = [str(lag)]
    for column in columns:
      row = cells.get((lag, column))
      if row is None:
        line.append("-")
      elif row["model"] == "shift_register":
        line.append(f"{records.percent(row['accuracy'])}, "
                    f"{row['hidden']} units")
      else:
        reached = row["updates_to_99"]
        line.append(records.ci_cell(
            {"mean": row["accuracy"], "ci95": row["accuracy_ci95"],
             "per_seed": row["accuracy_per_seed"]})
            + (", not reached" if reached is None else f", {reached}"))
    body.append(line)
  return ["lag"] + columns, body
