"""PNG plots (matplotlib, headless), each written atomically: drawn to a temp
file beside its destination and renamed into place, like the JSON results."""

from typing import Mapping

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np

from echo_jax.runtime import files


def save_atomic(figure, path: str) -> None:
  try:
    with files.atomic_path(path) as tmp_path:
      figure.savefig(tmp_path, format="png", dpi=80, bbox_inches="tight")
  finally:
    plt.close(figure)


def learning_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str,
    title: str, chance: float | None = None) -> None:
  """Per variant (name -> (loss_SxE, accuracy_SxE); one run: name ""),
  training loss and accuracy per epoch: the mean over seeds as a line,
  min-max as a band."""
  # Constrained layout keeps the figure title clear of the panels.
  figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
  for label, (loss_SxE, accuracy_SxE) in curves.items():
    loss_SxE, accuracy_SxE = np.asarray(loss_SxE), np.asarray(accuracy_SxE)
    epochs_E = np.arange(1, loss_SxE.shape[1] + 1)
    seeds = loss_SxE.shape[0]
    mean = "one seed" if seeds == 1 else "mean over seeds"
    for ax, values in ((axes[0], loss_SxE), (axes[1], accuracy_SxE)):
      line, = ax.plot(epochs_E, values.mean(0), lw=1.2,
                      label=f"{label}: {mean}" if label else mean)
      if seeds > 1:  # one seed has no spread to draw
        ax.fill_between(epochs_E, values.min(0), values.max(0), alpha=0.2,
                        color=line.get_color(),
                        label=None if label else f"min-max over {seeds} seeds")
  for ax, name in ((axes[0], "training loss"), (axes[1], "training accuracy")):
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
  if chance is not None:
    axes[1].axhline(chance, color="grey", ls="--", lw=1, label="chance")
  axes[1].set_ylim(-0.02, 1.02)
  axes[1].legend(loc="best", fontsize=7 if len(curves) > 4 else 8)
  figure.suptitle(title)
  save_atomic(figure, path)

