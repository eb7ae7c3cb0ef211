r"""A GRU beside the tutorial's LSTM on the windowed echo (stateless, the
tutorial's windows and schedule): the worked example of
docs/architecture.md.

  python -m experiments.gru_echo [--seeds=8 --hidden=50 --workdir=DIR]

Writes gru_echo.json (rows: lstm, gru_<hidden>) and a run folder per model.
"""

from experiments import common
from experiments import extensions_common as ext


def gru_echo():
  config = ext.resolve("gru_echo")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import extensions
  from echo_jax.tasks import framed
  from echo_jax.tasks import gru
  extensions.compare(
      "gru_echo", config,
      [framed.echo_lstm_task("lstm", config), gru.gru_task(config)],
      common.resolve_workdir("gru_echo"), common.run_options())


def main():
  common.run_main(gru_echo, lambda: ext.preset("gru_echo"))


if __name__ == "__main__":
  main()
