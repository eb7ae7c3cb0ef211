"""Process set-up for CPUs, before JAX (or a BLAS library) initialises.

Tiny LSTM matmuls keep one core busy each, so on a CPU-only machine the way
to use every core is to split the seed axis over one host device per core
(measured: 64 seeds, 1.0 models/s on one device, 1.9 on two). Deliberately
imports nothing from JAX: it must run before JAX reads XLA_FLAGS.
"""

import os
import sys

_FLAG = "--xla_force_host_platform_device_count"
ENV_VAR = "ECHO_JAX_HOST_DEVICES"  # a count, or 0 to leave XLA_FLAGS alone


def usable_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def expose_host_devices() -> int | None:
  """Adds the host device count to XLA_FLAGS unless already set there.

  Returns the count set, or None when nothing was changed (already set,
  disabled with ECHO_JAX_HOST_DEVICES=0, or JAX already imported). Only the
  CPU platform reads the flag, so GPU/TPU runs are unaffected.
  """
  xla_flags = os.environ.get("XLA_FLAGS", "")
  if _FLAG in xla_flags or "jax" in sys.modules:
    return None
  requested = os.environ.get(ENV_VAR, "").strip()
  count = int(requested) if requested else usable_cores()
  if count <= 0:
    return None
  os.environ["XLA_FLAGS"] = f"{xla_flags} {_FLAG}={count}".strip()
  return count


BLAS_THREADS_VAR = "OPENBLAS_NUM_THREADS"
_BLAS_MODULES = ("numpy", "scipy", "jax")


def single_threaded_blas() -> bool:
  """Sets OPENBLAS_NUM_THREADS=1 unless it is set or BLAS may be loaded.

  jaxlib's CPU LAPACK (the QR of the orthogonal initialiser) calls SciPy's
  OpenBLAS, whose worker threads then busy-wait for more work: under `perf`,
  an idle OpenBLAS thread took 13% of all samples while echo_lag trained,
  holding the core XLA would otherwise have. Its matrices here are 50 x 200,
  too small to gain from threads. Returns whether the variable was set.
  """
  if BLAS_THREADS_VAR in os.environ or any(
      name in sys.modules for name in _BLAS_MODULES):
    return False
  os.environ[BLAS_THREADS_VAR] = "1"
  return True
