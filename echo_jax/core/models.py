"""The tutorial's model in Flax, one LSTM layer and a Dense softmax head:
`KerasLSTMCell` follows Keras' LSTM numerics (fused kernels, gate order
i, f, c, o, forget-gate bias 1, optional Keras-2 hard sigmoid), so the
tutorial's model is reproduced, not approximated."""

from typing import Callable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from echo_jax.core import config as config_lib
from echo_jax.core import fused_lstm

Carry = tuple[chex.Array, chex.Array]  # (c_BxH, h_BxH), Flax's order


RECURRENT_ACTIVATIONS: dict[str, Callable[[chex.Array], chex.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": fused_lstm.keras_hard_sigmoid,
}


def keras_lstm_bias_init(key, shape, dtype=jnp.float32):
  """Zeros, except 1 on the forget gate (Keras' unit_forget_bias=True)."""
  del key
  hidden = shape[0] // 4
  return jnp.zeros(shape, dtype).at[hidden:2 * hidden].set(1.0)


CHRONO_T_MAX = 25  # longest dependency to learn: the tutorial's sequence


def chrono_lstm_bias_init(key, shape, dtype=jnp.float32):
  """Chrono initialisation (Tallec & Ollivier, ICLR 2018): forget-gate bias
  log(u), u ~ U(1, T_max - 1), input-gate bias its negative, others zero:
  units start out keeping their cell 1 to T_max steps, not ~2-3."""
  hidden = shape[0] // 4
  forget_H = jnp.log(jax.random.uniform(key, (hidden,), dtype, 1.0,
                                        CHRONO_T_MAX - 1.0))
  return (jnp.zeros(shape, dtype).at[:hidden].set(-forget_H)
          .at[hidden:2 * hidden].set(forget_H))


CHAIN_LANES = 7  # a slot of the delay line: 7 bits name one of 100 values
CHAIN_GATE_BIAS = 3.0  # input and output gates open (0.95), forget shut
CHAIN_GAIN = 1.5  # x 0.95 x 0.95: a code gains 1.35x a step, so it neither
#   fades nor saturates tanh; at 1.9x and more the gradients vanish (measured)


def with_chain_shift(recurrent_Hx4H: chex.Array, lanes) -> chex.Array:
  """The recurrent kernel with its cell candidates' block a delay line:
  the output of unit j shifted into unit j + `lanes` (may be traced) with
  gain CHAIN_GAIN, so unit group s holds what group s - 1 held a step
  earlier."""
  hidden = recurrent_Hx4H.shape[0]
  unit_H = jnp.arange(hidden)
  shift_HxH = CHAIN_GAIN * (unit_H[None, :] - unit_H[:, None] == lanes)
  return recurrent_Hx4H.at[:, 2 * hidden:3 * hidden].set(
      shift_HxH.astype(recurrent_Hx4H.dtype))


def chain_lstm_recurrent_init(key, shape, dtype=jnp.float32):
  """A delay line to start from (after Orhan & Pitkow 2020's "chain"
  initialisation): slots of CHAIN_LANES units (`with_chain_shift`); the
  gates' blocks are orthogonal."""
  return with_chain_shift(nn.initializers.orthogonal()(key, shape, dtype),
                          CHAIN_LANES)


def chain_lstm_bias_init(key, shape, dtype=jnp.float32):
  """The delay line's gates: a shift register overwrites every slot each
  step, so the forget gate starts shut and the input and output gates open
  (+-CHAIN_GATE_BIAS; Keras' gate order i, f, c, o)."""
  del key
  hidden = shape[0] // 4
  b = CHAIN_GATE_BIAS
  return jnp.concatenate([jnp.full((hidden,), b, dtype),
                          jnp.full((hidden,), -b, dtype),
                          jnp.zeros((hidden,), dtype),
                          jnp.full((hidden,), b, dtype)])


# name -> (input kernel, recurrent kernel, bias, head kernel) initialisers.
INITIALIZERS = {
    "keras": (nn.initializers.glorot_uniform(), nn.initializers.orthogonal(),
              keras_lstm_bias_init, nn.initializers.glorot_uniform()),
    "chrono": (nn.initializers.glorot_uniform(), nn.initializers.orthogonal(),
               chrono_lstm_bias_init, nn.initializers.glorot_uniform()),
    "chain": (nn.initializers.glorot_uniform(), chain_lstm_recurrent_init,
              chain_lstm_bias_init, nn.initializers.glorot_uniform()),
    # Flax's own defaults (LSTMCell and Dense): no forget-gate bias.
    "flax": (nn.initializers.lecun_normal(), nn.initializers.orthogonal(),
             nn.initializers.zeros_init(), nn.initializers.lecun_normal()),
}


class KerasLSTMCell(nn.RNNCellBase):
  """Keras' LSTM cell; inputs are ids (B,), or rows (B, V) if one_hot_input."""
  features: int
  vocab: int
  init_scheme: str = "keras"
  recurrent_activation: str = "sigmoid"
  one_hot_input: bool = False

  def setup(self):
    kernel_init, recurrent_init, bias_init, _ = INITIALIZERS[self.init_scheme]
    four_h = 4 * self.features
    self.kernel = self.param("kernel", kernel_init, (self.vocab, four_h))
    self.recurrent_kernel = self.param(
        "recurrent_kernel", recurrent_init, (self.features, four_h))
    self.bias = self.param("bias", bias_init, (four_h,))

  def project(self, x: chex.Array) -> chex.Array:
    """x_t @ kernel + bias; ids gather the rows a one-hot matmul picks."""
    if self.one_hot_input:
      return x @ self.kernel + self.bias
    return jnp.take(self.kernel, x, axis=0) + self.bias

  def __call__(self, carry: Carry, x_t: chex.Array) -> tuple[Carry, chex.Array]:
    c_BxH, h_BxH = carry
    z_Bx4H = self.project(x_t) + h_BxH @ self.recurrent_kernel
    i, f, g, o = jnp.split(z_Bx4H, 4, axis=-1)
    gate = RECURRENT_ACTIVATIONS[self.recurrent_activation]
    c_BxH = gate(f) * c_BxH + gate(i) * jnp.tanh(g)
    h_BxH = gate(o) * jnp.tanh(c_BxH)
    return (c_BxH, h_BxH), h_BxH

  def window(self, x_BxT: chex.Array, carry: Carry) -> Carry:
    return fused_lstm.lstm_window(self.recurrent_activation,
                                  self.project(x_BxT), self.recurrent_kernel,
                                  *carry)

  @nn.nowrap
  def initialize_carry(self, rng, input_shape) -> Carry:
    del rng
    return zero_carry(input_shape[0], self.features)

  @property
  def num_feature_axes(self) -> int:
    return 1 if self.one_hot_input else 0


def zero_carry(batch: int, hidden: int) -> Carry:
  zeros_BxH = jnp.zeros((batch, hidden), jnp.float32)
  return zeros_BxH, zeros_BxH


class EchoLSTM(nn.Module):
  """LSTM over a window, then Dense logits from the last output. The "cell"
  backend scans with nn.RNN (`unroll`: short windows run faster unrolled) and
  autodiff; "fused" goes through fused_lstm (same numbers, fewer XLA ops)."""
  hidden: int
  vocab: int
  init_scheme: str = "keras"
  recurrent_activation: str = "sigmoid"
  one_hot_input: bool = False
  unroll: int = 1
  backend: str = "fused"

  @nn.compact
  def __call__(self, x_BxT: chex.Array, carry: Carry | None = None
               ) -> tuple[chex.Array, Carry]:
    """Ids (B, T) or one-hot (B, T, V) -> (logits_BxV, final carry)."""
    cell = KerasLSTMCell(self.hidden, self.vocab, self.init_scheme,
                         self.recurrent_activation, self.one_hot_input,
                         name="lstm")
    if carry is None:
      carry = zero_carry(x_BxT.shape[0], self.hidden)
    if self.backend == "fused":
      final_carry = cell.window(x_BxT, carry)
    else:
      final_carry, _ = nn.RNN(cell, unroll=self.unroll, return_carry=True,
                              name="rnn")(x_BxT, initial_carry=carry)
    head_init = INITIALIZERS[self.init_scheme][3]
    dense_kwargs = ({"dot_general": fused_lstm.dense_dot_general}
                    if self.backend == "fused" else {})
    logits_BxV = nn.Dense(self.vocab, kernel_init=head_init, name="head",
                          **dense_kwargs)(final_carry[1])
    return logits_BxV, final_carry


def make_model(config: config_lib.EchoConfig) -> EchoLSTM:
  return EchoLSTM(hidden=config.hidden, vocab=config.n_unique,
                  init_scheme=config.init,
                  recurrent_activation=config.recurrent_activation,
                  one_hot_input=config.input_encoding == "one_hot",
                  unroll=config.context, backend=config.lstm_backend)


def init_params(config: config_lib.EchoConfig, key: chex.PRNGKey
                ) -> chex.ArrayTree:
  ids_1xT = jnp.zeros((1, config.context), jnp.int32)
  return make_model(config).init(key, model_inputs(config, ids_1xT))["params"]


def model_inputs(config: config_lib.EchoConfig, ids: chex.Array) -> chex.Array:
  if config.input_encoding == "one_hot":
    return jax.nn.one_hot(ids, config.n_unique, dtype=jnp.float32)
  return ids


def make_apply(config: config_lib.EchoConfig):
  """apply(params, ids_BxT, carry=None) -> (logits_BxV, final carry)."""
  model = make_model(config)
  return lambda params, ids_BxT, carry=None: model.apply(
      {"params": params}, model_inputs(config, ids_BxT), carry)
