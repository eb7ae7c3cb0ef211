"""The sweep's figures, from its rows (`studies.sweep.run_sweep`): a lag x
context heatmap per hidden size, accuracy vs hidden size per lag with the
information bound, and learning curves."""

import math
import os
from typing import Any, Sequence

from echo_jax.report import plots  # sets the Agg backend before pyplot loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np

Row = dict[str, Any]


def _values(rows: Sequence[Row], key: str) -> list[int]:
  return sorted({row[key] for row in rows})


def _cell(rows: Sequence[Row], lag: int, context: int, hidden: int) -> Row:
  key = (lag, context, hidden)
  return next(r for r in rows if (r["lag"], r["context"], r["hidden"]) == key)


def heatmap(rows: Sequence[Row], path: str, title: str) -> None:
  """Mean test accuracy (%) per lag (rows) and context (columns), one panel
  per hidden size; impossible cells (lag >= context) hatched and marked x."""
  lags, contexts = _values(rows, "lag"), _values(rows, "context")
  hiddens = _values(rows, "hidden")
  figure, axes = plt.subplots(
      1, len(hiddens), squeeze=False,
      figsize=(0.45 * len(contexts) * len(hiddens) + 1.5,
               0.38 * len(lags) + 1.6))
  image = None
  for ax, hidden in zip(axes[0], hiddens):
    accuracy_LxC = np.full((len(lags), len(contexts)), np.nan)
    for i, lag in enumerate(lags):
      for j, context in enumerate(contexts):
        row = _cell(rows, lag, context, hidden)
        if row["status"] == "ok":
          accuracy_LxC[i, j] = 100 * row["mean"]
    ax.set_facecolor("0.85")
    image = ax.imshow(accuracy_LxC, origin="lower", cmap="viridis", vmin=0,
                      vmax=100, aspect="auto")
    for i, lag in enumerate(lags):
      for j, context in enumerate(contexts):
        value = accuracy_LxC[i, j]
        if np.isnan(value):
          ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                     hatch="///", edgecolor="0.6", lw=0))
          ax.text(j, i, "x", ha="center", va="center", fontsize=6,
                  color="0.4")
        else:
          ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6,
                  color="black" if value > 60 else "white")
    ax.set_xticks(range(len(contexts)), contexts, fontsize=7)
    ax.set_yticks(range(len(lags)), lags, fontsize=7)
    ax.set_xlabel("context", fontsize=8)
    ax.set_title(f"hidden {hidden}", fontsize=9)
  axes[0][0].set_ylabel("lag (x: lag >= context, impossible)", fontsize=8)
  figure.colorbar(image, ax=axes[0].tolist(), fraction=0.02, pad=0.01,
                  label="test accuracy (%)")
  figure.suptitle(title, fontsize=9)
  plots.save_atomic(figure, path)


def bits_needed(lag: int, n_unique: int) -> float:
  """Information bound: echoing lag n from K symbols means the state holds
  the last n values, about n * log2(K) bits."""
  return lag * math.log2(n_unique)


def accuracy_vs_hidden(rows: Sequence[Row], path: str, title: str,
                       n_unique: int, chance: float) -> None:
  """Accuracy (95% CI bars) vs hidden size, one line per lag, at the largest
  context (where every lag is possible), dotted at `bits_needed` units."""
  context = max(_values(rows, "context"))
  hiddens = _values(rows, "hidden")
  figure, ax = plt.subplots(figsize=(7, 4))
  colors = plt.cm.plasma(np.linspace(0, 0.9, len(_values(rows, "lag"))))
  for color, lag in zip(colors, _values(rows, "lag")):
    cells = [_cell(rows, lag, context, h) for h in hiddens]
    if any(c["status"] != "ok" for c in cells):
      continue
    mean = np.array([100 * c["mean"] for c in cells])
    errors = np.array([[100 * (c["mean"] - c["ci_low"]) for c in cells],
                       [100 * (c["ci_high"] - c["mean"]) for c in cells]])
    ax.errorbar(hiddens, mean, yerr=np.maximum(errors, 0), color=color,
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
  ax.set_title(f"{title}\ncontext {context}", fontsize=9)
  plots.save_atomic(figure, path)


def learning_curves(rows: Sequence[Row], path: str, title: str,
                    chance: float) -> None:
  """Training accuracy per epoch (mean over seeds), one panel per hidden
  size, one line per lag, at the largest context."""
  context = max(_values(rows, "context"))
  hiddens = _values(rows, "hidden")
  lags = _values(rows, "lag")
  colors = plt.cm.plasma(np.linspace(0, 0.9, len(lags)))
  figure, axes = plt.subplots(1, len(hiddens), squeeze=False, sharey=True,
                              figsize=(3 * len(hiddens) + 1, 3))
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
  figure.suptitle(f"{title}; context {context}, mean over seeds", fontsize=9)
  plots.save_atomic(figure, path)


def write_all(rows: Sequence[Row], workdir: str, title: str, n_unique: int
              ) -> list[str]:
  """The three figures into `workdir`; returns their paths."""
  chance = 1.0 / n_unique
  paths = [os.path.join(workdir, name) for name in (
      "heatmap.png", "accuracy_vs_hidden.png", "learning_curves.png")]
  heatmap(rows, paths[0], title)
  accuracy_vs_hidden(rows, paths[1], title, n_unique, chance)
  learning_curves(rows, paths[2], title, chance)
  return paths
