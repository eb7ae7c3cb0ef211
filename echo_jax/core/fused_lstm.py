"""The LSTM recurrence over a short window with a hand-written backward pass:
same math as scanning `KerasLSTMCell` (Keras gate order i, f, c, o). On a CPU
these tiny models are bound by the number of XLA operations, not FLOPs: by
hand, the recurrent-kernel gradient is one (T*B, H)^T @ (T*B, 4H) matmul, not
T small ones, and one tanh activates all four gates. Gradients agree with
autodiff to ~1e-8. The window (T, the context) is unrolled in Python."""

import functools

import chex
import jax
import jax.numpy as jnp


def keras_hard_sigmoid(x: chex.Array) -> chex.Array:
  """Keras 2's hard sigmoid, clip(0.2 x + 0.5, 0, 1) (not jax.nn's)."""
  return jnp.clip(0.2 * x + 0.5, 0.0, 1.0)


def _is_candidate(hidden: int) -> chex.Array:
  """(4H,) mask of the candidate (tanh) gate's columns in i, f, c, o order."""
  return jnp.arange(4 * hidden) // hidden == 2


def _activate(z_Bx4H, is_candidate_4H, recurrent_activation: str):
  """All four gates at once: tanh on the candidate, the gate function else."""
  if recurrent_activation == "sigmoid":
    # sigmoid(x) = (tanh(x / 2) + 1) / 2: one transcendental for all columns.
    t = jnp.tanh(jnp.where(is_candidate_4H, z_Bx4H, 0.5 * z_Bx4H))
    return jnp.where(is_candidate_4H, t, 0.5 * t + 0.5)
  return jnp.where(is_candidate_4H, jnp.tanh(z_Bx4H),
                   keras_hard_sigmoid(z_Bx4H))


def _activation_slope(a_Bx4H, is_candidate_4H, recurrent_activation: str):
  """d(activation)/dz, from the activated value."""
  if recurrent_activation == "sigmoid":
    gate_slope = a_Bx4H * (1 - a_Bx4H)
  else:
    gate_slope = jnp.where((a_Bx4H > 0) & (a_Bx4H < 1), 0.2, 0.0)
  return jnp.where(is_candidate_4H, 1 - a_Bx4H * a_Bx4H, gate_slope)


def _lstm_window_fwd(recurrent_activation, xz_BxTx4H, recurrent_Hx4H, c_BxH,
                     h_BxH):
  is_candidate = _is_candidate(recurrent_Hx4H.shape[0])
  saved = []
  for t in range(xz_BxTx4H.shape[1]):
    a_Bx4H = _activate(xz_BxTx4H[:, t] + h_BxH @ recurrent_Hx4H,
                       is_candidate, recurrent_activation)
    i, f, g, o = jnp.split(a_Bx4H, 4, axis=-1)
    c_next = f * c_BxH + i * g
    tanh_c = jnp.tanh(c_next)
    saved.append((a_Bx4H, c_BxH, tanh_c, h_BxH))
    c_BxH, h_BxH = c_next, o * tanh_c
  return (c_BxH, h_BxH), (saved, recurrent_Hx4H)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def lstm_window(recurrent_activation: str, xz_BxTx4H: chex.Array,
                recurrent_Hx4H: chex.Array, c_BxH: chex.Array,
                h_BxH: chex.Array) -> tuple[chex.Array, chex.Array]:
  """T steps from carry (c, h), given every step's x_t @ kernel + bias."""
  return _lstm_window_fwd(recurrent_activation, xz_BxTx4H, recurrent_Hx4H,
                          c_BxH, h_BxH)[0]


def _lstm_window_bwd(recurrent_activation, residuals, cotangent):
  saved, recurrent_Hx4H = residuals
  is_candidate = _is_candidate(recurrent_Hx4H.shape[0])
  dc_BxH, dh_BxH = cotangent
  # A materialised transpose, once: XLA would otherwise fold U.T into every
  # step's dot as a slower transposed-operand matmul.
  recurrent_4HxH = jax.lax.optimization_barrier(recurrent_Hx4H.T)
  dz_steps = [None] * len(saved)
  for t in reversed(range(len(saved))):
    a_Bx4H, c_prev, tanh_c, _ = saved[t]
    i, f, g, o = jnp.split(a_Bx4H, 4, axis=-1)
    dc_BxH = dc_BxH + dh_BxH * o * (1 - tanh_c * tanh_c)
    da_Bx4H = jnp.concatenate(
        [dc_BxH * g, dc_BxH * c_prev, dc_BxH * i, dh_BxH * tanh_c], axis=-1)
    dz_Bx4H = da_Bx4H * _activation_slope(a_Bx4H, is_candidate,
                                          recurrent_activation)
    dc_BxH = dc_BxH * f
    dh_BxH = dz_Bx4H @ recurrent_4HxH
    dz_steps[t] = dz_Bx4H
  dz_BxTx4H = jnp.stack(dz_steps, axis=1)
  h_prev_BxTxH = jnp.stack([s[3] for s in saved], axis=1)
  d_recurrent_Hx4H = jnp.einsum("bth,btk->hk", h_prev_BxTxH, dz_BxTx4H)
  return dz_BxTx4H, d_recurrent_Hx4H, dc_BxH, dh_BxH


lstm_window.defvjp(_lstm_window_fwd, _lstm_window_bwd)


@jax.custom_vjp
def _matmul(x_BxH: chex.Array, w_HxV: chex.Array) -> chex.Array:
  return x_BxH @ w_HxV


def _matmul_fwd(x_BxH, w_HxV):
  return x_BxH @ w_HxV, (x_BxH, w_HxV)


def _matmul_bwd(residuals, g_BxV):
  x_BxH, w_HxV = residuals
  # Materialised transposes, as in _lstm_window_bwd: plain matmuls.
  w_VxH = jax.lax.optimization_barrier(w_HxV.T)
  x_HxB = jax.lax.optimization_barrier(x_BxH.T)
  return g_BxV @ w_VxH, x_HxB @ g_BxV


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense_dot_general(lhs, rhs, dimension_numbers, precision=None,
                      preferred_element_type=None):
  """`nn.Dense`'s dot_general for (B, H) @ (H, V), with `_matmul`'s
  backward; any other contraction falls back to lax.dot_general."""
  if (lhs.ndim == 2 and rhs.ndim == 2 and precision is None
      and preferred_element_type is None
      and tuple(map(tuple, dimension_numbers[0])) == ((1,), (0,))
      and not any(dimension_numbers[1][0])
      and not any(dimension_numbers[1][1])):
    return _matmul(lhs, rhs)
  return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision,
                             preferred_element_type=preferred_element_type)
