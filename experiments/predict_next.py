r"""The negative control: predict the next random integer X(t+1) from the
window of the last 5 values. It must stay at chance (1/n_unique): the next
value is independent of the past. The echo X(t-1) with the same model,
windows and training is the positive control. Stateless, the tutorial's
batches of 5 and 2000 epochs.

  python -m experiments.predict_next [--seeds=8 --workdir=DIR]

Writes predict_next.json (rows: predict_next, echo_control).
"""

from experiments import common
from experiments import extensions_common as ext


def predict_next():
  config = ext.resolve("predict_next")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import predict_next as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options())


def main():
  common.run_main(predict_next, lambda: ext.preset("predict_next"))


if __name__ == "__main__":
  main()
