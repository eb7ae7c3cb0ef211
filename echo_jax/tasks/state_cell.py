"""A state-map cell's task: the windowed echo trained stateful and
stateless at one (lag, window, batch size), and what the carried state holds.

The tutorial's framing (`data.frame_windows`, N = length - lag - window + 1
rows): the lag 1 / window 5 / batch 5 cell is `ignore_state`'s point, any
cell `experiments.echo_lag --lag=L --context=W --batch_size=B`. One program
per cell: stateful and stateless models (variants 1 and 0) x paired seeds,
fitted as Keras does (`train.make_train`), the carry a traced choice.

Evaluation scores every model from a zero state and with the carry across
batches (the tutorial's `predict` after `reset_states()`), and measures the
state carried into each window j >= batch (window j - batch's final state):
its mean norms, and how much of window j - batch's values and of window j's
target a linear probe (ridge regression onto one-hot values, fitted on test
sequences [0, P), scored on [P, 2P)) decodes from it.
"""

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate as evaluate_lib
from echo_jax.core import models
from echo_jax.core import train as train_lib
from echo_jax.tasks import sweep_cell
from echo_jax.tasks import task as task_lib

# In a batch-size list: the whole sequence as one batch (N differs by cell).
WHOLE = 0
# Sequences per step of the evaluation loop (bounds its memory).
EVAL_BATCH = 100
# At most the runner's piece (`runtime.runner.PIECE_SEQUENCES`): the
# evaluator gets every test sequence at once, so one probe is fitted per run.
MAX_EVAL_SEQUENCES = 16_000
# Test sequences the probe is fitted on, and as many it is scored on (at
# most half the test set each); accuracies use every test sequence.
PROBE_SEQUENCES = 200
# Sequences per step of the probe's passes (their one-hot values and
# decoded logits are large: small steps stay in cache).
PROBE_BATCH = 10
# Ridge penalty of the probe, relative to the mean diagonal of F^T F.
PROBE_RIDGE = 1e-3
# Newton-Schulz iterations of the probe's inverse (matmuls only: no batched
# LAPACK call under vmap, which hung on two host devices).
PROBE_ITERATIONS = 40


def batch_name(spec: int) -> str:
  return "whole" if spec == WHOLE else str(spec)


@dataclasses.dataclass(frozen=True)
class Grid:
  lags: tuple[int, ...]
  windows: tuple[int, ...]
  batch_sizes: tuple[int, ...]  # WHOLE: the whole sequence

  def to_dict(self) -> dict[str, list[Any]]:
    return {"lags": list(self.lags), "windows": list(self.windows),
            "batch_sizes": [batch_name(b) for b in self.batch_sizes]}


def batch_of(config: config_lib.EchoConfig, lag: int, window: int,
             spec: int) -> int:
  n = config.replace(lag=lag, context=window).num_samples
  return n if spec == WHOLE else spec


def cell_status(config: config_lib.EchoConfig, lag: int, window: int,
                spec: int) -> str:
  """ok; impossible (lag >= window: the target is not in the window); or
  not_divisor (stateful training needs the batch to divide the N rows)."""
  if lag >= window:
    return "impossible"
  n = config.replace(lag=lag, context=window).num_samples
  batch = batch_of(config, lag, window, spec)
  return "ok" if batch <= n and n % batch == 0 else "not_divisor"


def cells(config: config_lib.EchoConfig, grid: Grid
          ) -> list[tuple[int, int, int]]:
  """(lag, window, batch) of every cell to train, one program each; a batch
  size named twice (whole and its N) trains once. Window-major, then lag
  and batch."""
  return sorted({(lag, window, batch_of(config, lag, window, s))
                 for lag in grid.lags for window in grid.windows
                 for s in grid.batch_sizes
                 if cell_status(config, lag, window, s) == "ok"},
                key=lambda cell: (cell[1], cell[0], cell[2]))


def validate(config: config_lib.EchoConfig, grid: Grid) -> None:
  """Raises ConfigError (one line) unless the grid can be trained."""
  if config.framing != "window":
    raise config_lib.ConfigError(
        f"framing={config.framing} cannot be mapped: the map's cells are "
        "windows (framing=window)")
  sweep_cell.check_axis("windows", grid.windows, 1, config.length,
                        f" (length={config.length})")
  sweep_cell.check_axis("lags", grid.lags, 0, max(grid.windows) - 1,
                        " (a lag must be below the largest window)")
  sweep_cell.check_axis(
      "batch_sizes", grid.batch_sizes, 0, config.length,
      f" (0 or whole: the whole sequence; length={config.length})")
  config_lib.validate(config.replace(lag=0, context=1))
  if not 2 <= config.eval_sequences <= MAX_EVAL_SEQUENCES:
    raise config_lib.ConfigError(
        f"eval_sequences={config.eval_sequences} must be in [2, "
        f"{MAX_EVAL_SEQUENCES}] (the probe fits on some test sequences and "
        "is scored on others, all scored at once)")
  for lag in grid.lags:
    for window in grid.windows:
      samples = config.replace(lag=lag, context=window).num_samples
      if lag < window and samples < 1:
        raise config_lib.ConfigError(
            f"windows: {window} with lag {lag} leaves no sample in a "
            f"sequence of length={config.length}")
  if not cells(config, grid):
    raise config_lib.ConfigError(
        "batch_sizes: none divides the samples per sequence of any "
        "possible (lag, window) cell")


def cell_config(config: config_lib.EchoConfig, lag: int, window: int,
                batch: int) -> config_lib.EchoConfig:
  """A cell's static shapes; stateful so that validation checks that the
  batch divides N (each model's carry is chosen by its variant)."""
  return config.replace(lag=lag, context=window, batch_size=batch,
                        stateful=True)


STATEFUL, STATELESS = 1, 0


def make_rollout(shape_config: config_lib.EchoConfig):
  """rollout(params, windows_NxC) -> (logits from a zero state (N, V),
  logits with the carry across batches (N, V), carried state at each
  window's start (c_NxH, h_NxH)) for one sequence."""
  apply = models.make_apply(shape_config)
  n, b = shape_config.num_samples, shape_config.batch_size
  k, hidden = n // b, shape_config.hidden

  def rollout(params, windows_NxC):
    zero_logits_NxV, _ = apply(params, windows_NxC, None)

    def step(carry, ids_BxC):
      logits_BxV, final = apply(params, ids_BxC, carry)
      return final, (logits_BxV, carry)

    _, (logits_KxBxV, (c_KxBxH, h_KxBxH)) = jax.lax.scan(
        step, models.zero_carry(b, hidden), windows_NxC.reshape(k, b, -1))
    return (zero_logits_NxV, logits_KxBxV.reshape(n, -1),
            (c_KxBxH.reshape(n, hidden), h_KxBxH.reshape(n, hidden)))

  return rollout


def _inverse_spd(a_FxF: chex.Array) -> chex.Array:
  """Newton-Schulz inverse of a symmetric positive definite matrix."""
  eye = jnp.eye(a_FxF.shape[0], dtype=a_FxF.dtype)
  x = eye / jnp.trace(a_FxF)
  return jax.lax.fori_loop(0, PROBE_ITERATIONS,
                           lambda _, x: x @ (2 * eye - a_FxF @ x), x)


def make_evaluate(shape_config: config_lib.EchoConfig, eval_batch: int,
                  probe_sequences: int = PROBE_SEQUENCES):
  """evaluate(params, sequences_SxL, variant) -> dict of counts and sums;
  `probe_correct_P`: the probe's correct decodes of window j - batch's C
  values (oldest first), then of window j's target."""
  rollout = make_rollout(shape_config)
  n, b, c = shape_config.num_samples, shape_config.batch_size, \
      shape_config.context
  vocab, hidden = shape_config.n_unique, shape_config.hidden
  features = 2 * hidden + 1
  carried_rows = jnp.arange(n) >= b  # windows whose start state is carried

  def one_sequence(params, sequence_L):
    windows_NxC, targets_N = data.frame_windows(sequence_L,
                                                shape_config.lag, c)
    zero_NxV, carried_NxV, (c_NxH, h_NxH) = rollout(params, windows_NxC)
    f_NxF = jnp.concatenate([h_NxH, c_NxH, jnp.ones((n, 1))], -1)
    # Values to decode from row j's start state: window j - b, then the
    # target of window j (rows j < b are masked out).
    source_NxC = jnp.roll(windows_NxC, b, axis=0)
    values_NxP = jnp.concatenate([source_NxC, targets_N[:, None]], -1)
    return {
        "correct_zero": jnp.sum(jnp.argmax(zero_NxV, -1) == targets_N),
        "correct_carried": jnp.sum(jnp.argmax(carried_NxV, -1) == targets_N),
        "h_norm": jnp.sum(jnp.linalg.norm(h_NxH, axis=-1) * carried_rows),
        "c_norm": jnp.sum(jnp.linalg.norm(c_NxH, axis=-1) * carried_rows),
    }, f_NxF, values_NxP

  def batches(sequences_SxL, fn, init, size=eval_batch):
    """Sums fn(sequences, valid mask) over `size` sequences at a time."""
    num = sequences_SxL.shape[0]
    size = min(size, num)
    steps = -(-num // size)
    padded = jnp.pad(sequences_SxL, ((0, steps * size - num), (0, 0)))
    valid = (jnp.arange(steps * size) < num).reshape(steps, size)
    total, _ = jax.lax.scan(
        lambda total, chunk: (jax.tree.map(jnp.add, total, fn(*chunk)), None),
        init, (padded.reshape(steps, size, -1), valid))
    return total

  def evaluate(params, sequences_SxL, variant):
    del variant  # both ways, whichever way the model was trained
    # Drawn whole from its keys (a data.TestSet): the probe splits it.
    sequences_SxL = data.sequences_of(sequences_SxL)
    framed = jax.vmap(lambda s: one_sequence(params, s))

    def scores(sums_B, valid_B):
      return jax.tree.map(
          lambda v: jnp.sum(jnp.where(valid_B, v, 0), 0), sums_B)

    def fit_stats(seqs_BxL, valid_B):
      sums_B, f_BxNxF, values_BxNxP = framed(seqs_BxL)
      mask_BxN = (valid_B[:, None] & carried_rows[None]).astype(jnp.float32)
      f_BxNxF = f_BxNxF * mask_BxN[..., None]
      onehot_BxNxPxV = jax.nn.one_hot(values_BxNxP, vocab)
      return (scores(sums_B, valid_B),
              jnp.einsum("bnf,bng->fg", f_BxNxF, f_BxNxF),
              jnp.einsum("bnf,bnpv->pvf", f_BxNxF, onehot_BxNxPxV))

    def probe_scores(w_PxFxV):
      def fn(seqs_BxL, valid_B):
        sums_B, f_BxNxF, values_BxNxP = framed(seqs_BxL)
        decoded_BxNxP = jnp.argmax(
            jnp.einsum("bnf,pfv->bnpv", f_BxNxF, w_PxFxV), -1)
        hits_BxNxP = ((decoded_BxNxP == values_BxNxP)
                      & valid_B[:, None, None] & carried_rows[None, :, None])
        return scores(sums_B, valid_B), jnp.sum(hits_BxNxP, (0, 1))
      return fn

    def accuracy_only(seqs_BxL, valid_B):
      return scores(framed(seqs_BxL)[0], valid_B)

    zero_sums = jax.tree.map(
        lambda x: jnp.zeros(x.shape[1:], x.dtype),
        jax.eval_shape(framed, sequences_SxL[:1])[0])
    num = sequences_SxL.shape[0]
    probe = min(probe_sequences, num // 2)
    sums_a, ftf_FxF, fty_PxVxF = batches(
        sequences_SxL[:probe], fit_stats,
        (zero_sums, jnp.zeros((features, features)),
         jnp.zeros((c + 1, vocab, features))), PROBE_BATCH)
    ridge = PROBE_RIDGE * jnp.trace(ftf_FxF) / features + 1e-6
    inverse_FxF = _inverse_spd(ftf_FxF + ridge * jnp.eye(features))
    w_PxFxV = jnp.einsum("fg,pvg->pfv", inverse_FxF, fty_PxVxF)
    sums_b, probe_correct_P = batches(
        sequences_SxL[probe:2 * probe], probe_scores(w_PxFxV),
        (zero_sums, jnp.zeros((c + 1,), jnp.int32)), PROBE_BATCH)
    out = jax.tree.map(jnp.add, sums_a, sums_b)
    if num > 2 * probe:
      out = jax.tree.map(jnp.add, out, batches(
          sequences_SxL[2 * probe:], accuracy_only, zero_sums))
    out["probe_correct_P"] = probe_correct_P
    return out

  return evaluate


def cell_task(config: config_lib.EchoConfig, lag: int, window: int,
              batch: int) -> task_lib.Task:
  """One cell: a stateful and a stateless model per seed (variants 1, 0)."""
  shape_config = cell_config(config, lag, window, batch)
  evaluate = make_evaluate(shape_config, EVAL_BATCH)
  return task_lib.Task(
      f"lag {lag} window {window} batch {batch}", shape_config,
      train_lib.make_train(shape_config,
                           stateful_fn=lambda variant: variant == STATEFUL),
      lambda *args: evaluate_lib.Scores(evaluate(*args)),
      variants=(STATEFUL, STATELESS),
      variant_names=("stateful", "stateless"),
      settings={"probe_sequences": PROBE_SEQUENCES})
