"""long_lags' figures, from its rows (`studies.long_lags`): the updates to
99% against the lag, and the smallest width that reaches 99% against the
lag beside the hand-set shift register's units."""

from typing import Any, Sequence

from echo_jax.report import plots  # sets the Agg backend before pyplot loads

# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import ticker
import matplotlib.pyplot as plt


# Matplotlib's ten, then six more: the record's sixteen series (both
# figures) without a colour twice.
COLOURS = [f"C{i}" for i in range(10)] + [
    "black", "navy", "darkgoldenrod", "magenta", "teal", "lime"]


def series(row: dict[str, Any]) -> str:
  """A row's series: its line here, its column in the study's table."""
  if row["model"] == "shift_register":
    return "hand-set register"
  return (f"{row['model']} {row['hidden']}, {row['recipe']}, length "
          f"{row['sequence_length']}")


def _finish(ax, path: str, ylabel: str, title: str,
            grid_which: str = "major") -> None:
  """Both figures' axes, labels and legend; then saved."""
  ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
  ax.xaxis.set_major_locator(ticker.MultipleLocator(1))
  ax.set_xlabel("lag")
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3, which=grid_which)
  # Beside the axes: inside, a dozen series would cover the short lags.
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
  ax.set_title(title, fontsize=9)
  ax.figure.tight_layout()
  plots.save_atomic(ax.figure, path)


def updates_vs_lag(path: str, rows: Sequence[dict[str, Any]],
                   level: float) -> None:
  """Updates to `level` (log scale) against the lag, a line per (model,
  recipe, hidden, length); a lag not reached within the budget is a hollow
  mark at the budget."""
  _, ax = plt.subplots(figsize=(10, 4.2))
  trained = [r for r in rows if r["model"] != "shift_register"]
  labels = sorted({series(r) for r in trained})
  for i, label in enumerate(labels):
    mine = sorted((r for r in trained if series(r) == label),
                  key=lambda r: r["lag"])
    colour, marker = COLOURS[i % len(COLOURS)], "osD^v<>p"[i % 8]
    # Side by side, so that series sharing a point stay visible.
    dodge = 0.3 * (i - (len(labels) - 1) / 2) / max(len(labels), 1)
    reached = [(r["lag"] + dodge, r["updates_to_99"]) for r in mine
               if r["updates_to_99"] is not None]
    missed = [(r["lag"] + dodge, r["updates"][-1]) for r in mine
              if r["updates_to_99"] is None]
    if reached:
      ax.plot(*zip(*reached), "-", marker=marker, color=colour, lw=1.2, ms=4,
              label=label)
    if missed:
      ax.plot(*zip(*missed), marker, color=colour, mfc="none", ms=6,
              label=None if reached else label)
  ax.set_yscale("log")
  ax.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
  _finish(ax, path, f"updates to {100 * level:g}% (mean over seeds)",
          f"Streaming echo: updates until the test accuracy reaches "
          f"{100 * level:g}%\n(hollow: not reached within the budget shown)",
          grid_which="both")


def width_vs_lag(path: str, smallest: dict[str, dict[str, int | None]],
                 rows: Sequence[dict[str, Any]]) -> None:
  """The smallest LSTM width reaching 99% per lag and recipe (the record's
  `smallest_width`: {recipe: {lag: width or None}}); the hand-set
  register's units beside."""
  _, ax = plt.subplots(figsize=(9, 4))
  for i, (recipe, widths) in enumerate(sorted(smallest.items())):
    # Nudged apart, so that recipes needing the same width stay visible.
    nudge = 1.025 ** (i - (len(smallest) - 1) / 2)
    points = [(int(lag), w * nudge) for lag, w in widths.items()
              if w is not None]
    if points:
      tried = sorted({r["hidden"] for r in rows if r["model"] == "lstm"
                      and r["recipe"] == recipe})
      ax.plot(*zip(*points), "o-", color=COLOURS[i % len(COLOURS)], ms=4,
              label=f"LSTM, {recipe} (widths tried: "
              f"{', '.join(map(str, tried))})")
  bound = sorted({(r["lag"], r["hidden"]) for r in rows
                  if r["model"] == "shift_register"})
  if bound:
    ax.plot(*zip(*bound), "k--", label="hand-set shift register (units)")
  # Widths are powers of two: equal steps on a log2 axis.
  ax.set_yscale("log", base=2)
  _finish(ax, path, "smallest width tried reaching 99%",
          "Width an LSTM needs against the lag")
