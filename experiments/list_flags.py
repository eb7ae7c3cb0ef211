"""What the binaries with list flags (--lags=1,2,3) share: their parsing."""

from typing import Sequence

from echo_jax.core import config as config_lib


def int_list(name: str, values: Sequence[str], minimum: int | None = None
             ) -> tuple[int, ...]:
  """A list flag's integers; one-line ConfigError naming the flag if any is
  not an integer, one is given twice, the list is empty, or (with
  `minimum`) one is below it."""
  try:
    parsed = tuple(int(v) for v in values)
  except ValueError:
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be integers") from None
  if minimum is not None and (not parsed or min(parsed) < minimum):
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be integers >= {minimum}")
  if not parsed:
    raise config_lib.ConfigError(f"{name} is empty: give at least one value")
  for i, value in enumerate(parsed):
    if value in parsed[:i]:
      # Each value is one row of the results: a copy would train twice.
      raise config_lib.ConfigError(f"{name}: {value} is given twice")
  return parsed


def name_list(name: str, values: Sequence[str], known: Sequence[str]
              ) -> list[str]:
  """A list flag of names: one-line ConfigError naming the flag if it is
  empty, repeats a name, or gives one not in `known`."""
  values = list(values)
  if (not values or len(set(values)) < len(values)
      or any(v not in known for v in values)):
    raise config_lib.ConfigError(
        f"{name}={','.join(values)} must be distinct names from "
        f"{', '.join(known)}")
  return values
