"""Rare-earth elements and materials.

A *material* is anything that flows through the network (a concentrate, an oxide, a metal, a
magnet). It lists the rare-earth elements it contains, so a control written on elements (say
Dy and Tb) reaches every material that contains them, magnets included. Prices are per tonne and
feed the cost accounting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import NetworkError

__all__ = ["ELEMENTS", "LIGHT", "HEAVY", "Material", "parse_elements"]

#: The 17 rare-earth elements (15 lanthanides plus Sc and Y), by symbol.
ELEMENTS: tuple[str, ...] = (
    "Sc", "Y", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm",
    "Yb", "Lu",
)
#: Light rare earths (La-Eu by the usual industrial convention, Sm and Eu sometimes "medium").
LIGHT: frozenset[str] = frozenset({"La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu"})
#: Heavy rare earths plus Y and Sc.
HEAVY: frozenset[str] = frozenset(ELEMENTS) - LIGHT


@dataclass(frozen=True)
class Material:
    """A material declared by a network.

    Attributes
    ----------
    id: identifier used by nodes and lanes.
    elements: rare-earth elements it contains (symbols from :data:`ELEMENTS`).
    price_usd_per_t: reference price, US dollars per tonne (for cost accounting).
    name, source: description and where the figures come from.
    """

    id: str
    elements: frozenset[str]
    price_usd_per_t: float = 0.0
    name: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def contains_any(self, elements) -> bool:
        """True when the material contains at least one of *elements*."""
        return not self.elements.isdisjoint(elements)


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
