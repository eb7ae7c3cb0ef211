"""Adam as Keras computes it: the tutorial's optimiser, as an optax transform.

Keras (2.x, which the tutorial ran, and 3.x alike) folds both bias
corrections into the step size and adds epsilon to sqrt(v_t):

  alpha_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
  p_t = p - alpha_t * m_t / (sqrt(v_t) + eps)

`optax.adam` adds eps to sqrt(v_t / (1 - b2^t)) instead: the two differ where
sqrt(v_t) is near eps, in the first few thousand steps. Keras' form is also
cheaper: one division per parameter, not optax's three, and divisions bound
Adam, which is a third of an update on these tiny models."""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax


class KerasAdamState(NamedTuple):
  count: chex.Array  # int32 scalar: updates done
  mu: optax.Updates  # first moment m
  nu: optax.Updates  # second moment v


KERAS_TIME_DECAY = 1e-3  # rate halved by update 1000; no horizon to choose


def time_decay(learning_rate: float, decay: float = KERAS_TIME_DECAY
               ) -> optax.Schedule:
  """Keras 2's `decay`: update t (from 0) has lr / (1 + decay * t)."""
  return lambda t: learning_rate / (1.0 + decay * t.astype(jnp.float32))


def keras_adam(learning_rate: float | optax.Schedule, b1: float = 0.9,
               b2: float = 0.999, eps: float = 1e-7
               ) -> optax.GradientTransformation:
  """Keras' Adam (`optax.apply_updates` gives its p_t exactly); the
  learning rate may be a schedule of the updates done before (`time_decay`)."""

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
