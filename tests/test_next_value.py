"""The negative control's framing: target X(t+1) after the window."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from echo_jax.tasks import next_value


class FrameNextValueTest(absltest.TestCase):

  def test_matches_numpy(self):
    seq = np.array([3, 1, 4, 1, 5, 9, 2, 6], np.int32)
    context = 3
    samples = next_value.frame_next_value(jnp.asarray(seq), context)
    rows = range(context - 1, len(seq) - 1)
    np.testing.assert_array_equal(
        samples.inputs, [seq[t - context + 1:t + 1] for t in rows])
    np.testing.assert_array_equal(samples.targets, [seq[t + 1] for t in rows])
    np.testing.assert_array_equal(samples.weights, np.ones(len(rows)))


if __name__ == "__main__":
  absltest.main()
