"""The extension binaries end to end, tiny: a rerun resumes; their own flags
refuse bad values in one line (results and files: test_golden)."""

import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--seeds=2", "--eval_sequences=4", "--hidden=4", "--epochs=2",
        f"--compilation_cache={helpers.SUITE_CACHE}"]


def run_binary(name, *args):
  return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args],
                        cwd=REPO, env=helpers.binary_env(2),
                        capture_output=True, text=True,
                        timeout=300, check=False)


class ExtensionBinaryTest(parameterized.TestCase):

  def make_workdir(self):
    path = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  @parameterized.parameters(
      ("lag_values", "--lags=0", "error: lags=0 must be integers >= 1"),
      ("lag_values", "--lags=30", "error: lag=30 leaves no complete window"),
      ("lag_sequence", "--lags=5", "error: lag=5 must be in [1, context=5)"),
      ("streaming_echo", "--lags=x", "error: lags=x must be integers"),
      ("streaming_budget", "--recipes=chrono,fast",
       "error: recipes=chrono,fast must be distinct names from tutorial, "
       "chrono, decay"),
      ("streaming_budget", "--eval_every=7",
       "error: updates=12000 must be a multiple of eval_every=7"),
      ("streaming_budget", "--hidden=8",
       "error: --hidden is not used by streaming_budget: give --hiddens"),
      ("long_lags", "--recipes=full-speed",
       "error: recipes: 'full-speed' is not tutorial, full, long, span or "
       "<base><-|+><ingredient>"),
      ("long_lags", "--lags=1,25", "error: lags=1,25 must be in [1, 25) (the "
       "sequence length of recipe tutorial)"),
      ("long_lags", "--models=lstm,transformer",
       "error: models=lstm,transformer must be distinct names from lstm, "
       "gru, lru, attention"),
      ("long_lags", "--learning_rate=0.1", "error: --learning_rate is not "
       "used by long_lags: the recipe sets it (--recipes)"),
      ("long_lags", "--combine=a,b --seeds=2", "error: --seeds is not used "
       "with --combine (it trains nothing)"),
      ("streaming_budget", "--combine=a --lags=2", "error: --lags is not "
       "used with --combine (it trains nothing)"),
      ("large_vocab", "--vocabs=1", "error: vocabs=1 must be integers >= 2"),
      ("mlp_baseline", "--mlp_hidden=0", "error: mlp_hidden=0 must be"),
      ("mask_missing", "--seeds=0", "error: seeds=0 must be >= 1"),
  )
  def test_bad_flag_one_line_exit_2(self, name, flag, message):
    workdir = os.path.join(self.make_workdir(), "out")
    result = run_binary(name, *flag.split(), f"--workdir={workdir}")
    helpers.assert_refused(self, result, message, workdir)


if __name__ == "__main__":
  absltest.main()
