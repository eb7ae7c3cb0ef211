r"""Echo the current value: y(t) = X(t), one timestep per sample.
Tutorial settings: LSTM(15), batch 1, 500 epochs, stateless; 100% accuracy.

  python -m experiments.echo_current [--seeds=4 --workdir=runs/echo_current ...]
"""

from experiments import common

from echo_jax.core import config as config_lib


def main():
  common.run_main(lambda: common.run_single("echo_current"),
                  lambda: config_lib.preset("echo_current"))


if __name__ == "__main__":
  main()
