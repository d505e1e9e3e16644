"""Rare-earth elements and materials.

A *material* is anything that flows through the network (a concentrate, an oxide, a metal, a
magnet). It says which rare-earth elements it contains, so a control written on elements (say
Dy and Tb) reaches every material that contains them, magnets included. Prices are per tonne and
feed the cost accounting.

A material gives its elements in one of two forms:

* ``content = { Nd = 0.218, Pr = 0.073, Dy = 0.009 }``: the mass fraction of each element in
  the material (t of element per t of material), with ``content_source`` saying where the
  figures come from. The material contains exactly the elements with a fraction above zero, so
  a control on Dy reaches a standard-grade magnet with 0.9% Dy, and a material with none of a
  control's elements is not reached. Fractions lie in [0, 1] and add up to at most 1 (the rest
  is iron, boron, cobalt, oxygen and other non-rare-earth mass).
* ``elements = ["Nd", "Pr"]``: the elements only, content unknown (``content`` is ``None``).

When a material gives both, the elements must be those with a fraction above zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from .errors import NetworkError

__all__ = ["ELEMENTS", "LIGHT", "HEAVY", "Material", "Content", "parse_elements",
           "parse_content", "material_from_table"]

#: The 17 rare-earth elements (15 lanthanides plus Sc and Y), by symbol.
ELEMENTS: tuple[str, ...] = (
    "Sc", "Y", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm",
    "Yb", "Lu",
)
#: Light rare earths (La-Eu by the usual industrial convention, Sm and Eu sometimes "medium").
LIGHT: frozenset[str] = frozenset({"La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu"})
#: Heavy rare earths plus Y and Sc.
HEAVY: frozenset[str] = frozenset(ELEMENTS) - LIGHT

# sums of fractions may exceed 1 by rounding of the figures written in a file
_SUM_TOLERANCE = 1e-9


class Content(dict):
    """A material's element content (symbol -> mass fraction), read-only once built.

    A dict, so it compares, prints and serialises like one; it refuses changes (a material is
    immutable, and a network's digest covers its content) and pickles for worker processes."""

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("a material's content is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self):
        return (Content, (dict(self),))

    def __hash__(self):  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


@dataclass(frozen=True)
class Material:
    """A material declared by a network.

    Attributes
    ----------
    id: identifier used by nodes and lanes.
    elements: rare-earth elements it contains (symbols from :data:`ELEMENTS`); with a known
        content, the elements whose mass fraction is above zero.
    price_usd_per_t: reference price, US dollars per tonne (for cost accounting).
    name, source: description and where the figures come from.
    content: mass fraction of each rare-earth element (t per t of material), read-only; ``None``
        when the network gives only the elements.
    content_source: where the content figures come from.
    """

    id: str
    elements: frozenset[str]
    price_usd_per_t: float = 0.0
    name: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    content: Mapping[str, float] | None = field(default=None, hash=False)
    content_source: str = ""

    def __post_init__(self) -> None:
        if self.content is not None:
            content = parse_content(dict(self.content), f"material '{self.id}'")
            object.__setattr__(self, "content", Content(content))
            object.__setattr__(self, "elements", _positive(content))

    def contains_any(self, elements) -> bool:
        """True when the material contains at least one of *elements* (for a known content:
        at a mass fraction above zero)."""
        return not self.elements.isdisjoint(elements)

    def content_of(self, elements) -> float | None:
        """Mass fraction of *elements* together in the material (t per t), or ``None`` when
        the content is unknown."""
        if self.content is None:
            return None
        return math.fsum(self.content.get(e, 0.0) for e in elements)


def _positive(content: Mapping[str, float]) -> frozenset[str]:
    return frozenset(e for e, x in content.items() if x > 0.0)


def parse_elements(value, where: str) -> frozenset[str]:
    """Validate a list of element symbols (case-sensitive, e.g. ``["Nd", "Pr"]``)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(e, str) for e in value):
        raise NetworkError(f"must be a list of element symbols, got {value!r}", where=where,
                           field="elements")
    unknown = [e for e in value if e not in ELEMENTS]
    if unknown:
        raise NetworkError(f"unknown element(s) {unknown}; valid symbols: {', '.join(ELEMENTS)}",
                           where=where, field="elements")
    return frozenset(value)


def parse_content(value, where: str) -> dict[str, float]:
    """Validate a content table (element symbol -> mass fraction, e.g. ``{"Nd": 0.218}``).

    Every key is a known element symbol, every fraction a finite number in [0, 1], and the
    fractions add up to at most 1. Returns a plain dict of floats.
    """
    if not isinstance(value, Mapping):
        raise NetworkError(f"must be a table of element = mass fraction, got {value!r}",
                           where=where, field="content")
    unknown = [e for e in value if e not in ELEMENTS]
    if unknown:
        raise NetworkError(f"unknown element(s) {unknown}; valid symbols: {', '.join(ELEMENTS)}",
                           where=where, field="content")
    out: dict[str, float] = {}
    for e, x in value.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                or not 0.0 <= x <= 1.0:
            raise NetworkError(f"mass fraction of {e} must be a number in [0, 1], got {x!r}",
                               where=where, field=f"content.{e}")
        out[e] = float(x)
    total = math.fsum(out.values())
    if total > 1.0 + _SUM_TOLERANCE:
        raise NetworkError(f"mass fractions add up to {total:.6g}, more than 1", where=where,
                           field="content")
    return out


def material_from_table(mid: str, raw: dict, where: str, price: float) -> Material:
    """Build a :class:`Material` from its ``[materials.ID]`` table (keys already checked).

    Accepts ``elements`` (content unknown), ``content`` (with ``content_source``) or both, in
    which case the elements must be exactly those with a mass fraction above zero.
    """
    content = None
    if "content" in raw:
        content = parse_content(raw["content"], where)
        if "elements" in raw:
            listed = parse_elements(raw["elements"], where)
            if listed != _positive(content):
                raise NetworkError(
                    f"lists {sorted(listed)} but its content has {sorted(_positive(content))} "
                    "above zero; give the same elements or drop 'elements'", where=where,
                    field="elements")
    elif "content_source" in raw:
        raise NetworkError("content_source given without content", where=where,
                           field="content_source")
    elements = _positive(content) if content is not None else \
        parse_elements(raw.get("elements", []), where)
    return Material(mid, elements, price, str(raw.get("name", mid)), str(raw.get("source", "")),
                    {k: raw[k] for k in ("note",) if k in raw}, content,
                    str(raw.get("content_source", "")))
