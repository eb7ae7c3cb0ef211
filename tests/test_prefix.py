"""Whole prefixes as samples: framing against numpy; a masked prefix is the
LSTM over exactly the prefix."""

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.tasks import framed
from echo_jax.tasks import prefix

SEQ = np.array([5, 0, 9, 2, 7, 7, 1], np.int32)


class FramePrefixesTest(absltest.TestCase):

  def test_mask_mode_matches_numpy(self):
    samples = prefix.frame_prefixes(jnp.asarray(SEQ), 2, "mask", 10)
    length = len(SEQ)
    for i, t in enumerate(range(2, length)):
      expected = list(SEQ[:t + 1]) + [0] * (length - t - 1)
      np.testing.assert_array_equal(samples.inputs["ids"][i], expected)
      self.assertEqual(int(samples.inputs["lengths"][i]), t + 1)
      self.assertEqual(int(samples.targets[i]), SEQ[t - 2])

  def test_special_value_mode_is_pre_padded(self):
    samples = prefix.frame_prefixes(jnp.asarray(SEQ), 1, "special_value", 10)
    length = len(SEQ)
    for i, t in enumerate(range(1, length)):
      expected = [10] * (length - t - 1) + list(SEQ[:t + 1])
      np.testing.assert_array_equal(samples.inputs["ids"][i], expected)
    self.assertNotIn("lengths", samples.inputs)
    np.testing.assert_array_equal(samples.targets, SEQ[:-1])

  def test_masked_prefix_equals_lstm_over_the_prefix(self):
    model = framed.RecurrentLSTM(hidden=5, input_vocab=10, classes=10)
    params = model.init(jax.random.PRNGKey(0),
                        jnp.zeros((1, len(SEQ)), jnp.int32))["params"]
    samples = prefix.frame_prefixes(jnp.asarray(SEQ), 1, "mask", 10)
    apply = jax.jit(model.apply)
    logits = apply({"params": params}, samples.inputs["ids"],
                   samples.inputs["lengths"])
    chex.assert_shape(logits, (len(SEQ) - 1, 10))
    for i, t in enumerate(range(1, len(SEQ))):
      alone = apply({"params": params}, jnp.asarray(SEQ[None, :t + 1]))
      chex.assert_trees_all_close(logits[i:i + 1], alone, atol=1e-6)


if __name__ == "__main__":
  absltest.main()
