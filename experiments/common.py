"""What every binary shares: its flags, flags -> config, running and writing.

Importing this module first exposes one XLA host device per CPU core (before
JAX initialises), so every binary uses all cores by default; set
ECHO_JAX_HOST_DEVICES=N to choose, 0 to leave XLA_FLAGS alone. It also keeps
OpenBLAS to one thread unless OPENBLAS_NUM_THREADS is set (see host_devices).
"""

# pylint: disable=g-import-not-at-top
from echo_jax import host_devices

host_devices.expose_host_devices()
host_devices.single_threaded_blas()

import contextlib
import datetime
import json
import os
import logging
import sys
import tempfile
from typing import Any, Callable, Sequence

from absl import app
from absl import flags

from echo_jax import config as config_lib

# Flags left unset (None) keep the experiment's preset value.
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Folder for results (default: a fresh runs/<name>-<time>).")
_CONFIG_JSON = flags.DEFINE_string(
    "config_json", None,
    "A saved config (the 'config' of a result JSON, or a plain config dict) "
    "to rerun; other flags given override it.")
_INT_FLAGS = {
    "seed": "Base random seed (model i uses fold_in(seed, i)).",
    "seeds": "Number of independently trained models (seeds).",
    "epochs": "Epochs; each is one fit over one fresh random sequence.",
    "hidden": "LSTM hidden size (memory units).",
    "batch_size": "Samples per Adam update.",
    "length": "Random sequence length.",
    "n_unique": "Number of distinct integers (classes).",
    "lag": "Echo the value this many steps before the window's last step.",
    "context": "Timesteps per sample (window length).",
    "eval_sequences": "Fresh random sequences to evaluate each model on.",
}
for _name, _help in _INT_FLAGS.items():
  flags.DEFINE_integer(_name, None, _help)
flags.DEFINE_boolean("stateful", None,
                     "Carry LSTM state across batches (Keras stateful=True).")
flags.DEFINE_string("init", None, "Initialisation: keras or flax.")
flags.DEFINE_string("recurrent_activation", None,
                    "Gate activation: sigmoid or hard_sigmoid (Keras 2).")
flags.DEFINE_string("framing", None, "window or no_context.")
flags.DEFINE_string("input_encoding", None,
                    "gather (ids index the kernel) or one_hot (matmul).")
flags.DEFINE_string("lstm_backend", None,
                    "fused (hand-written backward, default) or cell (the "
                    "Flax cell scanned by nn.RNN, autodiff).")
flags.DEFINE_string("optimizer", None,
                    "keras_adam (Adam as Keras computes it, the tutorial's; "
                    "default) or optax_adam (optax.adam: epsilon added after "
                    "the bias correction).")
flags.DEFINE_float("learning_rate", None, "Adam learning rate.")
_CHUNK_EPOCHS = flags.DEFINE_integer(
    "chunk_epochs", None,
    "Epochs per compiled chunk; the run is checkpointed (orbax) after each "
    "and a rerun with the same --workdir resumes. Default: 1000.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None,
    "Folder for JAX's persistent compilation cache, so reruns skip XLA "
    "compilation; '' disables it. Default: $ECHO_JAX_COMPILATION_CACHE, else "
    "<user cache dir>/echo_jax/jax_compilation_cache.")
_TENSORBOARD = flags.DEFINE_boolean(
    "tensorboard", False,
    "Write TensorBoard summaries of the training curves (needs the optional "
    "extra: pip install -r requirements-tensorboard.txt).")
_DEBUG_NANS = flags.DEFINE_boolean(
    "debug_nans", False, "Turn on jax_debug_nans (slow; finds the NaN op).")

CONFIG_FLAGS = tuple(_INT_FLAGS) + (
    "stateful", "init", "recurrent_activation", "framing", "input_encoding",
    "lstm_backend", "optimizer", "learning_rate")


def default_compilation_cache() -> str:
  if "ECHO_JAX_COMPILATION_CACHE" in os.environ:
    return os.environ["ECHO_JAX_COMPILATION_CACHE"]
  cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(cache_home, "echo_jax", "jax_compilation_cache")


def enable_compilation_cache(path: str) -> None:
  """Persist every compiled program (none is too small or too quick to be
  worth it: a cold echo run is mostly compilation)."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def fail(message: str, status: int = 2) -> None:
  """One line on stderr and a non-zero exit: 2 for bad input (how every
  invalid flag or config ends), 1 for a run that failed."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's parser, but a bad flag is one line and exit 2, not a usage dump."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0])
  if len(rest) > 1:
    fail(f"unexpected arguments: {' '.join(rest[1:])}")
  return rest


def int_list(name: str, values: Sequence[str], minimum: int | None = None
             ) -> tuple[int, ...]:
  """A list flag's integers; one-line ConfigError naming the flag if any is
  not an integer, or (with `minimum`) if the list is empty or one is below."""
  try:
    parsed = tuple(int(v) for v in values)
  except ValueError:
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be integers") from None
  if minimum is not None and (not parsed or min(parsed) < minimum):
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be integers >= {minimum}")
  return parsed


def flag_overrides() -> dict[str, Any]:
  return {name: flags.FLAGS[name].value for name in CONFIG_FLAGS
          if flags.FLAGS[name].value is not None}


def load_config_json(path: str) -> config_lib.EchoConfig:
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise config_lib.ConfigError(f"config_json={path!r} cannot be read: {e}")
  if isinstance(saved, dict) and isinstance(saved.get("config"), dict):
    saved = saved["config"]
  if not isinstance(saved, dict):
    raise config_lib.ConfigError(f"config_json={path!r} holds no config dict")
  return config_lib.from_dict(saved)


def resolve_config(experiment: str) -> config_lib.EchoConfig:
  """Preset (or --config_json), then any flags given; validated."""
  if _CONFIG_JSON.value:
    base = load_config_json(_CONFIG_JSON.value)
  else:
    base = config_lib.preset(experiment)
  return config_lib.validate(base.replace(**flag_overrides()))


def resolve_workdir(name: str) -> str:
  """The workdir to write into, checked writable but not created yet (so a
  run that fails leaves nothing behind)."""
  workdir = _WORKDIR.value
  if not workdir:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = os.path.join("runs", f"{name}-{stamp}-{os.getpid()}")
  # Probe by creating it and a file in it, then undo whatever we created.
  missing = []
  path = os.path.abspath(workdir)
  while not os.path.exists(path):
    missing.append(path)
    path = os.path.dirname(path)
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise config_lib.ConfigError(
        f"workdir={workdir!r} cannot be written: {e.strerror}") from None
  finally:
    for created in missing:
      if os.path.isdir(created):
        os.rmdir(created)
  return workdir


def run_main(body: Callable[[], None]) -> None:
  """app.run with one-line errors for bad flags and bad config values."""

  def main(argv):
    del argv
    # JAX reports each absent accelerator plugin at INFO, orbax every step
    # of every save: keep INFO for our progress lines.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    logging.getLogger("absl").addFilter(
        lambda record: "/orbax/" not in record.pathname)
    try:
      if _CHUNK_EPOCHS.value is not None and _CHUNK_EPOCHS.value < 1:
        raise config_lib.ConfigError(
            f"chunk_epochs={_CHUNK_EPOCHS.value} must be >= 1")
      cache = _COMPILATION_CACHE.value
      if cache is None:
        cache = default_compilation_cache()
      if cache:
        enable_compilation_cache(cache)
      if _DEBUG_NANS.value:
        import jax  # pylint: disable=g-import-not-at-top
        jax.config.update("jax_debug_nans", True)
      body()
    except config_lib.ConfigError as e:
      fail(str(e))
    except FloatingPointError as e:
      fail(str(e).splitlines()[0], status=1)

  app.run(main, flags_parser=parse_flags)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A plain fixed-width text table (also valid Markdown)."""
  cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  line = lambda row: "| " + " | ".join(
      c.ljust(w) for c, w in zip(row, widths)) + " |"
  rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
  return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def percent(x: float | None) -> str:
  return "-" if x is None else f"{100 * x:.2f}%"


def summary_row(record: dict[str, Any]) -> list[str]:
  low, high = record["eval_accuracy_ci95"]
  return [record["experiment"], percent(record["tutorial_accuracy"]),
          f"{percent(record['eval_accuracy'])} [{percent(low)}, {percent(high)}]",
          str(len(record["eval_accuracy_per_seed"])),
          f"{record['compile_seconds']:.2f}", f"{record['train_seconds']:.2f}"]


SUMMARY_HEADER = ("experiment", "tutorial", "ours: mean [95% CI]", "seeds",
                  "compile s", "train s")


def print_example(record: dict[str, Any]) -> None:
  print(f"{record['experiment']} (seed {record['config']['seed']}, model 0):")
  print(f"  Expected:  {record['example']['expected']}")
  print(f"  Predicted: {record['example']['predicted']}")


@contextlib.contextmanager
def tensorboard_writer(logdir: str | None):
  """Yields an on_chunk callback writing per-epoch scalars (mean over seeds)
  for TensorBoard into `logdir`, or None when `logdir` is None. Opt-in:
  tensorboardX's import alone costs seconds (it imports torch if present)."""
  if logdir is None:
    yield None
    return
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise config_lib.ConfigError(
        "tensorboard=true needs tensorboardX: pip install -r "
        "requirements-tensorboard.txt") from None
  writer = tensorboardX.SummaryWriter(logdir)

  def on_chunk(first, end, loss_SxE, accuracy_SxE):
    for epoch in range(first, end):
      writer.add_scalar("train/loss", loss_SxE[:, epoch].mean(), epoch + 1)
      writer.add_scalar("train/accuracy", accuracy_SxE[:, epoch].mean(),
                        epoch + 1)
    writer.flush()

  try:
    yield on_chunk
  finally:
    writer.close()


def run_summaries(run_dir: str):
  """`tensorboard_writer` for a run folder: its tensorboard/ subfolder with
  --tensorboard, else no callback."""
  return tensorboard_writer(
      os.path.join(run_dir, "tensorboard") if _TENSORBOARD.value else None)


def compile_for(config: config_lib.EchoConfig):
  """`experiment.compile_experiment` with the binary's --chunk_epochs."""
  from echo_jax import experiment  # pylint: disable=g-import-not-at-top
  return experiment.compile_experiment(config,
                                       chunk_epochs=_CHUNK_EPOCHS.value)


def run_in(config: config_lib.EchoConfig, run_dir: str, compiled=None):
  """Runs (or resumes) one experiment in its run folder `run_dir` (config,
  checkpoints, metrics.jsonl, learning curves, optional TensorBoard), with
  its programs `compiled` by `compile_for(config)` (compiled here if None);
  returns (record, trained)."""
  # pylint: disable=g-import-not-at-top
  from echo_jax import experiment
  from echo_jax import plots
  if compiled is None:
    compiled = compile_for(config)
  with run_summaries(run_dir) as on_chunk:
    record, trained = experiment.run_compiled(compiled, run_dir=run_dir,
                                              on_chunk=on_chunk)
  plots.learning_curves(
      trained.loss_E, trained.accuracy_E,
      os.path.join(run_dir, "learning_curves.png"),
      f"{config.experiment}: lag {config.lag}, context {config.context}, "
      f"hidden {config.hidden}, {'stateful' if config.stateful else 'stateless'}"
      f", batch {config.batch_size}", chance=1.0 / config.n_unique)
  return record, trained


def run_task_in(task, run_dir: str, checkpoint: bool = True):
  """`run_in` for an extension's `multiseed.Task`: rows and trained
  models; `checkpoint=False` runs without a run folder (timing runs)."""
  # pylint: disable=g-import-not-at-top
  from echo_jax import multiseed
  from echo_jax import plots
  if not checkpoint:
    return multiseed.run_task(task, chunk_epochs=_CHUNK_EPOCHS.value)
  with run_summaries(run_dir) as on_chunk:
    rows, trained = multiseed.run_task(
        task, run_dir=run_dir, chunk_epochs=_CHUNK_EPOCHS.value,
        on_chunk=on_chunk)
  plots.learning_curves_by_variant(
      {name: (trained.loss_E[i], trained.accuracy_E[i])
       for i, name in enumerate(task.row_names())},
      os.path.join(run_dir, "learning_curves.png"),
      f"{task.config.experiment}: {task.name}",
      chance=1.0 / task.config.n_unique)
  return rows, trained


def run_and_write(config: config_lib.EchoConfig, workdir: str,
                  compiled=None) -> dict[str, Any]:
  """Runs (or resumes) one experiment with its run folder
  `<workdir>/<experiment>/` (see `run_in`) and writes
  `<workdir>/<experiment>.json`."""
  from echo_jax import results  # pylint: disable=g-import-not-at-top
  record, _ = run_in(config, os.path.join(workdir, config.experiment),
                     compiled)
  results.write_json_atomic(
      os.path.join(workdir, f"{config.experiment}.json"), record)
  return record


def run_single(name: str) -> None:
  """The body of a one-experiment binary: resolve, run, write, report."""
  config = resolve_config(name)
  workdir = resolve_workdir(config.experiment)
  record = run_and_write(config, workdir)
  path = os.path.join(workdir, f"{config.experiment}.json")
  print_example(record)
  print(format_table(SUMMARY_HEADER, [summary_row(record)]))
  print(f"wrote {path}")
