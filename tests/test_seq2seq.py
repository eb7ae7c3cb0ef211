"""A prediction at every timestep: lag-sequence framing against numpy, the
per-step model's shapes, causality and truncated backpropagation."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from echo_jax.tasks import framed
from echo_jax.tasks import seq2seq

SEQ = np.arange(10, 22, dtype=np.int32)  # distinct values: index = value-10


class FrameLagSequenceTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_matches_numpy(self, lag):
    context, rows = 4, len(SEQ) - 4 - 1 + 1
    samples = seq2seq.frame_lag_sequence(jnp.asarray(SEQ), lag, context, rows)
    chex.assert_shape([samples.inputs, samples.targets, samples.weights],
                      (rows, context))
    for i in range(rows):
      t = i + lag + context - 1  # the tutorial's row i ends at t
      valid = t <= len(SEQ) - 1
      for s in range(context):
        step_t = t - context + 1 + s
        if valid:
          self.assertEqual(int(samples.inputs[i, s]), SEQ[step_t])
          self.assertEqual(int(samples.targets[i, s]), SEQ[step_t - lag])
        self.assertEqual(float(samples.weights[i, s]),
                         float(valid and s >= lag))


class RecurrentLSTMTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.ids = jnp.asarray(SEQ[None, :6] - 10)  # ids 0..5, one sequence
    self.full = framed.RecurrentLSTM(hidden=4, input_vocab=8, classes=8,
                                      per_step=True)
    self.params = self.full.init(jax.random.PRNGKey(0), self.ids)["params"]

  def test_shapes_and_finite(self):
    logits = self.full.apply({"params": self.params},
                             jnp.zeros((3, 6), jnp.int32))
    chex.assert_shape(logits, (3, 6, 8))
    chex.assert_tree_all_finite(logits)

  def test_step_s_sees_only_steps_up_to_s(self):
    logits = self.full.apply({"params": self.params}, self.ids)
    changed = self.full.apply({"params": self.params},
                              self.ids.at[0, 4].set(7))
    chex.assert_trees_all_close(logits[:, :4], changed[:, :4])
    self.assertFalse(np.allclose(logits[:, 4:], changed[:, 4:]))

  def test_truncation_stops_the_gradient_through_time(self):
    truncated = framed.RecurrentLSTM(hidden=4, input_vocab=8, classes=8,
                                     per_step=True, truncate_bptt=True)

    def kernel_row_grad(model):
      def last_step_loss(params):
        logits = model.apply({"params": params}, self.ids)
        return optax.softmax_cross_entropy_with_integer_labels(
            logits[0, -1], 3)
      return jax.grad(last_step_loss)(self.params)["lstm"]["kernel"]

    # Id 0 is only the input at step 0: its kernel row gets gradient from
    # the last step's loss only through time.
    self.assertGreater(float(jnp.abs(kernel_row_grad(self.full)[0]).max()),
                       1e-6)
    np.testing.assert_array_equal(kernel_row_grad(truncated)[0], 0.0)
    # Same parameters, same forward pass: only the gradient differs.
    chex.assert_trees_all_close(
        truncated.apply({"params": self.params}, self.ids),
        self.full.apply({"params": self.params}, self.ids))


if __name__ == "__main__":
  absltest.main()
