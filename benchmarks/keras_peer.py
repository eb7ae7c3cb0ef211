"""The tutorial's own Keras code on Keras 3's JAX backend: the peer a user
who wants "the tutorial in JAX" can run without echo_jax
(requirements-keras.txt; never part of echo_jax).

The same layers, batch sizes, epochs and loop as the tutorial: a fresh
sequence per epoch, `fit(epochs=1, shuffle=False)`, the LSTM's state reset
after each epoch. Keras 3 keeps `reset_states()` on the layer only (the
tutorial calls it on the model) and takes a stateful batch size from
`Input(batch_shape=...)`; the LSTM's defaults are Keras 3's (sigmoid gates).

Each model trains in a subprocess of its own (this file run as a script,
KERAS_BACKEND=jax, one XLA CPU device as in a plain process), so Keras never
meets the importing process's JAX set-up. A model is scored as the tutorial
scores it: per fresh sequence, its states reset, `predict(X, batch_size=b)`,
argmax against the target.
"""

import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time

from absl import logging

EXPERIMENTS = ("echo_current", "echo_lag_no_context", "echo_lag")
_RESULT = "keras_peer result: "
# Epochs at the end of training whose mean loss the evidence quotes.
LAST_EPOCHS = 50


def available() -> bool:
  """Whether keras is importable (without importing it here)."""
  return importlib.util.find_spec("keras") is not None


def settings(config) -> dict:
  """The tutorial fields of an echo_jax config (`EchoConfig`)."""
  return {"n_unique": config.n_unique, "length": config.length,
          "lag": config.lag, "context": config.context,
          "hidden": config.hidden, "batch_size": config.batch_size,
          "epochs": config.epochs, "stateful": config.stateful}


def child_env() -> dict:
  """This process's environment for a Keras subprocess: the JAX backend and
  XLA_FLAGS without echo_jax's host-device count."""
  env = dict(os.environ, KERAS_BACKEND="jax")
  flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                 env.get("XLA_FLAGS", "")).strip()
  if flags:
    env["XLA_FLAGS"] = flags
  else:
    env.pop("XLA_FLAGS", None)
  return env


def run_model(spec: dict, seed: int = 0, eval_sequences: int = 100,
              timeout: float = 1800) -> dict:
  """Trains and scores one model of `spec` (see `settings`) in a fresh
  subprocess: train_seconds (the fit loop), seconds (fit loop and
  scoring), process_seconds (the subprocess's wall, Python and Keras start
  included), eval_accuracy, eval_accuracy_per_position, losses (per epoch)
  and versions."""
  job = dict(spec, seed=seed, eval_sequences=eval_sequences)
  start = time.perf_counter()
  result = subprocess.run(
      [sys.executable, "-P", os.path.abspath(__file__), json.dumps(job)],
      env=child_env(), capture_output=True, text=True, timeout=timeout,
      check=False)
  process_seconds = time.perf_counter() - start
  lines = [line for line in result.stdout.splitlines()
           if line.startswith(_RESULT)]
  if result.returncode or not lines:
    raise RuntimeError(f"keras peer failed ({result.returncode}): "
                       + result.stderr[-2000:])
  return dict(json.loads(lines[-1][len(_RESULT):]),
              process_seconds=process_seconds)


def train_and_evaluate(config, seed: int = 0, eval_sequences: int = 100
                       ) -> dict:
  """The torch peer's interface (benchmarks.benchmark.time_peer)."""
  return run_model(settings(config), seed, eval_sequences)


def summary(runs: list[dict]) -> dict:
  """Seconds per model (medians) and mean accuracy of `runs`."""
  return {
      "models": len(runs),
      "train_seconds": statistics.median(r["train_seconds"] for r in runs),
      "process_seconds": statistics.median(
          r["process_seconds"] for r in runs),
      "process_seconds_total": sum(r["process_seconds"] for r in runs),
      "eval_accuracy": statistics.mean(r["eval_accuracy"] for r in runs),
      "eval_accuracy_per_seed": [r["eval_accuracy"] for r in runs]}


def compare(seeds: int = 1, eval_sequences: int = 100,
            epochs: int | None = None) -> dict:
  """The three experiments (`seeds` models each, one after another) and
  the stateful pitfall: experiment 3 trained statelessly from the same seed
  (its per-epoch losses against the stateful run's) and the beginner's
  mistake with batch size 1. `epochs` (None: the tutorial's) shortens
  every run."""
  # pylint: disable-next=g-import-not-at-top
  from echo_jax.core import config as config_lib

  def spec(name, **changes):
    config = config_lib.preset(name).replace(**changes)
    return settings(config.replace(epochs=epochs) if epochs else config)

  if seeds < 1:
    raise ValueError(f"seeds={seeds} must be >= 1")
  out = {"seeds": seeds, "eval_sequences": eval_sequences}
  for name in EXPERIMENTS:
    runs = [run_model(spec(name), s, eval_sequences) for s in range(seeds)]
    out[name] = summary(runs)
    logging.info("keras peer %s: %s", name, out[name])
  stateful = runs[0]  # echo_lag, seed 0
  out["versions"] = stateful["versions"]
  stateless = run_model(spec("echo_lag", stateful=False), 0, eval_sequences)
  last = lambda run: statistics.mean(run["losses"][-LAST_EPOCHS:])
  batch1 = run_model(spec("echo_lag_no_context", batch_size=1), 0,
                     eval_sequences)
  out["stateful_pitfall"] = {
      "echo_lag_losses_identical": stateful["losses"] == stateless["losses"],
      "echo_lag_stateful_last_loss": last(stateful),
      "echo_lag_stateless_last_loss": last(stateless),
      "echo_lag_stateless_accuracy": stateless["eval_accuracy"],
      "echo_lag_stateless_process_seconds": stateless["process_seconds"],
      "batch1_accuracy": batch1["eval_accuracy"],
      "batch1_accuracy_per_position": batch1["eval_accuracy_per_position"],
      "batch1_process_seconds": batch1["process_seconds"]}
  logging.info("keras peer, stateful pitfall: %s", out["stateful_pitfall"])
  return out


def side_by_side(report: dict) -> tuple[list[str], list[list[str]]]:
  """docs/tutorial.md's table from a benchmark report with the Keras peer
  (and, where timed, the one_model section, the PyTorch port and the
  start-up): per experiment one model's training time (median over the
  seeds) and accuracy (mean), then the three experiments' total."""
  keras, torch = report["keras_peer"], report.get("peer")
  ours, start = report.get("one_model"), report.get("reproduce_default")
  rows = []
  for name in EXPERIMENTS:
    k = keras[name]
    rows.append([
        name, f"{k['train_seconds']:.2f} s, {k['process_seconds']:.1f} s; "
        f"{100 * k['eval_accuracy']:.2f}%",
        f"{torch[name]['train_seconds']:.2f} s; "
        f"{100 * torch[name]['eval_accuracy']:.2f}%" if torch else "-",
        f"{ours[name]['train_seconds']:.3f} s, "
        f"{ours[name]['compile_seconds']:.2f} s" if ours else "-"])
  total = sum(keras[name]["process_seconds_total"] for name in EXPERIMENTS)
  rows.append([
      f"all three, {keras['seeds']} seeds each",
      f"{total:.1f} s ({len(EXPERIMENTS) * keras['seeds']} processes)",
      f"{torch['all_three_seconds']:.1f} s" if torch else "-",
      f"{start['cold_seconds']:.1f} s cold, {start['warm_seconds']:.1f} s "
      "warm" if start else "-"])
  return (["one model", "Keras 3 (JAX backend): train, process; accuracy",
           "PyTorch port: train; accuracy", "echo_jax: train, compile"],
          rows)


def print_report(report: dict) -> None:
  """The side-by-side table and the stateful pitfall of a benchmark
  report with the Keras peer."""
  # pylint: disable-next=g-import-not-at-top
  from echo_jax.report import records
  keras = report["keras_peer"]
  v = keras["versions"]
  print(f"keras peer: the tutorial's code on Keras {v['keras']} "
        f"(backend {v['backend']}, jax {v['jax']}), "
        f"{keras['seeds']} model(s) per experiment, each scored on "
        f"{keras['eval_sequences']} sequences")
  print(records.format_table(*side_by_side(report)))
  pitfall = keras["stateful_pitfall"]
  positions = pitfall["batch1_accuracy_per_position"]
  print("stateful pitfall: echo_lag's stateful per-epoch losses "
        + ("are identical to" if pitfall["echo_lag_losses_identical"]
           else "differ from")
        + " the stateless run's (mean of the last "
        f"{LAST_EPOCHS} epochs {pitfall['echo_lag_stateful_last_loss']:.6g} "
        f"and {pitfall['echo_lag_stateless_last_loss']:.6g}; stateless "
        f"accuracy {100 * pitfall['echo_lag_stateless_accuracy']:.2f}%); "
        "beginner's mistake with batch size 1: "
        f"{100 * pitfall['batch1_accuracy']:.2f}% (positions 1-2 after a "
        f"reset: {positions[1]:.2f}, {positions[2]:.2f})")


def add_to_benchmark(report: dict, workdir: str, seeds: int,
                     eval_sequences: int = 100) -> None:
  """`compare` into the benchmark's report as "keras_peer", benchmark.json
  in `workdir` rewritten, its table printed."""
  # pylint: disable-next=g-import-not-at-top
  from echo_jax.runtime import files
  report["keras_peer"] = compare(seeds, eval_sequences)
  path = os.path.join(workdir, "benchmark.json")
  files.write_json_atomic(path, report)
  print_report(report)
  print(f"wrote {path}")


def tutorial_model(spec: dict) -> dict:
  """The child: the tutorial's code for `spec` (plus seed and
  eval_sequences); returns seconds, accuracy and per-epoch losses."""
  # pylint: disable=g-import-not-at-top
  import random
  import jax
  import keras
  import numpy as np

  n_unique, length = spec["n_unique"], spec["length"]
  lag, context, b = spec["lag"], spec["context"], spec["batch_size"]
  keras.utils.set_random_seed(spec["seed"])  # Python's random included

  def generate_data():
    sequence = [random.randint(0, n_unique - 1) for _ in range(length)]
    encoded = np.eye(n_unique, dtype="float32")[sequence]
    # Rows with a full window and a target: the tutorial's three framings.
    ends = range(lag + context - 1, length)
    x = np.stack([encoded[t - context + 1:t + 1] for t in ends])
    return x, encoded[[t - lag for t in ends]]

  inputs = (keras.Input(batch_shape=(b, context, n_unique))
            if spec["stateful"] else keras.Input(shape=(context, n_unique)))
  model = keras.Sequential([
      inputs, keras.layers.LSTM(spec["hidden"], stateful=spec["stateful"]),
      keras.layers.Dense(n_unique, activation="softmax")])
  model.compile(loss="categorical_crossentropy", optimizer="adam",
                metrics=["acc"])
  losses = []
  start = time.perf_counter()
  for _ in range(spec["epochs"]):
    x, y = generate_data()
    history = model.fit(x, y, epochs=1, batch_size=b, verbose=0,
                        shuffle=False)
    losses.append(history.history["loss"][0])
    if spec["stateful"]:
      model.layers[0].reset_states()
  train_seconds = time.perf_counter() - start
  correct = 0
  for _ in range(spec["eval_sequences"]):
    x, y = generate_data()
    yhat = model.predict(x, batch_size=b, verbose=0)
    correct = correct + (yhat.argmax(-1) == y.argmax(-1))
    if spec["stateful"]:
      model.layers[0].reset_states()
  per_position = correct / spec["eval_sequences"]
  return {"train_seconds": train_seconds,
          "seconds": time.perf_counter() - start,
          "eval_accuracy": float(per_position.mean()),
          "eval_accuracy_per_position": per_position.tolist(),
          "losses": losses,
          "versions": {"keras": keras.__version__, "jax": jax.__version__,
                       "backend": keras.backend.backend(),
                       "devices": len(jax.devices())}}


if __name__ == "__main__":
  print(_RESULT + json.dumps(tutorial_model(json.loads(sys.argv[1]))))
