"""The MLP baseline: its gathered first layer is the one-hot matmul."""

from absl.testing import absltest
import chex
import jax
import numpy as np

from echo_jax.tasks import mlp


class WindowMLPTest(absltest.TestCase):

  def test_equals_flattened_one_hot_mlp(self):
    model = mlp.WindowMLP(hidden=7, vocab=9, context=4)
    ids = jax.random.randint(jax.random.PRNGKey(1), (5, 4), 0, 9)
    params = model.init(jax.random.PRNGKey(0), ids)["params"]
    logits = model.apply({"params": params}, ids)
    chex.assert_shape(logits, (5, 9))
    chex.assert_tree_all_finite(logits)
    one_hot = np.asarray(jax.nn.one_hot(ids, 9)).reshape(5, 4 * 9)
    hidden = np.maximum(one_hot @ params["kernel"] + params["bias"], 0)
    expected = hidden @ params["head"]["kernel"] + params["head"]["bias"]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
  absltest.main()
