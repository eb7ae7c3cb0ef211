"""Streaming echo: framing against numpy, Keras' state routing. (The task
itself runs end to end in test_extension_binaries.)"""

from absl.testing import absltest
from absl.testing import parameterized
import jax.numpy as jnp
import numpy as np

from echo_jax.tasks import streaming

SEQ = np.array([4, 8, 15, 16, 23, 42, 7], np.int32)


class FrameStreamTest(parameterized.TestCase):

  @parameterized.parameters(0, 1, 3, 6)
  def test_matches_numpy(self, lag):
    samples = streaming.frame_stream(jnp.asarray(SEQ), lag)
    np.testing.assert_array_equal(samples.inputs, SEQ[None])
    for t in range(len(SEQ)):
      self.assertEqual(float(samples.weights[0, t]), float(t >= lag))
      if t >= lag:
        self.assertEqual(int(samples.targets[0, t]), SEQ[t - lag])


class KerasStateSourceTest(parameterized.TestCase):

  @parameterized.parameters((24, 6), (24, 1), (24, 24), (20, 5))
  def test_row_i_of_batch_k_continues_row_i_of_batch_k_minus_1(
      self, num_samples, batch_size):
    source = streaming.keras_state_source(num_samples, batch_size)
    # Explicit Keras bookkeeping: a state slot per batch row.
    slots = [-1] * batch_size
    for j in range(num_samples):
      self.assertEqual(source[j], slots[j % batch_size])
      slots[j % batch_size] = j
    if batch_size < num_samples:
      self.assertEqual(source[batch_size], 0)  # sample j starts from j - b


if __name__ == "__main__":
  absltest.main()
