"""What the extension binaries share beyond `common`: their configs (the
windowed echo with extension defaults, then the shared flags)."""

from typing import Any

from experiments import common  # first: sets up host devices

from echo_jax.core import config as config_lib


# Every extension answer is a mean over at least 8 seeds on 1000 fresh
# sequences; flags may lower these for a quick look.
DEFAULTS = {"seeds": 8, "eval_sequences": 1000, "stateful": False}


def preset(name: str, **defaults: Any) -> config_lib.EchoConfig:
  """The windowed echo preset with the extensions' and then the study's
  `defaults`, named `name`: what `resolve` starts from, and --help's
  defaults (not validated: flags may still change it)."""
  return config_lib.preset("echo_lag").replace(
      experiment=name, **{**DEFAULTS, **defaults})


def resolve(name: str, replaced: dict[str, str] | None = None,
            windowless: bool = False, **defaults: Any
            ) -> config_lib.EchoConfig:
  """The windowed echo preset, the extension's defaults, --config_json and
  the flags given; validated. `replaced` maps shared flags the study does
  not use to its own flag that takes their place (given, they are refused:
  silently ignored, they would still be recorded in the saved config). A
  `windowless` study frames no windows of --context: the tutorial's window
  checks are replaced by 0 <= lag < length."""
  for single, instead in (replaced or {}).items():
    if common.flags.FLAGS[single].present:
      raise config_lib.ConfigError(
          f"--{single} is not used by {name}: {instead}")
  config = common.with_overrides(preset(name, **defaults))
  if windowless:
    config_lib.validate(config.replace(lag=0, context=1))
    if not 0 <= config.lag < config.length:
      raise config_lib.ConfigError(
          f"lag={config.lag} must be in [0, length={config.length})")
    return config
  return config_lib.validate(config)


def refuse_beside_combine(*study_flags) -> None:
  """--combine trains nothing: a flag that would shape training is refused
  (it would be silently ignored)."""
  shared = (*common.CONFIG_FLAGS, "config_json", "chunk_epochs")
  for flag in (*study_flags, *(common.flags.FLAGS[n] for n in shared)):
    if flag.present:
      raise config_lib.ConfigError(
          f"--{flag.name} is not used with --combine (it trains nothing)")
