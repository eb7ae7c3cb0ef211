"""How a study ties its workdir to its settings before anything trains, so
that a rerun with other settings is refused at once, in one line:

- `check_claim`: a JSON file (reproduce's run folders' config.json, an
  extension's study.json) that is replaced while nothing under it has
  trained (a run folder's checkpoints carry their own identity);
- `claim_workdir`: the settings file of a study whose results are files
  (the sweep's and the state map's cells): fixed by the first run.
"""

import os
from typing import Any

from echo_jax.core import config as config_lib
from echo_jax.runtime import checkpoint
from echo_jax.runtime import files


def has_trained(run_dir: str) -> bool:
  """Whether a run folder holds a checkpoint."""
  folder = os.path.join(run_dir, "checkpoints")
  return os.path.isdir(folder) and any(
      name.isdigit() for name in os.listdir(folder))


def check_claim(path: str, identity: dict[str, Any], trained: bool) -> bool:
  """Whether the JSON file `path` must be written to claim it for
  `identity`; ConfigError if it claims another identity for something that
  has `trained`. A claim that is missing or unreadable is replaced."""
  changed = files.saved_changes(path, identity)
  if trained and changed:
    raise checkpoint.other_config(os.path.dirname(path), changed)
  return changed != []


def claim_workdir(workdir: str, file_name: str, settings: dict[str, Any],
                  study: str) -> None:
  """A workdir's cells belong to one config (the grid may grow): the first
  run saves its `settings` in `file_name`, a rerun must match them."""
  path = os.path.join(workdir, file_name)
  if not os.path.exists(path):
    files.write_json_atomic(path, settings)
    return
  changed = files.changed_keys(files.read_json(path), settings)
  if changed:
    raise config_lib.ConfigError(
        f"workdir={workdir!r} holds a {study} of another config (differs in "
        f"{', '.join(changed)}): use a new --workdir")
