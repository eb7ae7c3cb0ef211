"""The state map's records: one per (lag, window, batch) cell, from its
run (`tasks.state_cell.cell_task`), and the map's difference figure."""

import math
from typing import Any, Sequence

from echo_jax.report import plots  # sets the Agg backend before pyplot loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np

from echo_jax.report import records
from echo_jax.report import rows
from echo_jax.tasks import state_cell

Row = dict[str, Any]
# Fields of a cell file left out of the map's summary (learning curves).
CURVE_FIELDS = ("train_accuracy_per_epoch",)


def _ratio(count_S: np.ndarray, total: int) -> np.ndarray | None:
  return None if total == 0 else np.asarray(count_S, np.float64) / total


def cell_record(output) -> Row:
  """A finished cell's record: per training mode its accuracy both ways,
  epochs to 99%, losses, carried-state norms and probe decodes."""
  config = output.task.config
  n, b = config.num_samples, config.batch_size
  sequences = config.eval_sequences
  probe = min(output.task.settings["probe_sequences"], sequences // 2)
  evaluation = {k: output.by_variant(v)
                for k, v in output.evaluation.sums.items()}
  trained = output.trained(by_variant=True)
  carried_rows = sequences * (n - b)
  record = {"lag": config.lag, "window": config.context, "batch_size": b,
            "samples_per_sequence": n, "status": "ok", "seeds": config.seeds}
  own = {}
  for i, name in enumerate(output.task.variant_names):
    stateful = output.task.variants[i] == state_cell.STATEFUL
    carried = evaluation["correct_carried"][i] / (sequences * n)
    zero = evaluation["correct_zero"][i] / (sequences * n)
    own[name] = carried if stateful else zero
    reached = rows.epochs_to_reach(trained.accuracy_E[i], 0.99, 50)
    median, seeds_reaching = rows.median_epochs(reached)
    h_norm = _ratio(evaluation["h_norm"][i], carried_rows)
    c_norm = _ratio(evaluation["c_norm"][i], carried_rows)
    probe_SxP = _ratio(evaluation["probe_correct_P"][i], probe * (n - b))
    record[name] = {
        "accuracy": records.summarise(own[name]),
        # Cross-evaluation: a stateful-trained model from a zero state, a
        # stateless-trained one with the carry across batches.
        "accuracy_other_way": records.summarise(zero if stateful else carried),
        "accuracy_zero_state": records.summarise(zero),
        "accuracy_carried_state": records.summarise(carried),
        "epochs_to_99_per_seed": reached,
        "epochs_to_99_median": median,
        "seeds_reaching_99": seeds_reaching,
        "final_train_loss": records.summarise(trained.loss_E[i, :, -1]),
        "diverged_at_epoch_per_seed": output.diverged_per_seed(i),
        # The state carried into windows j >= batch.
        "carried_h_norm": None if h_norm is None else records.summarise(h_norm),
        "carried_c_norm": None if c_norm is None else records.summarise(c_norm),
        # Held-out probe accuracy: window j - batch's values (oldest first),
        # then window j's target.
        "probe_previous_window": None if probe_SxP is None else [
            float(v) for v in probe_SxP[:, :-1].mean(0)],
        "probe_previous_window_mean": None if probe_SxP is None else
            records.summarise(probe_SxP[:, :-1].mean(1)),
        "probe_target": None if probe_SxP is None else
            records.summarise(probe_SxP[:, -1]),
        "train_accuracy_per_epoch": np.round(
            trained.accuracy_E[i].mean(0).astype(np.float64), 6).tolist(),
    }
  # Seeds are paired (same initialisation and data): a paired interval.
  record["difference"] = records.summarise(own["stateful"] - own["stateless"],
                                           (-1.0, 1.0))
  record.update({
      "probe_sequences": probe,
      "chance_accuracy": 1.0 / config.n_unique,
      **{k: output.timing[k]
         for k in ("train_seconds", "eval_seconds", "compile_seconds")},
      "models_in_program": output.compiled.num_models,
      "config": config.to_dict(),
  })
  return record


def summary_row(cell: Row | None, lag: int, window: int, spec: int,
                status: str) -> Row:
  """A map row for (lag, window, batch spec): the cell without its curves,
  or its status (impossible, not_divisor)."""
  row = {"lag": lag, "window": window,
         "batch": state_cell.batch_name(spec)}
  if cell is None:
    return {**row, "status": status}
  trimmed = {k: v for k, v in cell.items() if k != "config"}
  for name in ("stateful", "stateless"):
    trimmed[name] = {k: v for k, v in cell[name].items()
                     if k not in CURVE_FIELDS}
  return {**row, **trimmed}


# What the figure's marks and panel names mean (it is shown without the
# docs): `state_cell.cell_status` and `state_cell.batch_name`.
CAPTION = (
    "Cell: stateful minus stateless mean test accuracy, percentage points "
    "(red: stateful worse, blue: stateful better).\n"
    "x: lag >= window, the target is not in the window (impossible).  "
    "n/d: the batch size does not divide the N = length - lag - window + 1 "
    "windows\nof a sequence, as stateful training needs: not trained.  "
    "whole: the batch is all N windows of a sequence.")
# Wide enough to stay legible at README width (about 900 px at save's 80 dpi).
MIN_WIDTH_INCHES = 11.5


def difference_heatmap(rows: Sequence[Row], path: str, title: str) -> None:
  """Stateful minus stateless accuracy (percentage points) per lag (rows)
  and window (columns), one panel per batch size; impossible cells marked
  x, batch sizes that do not divide the cell's samples marked n/d, both
  explained in a caption."""
  lags = sorted({r["lag"] for r in rows})
  windows = sorted({r["window"] for r in rows})
  # The batch names (`state_cell.batch_name`), increasing, whole last.
  batches = sorted({r["batch"] for r in rows},
                   key=lambda name: math.inf if name == "whole" else int(name))
  columns = min(6, len(batches))
  lines = math.ceil(len(batches) / columns)
  # Constrained layout places the title, caption and colour bar clear of
  # the panels at any grid size.
  figure, axes = plt.subplots(
      lines, columns, squeeze=False, layout="constrained",
      figsize=(max(MIN_WIDTH_INCHES, 0.8 * len(windows) * columns + 2),
               (0.5 * len(lags) + 1.3) * lines + 1.4))
  for ax in axes.flat[len(batches):]:
    ax.set_visible(False)
  for ax, batch in zip(axes.flat, batches):
    ax.set_facecolor("0.85")
    grid_LxW = np.full((len(lags), len(windows)), np.nan)
    for r in rows:
      if r["batch"] != batch:
        continue
      i, j = lags.index(r["lag"]), windows.index(r["window"])
      if r["status"] != "ok":
        ax.text(j, i, "x" if r["status"] == "impossible" else "n/d",
                ha="center", va="center", fontsize=10, color="0.35")
        continue
      value = grid_LxW[i, j] = 100 * r["difference"]["mean"]
      text = (f"{value:+.0f}" if abs(value) >= 9.95 else
              f"{value:+.1f}" if abs(value) >= 0.05 else "0")
      ax.text(j, i, text, ha="center", va="center", fontsize=11,
              color="white" if abs(value) > 60 else "black")
    image = ax.imshow(grid_LxW, origin="lower", cmap="RdBu", vmin=-100,
                      vmax=100, aspect="auto")
    ax.set_xticks(range(len(windows)), windows, fontsize=10)
    ax.set_yticks(range(len(lags)), lags, fontsize=10)
    ax.set_xlabel("window", fontsize=11)
    ax.set_title(f"batch {batch}", fontsize=12)
  for ax in axes[:, 0]:
    ax.set_ylabel("lag", fontsize=11)
  figure.suptitle(title, fontsize=12)
  figure.supxlabel(CAPTION, fontsize=10, ha="left", x=0.01,
                   multialignment="left")
  bar = figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9,
                        aspect=30)
  bar.set_label("stateful - stateless (points)", fontsize=11)
  bar.ax.tick_params(labelsize=10)
  plots.save_atomic(figure, path)
