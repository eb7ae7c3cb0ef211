r"""Mask missing data: keep the rows the tutorial drops (windows reaching
before X(0)) and mark the missing steps with a special value, or mask them
(the LSTM skips them); compare with dropping the rows. All stateless, the
tutorial's batches of 5, 2000 epochs.

  python -m experiments.mask_missing [--seeds=8 --workdir=DIR]

Writes mask_missing.json (rows: drop, special_value, mask) and
mask_missing.png (accuracy per position t).
"""

from experiments import common
from experiments import extensions_common as ext


def mask_missing():
  config = ext.resolve("mask_missing")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import mask_missing as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options())


def main():
  common.run_main(mask_missing, lambda: ext.preset("mask_missing"))


if __name__ == "__main__":
  main()
