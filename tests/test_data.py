"""Framings against a plain numpy construction of the tutorial's windows."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import numpy as np

from echo_jax.core import data


def tutorial_windows(sequence, lag, context, n_unique):
  """The tutorial's recipe in numpy: one-hot, shifted copies (NaN-padded, as
  pandas' shift does) concatenated, rows with missing values dropped.

  The tutorial keeps rows from index lag + context - 1 on (its echo-lag code,
  `values[5:]` with `encoded[4:-1]`, is this with lag 1, context 5).
  """
  encoded = np.eye(n_unique)[sequence]
  length = len(sequence)

  def shift(a, k):  # pandas DataFrame.shift(k)
    out = np.full(a.shape, np.nan)
    out[k:] = a[:length - k]
    return out

  columns = [shift(encoded, k) for k in range(context - 1, -1, -1)]
  frame = np.concatenate(columns, axis=1)
  target = shift(encoded, lag)
  first = lag + context - 1
  x = frame[first:].reshape(-1, context, n_unique)
  y = target[first:]
  assert not np.isnan(x).any() and not np.isnan(y).any()
  return x.argmax(-1), y.argmax(-1)


class FramingTest(parameterized.TestCase):

  @parameterized.parameters(
      (0, 1), (1, 1), (1, 5), (0, 5), (3, 5), (4, 5), (2, 3), (7, 10))
  def test_matches_numpy_construction(self, lag, context):
    sequence = np.random.default_rng(lag * 10 + context).integers(0, 20, 25)
    windows, targets = data.frame_windows(jax.numpy.asarray(sequence), lag,
                                          context)
    want_windows, want_targets = tutorial_windows(sequence, lag, context, 20)
    np.testing.assert_array_equal(windows, want_windows)
    np.testing.assert_array_equal(targets, want_targets)

  def test_tutorial_sample_counts(self):
    sequence = jax.numpy.arange(25)
    for lag, context, want in ((0, 1, 25),   # echo current
                               (1, 1, 24),   # beginner's mistake
                               (1, 5, 20)):  # echo lag
      _, targets = data.frame_windows(sequence, lag, context)
      self.assertEqual(targets.shape, (want,))

  def test_beginners_mistake_framing_is_the_tutorials_shift(self):
    sequence = np.arange(25) * 3 % 100
    x, y = data.frame_windows(jax.numpy.asarray(sequence), 1, 1)
    np.testing.assert_array_equal(x[:, 0], sequence[1:])   # X = encoded[1:]
    np.testing.assert_array_equal(y, sequence[:-1])        # y = encoded[:-1]

  def test_echo_lag_framing_is_the_tutorials_table(self):
    # The tutorial's illustration, for the sequence 1..10 and a 5-step window:
    # rows "1 2 3 4 5 -> 4" ... "6 7 8 9 10 -> 9" (but its code also drops
    # the first complete window; values[5:], so 10 - 5 = 5 rows).
    x, y = data.frame_windows(jax.numpy.arange(1, 11), 1, 5)
    np.testing.assert_array_equal(x[0], [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(y, [5, 6, 7, 8, 9])

  def test_too_short_raises(self):
    with self.assertRaises(ValueError):
      data.frame_windows(jax.numpy.arange(4), 1, 5)


class SequenceTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_generate_sequence(self):
    generate = self.variant(data.generate_sequence, static_argnums=(1, 2))
    sequence = generate(jax.random.PRNGKey(0), 1000, 7)
    chex.assert_shape(sequence, (1000,))
    chex.assert_type(sequence, int)
    self.assertEqual(set(np.asarray(sequence).tolist()), set(range(7)))
    other = generate(jax.random.PRNGKey(1), 1000, 7)
    self.assertFalse(np.array_equal(sequence, other))

  @chex.variants(with_jit=True, without_jit=True)
  def test_one_hot_round_trip(self):
    sequence = jax.random.randint(jax.random.PRNGKey(2), (25,), 0, 100)
    encoded = jax.nn.one_hot(sequence, 100)
    chex.assert_shape(encoded, (25, 100))
    np.testing.assert_array_equal(encoded.sum(-1), 1.0)
    np.testing.assert_array_equal(self.variant(data.one_hot_decode)(encoded),
                                  sequence)

  def test_samples_vmap_over_keys(self):
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    windows, targets = jax.vmap(
        lambda k: data.frame_windows(data.generate_sequence(k, 25, 100), 1,
                                     5))(keys)
    chex.assert_shape(windows, (6, 20, 5))
    chex.assert_shape(targets, (6, 20))
    np.testing.assert_array_equal(targets, windows[:, :, 3])


if __name__ == "__main__":
  absltest.main()
