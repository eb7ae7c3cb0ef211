"""Where a task's models run: its programs, over every device of every process.

A task's models (variants x seeds) lie along one mesh axis; each device runs
its share, vmapped. The programs are built here, in one place:
`jax.jit(shard_map(...))`, the training state donated from chunk to chunk.
Models never communicate, so no program has a collective. Several processes
(joined by `jax.distributed.initialize`) run one program over all their
devices; they meet only to gather results (`to_host`) and at orbax's
barriers, each wait bounded (`bounded`). Every process computes the same
host values and takes the same path; process 0 writes the files.
"""

import contextlib
import hashlib
import math
import os
import sys
import threading
from typing import Any, Iterator

from absl import logging
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from echo_jax.core import config as config_lib

SEED_AXIS = "seed"


def seed_mesh(num_models: int, max_devices: int | None = None) -> Mesh:
  """A 1-D mesh over one device per model, at most all (or max_devices)."""
  available = jax.devices()[:max_devices or jax.device_count()]
  return Mesh(np.array(available[:max(1, min(num_models, len(available)))]),
              (SEED_AXIS,))


def padded_models(num_models: int, mesh: Mesh) -> int:
  """Models rounded up to a multiple of the mesh size (extras discarded)."""
  return math.ceil(num_models / mesh.size) * mesh.size


def seed_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(SEED_AXIS))


# How a CPU device runs its models (ECHO_JAX_MODELS_PER_BLOCK): "auto" in
# the largest vmapped blocks whose training state fits CACHE_BLOCK_BYTES, so
# an update's streaming stays in a core's cache (1.7-1.8x faster than
# vmapping 32-36 models together: docs/performance.md); "all" vmaps them
# all (what "auto" does on other backends: a GPU is fastest so); b: blocks.
BLOCK_ENV = "ECHO_JAX_MODELS_PER_BLOCK"
CACHE_BLOCK_BYTES = 4 * 2**20


def models_per_block() -> int | str | None:
  """$ECHO_JAX_MODELS_PER_BLOCK: "auto" (unset or auto), None (all) or b;
  ConfigError (one line) otherwise."""
  value = os.environ.get(BLOCK_ENV, "").strip().lower() or "auto"
  if value in ("auto", "all"):
    return None if value == "all" else value
  if not value.isdigit() or int(value) < 1:
    raise config_lib.ConfigError(
        f"{BLOCK_ENV}={value} must be 'all', 'auto' or an integer >= 1")
  return int(value)


def tree_bytes(tree) -> int:
  return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize
                 for x in jax.tree.leaves(tree)))


def cache_block(count: int, bytes_per_model: int) -> int | None:
  """The block "auto" picks for `count` models of `bytes_per_model` of
  training state on a CPU device: None (all vmapped) when they all fit
  CACHE_BLOCK_BYTES, else the largest divisor of `count` that does."""
  if count * bytes_per_model <= CACHE_BLOCK_BYTES:
    return None
  fit = max(1, CACHE_BLOCK_BYTES // max(1, bytes_per_model))
  return max(d for d in range(1, min(fit, count) + 1) if count % d == 0)


def over_models(fn, in_axes: tuple[int | None, ...], block):
  """jax.vmap(fn, in_axes) over a device's models; a lone model runs
  unbatched (a size-1 batch axis is not free on XLA:CPU: ~10% slower), and
  `block` (`models_per_block`; the first per-model argument is the training
  state) runs them in vmapped blocks, one after another (lax.map)."""

  def run(*args):
    per_model = [arg for arg, axis in zip(args, in_axes) if axis == 0]
    count = jax.tree.leaves(per_model)[0].shape[0]
    size = block
    if size == "auto":
      size = None
      if jax.default_backend() == "cpu":
        state_bytes = tree_bytes(per_model[0])
        size = cache_block(count, state_bytes // count)
        if size is not None:
          logging.info("training %d models per device in vmapped blocks of "
                       "%d (%.1f MB of training state per block)", count,
                       size, size * state_bytes / count / 2**20)
    if count == 1:
      squeezed = [jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg
                  for arg, axis in zip(args, in_axes)]
      return jax.tree.map(lambda x: x[None], fn(*squeezed))
    if size is None or size >= count or count % size:
      return jax.vmap(fn, in_axes=in_axes)(*args)
    blocked = [jax.tree.map(lambda x: x.reshape((-1, size) + x.shape[1:]),
                            arg) for arg, axis in zip(args, in_axes)
               if axis == 0]

    def one_block(per_block):
      parts = iter(per_block)
      return run(*[arg if axis is None else next(parts)
                   for arg, axis in zip(args, in_axes)])

    out = jax.lax.map(one_block, blocked)
    return jax.tree.map(lambda x: x.reshape((count,) + x.shape[2:]), out)

  return run


def per_device(fn, mesh: Mesh, in_specs, donate: bool = False):
  """jit(shard_map(fn)): each device runs `fn` on its slice of the models.
  check_vma=False: models never communicate, and zero initial carries are
  device-invariant values inside per-device scans."""
  return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs,
                               out_specs=P(SEED_AXIS), check_vma=False),
                 donate_argnums=(0,) if donate else ())


def programs(task, mesh: Mesh, chunk_epochs: int, block):
  """(init, data, fit, evaluate) of all of `task`'s models, jitted:
  init(keys_M, variants_M) -> TrainState_M at epoch 0; data(state_M,
  variants_M) and fit(state_M, data_M, end_epoch, variants_M) -> (state_M,
  EpochMetrics_M): the two steps of `chunk_epochs` epochs of
  `task.train.chunk`, fit donating state_M; evaluate(params_M, test_set,
  variants_M) -> Scores_M (no variants_M for a task without variants)."""
  seeds = P(SEED_AXIS)
  # A task with variants: each model's is one more argument.
  extra_axes, extra_specs = ((0,), (seeds,)) if task.variants else ((), ())
  chunk = task.train.chunk(chunk_epochs)
  # lax.map, not vmap: a batched orthogonal init (QR) deadlocked with
  # several host devices; initialisation is cheap either way.
  init = per_device(
      lambda *args: jax.lax.map(lambda a: task.train.init(*a), args), mesh,
      (seeds,) + extra_specs)
  data = per_device(jax.vmap(chunk.data, in_axes=(0,) + extra_axes), mesh,
                    (seeds,) + extra_specs)
  fit = per_device(
      over_models(chunk.fit, (0, 0, None) + extra_axes, block), mesh,
      (seeds, seeds, P()) + extra_specs, donate=True)
  evaluate = per_device(
      jax.vmap(task.evaluate, in_axes=(0, None) + extra_axes), mesh,
      (seeds, P()) + extra_specs)
  return init, data, fit, evaluate


# Processes. In a single-process run every function below is a local one.
# How long a process waits for the others (--distributed_timeout).
TIMEOUT = {"seconds": 60}


class PeerLostError(RuntimeError):
  """Another process of the run died or stopped answering."""


def is_multiprocess() -> bool:
  return ("jax" in sys.modules and jax.distributed.is_initialized()
          and jax.process_count() > 1)


def is_writer() -> bool:
  """Whether this process keeps the files it writes: process 0 of a
  multi-process run, or the only process."""
  return not is_multiprocess() or jax.process_index() == 0


@contextlib.contextmanager
def watchdog(seconds: float, message: str, status: int = 1
             ) -> Iterator[None]:
  """Ends the process with one line, `message`, if the block has not
  finished within `seconds`: a Python exception cannot interrupt the
  runtime's waits (they release the GIL, so the timer's thread runs)."""

  def end():
    print(f"error: {message}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    # Not sys.exit: the runtime's shutdown waits for peers that may be gone.
    os._exit(status)  # pylint: disable=protected-access

  timer = threading.Timer(seconds, end)
  timer.daemon = True
  timer.start()
  try:
    yield
  finally:
    timer.cancel()


@contextlib.contextmanager
def bounded(what: str) -> Iterator[None]:
  """Runs the block (a wait on the other processes); a peer that died
  (an error) or hangs (past the timeout) ends this process with one line."""
  if not is_multiprocess():
    yield
    return
  seconds = TIMEOUT["seconds"]
  with watchdog(seconds, (
      f"no answer from the other processes within --distributed_timeout="
      f"{seconds} s during {what}: a process died or hangs; rerun the same "
      "command on every process to resume")):
    try:
      yield
    except Exception as e:  # pylint: disable=broad-except
      reason = (str(e).strip().splitlines()[0][:160] if str(e).strip()
                else type(e).__name__)
      raise PeerLostError(
          f"{what} failed: another process died or left the run ({reason}); "
          "rerun the same command on every process to resume") from None


def to_host(tree: Any) -> Any:
  """numpy copies of a tree of arrays, whole on every process (arrays
  sharded over several processes are gathered)."""
  leaves, treedef = jax.tree.flatten(tree)
  spread = [i for i, x in enumerate(leaves)
            if not getattr(x, "is_fully_addressable", True)]
  leaves = [np.asarray(x) if i not in spread else x
            for i, x in enumerate(leaves)]
  if spread:
    with bounded("a gather of results"):
      gathered = multihost_utils.process_allgather(
          [leaves[i] for i in spread], tiled=True)
    for i, x in zip(spread, gathered):
      leaves[i] = x
  return jax.tree.unflatten(treedef, leaves)


def put(tree: Any, sharding: NamedSharding) -> Any:
  """Host arrays (the same on every process) placed onto `sharding`; each
  process places its own shards."""
  if not is_multiprocess():
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(
          np.shape(x), sharding, lambda index: np.asarray(x)[index]), tree)


def check_same_everywhere(text: str, what: str, advice: str) -> None:
  """ConfigError naming the processes whose `text` (e.g. their flags)
  differs from process 0's, then `advice`."""
  if not is_multiprocess():
    return
  digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
  with bounded(f"the check that every process has the same {what}"):
    digests = multihost_utils.process_allgather(digest)
  differing = [i for i in range(jax.process_count())
               if not np.array_equal(digests[i], digests[0])]
  if differing:
    several = len(differing) > 1
    raise config_lib.ConfigError(
        f"{'processes' if several else 'process'} "
        f"{', '.join(map(str, differing))} "
        f"{'differ' if several else 'differs'} from process 0 in {what}: "
        f"{advice}")
