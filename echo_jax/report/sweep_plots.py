"""The sweep's figures, from its rows (`studies.sweep.run_sweep`): a lag x
context heatmap per hidden size, accuracy vs hidden size per lag with the
information bound, and learning curves."""

import math
import os
from typing import Any, Sequence

from echo_jax.report import plots  # sets the Agg backend before pyplot loads
from echo_jax.report import records

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np

Row = dict[str, Any]


def _values(rows: Sequence[Row], key: str) -> list[int]:
  return sorted({row[key] for row in rows})


def _cell(rows: Sequence[Row], lag: int, context: int, hidden: int) -> Row:
  key = (lag, context, hidden)
  return next(r for r in rows if (r["lag"], r["context"], r["hidden"]) == key)


# The accuracy the docs count a cell as learnt by.
LEVEL = 0.99


def cell_text(mean: float) -> str:
  """A cell's mean accuracy in percent to 0.1, truncated rather than rounded
  so that no cell under 99% reads 99.0 ("100" only for a perfect cell)."""
  tenths = math.floor(1000 * mean + 1e-9)  # 1e-9: 0.99 must stay 990
  return "100" if tenths >= 1000 else f"{tenths / 10:.1f}"


def _seeds(rows: Sequence[Row]) -> int:
  """The fewest seeds of any trained cell (a sweep has one count)."""
  return min(r["seeds"] for r in rows if r["status"] == "ok")


def heatmap(rows: Sequence[Row], path: str, title: str) -> None:
  """Mean test accuracy (%) per lag (rows) and context (columns), one panel
  per hidden size; cells at or above 99% framed in bold, impossible cells
  (lag >= context) hatched and marked x; a caption line says so."""
  lags, contexts = _values(rows, "lag"), _values(rows, "context")
  hiddens = _values(rows, "hidden")
  # Constrained layout keeps the two-line title clear of the panel titles.
  figure, axes = plt.subplots(
      1, len(hiddens), squeeze=False, layout="constrained",
      figsize=(0.45 * len(contexts) * len(hiddens) + 1.5,
               0.38 * len(lags) + 1.6))
  image = None
  for ax, hidden in zip(axes[0], hiddens):
    accuracy_LxC = np.full((len(lags), len(contexts)), np.nan)
    ax.set_facecolor("0.85")
    for i, lag in enumerate(lags):
      for j, context in enumerate(contexts):
        row = _cell(rows, lag, context, hidden)
        if row["status"] != "ok":
          ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                     hatch="///", edgecolor="0.6", lw=0))
          ax.text(j, i, "x", ha="center", va="center", fontsize=6,
                  color="0.4")
          continue
        mean = row["mean"]
        value = accuracy_LxC[i, j] = 100 * mean
        learnt = mean >= LEVEL
        if learnt:
          ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                     edgecolor="black", lw=1.5))
        ax.text(j, i, cell_text(mean), ha="center", va="center",
                fontsize=6, fontweight="bold" if learnt else "normal",
                color="black" if value > 60 else "white")
    image = ax.imshow(accuracy_LxC, origin="lower", cmap="viridis", vmin=0,
                      vmax=100, aspect="auto")
    ax.set_xticks(range(len(contexts)), contexts, fontsize=7)
    ax.set_yticks(range(len(lags)), lags, fontsize=7)
    ax.set_xlabel("context", fontsize=8)
    ax.set_title(f"hidden {hidden}", fontsize=9)
  axes[0][0].set_ylabel("lag (x: lag >= context, impossible)", fontsize=8)
  figure.colorbar(image, ax=axes[0].tolist(), fraction=0.02, pad=0.01,
                  label="test accuracy (%)")
  figure.suptitle(
      f"{title}\ncell: mean test accuracy (%) to 0.1, truncated; framed, "
      f"bold: >= {100 * LEVEL:g}%; x: lag >= context, impossible", fontsize=9)
  plots.save_atomic(figure, path)


def bits_needed(lag: int, n_unique: int) -> float:
  """Information bound: echoing lag n from K symbols means the state holds
  the last n values, about n * log2(K) bits."""
  return lag * math.log2(n_unique)


def accuracy_vs_hidden(rows: Sequence[Row], path: str, title: str,
                       n_unique: int, chance: float) -> None:
  """Accuracy (95% CI bars, none for one seed) vs hidden size, one line per
  lag, at the largest context (where every lag is possible), dotted at
  `bits_needed` units."""
  context = max(_values(rows, "context"))
  hiddens = _values(rows, "hidden")
  seeds = _seeds(rows)
  figure, ax = plt.subplots(figsize=(7, 4))
  colors = plt.cm.plasma(np.linspace(0, 0.9, len(_values(rows, "lag"))))
  for color, lag in zip(colors, _values(rows, "lag")):
    cells = [_cell(rows, lag, context, h) for h in hiddens]
    if any(c["status"] != "ok" for c in cells):
      continue
    mean = np.array([100 * c["mean"] for c in cells])
    errors = np.array([[100 * (c["mean"] - c["ci_low"]) for c in cells],
                       [100 * (c["ci_high"] - c["mean"]) for c in cells]])
    # One seed's [mean, mean] is no interval: no bars rather than flat ones.
    ax.errorbar(hiddens, mean, yerr=np.maximum(errors, 0) if seeds > 1
                else None, color=color,
                marker="o", markersize=3, capsize=2, lw=1.2,
                label=f"lag {lag}")
    if lag > 0:
      ax.axvline(bits_needed(lag, n_unique), color=color, ls=":", lw=1)
  ax.axhline(100 * chance, color="grey", ls="--", lw=1, label="chance")
  ax.set_xscale("log", base=2)
  ax.set_xticks(hiddens, [str(h) for h in hiddens])
  ax.set_xlabel("LSTM hidden size (units); dotted: lag x log2(K) bits, "
                "one bit per unit", fontsize=8)
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(-2, 102)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=2, loc="best")
  bars = (f"bars: 95% CI over {seeds} seeds" if seeds > 1
          else records.NO_INTERVAL)
  ax.set_title(f"{title}\ncontext {context}; {bars}", fontsize=9)
  plots.save_atomic(figure, path)


def learning_curves(rows: Sequence[Row], path: str, title: str,
                    chance: float) -> None:
  """Training accuracy per epoch (mean over seeds), one panel per hidden
  size, one line per lag, at the largest context."""
  context = max(_values(rows, "context"))
  hiddens = _values(rows, "hidden")
  lags = _values(rows, "lag")
  colors = plt.cm.plasma(np.linspace(0, 0.9, len(lags)))
  # Constrained layout keeps the figure title clear of the panel titles.
  figure, axes = plt.subplots(1, len(hiddens), squeeze=False, sharey=True,
                              figsize=(3 * len(hiddens) + 1, 3),
                              layout="constrained")
  for ax, hidden in zip(axes[0], hiddens):
    for color, lag in zip(colors, lags):
      row = _cell(rows, lag, context, hidden)
      if row["status"] != "ok":
        continue
      curve_E = 100 * np.asarray(row["train_accuracy_per_epoch"])
      ax.plot(np.arange(1, len(curve_E) + 1), curve_E, color=color, lw=0.8,
              label=f"lag {lag}")
    ax.axhline(100 * chance, color="grey", ls="--", lw=0.8)
    ax.set_title(f"hidden {hidden}", fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("training accuracy (%)", fontsize=8)
  axes[0][-1].legend(fontsize=6, loc="lower right")
  mean = "one seed" if _seeds(rows) == 1 else "mean over seeds"
  figure.suptitle(f"{title}; context {context}, {mean}", fontsize=9)
  plots.save_atomic(figure, path)


def write_all(rows: Sequence[Row], workdir: str, title: str, n_unique: int
              ) -> None:
  """The three figures into `workdir`."""
  chance = 1.0 / n_unique
  heatmap(rows, os.path.join(workdir, "heatmap.png"), title)
  accuracy_vs_hidden(rows, os.path.join(workdir, "accuracy_vs_hidden.png"),
                     title, n_unique, chance)
  learning_curves(rows, os.path.join(workdir, "learning_curves.png"), title,
                  chance)
