"""A binary's --help: its description and the flags it takes, each with the
default its experiment starts from. Imported only when help is asked for.

absl's short help lists the main module's key flags. Not --helpfull: the
preset may import the study, whose libraries (chex, orbax) define flags a
run never parses, so --helpfull would list them as accepted."""

import sys
from typing import Any, Callable, Collection

from absl import flags

from experiments import common


def prepare(preset: Callable[[], Any] | None,
            refused: Collection[str]) -> None:
  """Readies absl's help: the main module's docstring cut to its first
  paragraph; as its key flags, --workdir and, given `preset`, --config_json
  and every config flag, each with the value `preset()` holds as its
  default (`preset()` may be a list of configs: defaults that differ are
  named in the help). Flags in `refused`, which the binary rejects, are
  left out."""
  main = sys.modules["__main__"]
  if main.__doc__:
    # absl's usage() %-formats it (%s: the program's path): "100% accuracy"
    # came out as "100'<path>'ccuracy".
    main.__doc__ = main.__doc__.strip().split("\n\n")[0].replace(
        "%", "%%") + "\n"
  listed = ["workdir"]
  if preset is not None:
    configs = preset()
    configs = configs if isinstance(configs, list) else [configs]
    listed += ["config_json", *common.CONFIG_FLAGS]
    for name in common.CONFIG_FLAGS:
      values = {config.experiment: getattr(config, name) for config in configs}
      if len(set(values.values())) == 1:
        # Display only: a run's overrides are the flags given (`present`).
        flags.FLAGS.set_default(name, getattr(configs[0], name))
      else:
        flags.FLAGS[name].help += " Default: " + ", ".join(
            f"{str(value).lower() if isinstance(value, bool) else value} "
            f"({experiment})" for experiment, value in values.items()) + "."
  for name in listed:
    if name not in refused:
      # The module name absl's main_module_help() looks up.
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
