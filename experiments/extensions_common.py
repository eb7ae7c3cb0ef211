"""What the extension binaries share beyond `common`: their configs (the
windowed echo with extension defaults, then the shared flags), their runs
(each in a resumable run folder), result rows as table cells, and writing
the result file and plot.
"""

import os
import re
from typing import Any

from experiments import common  # first: sets up host devices

from echo_jax import config as config_lib
from echo_jax import results

# Every extension answer is a mean over at least 8 seeds on 1000 fresh
# sequences (issue 4); flags may lower these for a quick look.
EXTENSION_DEFAULTS = {"seeds": 8, "eval_sequences": 1000, "stateful": False}


def resolve(name: str, **defaults: Any) -> config_lib.EchoConfig:
  """The windowed echo preset, the extension's defaults, then --config_json
  or the flags given; validated."""
  if common.flags.FLAGS["config_json"].value:
    base = common.load_config_json(common.flags.FLAGS["config_json"].value)
  else:
    base = config_lib.preset("echo_lag").replace(
        **{**EXTENSION_DEFAULTS, **defaults})
  config = base.replace(experiment=name, **common.flag_overrides())
  return config_lib.validate(config)


def run_dir(workdir: str, binary: str, part: str) -> str:
  """<workdir>/<binary>/<part>: one run folder per trained program
  (config.json, checkpoints/, metrics.jsonl, learning_curves.png)."""
  return os.path.join(workdir, binary, re.sub(r"[^A-Za-z0-9_.=-]+", "_", part))


def run_task(workdir: str, binary: str, task, checkpoint: bool = True):
  """Runs (or, rerun with the same --workdir, resumes) a `multiseed.Task`
  in its run folder; returns (rows, trained)."""
  return common.run_task_in(task, run_dir(workdir, binary, task.name),
                            checkpoint)


def run_experiment(workdir: str, binary: str, part: str,
                   config: config_lib.EchoConfig):
  """Runs (or resumes) a tutorial-style experiment in its run folder;
  returns (record, trained)."""
  return common.run_in(config, run_dir(workdir, binary, part))


def ci_cell(summary: dict[str, Any]) -> str:
  low, high = summary["ci95"]
  return (f"{common.percent(summary['mean'])} "
          f"[{common.percent(low)}, {common.percent(high)}]")


def seeds_of(row: dict[str, Any]) -> int:
  return len(row["eval_accuracy"]["per_seed"])


def finish(name: str, workdir: str, record: dict[str, Any],
           header, table_rows) -> str:
  """Writes <name>.json, prints the table; returns the JSON path."""
  path = os.path.join(workdir, f"{name}.json")
  results.write_json_atomic(path, record)
  print(common.format_table(header, table_rows))
  print(f"wrote {path}")
  return path


def trailing_mean(values, window: int = 50):
  """(epochs, mean of the last `window` values) for a per-epoch curve; one
  epoch's accuracy over a few samples is too noisy to plot raw."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  values = np.asarray(values, np.float64)
  window = max(1, min(window, len(values)))
  smooth = np.convolve(values, np.ones(window) / window, mode="valid")
  return np.arange(window, len(values) + 1), smooth
