"""What the extension binaries share beyond `common`: their configs (the
windowed echo with extension defaults, then the shared flags)."""

from typing import Any

from experiments import common  # first: sets up host devices

from echo_jax.core import config as config_lib


def resolve(name: str, **defaults: Any) -> config_lib.EchoConfig:
  """The windowed echo preset, the extension's defaults, then --config_json
  or the flags given; validated."""
  from echo_jax.studies import extensions  # pylint: disable=g-import-not-at-top
  if common.flags.FLAGS["config_json"].value:
    base = common.load_config_json(common.flags.FLAGS["config_json"].value)
  else:
    base = extensions.base_config(name, **defaults)
  config = base.replace(experiment=name, **common.flag_overrides())
  return config_lib.validate(config)
