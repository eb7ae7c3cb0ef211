"""A run's memory, estimated before anything is compiled or written.

An oversized model (e.g. --n_unique=1000000 --hidden=4096: ~80 GB of
parameters per model) must end with one line naming the flags to change, not
an allocation failure deep inside XLA. The estimate counts per model the
parameters, Adam's two moments, the gradients and an update's temporaries
(5x the parameters), a chunk's training data, the activations of one batch
(a multiple of its logits) and one evaluation batch's logits; plus the test
set, shared by all models. It is a lower bound of what XLA allocates, to
catch runs that cannot fit, not to pack memory tightly.
"""

import os

import jax
import numpy as np

from echo_jax.core import config as config_lib

# For tests and for a share of a machine: the bytes a run may use.
LIMIT_ENV = "ECHO_JAX_MEMORY_BYTES"
# Of physical memory, what a run may plan to use (the rest: Python, XLA's
# programs, the OS).
USABLE_FRACTION = 0.8


def tree_bytes(tree) -> int:
  return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize
                 for x in jax.tree.leaves(tree)))


def available_bytes(devices) -> tuple[int, str]:
  """(bytes the run's models may use in all, what that is) on `devices`."""
  if LIMIT_ENV in os.environ:
    return int(os.environ[LIMIT_ENV]), f"${LIMIT_ENV}"
  # One this process holds: another process's device has no stats here.
  device = next((d for d in devices if d.process_index == jax.process_index()),
                devices[0])
  if device.platform != "cpu":
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
      return int(stats["bytes_limit"]) * len(devices), (
          f"{len(devices)} x {device.device_kind}")
  # Host devices share the machine's memory.
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return int(total * USABLE_FRACTION), "this machine's memory"


def per_model_bytes(params_shape, data_shape, batch_logits_bytes: int,
                    eval_logits_bytes: int) -> int:
  """One model's share: parameters, Adam's moments, gradients and update
  temporaries (5x), a chunk's data, a batch's activations (8x its logits,
  the LSTM's gates and states are of that order) and an evaluation batch's
  logits."""
  return (5 * tree_bytes(params_shape) + tree_bytes(data_shape)
          + 8 * batch_logits_bytes + eval_logits_bytes)


def check(config: config_lib.EchoConfig, num_models: int, per_model: int,
          shared: int, devices) -> int:
  """Raises ConfigError (one line) if `num_models` models of `per_model`
  bytes plus `shared` bytes cannot fit on `devices`; returns the bytes."""
  need = num_models * per_model + shared
  available, where = available_bytes(devices)
  if need > available:
    raise config_lib.ConfigError(
        f"the run needs about {need / 1e9:.3g} GB ({num_models} models x "
        f"{per_model / 1e6:.4g} MB, test set {shared / 1e6:.4g} MB) but "
        f"{where} allows {available / 1e9:.3g} GB: lower --hidden "
        f"(={config.hidden}), --n_unique (={config.n_unique}), --seeds "
        f"(={config.seeds}) or --eval_sequences (={config.eval_sequences})")
  return need
