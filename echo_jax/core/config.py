"""One frozen, hashable configuration for every echo experiment: it fixes
every shape of a run, so `jax.jit` keys its compilation cache on it."""

import dataclasses
import json
import math
from typing import Any, Mapping

FRAMINGS = ("window", "no_context")
INITS = ("keras", "chrono", "chain", "flax")
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
INPUT_ENCODINGS = ("gather", "one_hot")
LSTM_BACKENDS = ("fused", "cell")
OPTIMIZERS = ("keras_adam", "optax_adam", "keras_adam_decay")


class ConfigError(ValueError):
  """An invalid configuration value; its message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class EchoConfig:
  """Everything that defines one experiment (all seeds of it)."""
  experiment: str = "echo_lag"
  # Data: sequences of `length` integers in [0, n_unique).
  length: int = 25
  n_unique: int = 100
  # Framing: a sample is the `context` steps up to t, its target X(t - lag).
  # "no_context" (the tutorial's beginner's mistake) leaves memory to the carry.
  framing: str = "window"
  lag: int = 1
  context: int = 5
  # Model.
  hidden: int = 50
  init: str = "keras"
  recurrent_activation: str = "sigmoid"
  input_encoding: str = "gather"  # same math as one-hot @ kernel, fewer FLOPs
  lstm_backend: str = "fused"
  # Training: one epoch = one fit over one fresh sequence, samples in order.
  epochs: int = 2000
  batch_size: int = 5
  stateful: bool = True
  optimizer: str = "keras_adam"
  learning_rate: float = 1e-3
  adam_b1: float = 0.9
  adam_b2: float = 0.999
  adam_eps: float = 1e-7  # Keras' default (optax's is 1e-8)
  # Runs.
  seed: int = 0
  seeds: int = 4
  eval_sequences: int = 1000

  @property
  def num_samples(self) -> int:
    """Samples per sequence, as `data.frame_windows` keeps them."""
    return self.length - self.lag - self.context + 1

  @property
  def num_batches(self) -> int:
    return -(-self.num_samples // self.batch_size)

  def replace(self, **changes: Any) -> "EchoConfig":
    unknown = sorted(set(changes) - field_names())
    if unknown:
      raise ConfigError(
          f"unknown config field {unknown[0]!r}; known: "
          + ", ".join(sorted(field_names())))
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


# The fields a binary's flags may set, with their help (flag order).
FIELD_HELP = {
    "seed": "Base random seed (model i's key: fold_in(fold_in(seed, 0), i)).",
    "seeds": "Number of independently trained models (seeds).",
    "epochs": "Epochs; each is one fit over one fresh random sequence.",
    "hidden": "LSTM hidden size (memory units).",
    "batch_size": "Samples per Adam update.",
    "length": "Random sequence length.",
    "n_unique": "Number of distinct integers (classes).",
    "lag": "Echo the value this many steps before the window's last step.",
    "context": "Timesteps per sample (window length).",
    "eval_sequences": "Fresh random sequences to evaluate each model on.",
    "init": "Initialisation: keras, chrono (Keras' kernels, chrono gate "
            "biases, Tallec & Ollivier 2018), chain (a delay line: "
            "models.chain_lstm_recurrent_init and _bias_init) or flax.",
    "recurrent_activation": "Gate activation: sigmoid or hard_sigmoid "
                            "(Keras 2).",
    "framing": "window or no_context.",
    "input_encoding": "gather (ids index the kernel) or one_hot (matmul).",
    "lstm_backend": "fused (hand-written backward, default) or cell (the "
                    "Flax cell scanned by nn.RNN, autodiff).",
    "optimizer": "keras_adam (Adam as Keras computes it, the tutorial's; "
                 "default), optax_adam (optax.adam: epsilon added after "
                 "the bias correction) or keras_adam_decay (keras_adam with "
                 "Keras' time-based decay, lr / (1 + t / 1000) at update t).",
    "stateful": "Carry LSTM state across batches (Keras stateful=True).",
    "learning_rate": "Adam learning rate.",
}


def field_type(name: str) -> type:
  return type(getattr(EchoConfig(), name))


def field_names() -> set[str]:
  return {f.name for f in dataclasses.fields(EchoConfig)}


def from_dict(values: Mapping[str, Any]) -> EchoConfig:
  """Builds a config from a (saved) dict; unknown fields are an error."""
  return EchoConfig().replace(**dict(values))


# The tutorial's three experiments, exactly as it ran them.
PRESETS: dict[str, EchoConfig] = {
    "echo_current": EchoConfig(
        experiment="echo_current", framing="window", lag=0, context=1,
        hidden=15, epochs=500, batch_size=1, stateful=False),
    "echo_lag_no_context": EchoConfig(
        experiment="echo_lag_no_context", framing="no_context", lag=1,
        context=1, hidden=50, epochs=2000, batch_size=6, stateful=True),
    "echo_lag": EchoConfig(
        experiment="echo_lag", framing="window", lag=1, context=5, hidden=50,
        epochs=2000, batch_size=5, stateful=True),
}

# Chance accuracy is 1/n_unique; the tutorial's reported accuracies.
TUTORIAL_ACCURACY = {
    "echo_current": 1.0,
    "echo_lag_no_context": 0.0,
    "echo_lag": 1.0,
}
TUTORIAL_EXPERIMENTS = tuple(TUTORIAL_ACCURACY)  # in the tutorial's order


def load_json(path: str, base: EchoConfig, flag: str = "config_json"
              ) -> EchoConfig:
  """`base` (a binary's preset) with the fields of a saved config (the
  "config" of a result JSON, or a plain, maybe partial, config dict);
  ConfigError naming `flag` if the file cannot be read, holds none, or
  holds another experiment's."""
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:  # not UTF-8 or not JSON: ValueErrors
    raise ConfigError(f"{flag}={path!r} cannot be read: {e}") from None
  if isinstance(saved, dict) and isinstance(saved.get("config"), dict):
    saved = saved["config"]
  if not isinstance(saved, dict):
    raise ConfigError(f"{flag}={path!r} holds no config dict")
  if saved.get("experiment", base.experiment) != base.experiment:
    raise ConfigError(
        f"{flag}={path!r} is a config of experiment "
        f"{saved['experiment']!r}, not of this binary's "
        f"{base.experiment!r}")
  return base.replace(**saved)


def preset(name: str) -> EchoConfig:
  if name not in PRESETS:
    raise ConfigError(
        f"unknown experiment {name!r}; known: {', '.join(PRESETS)}")
  return PRESETS[name]


def _check_int(config: EchoConfig, name: str, low: int, high: int | None):
  value = getattr(config, name)
  if isinstance(value, bool) or not isinstance(value, int):
    raise ConfigError(f"{name}={value!r} must be an integer")
  if value < low or (high is not None and value > high):
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise ConfigError(f"{name}={value} must be {allowed}")


def _check_positive_float(config: EchoConfig, name: str, upper: float | None):
  value = getattr(config, name)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ConfigError(f"{name}={value!r} must be a number")
  if not math.isfinite(value):
    raise ConfigError(f"{name}={value} must be a finite number")
  if not value > 0 or (upper is not None and not value < upper):
    allowed = "> 0" if upper is None else f"in (0, {upper})"
    raise ConfigError(f"{name}={value} must be {allowed}")


def validate(config: EchoConfig) -> EchoConfig:
  """Returns `config` if every value is usable, else raises ConfigError."""
  if not isinstance(config.experiment, str) or not config.experiment:
    raise ConfigError(f"experiment={config.experiment!r} must be a name")
  for name, choices in (
      ("framing", FRAMINGS), ("init", INITS),
      ("recurrent_activation", RECURRENT_ACTIVATIONS),
      ("input_encoding", INPUT_ENCODINGS), ("lstm_backend", LSTM_BACKENDS),
      ("optimizer", OPTIMIZERS)):
    value = getattr(config, name)
    if value not in choices:
      raise ConfigError(
          f"{name}={value!r} must be one of {', '.join(choices)}")
  if not isinstance(config.stateful, bool):
    raise ConfigError(f"stateful={config.stateful!r} must be true or false")
  for name, low, high in (
      ("n_unique", 2, None), ("lag", 0, None), ("context", 1, None),
      ("hidden", 1, None), ("epochs", 1, None), ("batch_size", 1, None),
      ("seed", 0, 2**31 - 1), ("seeds", 1, None), ("eval_sequences", 1, None),
      ("length", 2, None)):
    _check_int(config, name, low, high)
  if config.framing == "window" and config.lag >= config.context:
    raise ConfigError(
        f"lag={config.lag} must be < context={config.context} "
        "(the window framing needs the target inside the window)")
  if config.framing == "no_context" and config.context != 1:
    raise ConfigError(
        f"context={config.context} must be 1 for framing=no_context")
  min_length = config.lag + config.context
  if config.length < min_length:
    raise ConfigError(
        f"length={config.length} must be >= lag + context = {min_length} "
        "(at least one full window per sequence)")
  if config.batch_size > config.num_samples:
    raise ConfigError(
        f"batch_size={config.batch_size} must be in [1, {config.num_samples}]"
        f" (samples per sequence)")
  if config.stateful and config.num_samples % config.batch_size:
    divisors = [d for d in range(1, config.num_samples + 1)
                if config.num_samples % d == 0]
    raise ConfigError(
        f"batch_size={config.batch_size} must divide the "
        f"{config.num_samples} samples per sequence in stateful mode "
        f"(one of {', '.join(map(str, divisors))})")
  for name, upper in (("learning_rate", None), ("adam_b1", 1.0),
                      ("adam_b2", 1.0), ("adam_eps", None)):
    _check_positive_float(config, name, upper)
  return config
