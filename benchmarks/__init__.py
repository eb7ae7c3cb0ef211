"""The benchmark harness: echo_jax's speed, measured outside the library."""
