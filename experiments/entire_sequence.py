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


def entire_sequence():
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import entire_sequence as study
  config = ext.resolve(
      study.NAME, {"context": "its samples are whole prefixes"},
      windowless=True, epochs=1000, learning_rate=1e-2)
  study.run(config, common.resolve_workdir(study.NAME), common.run_options())


def main():
  common.run_main(entire_sequence)


if __name__ == "__main__":
  main()
