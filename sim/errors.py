"""Error types of the simulator.

Every problem with user input (a network file, a scenario, a CLI argument, a parameter out of
range) raises :class:`ModelError` or one of its subclasses. It is a :class:`ValueError`, so code
that already catches ``ValueError`` keeps working, and its message always names *where* the
problem is (file, node, lane or field) and *what* is wrong, so the CLI can print it in one line.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["ModelError", "NetworkError", "ScenarioError", "RunFailedError", "format_location",
           "check_int", "check_number", "check_horizon_days", "MAX_HORIZON_DAYS"]

# The longest horizon a run accepts, in days (100 years). A run keeps daily arrays per stream,
# so a horizon of 1e12 days would fail for want of memory long after it was asked for; policy
# studies look years ahead, not centuries.
MAX_HORIZON_DAYS = 36_525


def format_location(file: str | None = None, where: str | None = None, field: str | None = None) -> str:
    """Join the parts of an error location into ``file: where: field``, skipping empty parts."""
    return ": ".join(str(p) for p in (file, where, field) if p)


class ModelError(ValueError):
    """Invalid model input: the message names the file, the node, lane or field, and the problem.

    Parameters
    ----------
    message:
        What is wrong, e.g. ``"must be >= 0, got -5"``.
    file, where, field:
        Optional location parts; they are prefixed to the message.
    """

    def __init__(self, message: str, *, file: str | None = None, where: str | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.where = where
        self.field = field
        self.problem = message
        loc = format_location(file, where, field)
        super().__init__(f"{loc}: {message}" if loc else message)

    def with_file(self, file: str) -> "ModelError":
        """Return a copy of this error that also names *file* (used by the TOML loaders)."""
        if self.file:
            return self
        return type(self)(self.problem, file=file, where=self.where, field=self.field)


class NetworkError(ModelError):
    """A network definition is invalid (schema, references, shares, reachability)."""


class ScenarioError(ModelError):
    """A scenario definition is invalid (dates, event parameters, references to the network)."""


class RunFailedError(ModelError):
    """A Monte Carlo run or sweep whose replications failed: all of them, or more than the
    share allowed (``max_failure_share``). The message quotes the first failure."""


# root seeds are stored in the result tables as 64-bit integers (pandas Int64)
MAX_SEED = 2**63 - 1


def check_int(value, field: str, minimum: int | None = None, *, allow_none: bool = False,
              maximum: int | None = None):
    """Return *value* when it is an integer (not a bool) of at least *minimum* and at most
    *maximum* (or ``None`` with *allow_none*), else raise :class:`ModelError` naming *field*."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        what = "an integer" if minimum is None else (
            "a non-negative integer" if minimum == 0 else
            "a positive integer" if minimum == 1 else f"an integer >= {minimum}")
        raise ModelError(f"must be {what}, got {value!r}", field=field)
    if minimum is not None and value < minimum:
        what = "a non-negative integer" if minimum == 0 else (
            "a positive integer" if minimum == 1 else f"an integer >= {minimum}")
        raise ModelError(f"must be {what}, got {value!r}", field=field)
    if maximum is not None and value > maximum:
        raise ModelError(f"must be at most {maximum:,}, got {value!r}", field=field)
    return int(value)


def check_number(value, field: str, low: float | None = None, high: float | None = None, *,
                 strict_low: bool = False, allow_none: bool = False):
    """Return *value* as a float when it is a finite real number (not a bool) within
    [*low*, *high*] (``low`` excluded with *strict_low*), else raise :class:`ModelError`
    naming *field*."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise ModelError(f"must be a finite number, got {value!r}", field=field)
    if low is not None and (value < low or (strict_low and value == low)):
        bound = f"> {low:g}" if strict_low else f">= {low:g}"
        raise ModelError(f"must be {bound}, got {value!r}", field=field)
    if high is not None and value > high:
        raise ModelError(f"must be <= {high:g}, got {value!r}", field=field)
    return float(value)


def check_horizon_days(horizon_days, since=None) -> None:
    """Raise :class:`ModelError` (field ``horizon_days``) unless *horizon_days* is a positive
    finite number of days (not a bool) of at most :data:`MAX_HORIZON_DAYS`; *since*, the first
    day of the run when known, is named in the message."""
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, float)) \
            or not math.isfinite(horizon_days) or horizon_days <= 0:
        raise ModelError(f"must be a positive number of days, got {horizon_days!r}",
                         field="horizon_days")
    if horizon_days > MAX_HORIZON_DAYS:
        raise ModelError(f"must be at most {MAX_HORIZON_DAYS:,} days (100 years), got "
                         f"{horizon_days:,.0f}" + (f" days from {since}" if since else ""),
                         field="horizon_days")
