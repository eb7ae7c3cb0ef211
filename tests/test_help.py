"""Every binary's --help: its description (the module docstring's first
paragraph, as written) and its own flags, each with the default that binary
uses when the flag is not given."""

import ast
import glob
import os
import re
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

from echo_jax.core import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FLAGS = tuple(config_lib.FIELD_HELP)


def source(binary):
  with open(os.path.join(REPO, "experiments", f"{binary}.py")) as f:
    return f.read()


BINARIES = sorted(
    name for name in (os.path.basename(path)[:-3] for path in glob.glob(
        os.path.join(REPO, "experiments", "*.py")))
    if "\ndef main(" in source(name))

# Per binary: defaults it must show (from the presets in
# echo_jax/core/config.py and the studies' own defaults) and the shared
# flags it refuses, which it must not list. benchmark takes no config.
EXPECTED = {
    "echo_current": ({"epochs": "500", "hidden": "15", "batch_size": "1",
                      "lag": "0", "context": "1", "stateful": "false",
                      "seeds": "4"}, ()),
    "echo_lag": ({"epochs": "2000", "hidden": "50", "batch_size": "5",
                  "lag": "1", "context": "5", "stateful": "true",
                  "learning_rate": "0.001", "seeds": "4"}, ()),
    "echo_lag_no_context": ({"epochs": "2000", "batch_size": "6",
                             "framing": "no_context", "context": "1",
                             "stateful": "true"}, ()),
    "reproduce": ({"seeds": "4", "learning_rate": "0.001"}, ("config_json",)),
    "ignore_state": ({"seeds": "8", "epochs": "2000", "stateful": "false",
                      "eval_sequences": "1000"}, ()),
    "mask_missing": ({"seeds": "8", "epochs": "2000", "batch_size": "5"}, ()),
    "entire_sequence": ({"epochs": "1000", "learning_rate": "0.01",
                         "seeds": "8"}, ("context",)),
    "lag_values": ({"epochs": "600", "learning_rate": "0.01", "seeds": "8",
                    "lags": "1,2,3,4,5,6,7,8,9,10", "hiddens": "8,16,32,64",
                    "sequences_per_epoch": "2"}, ("lag", "hidden")),
    "lag_sequence": ({"seeds": "8", "epochs": "2000", "context": "5",
                      "lags": "1,2,3,4"}, ("lag",)),
    "streaming_echo": ({"epochs": "1000", "learning_rate": "0.01",
                        "seeds": "8", "beginner_epochs": "2000"}, ("lag",)),
    "streaming_budget": ({"learning_rate": "0.01", "seeds": "8",
                          "updates": "12000"}, ("lag", "hidden", "epochs")),
    "mlp_baseline": ({"seeds": "8", "learning_rate": "0.001",
                      "mlp_hidden": "50"}, ()),
    "large_vocab": ({"epochs": "300", "learning_rate": "0.01",
                     "vocabs": "1000,10000"}, ("n_unique",)),
    "predict_next": ({"seeds": "8", "epochs": "2000"}, ()),
    "gru_echo": ({"seeds": "8", "hidden": "50", "stateful": "false"}, ()),
    "state_map": ({"seeds": "8", "epochs": "2000", "lags": "1,3"},
                  ("lag", "context", "batch_size", "stateful")),
    "sweep": ({"seeds": "8", "epochs": "2000", "stateful": "false",
               "lags": "0,1,2,3,4,5,6,7,8"}, ("lag", "context", "hidden")),
    "long_lags": ({"seeds": "8", "updates": "2000", "eval_every": "250",
                   "hiddens": "64", "recipes": "tutorial,full",
                   "models": "lstm", "lags": "1,2,3,4,5,6,7,8,9,10"},
                  ("lag", "hidden", "epochs", "learning_rate", "length",
                   "batch_size", "init", "optimizer", "context", "framing",
                   "stateful", "recurrent_activation", "input_encoding",
                   "lstm_backend")),
    "benchmark": ({"repeats": "3"}, ()),
}
NO_CONFIG = ("benchmark",)
# reproduce's presets differ in these: each experiment's value is named.
PER_EXPERIMENT = {"reproduce": {
    "epochs": "Default: 500 (echo_current), 2000 (echo_lag_no_context), "
              "2000 (echo_lag).",
    "stateful": "Default: false (echo_current), true (echo_lag_no_context), "
                "true (echo_lag)."}}
# A flag's entry in absl's help: "  --name: help..." or "  --[no]name: ...",
# its continuation lines indented further.
ENTRY = re.compile(r"^  --(?:\[no\])?(\w+): (.*?)(?=^  --|^\S|\Z)",
                   re.MULTILINE | re.DOTALL)


def run_help(binary):
  env = dict(os.environ, ECHO_JAX_HOST_DEVICES="1", JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  return subprocess.run(
      [sys.executable, "-m", f"experiments.{binary}", "--help"], cwd=REPO,
      env=env, capture_output=True, text=True, timeout=120, check=False)


def listed_flags(text):
  """{flag name: its help entry, whitespace collapsed}."""
  return {name: " ".join(entry.split()) for name, entry in ENTRY.findall(
      text.split("\nflags:\n", 1)[-1])}


def defined_flags(binary):
  """The flags experiments/<binary>.py defines (flags.DEFINE_*("name"))."""
  return {node.args[0].value for node in ast.walk(ast.parse(source(binary)))
          if isinstance(node, ast.Call)
          and isinstance(node.func, ast.Attribute)
          and node.func.attr.startswith("DEFINE_")}


class HelpTest(parameterized.TestCase):

  def test_every_binary_is_expected(self):
    self.assertCountEqual(BINARIES, EXPECTED)

  # One test per binary: each --help is an interpreter of its own (about
  # 2 s where the defaults are a study's: they import JAX).
  @parameterized.named_parameters((binary, binary) for binary in BINARIES)
  def test_description_and_flags_with_their_defaults(self, binary):
    result = run_help(binary)
    text = result.stdout
    self.assertIn("\nflags:\n", text, result.stderr[-2000:])
    # The description: the docstring's first paragraph, each % as written
    # (absl %-formats it with the program's path).
    doc = ast.get_docstring(ast.parse(source(binary)), clean=False)
    self.assertEqual(text.split("\nflags:\n")[0].strip(),
                     doc.strip().split("\n\n")[0])
    defaults, refused = EXPECTED[binary]
    listed = listed_flags(text)
    shared = (set() if binary in NO_CONFIG
              else {"config_json", *CONFIG_FLAGS} - set(refused))
    self.assertCountEqual(listed, defined_flags(binary) | {"workdir"} | shared)
    for name in shared - {"config_json"}:
      self.assertRegex(listed[name], r"\(default: '|Default: ",
                       f"--{name} of {binary} shows no default")
    for name, value in defaults.items():
      self.assertIn(f"(default: '{value}')", listed[name], f"--{name}")
    for name, value in PER_EXPERIMENT.get(binary, {}).items():
      self.assertIn(value, listed[name], f"--{name}")


if __name__ == "__main__":
  absltest.main()
