"""A run's compiled programs, sharded over seeds: initialisation, each
chunk's data, the chunk's fit and the shared test sequences.

Every model runs the same programs on its slice of a 1-D device mesh
(`seed_mesh`, with `shard_map`: one CPU core, many GPUs or a TPU slice,
unchanged); within a device the models are `vmap`ped (a lone model runs
unbatched, `over_models`). The one runner (`runner.compile_task`) compiles
every run's training with `compile_training`.

Programs that run once per run or per chunk (initialisation, data, test
sequences) are compiled with LLVM's -O1 on CPU (`compile_light`): they are
mostly random-number loops, about 1 s of the 2.1 s it took to compile one
echo_lag run as one -O2 program; -O1 compiles them 25-40% faster, they run in
milliseconds either way, and their results are the same bits (the data are
integer arithmetic; tests compare every kind of initialisation).
"""

import concurrent.futures
import functools
import math
import os
from typing import Any, Callable, NamedTuple

from absl import logging
import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import models
from echo_jax.core import train as train_lib
from echo_jax.runtime import distributed
from echo_jax.runtime import memory

SEED_AXIS = "seed"

# The end epoch is a replicated int32 scalar: data, not part of the program.
END_EPOCH_SPEC = jax.ShapeDtypeStruct((), jnp.int32)


def seed_mesh(num_models: int, max_devices: int | None = None) -> Mesh:
  """A 1-D mesh over as many devices as there are models (at most all, or
  at most `max_devices`)."""
  available = jax.devices()[:max_devices or jax.device_count()]
  return Mesh(np.array(available[:max(1, min(num_models, len(available)))]),
              (SEED_AXIS,))


def padded_models(num_models: int, mesh: Mesh) -> int:
  """Models rounded up to a multiple of the mesh size (extras discarded)."""
  return math.ceil(num_models / mesh.size) * mesh.size


def seed_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(SEED_AXIS))


def per_device(fn, mesh: Mesh, in_specs, donate: bool = False):
  """jit(shard_map(fn)): each device runs `fn` on its slice of the seeds.

  check_vma=False: models never communicate, and zero initial carries are
  device-invariant values inside per-device scans.
  """
  return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs,
                               out_specs=P(SEED_AXIS), check_vma=False),
                 donate_argnums=(0,) if donate else ())


def with_sharding(tree, mesh: Mesh):
  sharding = seed_sharding(mesh)
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), tree)


def light_options() -> dict[str, Any] | None:
  """Compiler options of `compile_light`: LLVM -O1 on CPU; elsewhere the
  default. (-O0 would be faster still but changes the initialisations'
  floating-point bits and runs the data loops ~5x slower.)"""
  if jax.default_backend() == "cpu":
    return {"xla_backend_optimization_level": 1}
  return None


def compile_light(lowered, mesh: Mesh | None = None):
  """Compiles a program that runs once per run or chunk (see the module
  docstring); `mesh`: the program's, if it spans the processes (see
  `distributed.compile`)."""
  return distributed.compile(lowered, mesh, light_options())


# Which process owns each shared program of a task (`compile_program`),
# counted on from the one its key picks: with two processes, one compiles
# the fit and the data while the other compiles the initialisation and the
# evaluation, instead of one process compiling all four.
OWNER_SHIFT = {"fit": 0, "data": 0, "init": 1, "evaluate": 1}


def compile_program(jitted, args: tuple[Any, ...], mesh: Mesh,
                    program_key: str | None, name: str, light: bool = False):
  """`jitted.lower(*args)`, compiled (as `compile_light` if `light`); with
  the `program_key` of its task, shared between processes as the task's
  program `name` (`distributed.compile_jitted`: only the program's owner
  lowers it)."""
  options = light_options() if light else None
  if program_key is None:
    return distributed.compile(jitted.lower(*args), mesh, options)
  return distributed.compile_jitted(
      jitted, args, f"{program_key}/{name}", mesh, options,
      owner=(program_key, OWNER_SHIFT[name.split("/")[0]]))


def make_init_many(config: config_lib.EchoConfig, mesh: Mesh,
                   init_params: Callable[[chex.PRNGKey], chex.ArrayTree]
                   | None = None):
  """init_many(keys_S) -> TrainState_S at epoch 0, sharded over seeds;
  `init_params(key)` makes one model's parameters (default: the config's
  EchoLSTM)."""
  init_state = train_lib.make_init_state(config)
  if init_params is None:
    init_params = lambda key: models.init_params(config, key)

  def init_local(keys_S):
    init_keys, data_keys = jax.vmap(train_lib.split_key)(keys_S)
    # lax.map, not vmap: a batched orthogonal init (QR) deadlocked with
    # several host devices; initialisation is cheap either way.
    params_S = jax.lax.map(init_params, init_keys)
    return jax.vmap(init_state)(params_S, data_keys)

  return per_device(init_local, mesh, P(SEED_AXIS))


class TrainPrograms(NamedTuple):
  """Compiled: init(keys_M) -> TrainState_M at epoch 0; make_data(state_M,
  variants_M) -> the next chunk's data_M; fit(state_M, data_M, end_epoch,
  variants_M) -> (state_M, EpochMetrics_M), donating state_M."""
  init: Any
  make_data: Any
  fit: Any
  state_spec: Any  # TrainState_M of ShapeDtypeStructs

  def run_chunk(self, state_M, end_epoch, variants_M=None):
    """One chunk: its data, then its fit (as `train.ChunkFns.__call__`)."""
    return self.fit(state_M, self.make_data(state_M, variants_M), end_epoch,
                    variants_M)


def chunk_programs(chunk: train_lib.ChunkFns, mesh: Mesh, with_variants: bool):
  """(make_data, fit) of `chunk` for models sharded over `mesh`, jitted, not
  yet compiled: make_data(state_M, variants_M), fit(state_M, data_M,
  end_epoch, variants_M) donating state_M (variants_M None unless
  `with_variants`)."""
  variant_axis = 0 if with_variants else None
  variant_spec = P(SEED_AXIS) if with_variants else P()
  seeds = P(SEED_AXIS)
  make_data = per_device(
      jax.vmap(chunk.make_data, in_axes=(0, variant_axis)), mesh,
      (seeds, variant_spec))
  fit = per_device(
      over_models(chunk.fit, (0, 0, None, variant_axis), models_per_block()),
      mesh,
      (seeds, seeds, P(), variant_spec), donate=True)
  return make_data, fit


# Models per block of a device's fit (see `over_models`), from
# ECHO_JAX_MODELS_PER_BLOCK: unset or "auto" (AUTO, the default) runs a CPU
# device's models in the largest vmapped blocks whose training state fits
# CACHE_BLOCK_BYTES (`cache_block`) and vmaps all on other backends (a GPU
# is fastest so: at 1,024 echo_lag models on an H200, 1,477 models/s all
# vmapped against 558 in blocks of 64 that keep their state in L2); "all"
# vmaps all of a device's models together on every backend (the layout
# before AUTO); b runs blocks of b. Blocks move results in their last bits:
# every results table was re-measured with AUTO when it became the default
# (issue #14).
BLOCK_ENV = "ECHO_JAX_MODELS_PER_BLOCK"
AUTO = "auto"

# The training state (parameters and Adam's two moments) a block of models
# should keep within, so that an update's streaming stays in a core's cache.
# Measured (benchmark `layouts`, docs/performance.md): blocks of up to ~4 MB
# (8 echo_lag models, 4-6 hidden-64 sweep models) trained 1.7-1.8x faster
# than vmapping a device's 32-36 models together, and where all of a
# device's models fit (36 hidden-8 models, 2.5 MB) one vmap stayed fastest.
CACHE_BLOCK_BYTES = 4 * 2**20


def models_per_block() -> int | str | None:
  """ECHO_JAX_MODELS_PER_BLOCK: AUTO (unset or "auto"), None ("all": all
  vmapped), or b >= 1."""
  value = os.environ.get(BLOCK_ENV, "").strip().lower()
  if value in ("", AUTO):
    return AUTO
  if value == "all":
    return None
  if not value.isdigit() or int(value) < 1:
    raise config_lib.ConfigError(
        f"{BLOCK_ENV}={value} must be 'all', 'auto' or an integer >= 1")
  return int(value)


def cache_block(count: int, bytes_per_model: int) -> int | None:
  """The block size AUTO picks for `count` models on a CPU device whose
  training state is `bytes_per_model` each: None (all vmapped) when they all
  fit CACHE_BLOCK_BYTES, else the largest divisor of `count` that does
  (at least 1)."""
  if count * bytes_per_model <= CACHE_BLOCK_BYTES:
    return None
  fit = max(1, CACHE_BLOCK_BYTES // max(1, bytes_per_model))
  return max(d for d in range(1, min(fit, count) + 1) if count % d == 0)


def over_models(fn, in_axes: tuple[int | None, ...],
                block: int | str | None = None):
  """jax.vmap(fn, in_axes) over a device's models, except that a device
  holding one model runs it unbatched, and with `block` (dividing the
  device's model count) the models run in vmapped blocks of `block`, one
  block after another (`lax.map`; block 1: one model at a time). AUTO
  chooses the block on CPU by the size of the first per-model argument
  (the training state; `cache_block`) and vmaps all elsewhere.

  A size-1 batch axis is not free on XLA:CPU: one echo_lag model trained
  ~10% faster unbatched (alternated runs, 0.53-0.57 s vs 0.58-0.67 s
  vmapped; under perf, layout copies of the backward's transposed operands
  took 9% of samples instead of 12%). The unbatched program's results
  differ from the vmapped one's in their last bits (in the case checked,
  they then matched model 0 of a vmapped pair bit for bit). Devices with
  two or more models keep vmap, so those results are unchanged.
  """
  vmapped = jax.vmap(fn, in_axes=in_axes)

  def run(*args):
    per_model = [arg for arg, axis in zip(args, in_axes) if axis == 0]
    count = jax.tree.leaves(per_model)[0].shape[0]
    size = block
    if size == AUTO:
      size = None
      if jax.default_backend() == "cpu":
        state_bytes = memory.tree_bytes(per_model[0])
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
      return vmapped(*args)
    # Per-model arguments split into (count / size, size, ...) and mapped
    # over their first axis; each block runs as `run` of `size` models
    # (whose state fits: AUTO then vmaps them).
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


def compile_training(config: config_lib.EchoConfig, chunk: train_lib.ChunkFns,
                     mesh: Mesh, keys_M, variants_M=None,
                     init_params: Callable[[chex.PRNGKey], chex.ArrayTree]
                     | None = None,
                     program_key: str | None = None,
                     alongside: Callable[[Any], Any] | None = None
                     ) -> tuple[TrainPrograms, Any]:
  """Compiles initialisation (`make_init_many`), a chunk's data and its fit
  for the models of `keys_M` (arrays or ShapeDtypeStructs, sharded over
  `mesh`), each model with its entry of `variants_M` (None: no variants);
  `program_key`: what names these programs whole across processes
  (`compile_program`), None: their text does; `alongside(state_spec)`
  (e.g. compiling the evaluation) runs while the fit compiles. Returns the
  programs and what `alongside` returned (None without one).

  The light programs and `alongside` compile in worker threads while the
  fit is traced and compiled here (XLA releases the GIL): on two cores, one
  echo_lag model's programs took 2.17 s instead of 2.47 s (medians of five
  alternated runs).
  """
  init_many = make_init_many(config, mesh, init_params)
  make_data, fit = chunk_programs(chunk, mesh, variants_M is not None)
  with concurrent.futures.ThreadPoolExecutor(2) as worker:
    # Output types by tracing alone (jit keeps the trace for the lowering):
    # a process that loads a shared program never lowers it.
    state_spec = with_sharding(jax.eval_shape(init_many, keys_M), mesh)
    side = (None if alongside is None
            else worker.submit(alongside, state_spec))
    light = worker.submit(_compile_light_pair, init_many, (keys_M,),
                          make_data, state_spec, variants_M, mesh,
                          program_key)
    data_spec = with_sharding(
        jax.eval_shape(make_data, state_spec, variants_M), mesh)
    fit = compile_program(fit, (state_spec, data_spec, END_EPOCH_SPEC,
                                variants_M), mesh, program_key, "fit")
    init_compiled, data_compiled = light.result()
    return (TrainPrograms(init_compiled, data_compiled, fit, state_spec),
            None if side is None else side.result())


def _compile_light_pair(init_many, init_args, make_data, state_spec,
                        variants_M, mesh, program_key):
  return (compile_program(init_many, init_args, mesh, program_key, "init",
                          light=True),
          compile_program(make_data, (state_spec, variants_M), mesh,
                          program_key, "data", light=True))


def test_keys_program(config: config_lib.EchoConfig):
  """Compiled key -> the keys of the config's test set (split(key, S));
  compiled once per process for each test-set size S."""
  return _test_keys_program(config.eval_sequences)


@functools.lru_cache(maxsize=8)
def _test_keys_program(count: int):
  return compile_light(jax.jit(
      lambda key: jax.random.split(key, count)).lower(
          jax.ShapeDtypeStruct((2,), jnp.uint32)))


def test_set(config: config_lib.EchoConfig, key: chex.PRNGKey
             ) -> data.TestSet:
  """`data.test_sequences(key, ...)` of the config's size as a
  `data.TestSet` (keys: what the runner evaluates on, 8 bytes a
  sequence)."""
  return data.TestSet(test_keys_program(config)(key), config.length,
                      config.n_unique)


def test_set_spec(config: config_lib.EchoConfig, num_sequences: int
                  ) -> data.TestSet:
  """A `test_set` of `num_sequences` sequences (e.g. a piece of the run's),
  to lower evaluation programs with."""
  return data.TestSet(
      jax.ShapeDtypeStruct((num_sequences, 2), jnp.uint32),
      config.length, config.n_unique)
