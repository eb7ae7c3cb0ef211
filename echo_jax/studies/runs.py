"""Runs in their run folders (checkpoints, metrics.jsonl, learning curves,
optional TensorBoard): the settings every binary shares (`RunOptions`), and
one of the tutorial's experiments with its record and table (`run_single`).
"""

import contextlib
import os
from typing import Any, NamedTuple

from echo_jax.core import config as config_lib
from echo_jax.report import plots
from echo_jax.report import records
from echo_jax.runtime import files
from echo_jax.runtime import parallel
from echo_jax.runtime import runner
from echo_jax.tasks import task as task_lib


class RunOptions(NamedTuple):
  chunk_epochs: int | None = None  # default: runner.DEFAULT_CHUNK_EPOCHS
  tensorboard: bool = False        # summaries into <run folder>/tensorboard


def summaries(run_dir: str, options: RunOptions,
              also: runner.ChunkCallback | None = None):
  """A context yielding the on_chunk callback of a run in `run_dir`: `also`
  (if any) and, with options.tensorboard, TensorBoard summaries into its
  tensorboard/ subfolder (process 0's)."""
  if not (options.tensorboard and parallel.is_writer()):
    return contextlib.nullcontext(also)
  from echo_jax.report import tensorboard  # pylint: disable=g-import-not-at-top
  return tensorboard.writer(os.path.join(run_dir, "tensorboard"), also)


def compile_tutorial(config: config_lib.EchoConfig,
                     options: RunOptions = RunOptions()) -> runner.Compiled:
  return runner.compile_task(task_lib.tutorial_task(config),
                             chunk_epochs=options.chunk_epochs)


def run_tutorial_in(config: config_lib.EchoConfig, run_dir: str,
                    options: RunOptions = RunOptions(),
                    compiled: runner.Compiled | None = None):
  """Runs (or resumes) one tutorial experiment in its run folder `run_dir`
  (config, checkpoints, metrics.jsonl, learning curves, optional
  TensorBoard), with its programs `compiled` by `compile_tutorial` (here if
  None); returns (record, trained)."""
  with summaries(run_dir, options) as on_chunk:
    output = runner.run(compiled or compile_tutorial(config, options),
                        run_dir=run_dir, on_chunk=on_chunk)
  record, trained = records.tutorial_record(output), output.trained()
  plots.learning_curves(
      {"": (trained.loss_E, trained.accuracy_E)},
      os.path.join(run_dir, "learning_curves.png"),
      f"{config.experiment}: lag {config.lag}, context {config.context}, "
      f"hidden {config.hidden}, "
      f"{'stateful' if config.stateful else 'stateless'}, "
      f"batch {config.batch_size}", chance=1.0 / config.n_unique)
  return record, trained


def run_and_write(config: config_lib.EchoConfig, workdir: str,
                  options: RunOptions = RunOptions(),
                  compiled: runner.Compiled | None = None) -> dict[str, Any]:
  """Runs (or resumes) one tutorial experiment with its run folder
  `<workdir>/<experiment>/` (see `run_tutorial_in`) and writes
  `<workdir>/<experiment>.json`."""
  record, _ = run_tutorial_in(config, os.path.join(workdir, config.experiment),
                              options, compiled)
  files.write_json_atomic(
      os.path.join(workdir, f"{config.experiment}.json"), record)
  return record


def run_single(config: config_lib.EchoConfig, workdir: str,
               options: RunOptions = RunOptions()) -> dict:
  """One experiment: run (or resume), write <experiment>.json, print the
  example and the table."""
  record = run_and_write(config, workdir, options)
  records.print_summary([record])
  print(f"wrote {os.path.join(workdir, f'{config.experiment}.json')}")
  return record
