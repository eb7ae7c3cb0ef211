"""Random integer sequences, their one-hot codes and supervised framings.

Everything is pure and shape-static, so it runs inside `jit`, `vmap` and
`lax.scan`. Samples are kept as integer ids; the model either gathers rows of
its input kernel with them or multiplies their one-hot codes (same math).
"""

import chex
import flax
import jax
import jax.numpy as jnp


def generate_sequence(key: chex.PRNGKey, length: int, n_unique: int
                      ) -> chex.Array:
  """`length` integers drawn uniformly from [0, n_unique), shape (length,)."""
  return jax.random.randint(key, (length,), 0, n_unique, dtype=jnp.int32)


@flax.struct.dataclass
class TestSet:
  """Test sequences held as their keys: sequence s is
  generate_sequence(keys[s], length, n_unique), drawn when it is scored.

  Eight bytes per sequence instead of 4 x length, and no all-at-once draw:
  drawing 10 million sequences of 25 at once peaked at 6.6 GB of memory;
  their keys are 80 MB. The sequences are the same bits either way (the
  same integer arithmetic per key).
  """
  keys: chex.Array  # (S, 2) uint32, or (2,): one sequence's key
  length: int = flax.struct.field(pytree_node=False)
  n_unique: int = flax.struct.field(pytree_node=False)


def test_set(key: chex.PRNGKey, count: int, length: int, n_unique: int
             ) -> TestSet:
  """`count` test sequences, one per key of split(key, count), as keys
  (`sequences_of` draws them)."""
  return TestSet(jax.random.split(key, count), length, n_unique)


def sequences_of(sequences) -> chex.Array:
  """The sequences of a TestSet (or of one of its items), drawn from their
  keys; an array of sequences is returned as it is."""
  if not isinstance(sequences, TestSet):
    return sequences
  draw = lambda key: generate_sequence(key, sequences.length,
                                       sequences.n_unique)
  keys = sequences.keys
  return draw(keys) if keys.ndim == 1 else jax.vmap(draw)(keys)


def num_sequences(sequences) -> int:
  """S of an (S, L) array of sequences or of a TestSet of S keys."""
  return jax.tree.leaves(sequences)[0].shape[0]


def one_hot_encode(sequence_L: chex.Array, n_unique: int) -> chex.Array:
  """(..., L) ints -> (..., L, n_unique) float32 one-hot rows."""
  return jax.nn.one_hot(sequence_L, n_unique, dtype=jnp.float32)


def one_hot_decode(encoded_LxK: chex.Array) -> chex.Array:
  """Inverse of `one_hot_encode` (argmax of the last axis); works on
  probabilities or logits too."""
  return jnp.argmax(encoded_LxK, axis=-1).astype(jnp.int32)


def num_windows(length: int, lag: int, context: int) -> int:
  """Rows kept by `frame_windows`: those whose target has a full window."""
  return length - lag - context + 1


def frame_windows(sequence_L: chex.Array, lag: int, context: int
                  ) -> tuple[chex.Array, chex.Array]:
  """Frames a sequence as (window of the last `context` values, value `lag`
  steps before the window's last step).

  Row i ends at t = i + lag + context - 1, so its target X(t - lag) itself has
  `context - 1` values behind it; rows without that are dropped. This keeps
  exactly the tutorial's samples: echo current (lag 0, context 1) keeps all 25,
  the beginner's mistake (lag 1, context 1) keeps X[1:] with y = X[:-1] (24),
  the windowed echo (lag 1, context 5) keeps 20.

  Returns:
    windows_NxC: int32 (N, context), oldest value first.
    targets_N: int32 (N,).
  """
  (length,) = sequence_L.shape
  n = num_windows(length, lag, context)
  if n < 1:
    raise ValueError(
        f"length={length} leaves no window for lag={lag}, context={context}")
  ends_N = jnp.arange(n) + lag + context - 1
  offsets_C = jnp.arange(context) - (context - 1)
  windows_NxC = sequence_L[ends_N[:, None] + offsets_C[None, :]]
  targets_N = sequence_L[ends_N - lag]
  return windows_NxC, targets_N
