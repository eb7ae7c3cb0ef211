"""echo_jax: the Keras LSTM echo tutorial, reproduced and extended in JAX."""
