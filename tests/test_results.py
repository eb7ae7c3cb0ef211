"""The results of record (docs/results/): every number the README and docs
quote from them matches, at the precision shown, formatted by the same
functions the binaries print with."""

import json
import os
import re

from absl.testing import absltest

from echo_jax.report import records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "docs", "results")
# Pages that show the tutorial's table (a row per experiment: name,
# tutorial accuracy, mean [95% CI], seeds, ...).
TUTORIAL_TABLE_PAGES = ("README.md", "docs/tutorial.md")


def read(*parts):
  with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
    return f.read()


def table_rows(text, first_cells):
  """{first cell: [cells]} of markdown table rows whose first cell is one of
  `first_cells`."""
  rows = {}
  for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.lstrip().startswith("|") and cells[0] in first_cells:
      rows[cells[0]] = cells
  return rows


class ReproduceResultsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.experiments = json.loads(read("docs", "results",
                                       "reproduce.json"))["experiments"]

  def test_is_the_tutorials_settings_with_4_seeds(self):
    self.assertEqual([r["experiment"] for r in self.experiments],
                     ["echo_current", "echo_lag_no_context", "echo_lag"])
    for record in self.experiments:
      self.assertEqual(record["config"]["seeds"], 4)
      self.assertEqual(record["config"]["eval_sequences"], 1000)
      self.assertLen(record["eval_accuracy_per_seed"], 4)

  def test_pages_quote_it(self):
    want = {r["experiment"]: records.summary_row(r)[:4]
            for r in self.experiments}
    for page in TUTORIAL_TABLE_PAGES:
      with self.subTest(page=page):
        rows = table_rows(read(page), want)
        self.assertCountEqual(rows, want, f"{page}: the tutorial's table")
        for name, cells in rows.items():
          self.assertEqual(cells[:4], want[name], f"{page}: {name}")


class EveryResultsFileIsQuotedTest(absltest.TestCase):

  def test_results_files_are_small_json_named_on_a_page(self):
    pages = read("README.md") + "".join(
        read("docs", name) for name in sorted(os.listdir(
            os.path.join(REPO, "docs"))) if name.endswith(".md"))
    for name in os.listdir(RESULTS):
      with self.subTest(name=name):
        self.assertRegex(name, r"\.(json|csv)$")
        self.assertLess(os.path.getsize(os.path.join(RESULTS, name)),
                        100_000)
        self.assertTrue(re.search(rf"results/{re.escape(name)}\b", pages),
                        f"no page cites docs/results/{name}")


if __name__ == "__main__":
  absltest.main()
