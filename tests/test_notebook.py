"""notebooks/tutorial.py: a jupytext notebook that reads as one, and runs
from top to bottom at its QUICK settings."""

import os

from absl.testing import absltest
import jupytext
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from helpers import make_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "tutorial.py")


class TutorialNotebookTest(absltest.TestCase):

  def test_is_a_notebook_of_prose_and_code(self):
    notebook = jupytext.read(NOTEBOOK)
    kinds = [cell.cell_type for cell in notebook.cells]
    self.assertGreaterEqual(kinds.count("markdown"), 5)
    self.assertGreaterEqual(kinds.count("code"), 5)
    # Round trip: the file is what jupytext writes for its notebook, so a
    # notebook saved from Jupyter diffs line by line against it.
    with open(NOTEBOOK, encoding="utf-8") as f:
      self.assertEqual(jupytext.writes(notebook, fmt="py:percent"), f.read())

  def test_runs_at_quick_settings(self):
    with open(NOTEBOOK, encoding="utf-8") as f:
      source = f.read()
    quick = source.replace("QUICK = False", "QUICK = True", 1)
    self.assertNotEqual(quick, source)
    cwd = os.getcwd()
    os.chdir(make_tempdir(self))  # anything it writes lands here
    self.addCleanup(os.chdir, cwd)
    self.addCleanup(plt.close, "all")
    scope = {"__name__": "__main__"}
    # pylint: disable=exec-used
    exec(compile(quick, NOTEBOOK, "exec"), scope)
    # Three experiments and the extension, each with its figure.
    for name in ("current", "mistake", "lag", "stateless"):
      record = scope[name]
      self.assertLen(record["eval_accuracy_per_seed"], 2)
      self.assertBetween(record["eval_accuracy"], 0.0, 1.0)
    self.assertEqual(scope["stateless"]["config"]["stateful"], False)
    self.assertGreaterEqual(len(plt.get_fignums()), 4)


if __name__ == "__main__":
  absltest.main()
