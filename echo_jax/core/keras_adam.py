"""Adam as Keras computes it: the tutorial's optimiser, as an optax transform.

Keras (2.x, which the tutorial ran, and 3.x alike) folds both bias
corrections into the step size and adds epsilon to sqrt(v_t):

  alpha_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
  m_t = b1 * m + (1 - b1) * g
  v_t = b2 * v + (1 - b2) * g^2
  p_t = p - alpha_t * m_t / (sqrt(v_t) + eps)

`optax.adam` adds epsilon to the bias-corrected sqrt(v_t / (1 - b2^t))
instead, i.e. its epsilon is Keras' divided by sqrt(1 - b2^t): the two
differ only where sqrt(v_t) is near epsilon, and only while that factor is
far from 1 (the first few thousand steps with b2 = 0.999). Keras' form
is also the cheaper one: per parameter one division and one square root,
where optax's takes three divisions and a square root. On these tiny models
Adam is a third of an update, and that is bound by those divisions.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax


class KerasAdamState(NamedTuple):
  count: chex.Array  # int32 scalar: updates done
  mu: optax.Updates  # first moment m
  nu: optax.Updates  # second moment v


# Keras 2's `decay` argument: the learning rate of update t (from 0) is
# lr / (1 + decay * t). 1e-3 halves it by update 1000 and divides it by 13
# by update 12,000: a horizon-free schedule (no run length to choose), so a
# budget search can stop anywhere along one run.
KERAS_TIME_DECAY = 1e-3


def time_decay(learning_rate: float, decay: float = KERAS_TIME_DECAY
               ) -> optax.Schedule:
  """Keras 2's time-based decay: step t (updates done before it) -> lr."""
  return lambda t: learning_rate / (1.0 + decay * t.astype(jnp.float32))


def keras_adam(learning_rate: float | optax.Schedule, b1: float = 0.9,
               b2: float = 0.999, eps: float = 1e-7
               ) -> optax.GradientTransformation:
  """Keras' Adam; `update` returns -alpha_t * m_t / (sqrt(v_t) + eps), so
  `optax.apply_updates` gives Keras' p_t exactly. `learning_rate` may be a
  schedule of the updates done before this one (`time_decay`)."""

  def init_fn(params):
    return KerasAdamState(jnp.zeros([], jnp.int32),
                          jax.tree.map(jnp.zeros_like, params),
                          jax.tree.map(jnp.zeros_like, params))

  def update_fn(grads, state, params=None):
    del params
    count = optax.safe_int32_increment(state.count)
    t = count.astype(jnp.float32)
    lr = (learning_rate(state.count) if callable(learning_rate)
          else learning_rate)
    alpha = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, grads, state.mu)
    nu = jax.tree.map(lambda g, v: b2 * v + (1 - b2) * jnp.square(g), grads,
                      state.nu)
    updates = jax.tree.map(lambda m, v: -(alpha * m) / (jnp.sqrt(v) + eps),
                           mu, nu)
    return updates, KerasAdamState(count, mu, nu)

  return optax.GradientTransformation(init_fn, update_fn)
