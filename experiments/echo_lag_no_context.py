r"""The beginner's mistake: echo X(t-1) from one timestep per sample,
relying on a stateful LSTM(50) with batch 6 to remember (2000 epochs).
Keras carries row i of batch k into row i of batch k+1, so the state that
predicts sample j was left by sample j-6, and no gradient crosses batches:
the model stays at chance (1/n_unique).

  python -m experiments.echo_lag_no_context [--seeds=4 --workdir=runs/echo_lag_no_context ...]
"""

from experiments import common

from echo_jax.core import config as config_lib


def main():
  common.run_main(lambda: common.run_single("echo_lag_no_context"),
                  lambda: config_lib.preset("echo_lag_no_context"))


if __name__ == "__main__":
  main()
