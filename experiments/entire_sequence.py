r"""Entire sequence as timesteps: sample t is the whole prefix X(0..t), padded
to the sequence length, target X(t-1); the padding is masked (skipped) or
marked with a special value. Accuracy per position t. Stateless; one Adam
update per sequence (its 24 prefixes), learning rate 1e-2 by default.

  python -m experiments.entire_sequence [--seeds=8 --epochs=1000 --workdir=DIR]

Writes entire_sequence.json (rows: prefix_mask, prefix_special_value) and
entire_sequence.png (accuracy per position t).
"""

from experiments import common
from experiments import extensions_common as ext

# The study's defaults (over the extensions') and the shared flags it
# refuses (-> what to give instead), for the run and for --help.
DEFAULTS = {"epochs": 1000, "learning_rate": 1e-2}
REPLACED = {"context": "its samples are whole prefixes"}


def entire_sequence():
  config = ext.resolve("entire_sequence", REPLACED, windowless=True, **DEFAULTS)
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import entire_sequence as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options())


def main():
  common.run_main(entire_sequence,
                  lambda: ext.preset("entire_sequence", **DEFAULTS),
                  REPLACED)


if __name__ == "__main__":
  main()
