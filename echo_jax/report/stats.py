"""Statistics over seeds: means with Student-t intervals, epochs to a level."""

import math
from typing import Any

import chex
import jax
import numpy as np

_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
          2.228)


def t_quantile_975(df: int) -> float:
  """Student-t 97.5% quantile: exact table to df 10, then a series that is
  within 0.003 of the exact value (2.042 at df 30, 2.000 at df 60)."""
  if df <= len(_T_975):
    return _T_975[df - 1]
  return 1.96 + 2.37 / df + 2.8 / df**2


def mean_and_ci95(values: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)
                  ) -> tuple[float, float, float]:
  """Mean and a Student-t 95% interval over seeds (degenerate for one),
  clipped to `bounds`: an accuracy's interval never passes 0 or 100%."""
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return mean, mean, mean
  df = values.size - 1
  t = t_quantile_975(df)
  half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
  return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def summarise(values_S) -> dict[str, Any]:
  """{"mean", "ci95", "per_seed"} of one value per seed."""
  mean, low, high = mean_and_ci95(values_S)
  return {"mean": mean, "ci95": [low, high],
          "per_seed": np.asarray(values_S, np.float64).tolist()}


def epochs_to_reach(accuracy_SxE: np.ndarray, level: float, window: int
                    ) -> list[int | None]:
  """Per seed, the first epoch (1-based) at which the mean training accuracy
  of the last `window` epochs reaches `level`; None if it never does. A
  window, because one epoch's accuracy over a few samples is noisy."""
  accuracy_SxE = np.asarray(accuracy_SxE, np.float64)
  window = min(window, accuracy_SxE.shape[1])
  kernel = np.ones(window) / window
  reached = []
  for accuracy_E in accuracy_SxE:
    trailing = np.convolve(accuracy_E, kernel, mode="valid")
    hits = np.nonzero(trailing >= level)[0]
    reached.append(int(hits[0]) + window if hits.size else None)
  return reached


def epochs_to_level(accuracy_E: np.ndarray, level: float = 0.99
                    ) -> int | None:
  """First epoch (from 1) whose training accuracy (here a mean over seeds
  of many samples, the sweep's) reaches `level`."""
  hits = np.nonzero(np.asarray(accuracy_E) >= level)[0]
  return int(hits[0]) + 1 if hits.size else None


def num_params(params: chex.ArrayTree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
