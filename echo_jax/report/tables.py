"""Plain-text tables of results, as the binaries print them."""

from typing import Any, Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A plain fixed-width text table (also valid Markdown)."""
  cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  line = lambda row: "| " + " | ".join(
      c.ljust(w) for c, w in zip(row, widths)) + " |"
  rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
  return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def percent(x: float | None) -> str:
  return "-" if x is None else f"{100 * x:.2f}%"


def summary_row(record: dict[str, Any]) -> list[str]:
  low, high = record["eval_accuracy_ci95"]
  return [record["experiment"], percent(record["tutorial_accuracy"]),
          f"{percent(record['eval_accuracy'])} [{percent(low)}, {percent(high)}]",
          str(len(record["eval_accuracy_per_seed"])),
          f"{record['compile_seconds']:.2f}", f"{record['train_seconds']:.2f}"]


SUMMARY_HEADER = ("experiment", "tutorial", "ours: mean [95% CI]", "seeds",
                  "compile s", "train s")


def print_example(record: dict[str, Any]) -> None:
  """The tutorial's Expected / Predicted check of a tutorial record."""
  print(f"{record['experiment']} (seed {record['config']['seed']}, model 0):")
  print(f"  Expected:  {record['example']['expected']}")
  print(f"  Predicted: {record['example']['predicted']}")


def ci_cell(summary: dict[str, Any]) -> str:
  """"mean [low, high]" of a `stats.summarise` summary, in percent."""
  low, high = summary["ci95"]
  return f"{percent(summary['mean'])} [{percent(low)}, {percent(high)}]"
