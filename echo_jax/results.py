"""Writing results: atomic JSON files and the provenance every result carries."""

import json
import os
import platform
import tempfile
from typing import Any


def write_json_atomic(path: str, payload: Any) -> None:
  """Writes JSON to a temp file beside `path`, then renames it into place, so
  a reader (or a crash) never sees a truncated file."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                                  suffix=".json")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(payload, f, indent=2, sort_keys=False)
      f.write("\n")
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp_path, path)
  except BaseException:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    raise


def versions() -> dict[str, str]:
  """Versions of the numerics stack and the devices the run used."""
  import chex  # pylint: disable=g-import-not-at-top
  import flax
  import jax
  import jaxlib
  import numpy as np
  import optax
  return {
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jaxlib": jaxlib.__version__,
      "flax": flax.__version__,
      "optax": optax.__version__,
      "chex": chex.__version__,
      "numpy": np.__version__,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
  }
