"""Random integer sequences, one-hot codes and framings: pure, shape-static."""

import chex
import flax
import jax
import jax.numpy as jnp


def generate_sequence(key: chex.PRNGKey, length: int, n_unique: int
                      ) -> chex.Array:
  return jax.random.randint(key, (length,), 0, n_unique, dtype=jnp.int32)


@flax.struct.dataclass
class TestSet:
  """Test sequences as keys: sequence s is generate_sequence(keys[s], length,
  n_unique), drawn when scored: 8 bytes each, and the same bits as an array of
  them (10M sequences drawn at once took 6.6 GB)."""
  keys: chex.Array  # (S, 2) uint32, or (2,): one sequence's key
  length: int = flax.struct.field(pytree_node=False)
  n_unique: int = flax.struct.field(pytree_node=False)


def sequences_of(sequences) -> chex.Array:
  """A TestSet's (or one item's) sequences, drawn; arrays pass through."""
  if not isinstance(sequences, TestSet):
    return sequences
  draw = lambda key: generate_sequence(key, sequences.length,
                                       sequences.n_unique)
  keys = sequences.keys
  return draw(keys) if keys.ndim == 1 else jax.vmap(draw)(keys)


def num_sequences(sequences) -> int:
  """S of an (S, L) array of sequences or of a TestSet of S keys."""
  return jax.tree.leaves(sequences)[0].shape[0]


def one_hot_decode(encoded_LxK: chex.Array) -> chex.Array:
  """Argmax of the last axis: decodes one-hot codes and logits."""
  return jnp.argmax(encoded_LxK, axis=-1).astype(jnp.int32)


def frame_windows(sequence_L: chex.Array, lag: int, context: int
                  ) -> tuple[chex.Array, chex.Array]:
  """(windows_NxC, targets_N): the `context` values up to t, oldest first, and
  the value at t - lag, for t = lag + context - 1 .. length - 1. These are the
  tutorial's samples: all 25 for echo current (lag 0, context 1), X[1:] with
  y = X[:-1] (24) for the beginner's mistake (lag 1, context 1), and 20 for
  the windowed echo (lag 1, context 5)."""
  (length,) = sequence_L.shape
  n = length - lag - context + 1  # the rows whose target has a full window
  if n < 1:
    raise ValueError(
        f"length={length} leaves no window for lag={lag}, context={context}")
  ends_N = jnp.arange(n) + lag + context - 1
  offsets_C = jnp.arange(context) - (context - 1)
  windows_NxC = sequence_L[ends_N[:, None] + offsets_C[None, :]]
  targets_N = sequence_L[ends_N - lag]
  return windows_NxC, targets_N
