r"""A/B speed of two checkouts of echo_jax, measured the same way, alternated.

  python3 -m benchmarks.ab --a=OLD_CHECKOUT --b=NEW_CHECKOUT \
      --measures=reproduce_cold,reproduce_warm,one_model,models_64 \
      --rounds=3 --out=ab.json

Each measure runs each checkout's own binaries in a subprocess (a fresh
workdir, and a fresh or a filled compilation cache), a then b, `--rounds`
times; the table gives each side's median and b / a. Alternating in one
session keeps a machine whose speed drifts from biasing one side.

Measures: reproduce_cold and reproduce_warm (process wall of
`experiments.reproduce`, cache empty / filled by the cold run);
one_model and models_64 (the training seconds echo_lag.json records for
--seeds=1 and --seeds=64 at the tutorial's settings); sweep (process wall
of the default `experiments.sweep`, ~11 minutes a run on 2 cores).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_A = flags.DEFINE_string("a", None, "Checkout A (the baseline).")
_B = flags.DEFINE_string("b", None, "Checkout B.")
_MEASURES = flags.DEFINE_list(
    "measures", ["reproduce_cold", "reproduce_warm", "one_model",
                 "models_64"], "What to time (see the module docstring).")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternations of a and b.")
_OUT = flags.DEFINE_string("out", None, "Where to write the results (JSON).")


def _binary(checkout: str, name: str, *args: str) -> float:
  """Process wall seconds of `python -m experiments.<name>` in `checkout`;
  raises on failure."""
  start = time.perf_counter()
  subprocess.run([sys.executable, "-m", f"experiments.{name}", *args],
                 cwd=checkout, check=True, capture_output=True, timeout=3600)
  return time.perf_counter() - start


def measure(checkout: str, what: str) -> float:
  """One measurement of `what` in `checkout`, in seconds."""
  tmp = tempfile.mkdtemp()
  try:
    cache = f"--compilation_cache={tmp}/cache"
    if what in ("reproduce_cold", "reproduce_warm"):
      cold = _binary(checkout, "reproduce", f"--workdir={tmp}/cold", cache)
      if what == "reproduce_cold":
        return cold
      return _binary(checkout, "reproduce", f"--workdir={tmp}/warm", cache)
    if what in ("one_model", "models_64"):
      seeds = 1 if what == "one_model" else 64
      _binary(checkout, "echo_lag", f"--seeds={seeds}", f"--workdir={tmp}/w",
              cache)
      with open(os.path.join(tmp, "w", "echo_lag.json")) as f:
        return json.load(f)["train_seconds"]
    if what == "sweep":
      return _binary(checkout, "sweep", f"--workdir={tmp}/w", cache)
    raise ValueError(f"unknown measure {what!r}")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
  del argv
  checkouts = {"a": os.path.abspath(_A.value), "b": os.path.abspath(_B.value)}
  times = {what: {"a": [], "b": []} for what in _MEASURES.value}
  for round_ in range(_ROUNDS.value):
    for what in _MEASURES.value:
      for side, checkout in checkouts.items():
        seconds = measure(checkout, what)
        times[what][side].append(seconds)
        print(f"round {round_ + 1} {what} {side}: {seconds:.2f} s",
              flush=True)
  print("| measure | a median s | b median s | b / a | a runs | b runs |")
  print("|---|---|---|---|---|---|")
  for what, sides in times.items():
    a, b = (statistics.median(sides[s]) for s in "ab")
    print(f"| {what} | {a:.2f} | {b:.2f} | {b / a:.3f} | "
          + " / ".join(f"{t:.2f}" for t in sides["a"]) + " | "
          + " / ".join(f"{t:.2f}" for t in sides["b"]) + " |")
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump({"checkouts": checkouts, "seconds": times}, f, indent=1)


if __name__ == "__main__":
  flags.mark_flags_as_required(["a", "b"])
  app.run(main)
