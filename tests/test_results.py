"""The results of record (docs/results/): every number the README and docs
quote from them matches, at the precision shown, formatted by the same
functions the binaries print with."""

import csv
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


def table_rows(text, first_cells, header):
  """{first cell: [cells]} of the rows, whose first cell is one of
  `first_cells`, of the markdown tables whose header row contains
  `header`."""
  rows, in_table = {}, False
  for line in text.splitlines():
    if not line.lstrip().startswith("|"):
      in_table = False
      continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if not in_table:  # a header row
      in_table, wanted = True, header in line
    elif wanted and cells[0] in first_cells:
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
        rows = table_rows(read(page), want, "ours: mean [95% CI]")
        self.assertCountEqual(rows, want, f"{page}: the tutorial's table")
        for name, cells in rows.items():
          self.assertEqual(cells[:4], want[name], f"{page}: {name}")


class SweepResultsTest(absltest.TestCase):
  """docs/results/sweep.csv, the default sweep: the cells reaching 99% per
  hidden size, as docs/map.md's table and the README say."""

  def test_pages_count_the_cells_that_reach_99(self):
    with open(os.path.join(RESULTS, "sweep.csv"), encoding="utf-8") as f:
      rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
    reached = {}
    for row in rows:
      reached.setdefault(row["hidden"], 0)
      reached[row["hidden"]] += float(row["mean"]) >= 0.99
    table = table_rows(read("docs", "map.md"), reached,
                       "cells reaching 99%")
    self.assertEqual({h: int(cells[1]) for h, cells in table.items()},
                     reached)
    self.assertIn(f"16, 32 and 64 units reach 99% in {reached['16']}, "
                  f"{reached['32']} and {reached['64']} of their 54 cells",
                  " ".join(read("README.md").split()))


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
