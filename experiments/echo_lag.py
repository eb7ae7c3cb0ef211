r"""Echo X(t-1) from a window of the last 5 values: stateful LSTM(50),
batch 5, 2000 epochs, state reset each epoch. Tutorial: 100% accuracy.

  python -m experiments.echo_lag [--seeds=4 --workdir=runs/echo_lag ...]
"""

from experiments import common

from echo_jax.core import config as config_lib


def main():
  common.run_main(lambda: common.run_single("echo_lag"),
                  lambda: config_lib.preset("echo_lag"))


if __name__ == "__main__":
  main()
