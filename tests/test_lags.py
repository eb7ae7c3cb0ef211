"""Different lags in one program: each lag's masked window is its own
window, against numpy and against an LSTM over the bare window."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.tasks import framed
from echo_jax.tasks import lags

SEQ = np.arange(30, 55, dtype=np.int32)  # length 25, distinct values


class FrameLagWindowsTest(parameterized.TestCase):

  @parameterized.parameters(1, 4, 5, 10)
  def test_matches_numpy(self, lag):
    context = max(5, lag + 1)
    width, rows = 11, 20
    samples = lags.frame_lag_windows(jnp.asarray(SEQ), lag, 5, width, rows)
    valid = len(SEQ) - lag - context + 1
    self.assertEqual(valid, lags.samples_per_sequence(len(SEQ), lag, 5))
    np.testing.assert_array_equal(samples.weights,
                                  np.arange(rows) < valid)
    for i in range(valid):
      t = i + lag + context - 1
      np.testing.assert_array_equal(samples.inputs["ids"][i, :context],
                                    SEQ[t - context + 1:t + 1])
      self.assertEqual(int(samples.inputs["lengths"][i]), context)
      self.assertEqual(int(samples.targets[i]), SEQ[t - lag])

  def test_masked_window_equals_lstm_over_the_window(self):
    model = framed.RecurrentLSTM(hidden=5, input_vocab=60, classes=60)
    params = model.init(jax.random.PRNGKey(0),
                        jnp.zeros((1, 11), jnp.int32))["params"]
    samples = lags.frame_lag_windows(jnp.asarray(SEQ), 7, 5, 11, 20)
    logits = model.apply({"params": params}, samples.inputs["ids"],
                         samples.inputs["lengths"])
    bare = model.apply({"params": params}, samples.inputs["ids"][:, :8])
    chex.assert_trees_all_close(logits, bare, atol=1e-6)


if __name__ == "__main__":
  absltest.main()
