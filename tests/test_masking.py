"""Missing steps: padded windows against numpy, and masked steps change
nothing."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.tasks import framed
from echo_jax.tasks import masking

SEQ = np.array([7, 3, 9, 1, 4, 8, 2, 6], np.int32)


def numpy_window(sequence, t, context, width, align, fill):
  present = [sequence[i] for i in range(t - context + 1, t + 1) if i >= 0]
  padding = [fill] * (width - len(present))
  return (padding + present if align == "right" else present + padding,
          len(present))


class PadWindowsTest(parameterized.TestCase):

  @parameterized.product(align=masking.ALIGNS, context=(1, 3, 5),
                         extra=(0, 2))
  def test_matches_numpy(self, align, context, extra):
    width = context + extra
    ends = np.arange(len(SEQ))
    ids, lengths = masking.pad_windows(jnp.asarray(SEQ), jnp.asarray(ends),
                                       context, width, align, fill=-1)
    for t in ends:
      window, length = numpy_window(SEQ, t, context, width, align, -1)
      np.testing.assert_array_equal(ids[t], window)
      self.assertEqual(int(lengths[t]), length)

  @parameterized.parameters(*masking.MODES)
  def test_frame_all_rows(self, mode):
    lag, context, n_unique = 1, 3, 10
    samples = masking.frame_all_rows(jnp.asarray(SEQ), lag, context,
                                     n_unique, mode)
    align, fill = ("right", n_unique) if mode == "special_value" else (
        "left", 0)
    rows = range(lag, len(SEQ))
    np.testing.assert_array_equal(samples.targets,
                                  [SEQ[t - lag] for t in rows])
    np.testing.assert_array_equal(samples.weights, np.ones(len(rows)))
    for i, t in enumerate(rows):
      window, length = numpy_window(SEQ, t, context, context, align, fill)
      np.testing.assert_array_equal(samples.inputs["ids"][i], window)
      if mode == "mask":
        self.assertEqual(int(samples.inputs["lengths"][i]), length)
    self.assertEqual("lengths" in samples.inputs, mode == "mask")


class RecurrentLSTMTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.model = framed.RecurrentLSTM(hidden=6, input_vocab=11, classes=10)
    self.params = self.model.init(jax.random.PRNGKey(0),
                                  jnp.zeros((1, 5), jnp.int32))["params"]

  def test_padded_steps_change_nothing(self):
    apply = jax.jit(self.model.apply)
    key = jax.random.PRNGKey(1)
    lengths = np.array([1, 2, 3, 5], np.int32)
    ids = np.array(jax.random.randint(key, (4, 5), 0, 10))
    for i, n in enumerate(lengths):
      alone = apply({"params": self.params}, ids[i:i + 1, :n])
      for pad_key in range(3):  # whatever the padding holds
        padded = ids.copy()
        padded[i, n:] = jax.random.randint(jax.random.PRNGKey(pad_key),
                                           (5 - n,), 0, 11)
        masked = apply({"params": self.params}, jnp.asarray(padded),
                       jnp.asarray(lengths))
        chex.assert_trees_all_close(masked[i:i + 1], alone, atol=1e-6)

  def test_shapes_and_finite(self):
    logits = self.model.apply({"params": self.params},
                              jnp.full((3, 5), 10, jnp.int32))
    chex.assert_shape(logits, (3, 10))
    chex.assert_tree_all_finite(logits)

  def test_special_value_has_its_own_kernel_row(self):
    self.assertEqual(self.params["lstm"]["kernel"].shape, (11, 24))


if __name__ == "__main__":
  absltest.main()
