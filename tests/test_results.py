"""The results of record (docs/results/): every number the README and docs
quote from them matches, at the precision shown, formatted by the same
functions the binaries print with."""

import csv
import json
import os
import re

from absl.testing import absltest
import numpy as np

from benchmarks import benchmark
from benchmarks import keras_peer
from echo_jax.report import records
from echo_jax.studies import streaming_budget
from test_docs import tables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "docs", "results")
# Pages that show the tutorial's table (a row per experiment: name,
# tutorial accuracy, mean [95% CI], seeds, ...).
TUTORIAL_TABLE_PAGES = ("README.md", "docs/tutorial.md")


def read(*parts):
  with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
    return f.read()


def cells(line):
  """The cells of a markdown table row."""
  return [c.strip() for c in line.strip().strip("|").split("|")]


def table_rows(text, first_cells, header):
  """{first cell: [cells]} of the rows, whose first cell is one of
  `first_cells`, of the markdown tables whose header row contains
  `header`."""
  rows, in_table = {}, False
  for line in text.splitlines():
    if not line.lstrip().startswith("|"):
      in_table = False
      continue
    cells_ = cells(line)
    if not in_table:  # a header row
      in_table, wanted = True, header in line
    elif wanted and cells_[0] in first_cells:
      rows[cells_[0]] = cells_
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


# Extensions whose results of record are committed: docs/results/<name>.json,
# the run's <name>.json without each row's per-epoch training accuracy.
EXTENSIONS = ("ignore_state", "mask_missing", "entire_sequence",
              "lag_values", "lag_sequence", "streaming_echo", "mlp_baseline",
              "large_vocab", "predict_next")
# An accuracy with its interval as the tables print it (`records.ci_cell`).
CI_CELL = re.compile(r"\d+\.\d\d% \[\d+\.\d\d%, \d+\.\d\d%\]")


def section(text, name):
  """The part of a page under its "## name" heading."""
  start = text.index(f"\n## {name}\n")
  end = text.find("\n## ", start + 1)
  return text[start:end if end >= 0 else len(text)]


class ExtensionResultsTest(absltest.TestCase):
  """Every accuracy and interval docs/extensions.md shows for an extension
  is a row of its results file, and every row is shown."""

  def test_each_section_quotes_its_results_file(self):
    page = read("docs", "extensions.md")
    for name in EXTENSIONS:
      with self.subTest(name=name):
        record = json.loads(read("docs", "results", f"{name}.json"))
        self.assertEqual(record["experiment"], name)
        self.assertEqual(record["config"]["seeds"], 8)
        want = sorted(records.ci_cell(row["eval_accuracy"])
                      for row in record["rows"])
        self.assertEqual(sorted(CI_CELL.findall(section(page, name))), want)

  def test_readme_quotes_the_results_files(self):
    lines = read("README.md").splitlines()
    for name in EXTENSIONS:
      with self.subTest(name=name):
        record = json.loads(read("docs", "results", f"{name}.json"))
        # A row's mean, or one position's (mean over seeds).
        shown = {records.percent(x) for row in record["rows"]
                 for x in [row["eval_accuracy"]["mean"],
                           *np.ravel(row["eval_accuracy_per_position"])]}
        row, = [line for line in lines
                if line.startswith(f"| [{name}](docs/extensions.md#")]
        self.assertContainsSubset(re.findall(r"\d+\.\d\d%", row), shown)


def percents(value):
  """Every number of a record in [0, 1], as `records.percent` prints it."""
  if isinstance(value, dict):
    return set().union(*map(percents, value.values()), set())
  if isinstance(value, list):
    return set().union(*map(percents, value), set())
  if isinstance(value, float) and 0 <= value <= 1:
    return {records.percent(value)}
  return set()


def readme_row(start):
  row, = [line for line in read("README.md").splitlines()
          if line.startswith(start)]
  return row


def quotes_only(test, text, record):
  """Every percentage `text` shows (two decimals) is one of `record`'s."""
  test.assertContainsSubset(re.findall(r"\d+\.\d\d%", text),
                            percents(record))


class StateMapResultsTest(absltest.TestCase):
  """docs/results/state_map.json, the 39-cell map: its table's intervals
  and every percentage the section quotes."""

  def test_section_quotes_it(self):
    record = json.loads(read("docs", "results", "state_map.json"))
    text = section(read("docs", "extensions.md"), "state_map")
    cells = [row for row in record["rows"] if row["status"] == "ok"]
    self.assertLen(cells, 39)
    want = sorted(records.ci_cell(row[kind]["accuracy"]) for row in cells
                  for kind in ("stateful", "stateless"))
    self.assertEqual(sorted(CI_CELL.findall(text)), want)
    quotes_only(self, text, record)
    quotes_only(self, readme_row("| [state_map](docs/extensions.md#"), record)


class LongLagsResultsTest(absltest.TestCase):
  """docs/results/long_lags*.json (the lags x models table, the ablation):
  their rows carry what the issue names, and docs/long_lags.md and the
  README quote only their values."""

  def test_rows_and_pages_quote_them(self):
    record = {"rows": []}
    for name in ("long_lags.json", "long_lags_ablation.json",
                 "long_lags_lag17.json"):
      record["rows"] += json.loads(read("docs", "results", name))["rows"]
    trained = [r for r in record["rows"] if r["model"] != "shift_register"]
    for row in record["rows"]:
      self.assertContainsSubset(
          ["model", "recipe", "hidden", "lag", "accuracy", "accuracy_ci95",
           "updates_to_99", "seeds", "sequence_length"], row)
    page = read("docs", "long_lags.md")
    want = sorted(records.ci_cell({"mean": r["accuracy"],
                                   "ci95": r["accuracy_ci95"],
                                   "per_seed": r["accuracy_per_seed"]})
                  for r in trained)
    self.assertEqual(sorted(CI_CELL.findall(page)), want)
    quotes_only(self, page, record)
    quotes_only(self, readme_row("| [long_lags](docs/long_lags.md"), record)


# docs/results/streaming_budget*.json: each combined table of the
# streaming_budget section, by the workdir its --combine command names.
STREAMING_BUDGET = {"streaming_budget.json": "W/all",
                    "streaming_budget_long.json": "W/long",
                    "streaming_budget_lags6to9.json": "W/lags6to9"}


class StreamingBudgetResultsTest(absltest.TestCase):
  """The table under each --combine command of the streaming_budget section
  is its results file's, cell for cell, as the binary prints it."""

  def test_section_shows_them(self):
    lines = section(read("docs", "extensions.md"), "streaming_budget").split(
        "\n")
    below = {first - 1: (first, last) for first, last in tables(lines)}
    for name, workdir in STREAMING_BUDGET.items():
      with self.subTest(name=name):
        record = json.loads(read("docs", "results", name))
        self.assertEqual(record["config"]["seeds"], 8)
        command, = [i for i, line in enumerate(lines)
                    if "--combine=" in line and f"--workdir={workdir}`" in line]
        first, last = below[command]
        self.assertEqual(cells(lines[first]),
                         ["run updates", *streaming_budget.TABLE_HEADER])
        # Past the header and its rule.
        self.assertEqual([cells(line) for line in lines[first + 2:last + 1]], [
            [str(c) for c in [row["run_updates"]]
             + streaming_budget.table_row(row)] for row in record["rows"]])


class BenchmarkResultsTest(absltest.TestCase):
  """docs/results/benchmark.json, the benchmark run with both peers:
  docs/performance.md shows each of its tables and docs/tutorial.md the
  side-by-side one, cell for cell, as the binary prints them."""

  def setUp(self):
    super().setUp()
    self.report = json.loads(read("docs", "results", "benchmark.json"))

  def assert_page_shows(self, page, header, rows):
    """The page has a table with exactly this header and these rows."""
    lines = read(*page.split("/")).splitlines()
    # Each table: its header row, the rule under it, then its rows.
    shown = [[cells(line) for line in lines[first + 2:last + 1]]
             for first, last in tables(lines) if cells(lines[first]) == header]
    self.assertLen(shown, 1, f"{page}: one table headed {header}")
    self.assertEqual(shown[0], [[str(c) for c in row] for row in rows])

  def test_performance_shows_its_tables(self):
    for table in benchmark.TABLES:
      with self.subTest(table=table.__name__):
        made = table(self.report)
        self.assertIsNotNone(made, "its section is missing from the run")
        self.assert_page_shows("docs/performance.md", *made)

  def test_tutorial_shows_its_table(self):
    self.assert_page_shows("docs/tutorial.md",
                           *keras_peer.side_by_side(self.report))

  def test_readme_quotes_it(self):
    readme = " ".join(read("README.md").split())
    start = self.report["reproduce_default"]
    self.assertIn(f"About {start['cold_seconds']:.0f} s on 2 CPU cores "
                  f"({start['warm_seconds']:.0f} s when run again", readme)
    span = lambda seconds, digits: "-".join(
        f"{x:.{digits}f}" for x in (min(seconds), max(seconds)))
    one_model = lambda peer: [peer[name]["train_seconds"]
                              for name in benchmark.EXPERIMENTS]
    self.assertIn(
        f"one tutorial model in {span(one_model(self.report['one_model']), 1)}"
        f" s, against {span(one_model(self.report['peer']), 0)} s for an "
        f"idiomatic PyTorch port and "
        f"{span(one_model(self.report['keras_peer']), 0)} s for the "
        "tutorial's own code on Keras 3", readme)


class EveryResultsFileIsQuotedTest(absltest.TestCase):

  def test_results_files_are_small_json_named_on_a_page(self):
    pages = read("README.md") + "".join(
        read("docs", name) for name in sorted(os.listdir(
            os.path.join(REPO, "docs"))) if name.endswith(".md"))
    for name in os.listdir(RESULTS):
      with self.subTest(name=name):
        self.assertRegex(name, r"\.(json|csv)$")
        # The largest, long_lags.json: ~200 rows, each with its curve and
        # accuracy per position, as the binary indents them.
        self.assertLess(os.path.getsize(os.path.join(RESULTS, name)),
                        400_000)
        self.assertTrue(re.search(rf"results/{re.escape(name)}\b", pages),
                        f"no page cites docs/results/{name}")
        # Sources and workdirs as the page's commands name them (W/...),
        # not a path of the machine that ran them.
        with open(os.path.join(RESULTS, name)) as f:
          absolute = re.findall(r'"((?:/|[A-Za-z]:\\)[^"]*)"', f.read())
        self.assertEqual(sorted(set(absolute)), [], name)


if __name__ == "__main__":
  absltest.main()
