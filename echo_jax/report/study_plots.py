"""The extension studies' figures: an accuracy line per variant
(`accuracy_lines`), and streaming_budget's test accuracy against the
training budget, one panel per lag (`accuracy_vs_budget`)."""

from typing import Any, Sequence

from echo_jax.report import plots  # sets the Agg backend before pyplot loads
from echo_jax.report import records

# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import ticker
import matplotlib.pyplot as plt
import numpy as np


def accuracy_lines(path: str, title: str, xlabel: str,
                   series: Sequence[tuple[str, Sequence[float],
                                          Sequence[float | None]]],
                   chance: float | None = None) -> None:
  """One line per (label, x, accuracy or None) series, accuracy in %."""
  figure, axes = plt.subplots(figsize=(6, 3.2))
  for label, xs, ys in series:
    ys = np.array([np.nan if y is None else 100 * y for y in ys], float)
    axes.plot(xs, ys, marker="o", markersize=3, label=label)
  if chance is not None:
    axes.axhline(100 * chance, color="grey", linestyle=":", label="chance")
  axes.set_xlabel(xlabel)
  axes.set_ylabel("accuracy (%)")
  axes.set_ylim(-2, 102)
  axes.set_title(title, fontsize=10)
  axes.grid(alpha=0.3)
  axes.legend(fontsize=7)
  plots.save_atomic(figure, path)


def accuracy_vs_budget(path: str, rows: Sequence[dict[str, Any]],
                       sequences: int, seeds: int, level: float) -> None:
  """Test accuracy against updates (log scale), one panel per lag, a line
  per (hidden, recipe, run) with its 95% band (none for one seed: it has
  no interval); one legend below."""
  lags = sorted({r["lag"] for r in rows})
  columns = min(5, len(lags))
  lines = -(-len(lags) // columns)
  figure, axes = plt.subplots(lines, columns, squeeze=False, sharex=True,
                              sharey=True, figsize=(3 * columns, 2.6 * lines))
  colours, handles = {}, {}
  for ax, lag in zip(axes.flat, lags):
    for r in (r for r in rows if r["lag"] == lag):
      run = f" (run of {r['run_updates']})" if "run_updates" in r else ""
      label = f"hidden {r['hidden']}, {r['recipe']}{run}"
      colour = colours.setdefault(label, f"C{len(colours) % 10}")
      line, = ax.plot(r["updates"], [100 * c["mean"] for c in r["curve"]],
                      lw=1.2, color=colour, label=label)
      handles.setdefault(label, line)
      if seeds > 1:
        ax.fill_between(r["updates"],
                        [100 * c["ci95"][0] for c in r["curve"]],
                        [100 * c["ci95"][1] for c in r["curve"]], alpha=0.2,
                        color=colour)
    ax.axhline(100 * level, color="grey", ls=":", lw=1)
    ax.set_title(f"lag {lag}", fontsize=9)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
  for ax in axes.flat[len(lags):]:
    ax.set_visible(False)
  for ax in axes[-1]:
    ax.set_xlabel(f"updates ({sequences} sequences each)")
  for ax in axes[:, 0]:
    ax.set_ylabel("test accuracy (%)")
  legend_rows = -(-len(handles) // 4)
  # The title's share of the height: one row of panels needs more of it.
  figure.tight_layout(rect=(0, 0.06 * legend_rows / lines + 0.02, 1,
                            1 - 0.06 / lines))
  figure.legend(list(handles.values()), list(handles), loc="lower center",
                ncol=min(4, len(handles)), fontsize=7,
                bbox_to_anchor=(0.5, 0.0))
  spread = (f"mean of {seeds} seeds, 95% band" if seeds > 1
            else records.NO_INTERVAL)
  figure.suptitle(f"Streaming echo: test accuracy on 1000 fresh sequences "
                  f"({spread}) against the budget; "
                  f"dotted: {100 * level:g}%", fontsize=10)
  plots.save_atomic(figure, path)
