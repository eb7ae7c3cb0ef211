"""The figures read alone: the sweep heatmap shows which cells reach 99%,
the state map is legible at README width and explains its marks, figure
titles clear the panel titles, and a one-seed run draws no interval."""

import os
from unittest import mock

from absl.testing import absltest
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np

from echo_jax.report import study_plots
from echo_jax.report import plots
from echo_jax.report import records
from echo_jax.report import state_map_records
from echo_jax.report import sweep_plots
from helpers import make_tempdir


def sweep_rows(seeds, means):
  """Sweep rows of hidden 4 and 8, lags 0-1, contexts 1-2: `means` maps
  (lag, context, hidden) to a trained cell's mean; the rest impossible."""
  rows = []
  for (lag, context, hidden), mean in means.items():
    rows.append({"lag": lag, "context": context, "hidden": hidden,
                 "status": "ok", "seeds": seeds, "mean": mean,
                 "ci_low": max(0.0, mean - 0.01),
                 "ci_high": min(1.0, mean + 0.01),
                 "train_accuracy_per_epoch": [0.1, mean]})
  for hidden in (4, 8):
    rows.append({"lag": 1, "context": 1, "hidden": hidden,
                 "status": "impossible"})
  return rows


MEANS = {(0, 1, 4): 0.994, (0, 2, 4): 0.9896, (1, 2, 4): 0.5,
         (0, 1, 8): 1.0, (0, 2, 8): 0.99, (1, 2, 8): 0.123}


def drawn(draw, *args, **kwargs):
  """The figure `draw(*args, path, ...)` would save, drawn, not saved."""
  figures = []
  with mock.patch.object(plots, "save_atomic",
                         lambda figure, path: figures.append(figure)):
    draw(*args, **kwargs)
  figure, = figures
  figure.canvas.draw()
  return figure


def overlaps(a, b) -> bool:
  return a.get_window_extent().overlaps(b.get_window_extent())


class SweepHeatmapTest(absltest.TestCase):

  def test_cell_text_truncates_to_a_tenth(self):
    self.assertEqual(sweep_plots.cell_text(0.994), "99.4")
    self.assertEqual(sweep_plots.cell_text(0.99), "99.0")
    # Rounding would print 99.0 for a cell under the line.
    self.assertEqual(sweep_plots.cell_text(0.9896), "98.9")
    self.assertEqual(sweep_plots.cell_text(0.9999), "99.9")
    self.assertEqual(sweep_plots.cell_text(1.0), "100")
    self.assertEqual(sweep_plots.cell_text(0.05), "5.0")

  def test_cells_at_99_are_framed_and_bold_and_the_title_says_so(self):
    figure = drawn(sweep_plots.heatmap, sweep_rows(2, MEANS), "unused.png",
                   "title")
    texts = {t.get_text(): t for ax in figure.axes for t in ax.texts}
    self.assertContainsSubset({"99.4", "98.9", "50.0", "100", "99.0",
                               "12.3", "x"}, set(texts))
    learnt = {"99.4", "100", "99.0"}
    for text, artist in texts.items():
      self.assertEqual(artist.get_fontweight() == "bold", text in learnt,
                       text)
    frames = [p for ax in figure.axes for p in ax.patches
              if not p.get_fill() and p.get_linewidth() > 1]
    self.assertLen(frames, len(learnt))
    self.assertIn(">= 99%", figure.get_suptitle())
    plt.close(figure)


class StateMapFigureTest(absltest.TestCase):

  def test_wide_enough_for_the_readme_and_explains_its_marks(self):
    rows = [{"lag": 1, "window": 5, "batch": "1", "status": "ok",
             "difference": {"mean": -0.3}},
            {"lag": 1, "window": 5, "batch": "4", "status": "not_divisor"},
            {"lag": 5, "window": 5, "batch": "1", "status": "impossible"},
            {"lag": 5, "window": 5, "batch": "4", "status": "impossible"},
            {"lag": 1, "window": 5, "batch": "whole", "status": "ok",
             "difference": {"mean": 0.0}},
            {"lag": 5, "window": 5, "batch": "whole",
             "status": "impossible"}]
    path = os.path.join(make_tempdir(self), "state_map.png")
    state_map_records.difference_heatmap(rows, path, "title")
    height, width, _ = matplotlib.image.imread(path).shape
    self.assertGreaterEqual(width, 900)
    self.assertLess(height, width)
    for mark in ("x:", "n/d:", "whole:"):
      self.assertIn(mark, state_map_records.CAPTION)
    figure = drawn(state_map_records.difference_heatmap, rows, "unused.png",
                   "title")
    self.assertIn(state_map_records.CAPTION,
                  [t.get_text() for t in figure.texts])
    self.assertTrue(all(
        t.get_fontsize() >= 10 for ax in figure.axes[:-1] for t in ax.texts))
    plt.close(figure)


class TitlesTest(absltest.TestCase):

  def assert_title_clear(self, figure):
    for title in (ax.title for ax in figure.axes if ax.get_title()):
      self.assertFalse(overlaps(figure._suptitle, title), title.get_text())  # pylint: disable=protected-access
    plt.close(figure)

  def test_sweep_learning_curves(self):
    means = {(lag, 2, hidden): 0.5 for lag in (0, 1)
             for hidden in (4, 8, 16, 32, 64)}
    figure = drawn(
        sweep_plots.learning_curves, sweep_rows(2, means), "unused.png",
        "echo X(t-lag): 8 seeds/cell, 2000 epochs, batch 5, stateless, "
        "1000 test sequences", 0.1)
    self.assertLen([ax for ax in figure.axes if ax.get_title()], 5)
    self.assert_title_clear(figure)

  def test_run_learning_curves(self):
    curves_SxE = np.random.default_rng(0).random((2, 5))
    figure = drawn(plots.learning_curves, {"": (curves_SxE, curves_SxE)},
                   "unused.png", "echo_lag: lag 2, context 4", chance=0.1)
    for ax in figure.axes:
      self.assertFalse(overlaps(figure._suptitle, ax))  # pylint: disable=protected-access
    self.assert_title_clear(figure)

  def test_sweep_heatmap(self):
    self.assert_title_clear(drawn(sweep_plots.heatmap, sweep_rows(2, MEANS),
                                  "unused.png", "title"))


class OneSeedTest(absltest.TestCase):

  def test_table_cell_says_no_interval(self):
    self.assertEqual(records.ci_cell(records.summarise([0.55])),
                     "55.00% (1 seed: no interval)")
    self.assertEqual(records.ci_cell(records.summarise([0.5, 0.5])),
                     "50.00% [50.00%, 50.00%]")
    record = {"experiment": "echo_lag", "tutorial_accuracy": None,
              "eval_accuracy": 0.55, "eval_accuracy_ci95": [0.55, 0.55],
              "eval_accuracy_per_seed": [0.55], "compile_seconds": 1.0,
              "train_seconds": 2.0}
    self.assertIn("55.00% (1 seed: no interval)",
                  records.summary_row(record))

  def test_record_keeps_two_numbers(self):
    # Readers of the records (and their goldens) see one form for any seeds.
    self.assertEqual(records.mean_and_ci95([0.55]), (0.55, 0.55, 0.55))

  def test_accuracy_vs_hidden_draws_no_bars(self):
    means = {(lag, 2, hidden): 0.5 for lag in (0, 1) for hidden in (4, 8)}
    for seeds, bars in ((1, 0), (2, 1)):
      figure = drawn(sweep_plots.accuracy_vs_hidden, sweep_rows(seeds, means),
                     "unused.png", "title", 10, 0.1)
      ax, = figure.axes
      containers = [c for c in ax.containers if hasattr(c, "has_yerr")]
      self.assertTrue(containers)
      self.assertTrue(all(c.has_yerr == bool(bars) for c in containers))
      self.assertEqual(records.NO_INTERVAL in ax.get_title(), seeds == 1)
      plt.close(figure)

  def test_budget_draws_no_band(self):
    for seeds in (1, 2):
      curve = [records.summarise([0.5 + 0.01 * s for s in range(seeds)])
               for _ in range(2)]
      rows = [{"lag": 1, "hidden": 4, "recipe": "tutorial",
               "updates": [10, 20], "curve": curve}]
      figure = drawn(study_plots.accuracy_vs_budget, "unused.png", rows, 4,
                     seeds, 0.99)
      ax = figure.axes[0]
      self.assertLen(ax.collections, 0 if seeds == 1 else 1)
      self.assertEqual(records.NO_INTERVAL in figure.get_suptitle(),
                       seeds == 1)
      plt.close(figure)


if __name__ == "__main__":
  absltest.main()
