"""A run's random keys: one training key per model, one test set for all.

Model i of a run always has key fold_in(fold_in(PRNGKey(seed), 0), i), so
adding seeds never changes the earlier ones; every model of a run is scored
on the same fresh test sequences, drawn from fold_in(PRNGKey(seed), 1).
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from echo_jax.core import config as config_lib
from echo_jax.runtime import programs


def model_keys(config: config_lib.EchoConfig, count: int) -> chex.Array:
  """Training key of model i, for i < count: fold_in(fold_in(seed, 0), i)."""
  return _model_keys(config.seed, count)


def eval_key(config: config_lib.EchoConfig) -> chex.PRNGKey:
  """One test set for every model of a run, disjoint from training keys."""
  return _eval_key(config.seed)


def eval_test_set(config: config_lib.EchoConfig):
  """The run's test set, config.eval_sequences sequences drawn from
  `eval_key` (`data.test_sequences`), as a `data.TestSet`: held as their
  keys and drawn batch by batch when scored. Every model of a run is
  scored on it."""
  return programs.test_set(config, eval_key(config))


# One small program each (op by op they were seven, ~0.3 s of a cold start).
@functools.partial(jax.jit, static_argnums=1)
def _model_keys(seed, count: int) -> chex.Array:
  base = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(count))


@jax.jit
def _eval_key(seed) -> chex.PRNGKey:
  return jax.random.fold_in(jax.random.PRNGKey(seed), 1)


def variant_grid(config: config_lib.EchoConfig, variants: tuple[int, ...],
                 count: int) -> tuple[np.ndarray, np.ndarray]:
  """Keys and variant values (e.g. lags) of all models, variant-major,
  padded to `count` by repeating model 0 (padding is discarded). Every
  variant uses the same seeds' keys, so variants are compared on paired
  initialisations and training data."""
  keys_S = np.asarray(model_keys(config, config.seeds))
  keys_M = np.concatenate([keys_S] * len(variants))
  variants_M = np.repeat(np.asarray(variants, np.int32), config.seeds)
  pad = count - len(variants_M)
  return (np.concatenate([keys_M, np.repeat(keys_M[:1], pad, 0)]),
          np.concatenate([variants_M, np.repeat(variants_M[:1], pad)]))
