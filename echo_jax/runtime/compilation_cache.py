"""JAX's persistent compilation cache: where it lives and turning it on."""

import os


def default_path() -> str:
  if "ECHO_JAX_COMPILATION_CACHE" in os.environ:
    return os.environ["ECHO_JAX_COMPILATION_CACHE"]
  cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(cache_home, "echo_jax", "jax_compilation_cache")


def enable(path: str) -> None:
  """Persist every compiled program (none is too small or too quick to be
  worth it: a cold echo run is mostly compilation)."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
