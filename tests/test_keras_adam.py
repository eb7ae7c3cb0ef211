"""Keras' Adam against its formula in float64, and against optax.adam; the
accuracy test's argmax shortcut against argmax."""

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from echo_jax.core import keras_adam
from echo_jax.core import train

LR, B1, B2 = 1e-2, 0.9, 0.999


def keras_reference(params, grads_per_step, eps, decay=0.0):
  """Keras 2's Adam.get_updates, step by step in float64 (`decay`: its
  time-based decay of the learning rate)."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  for t, grads in enumerate(grads_per_step, start=1):
    lr = LR / (1 + decay * (t - 1))  # decayed by the updates done before
    lr_t = lr * np.sqrt(1 - B2**t) / (1 - B1**t)
    for k in p:
      g = np.asarray(grads[k], np.float64)
      m[k] = B1 * m[k] + (1 - B1) * g
      v[k] = B2 * v[k] + (1 - B2) * g * g
      p[k] = p[k] - lr_t * m[k] / (np.sqrt(v[k]) + eps)
  return p


def random_tree(key, scale=1.0):
  k1, k2 = jax.random.split(key)
  return {"kernel": scale * jax.random.normal(k1, (7, 3)),
          "bias": scale * jax.random.normal(k2, (3,))}


def run(optimizer, params, grads_per_step):
  state = optimizer.init(params)
  for grads in grads_per_step:
    updates, state = optimizer.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params


class KerasAdamTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_matches_keras_formula(self):
    params = random_tree(jax.random.PRNGKey(0))
    # Gradients of very different sizes: epsilon matters for the small ones.
    grads_per_step = [random_tree(jax.random.PRNGKey(s), scale=10.0**-s)
                      for s in range(1, 6)]
    optimizer = keras_adam.keras_adam(LR, B1, B2, eps=1e-7)
    got = self.variant(lambda p, g: run(optimizer, p, g))(params,
                                                          grads_per_step)
    want = keras_reference(params, grads_per_step, eps=1e-7)
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7)

  @chex.variants(with_jit=True, without_jit=True)
  def test_time_decay_matches_keras_formula(self):
    params = random_tree(jax.random.PRNGKey(0))
    grads_per_step = [random_tree(jax.random.PRNGKey(s)) for s in range(6)]
    decay = 0.3  # large, so that every step's rate differs
    optimizer = keras_adam.keras_adam(keras_adam.time_decay(LR, decay), B1,
                                      B2, eps=1e-7)
    got = self.variant(lambda p, g: run(optimizer, p, g))(params,
                                                          grads_per_step)
    want = keras_reference(params, grads_per_step, eps=1e-7, decay=decay)
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7)

  def test_is_optax_adam_without_epsilon(self):
    # The two differ only in where epsilon goes.
    params = random_tree(jax.random.PRNGKey(1))
    grads_per_step = [random_tree(jax.random.PRNGKey(s)) for s in range(4)]
    ours = run(keras_adam.keras_adam(LR, B1, B2, eps=0.0), params,
               grads_per_step)
    theirs = run(optax.adam(LR, B1, B2, eps=0.0), params, grads_per_step)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)

  def test_epsilon_placement_differs_from_optax(self):
    # A tiny gradient: Keras' epsilon is on sqrt(v_t), optax's on the
    # bias-corrected sqrt(v_t / (1 - b2^t)), so the first steps differ.
    params = {"w": jnp.zeros((3,))}
    grads = [{"w": jnp.full((3,), 1e-7)}]
    ours = run(keras_adam.keras_adam(LR, B1, B2, eps=1e-7), params, grads)
    theirs = run(optax.adam(LR, B1, B2, eps=1e-7), params, grads)
    want = keras_reference(params, grads, eps=1e-7)
    np.testing.assert_allclose(ours["w"], want["w"], rtol=1e-5)
    self.assertGreater(float(jnp.abs(ours["w"] - theirs["w"]).max()),
                       1e-2 * float(jnp.abs(theirs["w"]).max()))

  def test_state_counts_updates(self):
    optimizer = keras_adam.keras_adam(LR)
    params = random_tree(jax.random.PRNGKey(2))
    state = optimizer.init(params)
    for _ in range(3):
      _, state = optimizer.update(params, state, params)
    self.assertEqual(int(state.count), 3)


class ArgmaxMatchesTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_equals_argmax_with_ties(self):
    # Integer-valued logits in a small range: many exact ties, where argmax
    # picks the first index.
    key = jax.random.PRNGKey(3)
    for shape in ((64, 10), (8, 5, 10)):
      k1, k2, key = jax.random.split(key, 3)
      logits = jax.random.randint(k1, shape, 0, 3).astype(jnp.float32)
      targets = jax.random.randint(k2, shape[:-1], 0, shape[-1])
      got = self.variant(train.argmax_matches)(logits, targets)
      want = jnp.argmax(logits, -1) == targets
      np.testing.assert_array_equal(got, want)
      self.assertTrue(bool(want.any()) and not bool(want.all()))


if __name__ == "__main__":
  absltest.main()
