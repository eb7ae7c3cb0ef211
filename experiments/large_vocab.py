r"""Large vocabularies: the windowed echo with n_unique = 1,000 and 10,000.
The LSTM's input is an embedding lookup (the ids gather rows of the input
kernel) instead of one-hot rows times the kernel: the same numbers, without
the (batch x vocab x 4H) matmul. Stateless; each Adam update takes the rows
of 16 fresh sequences (320 samples), learning rate 1e-2, 300 updates.

Accuracy: gather, the full schedule. Speed: gather vs one_hot on the same
models for --timing_epochs updates (one-hot at 10,000 for the full schedule
would not fit the 5-minute budget); their accuracies after those updates
agree, which is the check that the two encodings compute the same thing.

  python -m experiments.large_vocab [--vocabs=1000,10000 --seeds=8 --workdir=DIR]

Writes large_vocab.json and large_vocab.png (time per update).
"""

from absl import flags

from experiments import common
from experiments import extensions_common as ext
from experiments import list_flags

from echo_jax.core import config as config_lib

_VOCABS = flags.DEFINE_list("vocabs", ["1000", "10000"],
                            "Vocabulary sizes (n_unique) to run.")
_SEQUENCES = flags.DEFINE_integer("sequences_per_epoch", 16,
                                  "Fresh sequences per Adam update.")
_TIMING_EPOCHS = flags.DEFINE_integer(
    "timing_epochs", 10, "Updates of the gather vs one_hot timing runs.")
# The shared flags it refuses (-> what to give instead), for the run and
# for --help.
REPLACED = {"n_unique": "give --vocabs"}


# The study's own defaults (before --config_json and the flags).
DEFAULTS = {"epochs": 300, "learning_rate": 1e-2}


def preset():
  """The config before --config_json and the flags (also --help's)."""
  return ext.preset("large_vocab", **DEFAULTS)


def large_vocab():
  config = ext.resolve("large_vocab", REPLACED, **DEFAULTS)
  vocabs = list_flags.int_list("vocabs", _VOCABS.value, minimum=2)
  if _SEQUENCES.value < 1 or _TIMING_EPOCHS.value < 1:
    raise config_lib.ConfigError(
        "sequences_per_epoch and timing_epochs must be >= 1")
  # pylint: disable=g-import-not-at-top
  from echo_jax.studies import large_vocab as study
  study.run(config, common.resolve_workdir(study.NAME), common.run_options(),
            vocabs=vocabs, sequences_per_epoch=_SEQUENCES.value,
            timing_epochs=_TIMING_EPOCHS.value)


def main():
  common.run_main(large_vocab, preset, REPLACED)


if __name__ == "__main__":
  main()
