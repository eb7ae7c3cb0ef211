"""Many processes, one program: jax.distributed, gathers, and who writes.

A run on several hosts (or several processes of one host) is one SPMD
program with one controller process per host: `initialize` joins them
(`jax.distributed.initialize`), after which `jax.devices()` lists every
process's devices and the seed mesh (`programs.seed_mesh`) spans them all.
Models never communicate, so training needs no collectives; the only
cross-process traffic is `to_host` (gathering a sharded result for the
record, the checkpoint and the next chunk's bookkeeping) and orbax's
barriers. Every process computes the same host values, so every process
takes the same path through a study; only process 0 (`is_writer`) keeps
what it writes (`results.atomic_path`).

Single-process runs never call `initialize`; there `to_host` is
`np.asarray` and every function here is a no-op, so their behaviour is
unchanged.
"""

import contextlib
import hashlib
import os
import pickle
import sys
import threading
import zlib
from typing import Any, Iterator

from absl import logging
import numpy as np

from echo_jax.core import config as config_lib

# How long a process waits for the others: to start (the coordinator must
# answer within it) and, once running, for a peer at a gather or a
# checkpoint. jax's own heartbeat check is set above it, so a dead peer
# ends the survivor with our one line, not the runtime's abort.
DEFAULT_TIMEOUT_SECONDS = 60
_HEARTBEAT_MARGIN_SECONDS = 30
_INIT_MARGIN_SECONDS = 5

_timeout = {"seconds": DEFAULT_TIMEOUT_SECONDS}


class PeerLostError(RuntimeError):
  """Another process of the run died or stopped answering."""


def detected_launcher() -> str | None:
  """The multi-process launcher this process was started by, as jax
  auto-detects them (SLURM, Open MPI, a Cloud TPU pod), when it started
  more than one process; else None."""
  # pylint: disable=g-import-not-at-top
  # jax keeps its launcher detection private; it is the same code
  # jax.distributed.initialize() runs without arguments.
  from jax._src import clusters
  for env in clusters.ClusterEnv._cluster_types:  # pylint: disable=protected-access
    if env.opt_in_only_method or not env.is_env_present():
      continue
    try:
      count = env.get_process_count()
    except Exception:  # pylint: disable=broad-except
      continue  # present but not usable (e.g. a TPU VM of one host)
    if count and count > 1:
      return env.__name__
    return None
  return None


def check_launch(coordinator_address: str | None, num_processes: int | None,
                 process_id: int | None) -> bool:
  """Whether the flags ask for a multi-process run; ConfigError (one line
  naming the flag and its allowed range) if they are inconsistent."""
  given = {"coordinator_address": coordinator_address,
           "num_processes": num_processes, "process_id": process_id}
  if all(v is None for v in given.values()):
    return False
  missing = [name for name, v in given.items() if v is None]
  if missing:
    raise config_lib.ConfigError(
        "--coordinator_address, --num_processes and --process_id go "
        f"together: also give --{', --'.join(missing)}")
  if num_processes < 1:
    raise config_lib.ConfigError(
        f"num_processes={num_processes} must be >= 1")
  if not 0 <= process_id < num_processes:
    raise config_lib.ConfigError(
        f"process_id={process_id} must be in [0, num_processes="
        f"{num_processes})")
  host, _, port = coordinator_address.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise config_lib.ConfigError(
        f"coordinator_address={coordinator_address!r} must be HOST:PORT")
  return num_processes > 1


def initialize(coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None,
               timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS) -> bool:
  """Joins the run's other processes: with the three addressing values
  (checked by `check_launch`), or detected from the launcher when none is
  given. Returns whether this is a multi-process run. Must come before
  anything initialises a JAX backend. ConfigError (one line) if the
  coordinator does not answer within `timeout_seconds`."""
  explicit = check_launch(coordinator_address, num_processes, process_id)
  launcher = None if explicit or coordinator_address else detected_launcher()
  if not explicit and launcher is None:
    return False
  if timeout_seconds < 1:
    raise config_lib.ConfigError(
        f"distributed_timeout={timeout_seconds} must be >= 1")
  import jax  # pylint: disable=g-import-not-at-top
  _timeout["seconds"] = timeout_seconds
  # Gloo is jax's CPU default; set it so a CPU run never depends on that.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  use_coordination_barriers()
  where = coordinator_address or f"the coordinator found by {launcher}"
  who = ("this process" if process_id is None
         else f"process {process_id} of {num_processes}")
  message = (f"{who} could not join the run at {where} within "
             f"--distributed_timeout={timeout_seconds} s: start every process "
             "with the same --coordinator_address and --num_processes")
  # jax's own deadline (a little later) ends the process with the runtime's
  # abort report, not a line: ours fires first.
  with _watchdog(timeout_seconds, message, status=2):
    try:
      jax.distributed.initialize(
          coordinator_address, num_processes, process_id,
          initialization_timeout=timeout_seconds + _INIT_MARGIN_SECONDS,
          heartbeat_timeout_seconds=(timeout_seconds
                                     + _HEARTBEAT_MARGIN_SECONDS),
          shutdown_timeout_seconds=timeout_seconds)
    except Exception as e:  # pylint: disable=broad-except
      # The runtime raises several types; the first line says why.
      reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
      raise config_lib.ConfigError(f"{message} ({reason})") from None
  return True


def use_coordination_barriers() -> None:
  """Orbax's barriers through jax's coordination service, not collectives:
  its asynchronous saves wait at barriers in a worker thread, and a
  collective there can interleave with the main thread's gathers in another
  order on each process (gloo then aborts on the mismatch)."""
  # pylint: disable=g-import-not-at-top
  from absl import flags
  import orbax.checkpoint  # pylint: disable=unused-import  (defines the flag)
  flags.FLAGS["experimental_orbax_use_distributed_barrier"].value = True


def is_multiprocess() -> bool:
  if "jax" not in sys.modules:
    return False
  import jax  # pylint: disable=g-import-not-at-top
  return jax.distributed.is_initialized() and jax.process_count() > 1


def process_index() -> int:
  if not is_multiprocess():
    return 0
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index()


def is_writer() -> bool:
  """Whether this process keeps the files it writes: process 0 of a
  multi-process run, or the only process."""
  return process_index() == 0


@contextlib.contextmanager
def bounded(what: str) -> Iterator[None]:
  """Runs the block (a wait on the other processes); if it takes longer than
  the run's timeout, a peer is lost: one line, and this process ends at once
  (a Python exception cannot interrupt the runtime's wait, and its shutdown
  would wait again for the peer)."""
  if not is_multiprocess():
    yield
    return
  seconds = _timeout["seconds"]
  with _watchdog(seconds, (
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


@contextlib.contextmanager
def _watchdog(seconds: float, message: str, status: int = 1
              ) -> Iterator[None]:
  """Ends the process with `message` (`exit_now`) if the block has not
  finished within `seconds` (the runtime's waits release the GIL, so the
  timer's thread runs)."""
  timer = threading.Timer(seconds, lambda: exit_now(message, status))
  timer.daemon = True
  timer.start()
  try:
    yield
  finally:
    timer.cancel()


def exit_now(message: str, status: int = 1) -> None:
  """One line on stderr, then the process ends without the runtime's
  shutdown barrier (which waits for peers that may be gone)."""
  print(f"error: {message}", file=sys.stderr)
  sys.stderr.flush()
  sys.stdout.flush()
  os._exit(status)  # pylint: disable=protected-access


def to_host(tree: Any) -> Any:
  """numpy copies of a tree of arrays, whole on every process: `np.asarray`
  where this process holds every shard, else one gather of the tree."""
  import jax  # pylint: disable=g-import-not-at-top
  leaves = jax.tree.leaves(tree)
  if all(getattr(x, "is_fully_addressable", True) for x in leaves):
    return jax.tree.map(np.asarray, tree)
  replicated = jax.tree.map(
      lambda x: x.sharding.update(spec=jax.sharding.PartitionSpec())
      if hasattr(x, "sharding") else None, tree)
  with bounded("a gather of results"):
    # A module-level function: jit's cache then holds one program per tree.
    gathered = jax.jit(_identity, out_shardings=replicated)(tree)
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)),
                        gathered)


def _identity(tree: Any) -> Any:
  return tree


def put(tree: Any, sharding: Any) -> Any:
  """`jax.device_put` of host arrays (the same on every process) onto
  `sharding`. Across processes, each process places its own shards from
  its copy: device_put would first compare the copies with a collective,
  and a collective issued from a compiling thread (the sweep compiles the
  next group in one) can interleave with the main thread's and mismatch."""
  import jax  # pylint: disable=g-import-not-at-top
  if not is_multiprocess():
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(
          np.shape(x), sharding, lambda index: np.asarray(x)[index]), tree)


# Programs this process has handed to the others as their owner (keys in
# the coordination service's store, which keeps a key once set).
_shared_programs: set[str] = set()
_SHARE_PREFIX = "echo_jax/program/"


def compile(lowered, mesh: Any = None,  # pylint: disable=redefined-builtin
            compiler_options: dict[str, Any] | None = None):
  """`lowered.compile(compiler_options)`; for a program over `mesh` (a
  jax.sharding.Mesh spanning the processes) on CPU without a persistent
  cache, done once per run instead of once per process: one process (the
  program's owner, chosen by its key, so the processes share the work of
  compiling) compiles and puts the serialized executable in jax's
  coordination service, the others load it from there (jax's own cache and
  binary sharing cannot: on CPU its key holds the process index). The key
  is the program's text, argument types and options: a process that
  lowers a different program (another config) waits
  `--distributed_timeout` seconds for it, then compiles its own and goes
  on to the config check or a gather, which name the difference. Programs
  of one process's own devices (no `mesh`), runs where any process has a
  persistent cache (`_sharing_programs`), and every program elsewhere (GPU,
  TPU) compile in every process, as jax does."""
  if not _shares(mesh):
    return lowered.compile(compiler_options)
  leaves, in_tree = _flat_args(lowered.args_info)
  digest = hashlib.sha256((lowered.as_text() + _signature(
      leaves, in_tree, compiler_options)).encode())
  return _shared(digest, lambda: lowered.compile(compiler_options),
                 in_tree)


def compile_jitted(jitted, args: tuple[Any, ...], program_key: str,
                   mesh: Any, compiler_options: dict[str, Any] | None,
                   owner: tuple[str, int]):
  """`compile(jitted.lower(*args), mesh, compiler_options)`, except that a
  shared program is keyed by `program_key` (a string that names the program
  whole: its task's program key, which program of it, its run's layout)
  instead of its text, so that only its owner lowers it (the others trace
  it only where a later program needs its output types): on two cores the
  other process's lowering competed with training (the 2-process quick
  sweep took 48.2 s with this, 50.3 s with every process lowering every
  program; docs/scaling.md). The key also holds the argument types, the
  options, jax's version and a digest of this package's source
  (`code_digest`, also compared at start).
  `owner` (text, shift): its owner is the one the text picks, counted on by
  shift, so that a task's programs can be spread over the processes."""
  if not _shares(mesh):
    return jitted.lower(*args).compile(compiler_options)
  leaves, in_tree = _flat_args((tuple(args), {}))
  digest = hashlib.sha256((program_key + _signature(
      leaves, in_tree, compiler_options) + code_digest()).encode())
  text, shift = owner
  owner_index = _pick(hashlib.sha256(text.encode()), shift)
  return _shared(
      digest, lambda: jitted.lower(*args).compile(compiler_options), in_tree,
      owner_index)


def _shares(mesh: Any) -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return (mesh is not None and is_multiprocess()
          and jax.devices()[0].platform == "cpu" and _sharing_programs())


def _flat_args(args_info: Any):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree_util.tree_flatten(args_info)


def _signature(leaves, in_tree, compiler_options) -> str:
  # The arguments' types belong in the key: arguments a program does not
  # use are pruned from its text (a chunk's data program reads the state's
  # key and epoch, not the parameters), but jax checks every argument.
  return repr((str(in_tree),
               [(a.shape, str(a.dtype), str(getattr(a, "sharding", None)))
                for a in leaves],
               sorted((compiler_options or {}).items())))


_code = {"digest": None}


def code_digest() -> str:
  """jax's version and every source file of this package, hashed once:
  processes that share programs by key must run the same code."""
  if _code["digest"] is None:
    import jax  # pylint: disable=g-import-not-at-top
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256(jax.__version__.encode())
    for folder, dirs, files in sorted(os.walk(root)):
      dirs.sort()
      for name in sorted(f for f in files if f.endswith(".py")):
        with open(os.path.join(folder, name), "rb") as f:
          digest.update(name.encode() + f.read())
    _code["digest"] = digest.hexdigest()
  return _code["digest"]


def _pick(digest, shift: int = 0) -> int:
  import jax  # pylint: disable=g-import-not-at-top
  return ((int.from_bytes(digest.digest()[:8], "big") + shift)
          % jax.process_count())


def _shared(digest, compile_here, in_tree, owner: int | None = None):
  """The program of `digest` (a sha256): compiled here by `compile_here()`
  and handed out if this process owns it (`owner`; None: the one the digest
  picks), else loaded from its owner."""
  # pylint: disable=g-import-not-at-top
  from jax.experimental import serialize_executable
  client = _client()
  key = _SHARE_PREFIX + digest.hexdigest()
  # Every process derives the same owner from the key alone, whatever order
  # its threads ask for programs in; owners never wait, so no cycle.
  if owner is None:
    owner = _pick(digest)
  if process_index() == owner:
    compiled = compile_here()
    if key not in _shared_programs:
      payload, _, out_tree = serialize_executable.serialize(compiled)
      # The output's tree travels too: a process that did not trace the
      # program has no other way to know it.
      client.key_value_set_bytes(
          key, zlib.compress(pickle.dumps((payload, out_tree)), 1))
      _shared_programs.add(key)
    return compiled
  try:
    shared = client.blocking_key_value_get_bytes(
        key, 1000 * _timeout["seconds"])
  except Exception:  # pylint: disable=broad-except
    # Not there in time (its owner slower, gone, or compiling something
    # else): compile here; a lost peer is then found at the next wait.
    logging.warning("process %d's compiled program did not arrive within "
                    "%d s: compiling it here", owner, _timeout["seconds"])
    return compile_here()
  payload, out_tree = pickle.loads(zlib.decompress(shared))
  # Lowering a program with a LAPACK kernel (the orthogonal initialiser's
  # QR) sets up jaxlib's LAPACK; a process that only loads one must do it
  # itself, or the program crashes in the kernel.
  _initialize_lapack()
  return serialize_executable.deserialize_and_load(payload, in_tree,
                                                   out_tree)


def _initialize_lapack() -> None:
  from jax._src.lax import linalg  # pylint: disable=g-import-not-at-top
  linalg.initialize_lapack()


def _client():
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  return jax_distributed.global_state.client


_sharing = {"lock": threading.Lock(), "on": None}


def _sharing_programs() -> bool:
  """Whether the processes share compiled programs: only if none of them
  has a persistent cache. On XLA:CPU (jax 0.10.2) an executable loaded
  from the cache serializes into one that computes wrong numbers (no
  error), so a process with a cache compiles (or loads) its own programs;
  the others must know it, or they would wait --distributed_timeout for
  each program. Agreed once per run through the coordination service."""
  import jax  # pylint: disable=g-import-not-at-top
  with _sharing["lock"]:  # the sweep compiles in two threads
    if _sharing["on"] is None:
      client, count = _client(), jax.process_count()
      client.key_value_set(
          f"{_SHARE_PREFIX}has_cache/{process_index()}",
          "1" if jax.config.jax_compilation_cache_dir else "0")
      with bounded("the check of which processes have a compilation cache"):
        caches = [client.blocking_key_value_get(
            f"{_SHARE_PREFIX}has_cache/{i}", 1000 * _timeout["seconds"])
                  for i in range(count)]
      _sharing["on"] = all(c == "0" for c in caches)
    return _sharing["on"]


def check_same_everywhere(text: str, what: str, advice: str) -> None:
  """ConfigError naming the processes whose `text` (e.g. their flags)
  differs from process 0's, then `advice`; one small gather."""
  if not is_multiprocess():
    return
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
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
