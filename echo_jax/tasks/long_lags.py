"""The streaming echo at long lags (studies.long_lags): models that read one
integer per step and, at every step t, name X(t - lag) through `readouts`
heads (1: lag only; R: lags 1..R, the delay line's every slot supervised,
scored on the lag's own head), and the hand-set shift register that bounds
what a recurrent net needs.

Every model maps ids (B, T) to logits (B, T, readouts, V).
"""

import math
from typing import Any, Callable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.core import models
from echo_jax.core import samples as samples_lib
from echo_jax.tasks import task as task_lib


def frame_readouts(sequence_L: chex.Array, lag, readouts: int
                   ) -> samples_lib.Samples:
  """The whole sequence as one sample: ids (1, L); targets and weights
  (1, L, readouts). One readout: X(t - lag), weight t >= lag. More: head k
  (1-based) X(t - k), weight t >= k for k <= lag (`lag` may be traced)."""
  (length,) = sequence_L.shape
  t_L = jnp.arange(length)
  back_R = (jnp.arange(1, readouts + 1) if readouts > 1
            else jnp.reshape(lag, (1,)))
  source_LxR = t_L[:, None] - back_R[None, :]
  targets_LxR = sequence_L[jnp.clip(source_LxR, 0, length - 1)]
  weights_LxR = ((source_LxR >= 0) & (back_R[None, :] <= lag)).astype(
      jnp.float32)
  return samples_lib.Samples(sequence_L[None, :], targets_LxR[None],
                             weights_LxR[None])


def scored_readout(lag: int, readouts: int) -> int:
  """The head whose accuracy is the model's at `lag`."""
  return lag - 1 if readouts > 1 else 0


class Readouts(nn.Module):
  """features (B, T, D) -> logits (B, T, readouts, V): a Dense per head."""
  readouts: int
  vocab: int

  @nn.compact
  def __call__(self, features_BxTxD: chex.Array) -> chex.Array:
    logits = nn.Dense(self.readouts * self.vocab, name="head")(features_BxTxD)
    return logits.reshape(logits.shape[:-1] + (self.readouts, self.vocab))


class LSTM(nn.Module):
  """The tutorial's LSTM cell (Keras numerics and initialisations)."""
  width: int
  vocab: int
  readouts: int
  init_scheme: str = "keras"

  @nn.compact
  def __call__(self, ids_BxT: chex.Array) -> chex.Array:
    cell = models.KerasLSTMCell(self.width, self.vocab, self.init_scheme,
                                name="lstm")
    # Not unrolled: on XLA:CPU at 128-256 units and 50 steps an update took
    # 1.4-1.9x as long with unroll=5 (the GRU is the other way round).
    outputs = nn.RNN(cell)(
        ids_BxT, initial_carry=models.zero_carry(ids_BxT.shape[0],
                                                 self.width))
    return Readouts(self.readouts, self.vocab)(outputs)


class GRU(nn.Module):
  """Flax's GRU cell on one-hot ids."""
  width: int
  vocab: int
  readouts: int

  @nn.compact
  def __call__(self, ids_BxT: chex.Array) -> chex.Array:
    outputs = nn.RNN(nn.GRUCell(self.width), unroll=5)(
        jax.nn.one_hot(ids_BxT, self.vocab))
    return Readouts(self.readouts, self.vocab)(outputs)


class LRU(nn.Module):
  """A linear recurrent unit (Orvieto et al. 2023): h_t = lambda * h_t-1 +
  gamma * B x_t with complex diagonal lambda (|lambda| in [0.9, 0.999]: a
  value 20 steps back keeps at least 12% of its size) and normalisation
  gamma = sqrt(1 - |lambda|^2); y_t = Re(C h_t) + D x_t, then an MLP
  readout. The recurrence is linear, so it keeps the input history
  losslessly; the MLP decodes the lagged value from it."""
  width: int   # complex state size N; the model's width is N
  vocab: int
  readouts: int

  @nn.compact
  def __call__(self, ids_BxT: chex.Array) -> chex.Array:
    n, d = self.width, self.width
    x_BxTxD = nn.Embed(self.vocab, d, name="embed")(ids_BxT)
    r_min, r_max = 0.9, 0.999
    nu_log = self.param("nu_log", lambda k, s: jnp.log(-0.5 * jnp.log(
        jax.random.uniform(k, s, jnp.float32, r_min**2, r_max**2))), (n,))
    theta_log = self.param("theta_log", lambda k, s: jnp.log(
        jax.random.uniform(k, s, jnp.float32, 0.0, 2 * math.pi)), (n,))
    lam_N = jnp.exp(-jnp.exp(nu_log) + 1j * jnp.exp(theta_log))
    gamma_N = jnp.sqrt(1 - jnp.abs(lam_N) ** 2)
    scale = lambda fan_in: nn.initializers.normal(1 / math.sqrt(2 * fan_in))
    b_re, b_im = (self.param(f"B_{p}", scale(d), (d, n)) for p in "ri")
    c_re, c_im = (self.param(f"C_{p}", scale(n), (n, d)) for p in "ri")
    d_D = self.param("D", nn.initializers.normal(1.0), (d,))
    u_BxTxN = (x_BxTxD @ (b_re + 1j * b_im)) * gamma_N

    def combine(a, b):  # (lambda^k, h) pairs: a then b
      return a[0] * b[0], b[0] * a[1] + b[1]

    powers = jnp.broadcast_to(lam_N, u_BxTxN.shape)
    _, h_BxTxN = jax.lax.associative_scan(combine, (powers, u_BxTxN), axis=1)
    y_BxTxD = (h_BxTxN @ (c_re + 1j * c_im)).real + d_D * x_BxTxD
    hidden = nn.gelu(nn.Dense(2 * d, name="mlp_in")(y_BxTxD))
    y_BxTxD = y_BxTxD + nn.Dense(d, name="mlp_out")(hidden)
    return Readouts(self.readouts, self.vocab)(nn.LayerNorm()(y_BxTxD))


class Attention(nn.Module):
  """One pre-norm block of causal self-attention (one head) over embedded
  ids plus learned positions, then an MLP: copying X(t - lag) is one
  attention step from position t to position t - lag."""
  width: int
  vocab: int
  readouts: int
  max_length: int

  @nn.compact
  def __call__(self, ids_BxT: chex.Array) -> chex.Array:
    length = ids_BxT.shape[1]
    position_TxD = self.param("positions", nn.initializers.normal(0.02),
                              (self.max_length, self.width))[:length]
    x = nn.Embed(self.vocab, self.width, name="embed")(ids_BxT) + position_TxD
    x = x + nn.MultiHeadDotProductAttention(num_heads=1, name="attention")(
        nn.LayerNorm()(x), mask=nn.make_causal_mask(ids_BxT))
    hidden = nn.gelu(nn.Dense(2 * self.width, name="mlp_in")(
        nn.LayerNorm()(x)))
    x = x + nn.Dense(self.width, name="mlp_out")(hidden)
    return Readouts(self.readouts, self.vocab)(nn.LayerNorm()(x))


MODELS = ("lstm", "gru", "lru", "attention")


def make_model(name: str, width: int, vocab: int, readouts: int,
               length: int, init_scheme: str = "keras") -> nn.Module:
  """One of MODELS; `init_scheme` (models.INITIALIZERS) is the LSTM's."""
  made = {"lstm": LSTM(width, vocab, readouts, init_scheme),
          "gru": GRU(width, vocab, readouts),
          "lru": LRU(width, vocab, readouts),
          "attention": Attention(width, vocab, readouts, length)}
  if name not in made:
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
  return made[name]


def count_params(model: nn.Module) -> int:
  # Shapes do not depend on the sequence: one step is traced.
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 1), jnp.int32))["params"]
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)))


def matched_width(name: str, target_params: int, vocab: int, readouts: int,
                  length: int) -> int:
  """The width at which model `name` has the parameter count closest to
  `target_params` (counts grow with width: a bisection)."""
  count = lambda w: count_params(make_model(name, w, vocab, readouts, length))
  low, high = 1, 1
  while count(high) < target_params:
    low, high = high, 2 * high
  while high - low > 1:
    middle = (low + high) // 2
    low, high = (middle, high) if count(middle) < target_params else (
        low, middle)
  return min((low, high), key=lambda w: abs(count(w) - target_params))


def span_chain(params: chex.ArrayTree, lag) -> chex.ArrayTree:
  """The chain initialisation's delay line (config.init "chain") stretched
  over exactly the lag + 1 slots that lag `lag` (may be traced) needs held,
  each width // (lag + 1) units wide instead of models.CHAIN_LANES: no slot
  past the lag's to carry what the readout must ignore, and at 256 units a
  code twice as redundant as the chain's at lag 17 (measured: 95% at 500
  updates, where the chain's 36 slots of 7 held 6%)."""
  kernel_Hx4H = params["lstm"]["recurrent_kernel"]
  lanes = jnp.maximum(1, kernel_Hx4H.shape[0] // (lag + 1))
  return {**params, "lstm": {**params["lstm"], "recurrent_kernel":
                             models.with_chain_shift(kernel_Hx4H, lanes)}}


def long_lag_task(config: config_lib.EchoConfig, model_name: str, width: int,
                  lags: tuple[int, ...], readouts: int,
                  sequences_per_update: int, clip_norm: float | None,
                  name: str, span: bool = False) -> task_lib.Task:
  """All `lags` of one model in one program: each epoch one update on
  `sequences_per_update` fresh sequences of config.length, Adam at
  config.learning_rate (clipped to `clip_norm`); LSTM initialised by
  config.init, its chain spanning each model's lag if `span` (`span_chain`).
  Scored on config.eval_sequences fresh sequences, every (position, head):
  `scored_readout` picks the model's accuracy."""
  model = make_model(model_name, width, config.n_unique, readouts,
                     config.length, config.init)
  frame = lambda sequence_L, lag: frame_readouts(sequence_L, lag, readouts)

  def init(key, lag):
    params = model.init(key, jnp.zeros((1, config.length), jnp.int32))
    return span_chain(params["params"], lag) if span else params["params"]

  apply = lambda params, ids_BxT: model.apply({"params": params}, ids_BxT)
  train = samples_lib.make_train(config, init, frame, apply,
                                 sequences_per_update, sequences_per_update,
                                 clip_norm)
  return task_lib.Task(
      name, config, train, samples_lib.make_evaluate(frame, apply),
      tuple(lags), tuple(f"{name} lag {l}" for l in lags),
      {"model": model_name, "width": width, "readouts": readouts,
       "sequences_per_update": sequences_per_update, "clip_norm": clip_norm,
       **({"init": "span"} if span else {})})


BITS = 7  # ceil(log2(100)): the shift register's units per slot


def shift_register_units(lag: int) -> int:
  return BITS * (lag + 1)


class ShiftRegister(nn.Module):
  """A linear recurrent net, h_t = h_t-1 A + onehot(x_t) B, logits =
  h_t W + b, to be given hand-set weights (`shift_register_params`)."""
  units: int
  vocab: int

  @nn.compact
  def __call__(self, ids_BxT: chex.Array) -> chex.Array:
    a = self.param("A", nn.initializers.zeros, (self.units, self.units))
    b = self.param("B", nn.initializers.zeros, (self.vocab, self.units))
    w = self.param("W", nn.initializers.zeros, (self.units, self.vocab))
    bias = self.param("b", nn.initializers.zeros, (self.vocab,))

    def step(h_BxS, ids_B):
      h_BxS = h_BxS @ a + b[ids_B]
      return h_BxS, h_BxS @ w + bias

    h0 = jnp.zeros((ids_BxT.shape[0], self.units), jnp.float32)
    _, logits_TxBxV = jax.lax.scan(step, h0, ids_BxT.T)
    return jnp.swapaxes(logits_TxBxV, 0, 1)[:, :, None, :]


def shift_register_params(lag: int, vocab: int) -> dict[str, Any]:
  """Weights that echo X(t - lag) exactly: x_t enters slot 0 as its
  BITS-bit code, each step moves slot s to slot s + 1, and the readout
  scores value v by how many of slot `lag`'s bits agree with v's code
  (BITS for v, at most BITS - 1 for any other value). The output at t is
  read from the state after x_t, so it holds lag + 1 values."""
  assert vocab <= 2**BITS, vocab
  code_VxK = ((np.arange(vocab)[:, None] >> np.arange(BITS)) & 1).astype(
      np.float32)
  units = shift_register_units(lag)
  a = np.eye(units, k=BITS, dtype=np.float32)
  b = np.zeros((vocab, units), np.float32)
  b[:, :BITS] = code_VxK
  w = np.zeros((units, vocab), np.float32)
  sign_VxK = 2 * code_VxK - 1  # agreement: bit * sign + (1 - bit) * -sign
  w[units - BITS:] = 2 * sign_VxK.T
  return {"A": a, "B": b, "W": w, "b": -sign_VxK.sum(1)}


def shift_register_evaluate(lag: int, vocab: int
                            ) -> Callable[[chex.Array], Any]:
  """evaluate(sequences_SxL) -> samples Scores of the hand-set register."""
  model = ShiftRegister(shift_register_units(lag), vocab)
  params = jax.tree.map(jnp.asarray, shift_register_params(lag, vocab))
  frame = lambda sequence_L, lag_: frame_readouts(sequence_L, lag_, 1)
  evaluate = samples_lib.make_evaluate(
      frame, lambda p, ids: model.apply({"params": p}, ids))
  return lambda sequences_SxL: evaluate(params, sequences_SxL,
                                        jnp.int32(lag))
