"""The Flax cell against Keras' LSTM equations, init schemes, gather == one-hot."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import models
from echo_jax.core import train


def keras_lstm_numpy(x_BxTxV, kernel, recurrent_kernel, bias, activation):
  """Keras' LSTM step equations (gate order i, f, c, o), in float64 numpy."""
  hidden = recurrent_kernel.shape[0]
  sigmoid = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)),
             "hard_sigmoid": lambda z: np.clip(0.2 * z + 0.5, 0, 1)}[activation]
  h = np.zeros((x_BxTxV.shape[0], hidden))
  c = np.zeros_like(h)
  for t in range(x_BxTxV.shape[1]):
    z = x_BxTxV[:, t] @ kernel + h @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
    c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
    h = sigmoid(z_o) * np.tanh(c)
  return h, c


def small_config(**changes):
  return config_lib.EchoConfig(
      n_unique=12, hidden=6, context=4, lag=1, length=10, batch_size=2
  ).replace(**changes)


class CellTest(parameterized.TestCase):

  @parameterized.product(activation=("sigmoid", "hard_sigmoid"),
                         backend=("cell", "fused"))
  def test_matches_keras_equations(self, activation, backend):
    config = small_config(recurrent_activation=activation,
                          lstm_backend=backend)
    # Hard sigmoid saturates for |z| > 2.5: unit-scale weights put some gates
    # there too.
    params = random_params(config)
    ids_BxT = jax.random.randint(jax.random.PRNGKey(2), (3, 4), 0, 12)
    logits, (c, h) = models.make_model(config).apply(
        {"params": params}, ids_BxT)
    cell = jax.tree.map(lambda x: np.asarray(x, np.float64),
                        params["lstm"])
    want_h, want_c = keras_lstm_numpy(
        np.eye(12)[np.asarray(ids_BxT)], cell["kernel"],
        cell["recurrent_kernel"], cell["bias"], activation)
    np.testing.assert_allclose(h, want_h, atol=1e-5)
    np.testing.assert_allclose(c, want_c, atol=1e-5)
    head = params["head"]
    np.testing.assert_allclose(
        logits, want_h @ np.asarray(head["kernel"]) + np.asarray(head["bias"]),
        atol=1e-4)

  @parameterized.parameters("cell", "fused")
  def test_starts_from_given_carry_and_returns_final(self, backend):
    config = small_config(lstm_backend=backend)
    model = models.make_model(config)
    params = models.init_params(config, jax.random.PRNGKey(0))
    ids = jax.random.randint(jax.random.PRNGKey(3), (2, 8), 0, 12)
    # Two windows of 4 carried into each other == the 8-step sequence.
    model8 = models.make_model(config.replace(context=8))
    _, carry_8 = model8.apply({"params": params}, ids)
    _, carry_a = model.apply({"params": params}, ids[:, :4])
    logits_b, carry_b = model.apply({"params": params}, ids[:, 4:], carry_a)
    chex.assert_trees_all_close(carry_b, carry_8, atol=1e-6)
    chex.assert_shape(logits_b, (2, 12))


class InitTest(absltest.TestCase):

  def test_keras_init(self):
    config = small_config(hidden=8, n_unique=16, init="keras")
    cell = models.init_params(config, jax.random.PRNGKey(0))["lstm"]
    bias = np.asarray(cell["bias"])
    np.testing.assert_array_equal(bias[8:16], 1.0)  # forget gate
    np.testing.assert_array_equal(np.delete(bias, np.s_[8:16]), 0.0)
    u = np.asarray(cell["recurrent_kernel"])  # (8, 32): orthonormal rows
    np.testing.assert_allclose(u @ u.T, np.eye(8), atol=1e-5)
    limit = np.sqrt(6 / (16 + 32))  # glorot uniform
    self.assertLessEqual(np.abs(np.asarray(cell["kernel"])).max(), limit)

  def test_flax_init_has_zero_bias(self):
    config = small_config(init="flax")
    cell = models.init_params(config, jax.random.PRNGKey(0))["lstm"]
    np.testing.assert_array_equal(cell["bias"], 0.0)

  def test_chrono_init_spreads_the_forget_bias(self):
    # Tallec & Ollivier: forget bias log(u), u ~ U(1, T_max - 1); input
    # bias its negative; cell and output biases zero; kernels as Keras'.
    config = small_config(hidden=64, n_unique=16, init="chrono")
    cell = models.init_params(config, jax.random.PRNGKey(0))["lstm"]
    bias = np.asarray(cell["bias"])
    forget = bias[64:128]
    self.assertGreaterEqual(forget.min(), 0.0)
    self.assertLessEqual(forget.max(), np.log(models.CHRONO_T_MAX - 1))
    self.assertGreater(forget.std(), 0.3)  # spread, not one value
    np.testing.assert_array_equal(bias[:64], -forget)
    np.testing.assert_array_equal(bias[128:], 0.0)
    keras = models.init_params(config.replace(init="keras"),
                               jax.random.PRNGKey(0))["lstm"]
    np.testing.assert_array_equal(cell["recurrent_kernel"],
                                  keras["recurrent_kernel"])

  def test_chain_init_carries_a_code_down_the_delay_line(self):
    # A 7-bit code in slot 0 reappears in slot s after s steps with its
    # signs, neither faded (|h| > 0.3) nor saturated (|h| < 0.9).
    lanes, hidden = models.CHAIN_LANES, 35
    config = small_config(hidden=hidden, n_unique=16, init="chain")
    params = models.init_params(config, jax.random.PRNGKey(0))["lstm"]
    params = {**params, "kernel": jnp.zeros_like(params["kernel"])}
    cell = models.KerasLSTMCell(hidden, 16, "chain")
    signs = np.array([1, -1, -1, 1, 1, -1, 1], np.float32)
    h = jnp.zeros((1, hidden)).at[0, :lanes].set(0.6 * signs)
    carry = (jnp.zeros_like(h), h)
    for step in range(1, hidden // lanes):
      carry, h = cell.apply({"params": params}, carry, jnp.zeros(1, jnp.int32))
      slot = np.asarray(h[0, step * lanes:(step + 1) * lanes])
      np.testing.assert_array_equal(np.sign(slot), signs, err_msg=step)
      self.assertBetween(np.abs(slot).min(), 0.3, 0.9)
      self.assertLess(np.abs(np.asarray(h[0, :step * lanes])).max(), 0.3)


def random_params(config, seed=0, scale=1.0):
  """Random weights (not the init) so that every gate is exercised."""
  params = models.init_params(config, jax.random.PRNGKey(seed))
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  return jax.tree.unflatten(treedef, [
      scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


class FusedBackendTest(chex.TestCase, parameterized.TestCase):
  """The hand-written backward against autodiff through the Flax cell."""

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(activation=("sigmoid", "hard_sigmoid"),
                         encoding=("gather", "one_hot"))
  def test_same_logits_carry_and_gradients(self, activation, encoding):
    cell = small_config(recurrent_activation=activation,
                        input_encoding=encoding, lstm_backend="cell")
    fused = cell.replace(lstm_backend="fused")
    params = random_params(cell, scale=0.5)
    ids = jax.random.randint(jax.random.PRNGKey(3), (2, 4), 0, 12)
    targets = jnp.array([3, 7])
    carry = (0.3 * jax.random.normal(jax.random.PRNGKey(4), (2, 6)),
             0.3 * jax.random.normal(jax.random.PRNGKey(5), (2, 6)))

    def outputs(config):
      loss_fn = train.make_loss_fn(config)

      def scalar(p, carry):  # uses logits and the final carry
        loss, (_, (c, h)) = loss_fn(p, ids, targets, jnp.ones(2), carry)
        return loss + jnp.sum(jnp.sin(c)) + jnp.sum(h * h)

      grads = self.variant(jax.grad(scalar, argnums=(0, 1)))(params, carry)
      logits, final = models.make_apply(config)(params, ids, carry)
      return logits, final, grads

    want, got = outputs(cell), outputs(fused)
    chex.assert_trees_all_close(got, want, atol=1e-6)


class EncodingTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_gather_equals_one_hot_logits_and_gradients(self):
    gather = small_config(input_encoding="gather")
    one_hot = small_config(input_encoding="one_hot")
    params = models.init_params(gather, jax.random.PRNGKey(0))
    ids = jax.random.randint(jax.random.PRNGKey(1), (2, 4), 0, 12)
    targets = jnp.array([3, 7])
    weights = jnp.ones(2)
    carry = models.zero_carry(2, 6)

    def loss_and_grad(config):
      fn = jax.value_and_grad(train.make_loss_fn(config), has_aux=True)
      return self.variant(fn)(params, ids, targets, weights, carry)

    (loss_g, _), grads_g = loss_and_grad(gather)
    (loss_o, _), grads_o = loss_and_grad(one_hot)
    np.testing.assert_allclose(loss_g, loss_o, atol=1e-6)
    chex.assert_trees_all_close(grads_g, grads_o, atol=1e-6)


if __name__ == "__main__":
  absltest.main()
