"""The benchmark's cost model: what one Adam update of one model must compute
and move, what this machine does at those sizes, and so the limit per update.

On a CPU an update of a tutorial-sized model is bound by two things: its
matmuls (tiny: a batch of 5 rows) and the dense Adam update of every
parameter (params, moments and gradients streamed through the cache). XLA:CPU
runs a device's kernels one after another, so the time of an update is at
least the sum of its matmul time at the machine's rate *at these shapes* and
its memory traffic at the bandwidth *at its working-set size* (one model's
~1 MB fits a core's L2 barely; a device's dozens of models stream through
L3). Both rates are measured here with small JAX kernels; `limit` combines
them and `fraction` is how close a measured update time comes to it.
"""

import statistics
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import models

FLOAT_BYTES = 4
# Adam over P parameters: the gradients written by the backward pass and
# read by the update; params, m and v read and written (7 + 1 passes).
ADAM_PASSES = 8
# Per sample and time step the forward keeps the 4 gates, c and h (6H
# floats); the backward reads them and writes as much again, plus the
# forward's own writes: about 3 passes over 6H floats.
ACTIVATION_PASSES = 3


class UpdateCost(NamedTuple):
  """One Adam update of one model."""
  params: int
  matmul_flops: float
  adam_bytes: float
  activation_bytes: float

  @property
  def bytes(self) -> float:
    return self.adam_bytes + self.activation_bytes


def param_count(config: config_lib.EchoConfig) -> int:
  shapes = jax.eval_shape(lambda: models.init_params(
      config, jax.random.PRNGKey(0)))
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)))


def update_cost(config: config_lib.EchoConfig) -> UpdateCost:
  """FLOPs and bytes of one update (a batch of `batch_size` windows).

  Matmul FLOPs as in the benchmark's FLOP count: per sample and step the
  recurrent h @ U forward, dh and dU backward (3 x 2*H*4H), the one-hot
  input's x @ W and dW when encoded so (a gather does none); per sample
  the head's h @ W, dh and dW (3 x 2*H*V).
  """
  h, v, t, b = config.hidden, config.n_unique, config.context, config.batch_size
  per_step = 3 * 2 * h * 4 * h
  if config.input_encoding == "one_hot":
    per_step += 2 * 2 * v * 4 * h
  flops = b * (t * per_step + 3 * 2 * h * v)
  params = param_count(config)
  return UpdateCost(
      params=params, matmul_flops=float(flops),
      adam_bytes=float(ADAM_PASSES * FLOAT_BYTES * params),
      activation_bytes=float(ACTIVATION_PASSES * FLOAT_BYTES * b * t * 6 * h))


def run_matmul_flops(config: config_lib.EchoConfig) -> float:
  """Matmul FLOPs of one model's whole training run (`update_cost`'s per
  update, for every update of every epoch; padded rows are computed)."""
  return update_cost(config).matmul_flops * config.num_batches * config.epochs


def median_seconds(fn, repeats: int, warm: bool = False) -> float:
  """Median wall time of `repeats` calls of fn (after one untimed call
  with `warm`: compilation, allocation)."""
  if warm:
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_gflops(batch: int, hidden: int, repeats: int = 3,
                  steps: int = 20000) -> float:
  """GFLOP/s of the recurrent matmul's shape ((batch, H) @ (H, 4H)), one
  after another on one device as in a scan over time steps."""
  u = jax.random.normal(jax.random.PRNGKey(0), (hidden, 4 * hidden)) * 0.1
  x = jnp.ones((batch, hidden), jnp.float32)

  @jax.jit
  def chain(x, u):
    # Each product feeds the next (as h_t feeds h_{t+1}), so none can be
    # skipped or batched together.
    return jax.lax.fori_loop(0, steps, lambda _, x: (x @ u)[:, :hidden], x)

  seconds = median_seconds(lambda: chain(x, u), repeats, warm=True)
  return 2 * batch * hidden * 4 * hidden * steps / seconds / 1e9


def stream_gbytes(working_set_bytes: float, repeats: int = 3,
                  target_bytes: float = 4e9, one_kernel: bool = False
                  ) -> float:
  """GB/s of a triad (a = b + s * c) over three arrays that together hold
  `working_set_bytes`, repeated until about `target_bytes` have moved: the
  bandwidth of the cache level (or memory) that holds that working set.

  `one_kernel`: each timed call is a single triad into a new array (for a
  working set of gigabytes, whose call dwarfs its launch), after ten
  untimed calls (an idle GPU's clocks take a while to rise); its bytes are
  exactly the count, where a loop's carried array may cost copies the count
  does not see. On one H200 it read 1,820-2,036 GB/s in four processes
  (2026-12-04), the loop 2,518, and a device-to-device copy 4.3 TB/s in
  the workplace's notes: the cause of the spread is not known."""
  n = max(1024, int(working_set_bytes / (3 * FLOAT_BYTES)))
  passes = (1 if one_kernel
            else max(2, int(target_bytes / (3 * FLOAT_BYTES * n))))
  b = jnp.ones((n,), jnp.float32)
  c = jnp.full((n,), 0.5, jnp.float32)

  @jax.jit
  def triad(b, c):
    if one_kernel:
      return b * 0.999 + 1e-3 * c
    # The result feeds the next pass, so each pass reads b and c and writes
    # a: 3 arrays moved per pass.
    return jax.lax.fori_loop(0, passes, lambda _, a: a * 0.999 + 1e-3 * c, b)

  for _ in range(10 if one_kernel else 1):
    jax.block_until_ready(triad(b, c))
  seconds = median_seconds(lambda: triad(b, c), repeats)
  return 3 * FLOAT_BYTES * n * passes / seconds / 1e9


def limit_seconds(cost: UpdateCost, gflops: float, gbytes: float,
                  models_per_device: int = 1) -> float:
  """Least time for one update of a device's models, run one kernel after
  another: matmuls at `gflops`, memory traffic at `gbytes`."""
  return models_per_device * (cost.matmul_flops / (gflops * 1e9)
                              + cost.bytes / (gbytes * 1e9))


def measure(config: config_lib.EchoConfig, models_per_device: int,
            repeats: int = 3) -> dict:
  """The cost model of `config` for one model and for a device holding
  `models_per_device`: cost, measured rates and the limit per update."""
  cost = update_cost(config)
  gflops = matmul_gflops(config.batch_size, config.hidden, repeats)
  one = stream_gbytes(cost.bytes, repeats)
  many = stream_gbytes(cost.bytes * models_per_device, repeats)
  return {
      "params": cost.params, "matmul_flops_per_update": cost.matmul_flops,
      "bytes_per_update": cost.bytes, "adam_bytes_per_update": cost.adam_bytes,
      "matmul_gflops_at_shape": gflops,
      "stream_gbytes_one_model": one,
      "models_per_device": models_per_device,
      "stream_gbytes_device_models": many,
      "limit_seconds_per_update_one_model": limit_seconds(cost, gflops, one),
      "limit_seconds_per_update_device": limit_seconds(
          cost, gflops, many, models_per_device)}


def fraction(limit_seconds_per_update: float, measured_seconds_per_update: float
             ) -> float:
  """Share of the limit a measured update reaches (1.0: at the limit)."""
  return limit_seconds_per_update / measured_seconds_per_update
