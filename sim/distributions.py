"""Probability distributions for lead times, demand sizes and inter-arrival times.

Each distribution is a small immutable object with ``mean``, ``variance``, ``sample(rng, n)``
(a numpy array of *n* draws from a :class:`numpy.random.Generator`) and ``to_dict()`` (the TOML
form). They are built from a table such as ``{dist = "triangular", min = 14, mode = 30, max = 60}``
by :func:`from_spec`, which validates the parameters and raises :class:`~sim.errors.ModelError`
naming the field. Continuous distributions with a mean and a spread take ``mean`` and ``sd``
(or ``cv``), the way calibration data are usually quoted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .errors import ModelError

__all__ = [
    "Distribution", "Fixed", "Uniform", "UniformInt", "Triangular", "LogNormal", "Gamma",
    "Exponential", "Normal", "from_spec", "DIST_NAMES",
]


class Distribution:
    """Base class: subclasses set ``name`` and implement ``mean``, ``variance`` and ``_draw``."""

    name: ClassVar[str] = ""
    nonnegative: ClassVar[bool] = True
    #: n values drawn at once are the n values of n single draws, and a block's first k values
    #: use up exactly what k single draws do (numpy draws these element by element); False
    #: where numpy buffers (bounded integers), so block and single draws differ
    blockable: ClassVar[bool] = True

    @property
    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def variance(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def sd(self) -> float:
        """Standard deviation."""
        return math.sqrt(self.variance)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw *n* values as a float array."""
        return np.asarray(self._draw(rng, n), dtype=float)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The TOML/JSON table that :func:`from_spec` turns back into this distribution."""
        d = {"dist": self.name}
        d.update({k: v for k, v in self.__dict__.items()})
        return d

    def scaled(self, factor: float) -> "Distribution":
        """This distribution multiplied by a positive constant *factor*."""
        return Scaled(self, factor)


@dataclass(frozen=True)
class Fixed(Distribution):
    """A constant (degenerate distribution)."""

    value: float
    name: ClassVar[str] = "fixed"

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def _draw(self, rng, n):
        return np.full(n, self.value)


@dataclass(frozen=True)
class Uniform(Distribution):
    """Continuous uniform on [min, max]."""

    min: float
    max: float
    name: ClassVar[str] = "uniform"

    @property
    def mean(self) -> float:
        return 0.5 * (self.min + self.max)

    @property
    def variance(self) -> float:
        return (self.max - self.min) ** 2 / 12.0

    def _draw(self, rng, n):
        return rng.uniform(self.min, self.max, n)


@dataclass(frozen=True)
class UniformInt(Distribution):
    """Discrete uniform on the integers min..max (both included)."""

    min: int
    max: int
    name: ClassVar[str] = "uniform_int"

    @property
    def mean(self) -> float:
        return 0.5 * (self.min + self.max)

    @property
    def variance(self) -> float:
        k = self.max - self.min + 1
        return (k * k - 1) / 12.0

    blockable: ClassVar[bool] = False

    def _draw(self, rng, n):
        return rng.integers(self.min, self.max + 1, n)


@dataclass(frozen=True)
class Triangular(Distribution):
    """Triangular on [min, max] with the given mode."""

    min: float
    mode: float
    max: float
    name: ClassVar[str] = "triangular"

    @property
    def mean(self) -> float:
        return (self.min + self.mode + self.max) / 3.0

    @property
    def variance(self) -> float:
        a, c, b = self.min, self.mode, self.max
        return (a * a + b * b + c * c - a * b - a * c - b * c) / 18.0

    def _draw(self, rng, n):
        if self.max == self.min:
            return np.full(n, self.min)
        return rng.triangular(self.min, self.mode, self.max, n)


@dataclass(frozen=True)
class _MeanSd(Distribution):
    """A distribution given by the mean and standard deviation of the variable itself."""

    mean_: float
    sd_: float

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.sd_ ** 2

    def to_dict(self):
        return {"dist": self.name, "mean": self.mean_, "sd": self.sd_}


@dataclass(frozen=True)
class LogNormal(_MeanSd):
    """Log-normal given by the mean and standard deviation of the variable itself (not its log)."""

    name: ClassVar[str] = "lognormal"

    def _draw(self, rng, n):
        if self.sd_ == 0:
            return np.full(n, self.mean_)
        s2 = math.log1p((self.sd_ / self.mean_) ** 2)
        return rng.lognormal(math.log(self.mean_) - 0.5 * s2, math.sqrt(s2), n)


@dataclass(frozen=True)
class Gamma(_MeanSd):
    """Gamma given by its mean and standard deviation."""

    name: ClassVar[str] = "gamma"

    def _draw(self, rng, n):
        if self.sd_ == 0:
            return np.full(n, self.mean_)
        shape = (self.mean_ / self.sd_) ** 2
        return rng.gamma(shape, self.mean_ / shape, n)


@dataclass(frozen=True)
class Normal(_MeanSd):
    """Normal clipped at zero; use only with small cv (< 0.3), where clipping is negligible."""

    name: ClassVar[str] = "normal"

    def _draw(self, rng, n):
        return np.maximum(rng.normal(self.mean_, self.sd_, n), 0.0)


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential with the given mean."""

    mean_: float
    name: ClassVar[str] = "exponential"

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.mean_ ** 2

    def _draw(self, rng, n):
        return rng.exponential(self.mean_, n)

    def to_dict(self):
        return {"dist": self.name, "mean": self.mean_}


@dataclass(frozen=True)
class Scaled(Distribution):
    """A distribution multiplied by a constant (used for demand surges and unit changes)."""

    base: Distribution
    factor: float
    name: ClassVar[str] = "scaled"

    @property
    def mean(self) -> float:
        return self.base.mean * self.factor

    @property
    def variance(self) -> float:
        return self.base.variance * self.factor ** 2

    @property
    def blockable(self) -> bool:    # type: ignore[override]
        return self.base.blockable

    def _draw(self, rng, n):
        return self.base.sample(rng, n) * self.factor

    def to_dict(self):
        return {"dist": self.name, "base": self.base.to_dict(), "factor": self.factor}


DIST_NAMES = ("fixed", "uniform", "uniform_int", "triangular", "lognormal", "gamma", "normal",
              "exponential")


def _num(spec: dict, key: str, where: str, *, required: bool = True, default: float | None = None) -> float:
    if key not in spec:
        if required:
            raise ModelError(f"missing parameter '{key}' for dist '{spec.get('dist')}'", where=where)
        return default  # type: ignore[return-value]
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ModelError(f"parameter '{key}' must be a number, got {v!r}", where=where)
    if not math.isfinite(v):
        raise ModelError(f"parameter '{key}' must be finite, got {v!r}", where=where)
    if v < 0:
        raise ModelError(f"parameter '{key}' must be >= 0, got {v!r}", where=where)
    return float(v)


def _spread(spec: dict, where: str, mean: float) -> float:
    if "sd" in spec and "cv" in spec:
        raise ModelError("give either 'sd' or 'cv', not both", where=where)
    if "cv" in spec:
        return _num(spec, "cv", where) * mean
    return _num(spec, "sd", where)


def from_spec(spec: Any, where: str = "distribution") -> Distribution:
    """Build a distribution from a number (a fixed value) or a table with a ``dist`` key.

    Accepted tables (all values >= 0)::

        {dist="fixed", value=10}            # or mean=10
        {dist="uniform", min=5, max=30}
        {dist="uniform_int", min=1, max=10}
        {dist="triangular", min=14, mode=30, max=60}
        {dist="lognormal", mean=30, sd=8}   # or cv=0.25; mean/sd of the variable itself
        {dist="gamma", mean=30, sd=8}
        {dist="normal", mean=30, sd=3}      # clipped at 0
        {dist="exponential", mean=1}

    Raises
    ------
    ModelError
        Unknown ``dist``, a missing or negative parameter, or inconsistent bounds; the message
        starts with *where*.
    """
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, bool):
        raise ModelError(f"expected a number or a distribution table, got {spec!r}", where=where)
    if isinstance(spec, (int, float)):
        return Fixed(_num({"value": spec, "dist": "fixed"}, "value", where))
    if not isinstance(spec, dict):
        raise ModelError(f"expected a number or a distribution table, got {spec!r}", where=where)
    name = spec.get("dist")
    if name not in DIST_NAMES:
        raise ModelError(f"unknown dist {name!r}; expected one of {', '.join(DIST_NAMES)}", where=where)
    allowed = {"dist", "source", "note"}
    if name == "fixed":
        key = "value" if "value" in spec else "mean"
        allowed |= {key}
        dist: Distribution = Fixed(_num(spec, key, where))
    elif name in ("uniform", "uniform_int"):
        allowed |= {"min", "max"}
        lo, hi = _num(spec, "min", where), _num(spec, "max", where)
        if hi < lo:
            raise ModelError(f"max ({hi}) must be >= min ({lo})", where=where)
        if name == "uniform_int":
            if lo != int(lo) or hi != int(hi):
                raise ModelError("uniform_int bounds must be integers", where=where)
            dist = UniformInt(int(lo), int(hi))
        else:
            dist = Uniform(lo, hi)
    elif name == "triangular":
        allowed |= {"min", "mode", "max"}
        lo, mo, hi = _num(spec, "min", where), _num(spec, "mode", where), _num(spec, "max", where)
        if not lo <= mo <= hi:
            raise ModelError(f"need min <= mode <= max, got {lo}, {mo}, {hi}", where=where)
        dist = Triangular(lo, mo, hi)
    elif name == "exponential":
        allowed |= {"mean"}
        m = _num(spec, "mean", where)
        if m <= 0:
            raise ModelError(f"parameter 'mean' must be > 0, got {m}", where=where)
        dist = Exponential(m)
    else:
        allowed |= {"mean", "sd", "cv"}
        m = _num(spec, "mean", where)
        s = _spread(spec, where, m)
        if name in ("lognormal", "gamma") and m <= 0:
            raise ModelError(f"parameter 'mean' must be > 0, got {m}", where=where)
        dist = {"lognormal": LogNormal, "gamma": Gamma, "normal": Normal}[name](m, s)
    extra = set(spec) - allowed
    if extra:
        raise ModelError(f"unknown parameter(s) {sorted(extra)} for dist '{name}'", where=where)
    return dist
