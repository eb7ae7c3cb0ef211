"""Training: Keras' stateful semantics, one trace per shape, learning."""

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from echo_jax.core import config as config_lib
from echo_jax.core import data
from echo_jax.core import evaluate
from echo_jax.core import models
from echo_jax.core import train

# 8 samples per sequence in 4 batches of 2.
STATEFUL = config_lib.EchoConfig(
    experiment="test", length=10, n_unique=12, lag=1, context=2, hidden=6,
    batch_size=2, stateful=True, epochs=3, seeds=1, eval_sequences=20)


def sequence_samples(config, seed=0):
  return data.frame_windows(
      data.generate_sequence(jax.random.PRNGKey(seed), config.length,
                             config.n_unique), config.lag, config.context)


class StatefulPredictionTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.params = models.init_params(STATEFUL, jax.random.PRNGKey(0))
    self.windows, _ = sequence_samples(STATEFUL)
    self.predict = jax.jit(evaluate.make_predict_logits(STATEFUL))

  def test_row_i_of_batch_k_starts_from_row_i_of_batch_k_minus_1(self):
    model = models.make_model(STATEFUL)
    b = STATEFUL.batch_size
    logits = self.predict(self.params, self.windows)
    for row in range(b):
      carry = models.zero_carry(1, STATEFUL.hidden)
      for j in range(row, STATEFUL.num_samples, b):  # samples j, j+b, j+2b
        want, carry = model.apply({"params": self.params},
                                  self.windows[j:j + 1], carry)
        np.testing.assert_allclose(logits[j], want[0], atol=1e-6)

  def test_sample_depends_on_sample_b_earlier_not_one_earlier(self):
    logits = self.predict(self.params, self.windows)
    j = 5  # batch 2, row 1
    changed = self.windows.at[j - 1].set((self.windows[j - 1] + 1) % 12)
    np.testing.assert_array_equal(self.predict(self.params, changed)[j],
                                  logits[j])
    changed = self.windows.at[j - 2].set((self.windows[j - 2] + 1) % 12)
    self.assertGreater(
        np.abs(self.predict(self.params, changed)[j] - logits[j]).max(), 1e-4)


def manual_fit(config, params, windows, targets, carry_mode):
  """A Python loop over batches, the reference for `fit_sequence`.

  carry_mode: "keras" (row i -> row i, constant to the gradient),
  "shifted" (sample j from sample j-1) or "bptt" (gradient through it).
  """
  optimizer = train.make_optimizer(config)
  loss_fn = train.make_loss_fn(config)
  model = models.make_model(config)
  b = config.batch_size
  opt_state = optimizer.init(params)
  carry = models.zero_carry(b, config.hidden)
  history = []  # batches seen so far, for the bptt reference
  for k in range(config.num_batches):
    ids, y = windows[k * b:(k + 1) * b], targets[k * b:(k + 1) * b]
    if carry_mode == "bptt":
      def loss_through_history(p, ids=ids, y=y):
        c = models.zero_carry(b, config.hidden)
        for old in history:
          _, c = model.apply({"params": p}, old, c)
        return loss_fn(p, ids, y, jnp.ones(b), c)[0]
      grads = jax.grad(loss_through_history)(params)
    else:
      grads = jax.grad(lambda p: loss_fn(p, ids, y, jnp.ones(b), carry)[0])(
          params)
    _, carry = model.apply({"params": params}, ids, carry)
    if carry_mode == "shifted":
      carry = jax.tree.map(lambda x: jnp.roll(x, 1, axis=0), carry)
    history.append(ids)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
  return params


class StatefulTrainingTest(absltest.TestCase):

  def test_fit_sequence_is_keras_stateful_fit(self):
    params = models.init_params(STATEFUL, jax.random.PRNGKey(1))
    windows, targets = sequence_samples(STATEFUL, seed=2)
    fit = jax.jit(train.make_fit_sequence(STATEFUL))
    got, _, _, _ = fit(params, train.make_optimizer(STATEFUL).init(params),
                       windows, targets)
    keras = manual_fit(STATEFUL, params, windows, targets, "keras")
    chex.assert_trees_all_close(got, keras, atol=1e-6)
    # The reference is sharp: the two wrong semantics give other parameters.
    for wrong in ("shifted", "bptt"):
      other = manual_fit(STATEFUL, params, windows, targets, wrong)
      diff = max(jax.tree.leaves(jax.tree.map(
          lambda a, c: float(jnp.abs(a - c).max()), got, other)))
      self.assertGreater(diff, 1e-5, wrong)

  def test_stateless_fit_restarts_every_batch(self):
    config = STATEFUL.replace(stateful=False, batch_size=3)  # 8 = 3 + 3 + 2
    params = models.init_params(config, jax.random.PRNGKey(1))
    windows, targets = sequence_samples(config, seed=2)
    optimizer = train.make_optimizer(config)
    loss_fn = train.make_loss_fn(config)
    want = params
    opt_state = optimizer.init(params)
    for start in (0, 3, 6):  # Keras' last batch is smaller, not padded
      ids, y = windows[start:start + 3], targets[start:start + 3]
      carry = models.zero_carry(len(ids), config.hidden)
      grads = jax.grad(lambda p: loss_fn(p, ids, y, jnp.ones(len(ids)),
                                         carry)[0])(want)
      updates, opt_state = optimizer.update(grads, opt_state, want)
      want = optax.apply_updates(want, updates)
    got, _, loss_K, _ = jax.jit(train.make_fit_sequence(config))(
        params, optimizer.init(params), windows, targets)
    chex.assert_shape(loss_K, (3,))
    chex.assert_trees_all_close(got, want, atol=1e-6)


class TrainTest(chex.TestCase):

  def test_traced_once_and_finite(self):
    train_fn = chex.assert_max_traces(train.make_train(STATEFUL).__call__,
                                      n=1)
    jitted = jax.jit(train_fn)
    first = jitted(jax.random.PRNGKey(0))
    second = jitted(jax.random.PRNGKey(1))
    chex.clear_trace_counter()
    chex.assert_shape([first.loss_E, first.accuracy_E], (STATEFUL.epochs,))
    chex.assert_tree_all_finite(first)
    self.assertFalse(np.array_equal(first.loss_E, second.loss_E))

  def test_short_run_rises_clearly_above_chance(self):
    config = config_lib.preset("echo_current").replace(epochs=60)
    result = jax.jit(train.make_train(config))(jax.random.PRNGKey(0))
    scores = jax.jit(evaluate.make_evaluate(config))(
        result.params, data.TestSet(
            jax.random.split(jax.random.PRNGKey(1), 100), config.length,
            config.n_unique))
    accuracy_N = evaluate.fraction(scores.sums, 100)
    chex.assert_shape(accuracy_N, (25,))
    targets_N, predicted_N = scores.first
    self.assertGreater(float(jnp.mean(predicted_N == targets_N)), 0.0)
    self.assertGreater(float(accuracy_N.mean()), 0.3)  # chance is 0.01
    self.assertLess(float(result.loss_E[-1]), float(result.loss_E[0]))


if __name__ == "__main__":
  absltest.main()
