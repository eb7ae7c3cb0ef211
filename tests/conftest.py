"""Tests run on CPU, float32, with 4 host devices so sharding is exercised."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=4")
# The tests' programs are tiny, so compiling them is most of the suite's time;
# at XLA's lowest backend optimisation level the tests other than the goldens
# take about a fifth less time. Both sides of every comparison compile alike
# (the binaries the tests run inherit it: helpers.binary_env); the goldens
# compile as users do.
if "xla_backend_optimization_level" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0"


def pytest_configure(config):
  # The session's compilation cache (helpers.SUITE_CACHE): made by the
  # controlling process before it starts xdist's workers, which inherit
  # the path through the environment and so share one cache. The tests'
  # own processes use it too: many tests compile the same small programs
  # from fresh closures (same HLO), and a cached program is the same
  # executable, so no result changes.
  if not (hasattr(config, "workerinput")
          or os.environ.get("ECHO_JAX_TEST_CACHE")):
    import tempfile  # pylint: disable=g-import-not-at-top
    path = tempfile.mkdtemp(prefix="echo_jax_test_cache_")
    os.environ["ECHO_JAX_TEST_CACHE"] = path
    config.echo_jax_test_cache = path
  # Only processes that run tests compile: not xdist's controller.
  distributing = (not hasattr(config, "workerinput")
                  and bool(config.getoption("numprocesses", None)))
  if (os.environ.get("ECHO_JAX_TEST_CACHE") and not distributing
      and not config.getoption("collectonly", False)):
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update("jax_compilation_cache_dir",
                      os.environ["ECHO_JAX_TEST_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
  path = getattr(config, "echo_jax_test_cache", None)
  if path:
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(path, ignore_errors=True)
    os.environ.pop("ECHO_JAX_TEST_CACHE", None)
