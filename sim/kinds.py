"""The registry of node kinds: what each kind of facility is, read by validation, labels and
figures.

A node's ``kind`` (see :mod:`sim.network`) decides which checks its table must pass, whether
it may face customer demand, whether it confers origin on what it ships by default (the
origin rules of extraterritorial controls), how it reads in figures and tables, and where it
stands on the supply-chain map. All of that is one :class:`NodeKind` entry of
:data:`NODE_KINDS`; the modules that need it read it from here (:data:`sim.network.KINDS`,
:func:`sim.labels.node_label`, the map of :mod:`sim.plots`).

To add a kind: add one :class:`NodeKind` entry to :data:`NODE_KINDS` (the key is the value
of ``kind`` in a network file). A kind that needs checks of its own beyond these flags gets
them in :meth:`sim.network.Network.validate`.

>>> NODE_KINDS["processor"].label
'refiner'
>>> demand_kinds()
('manufacturer', 'defense_user')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NodeKind", "NODE_KINDS", "demand_kinds", "kind_label", "kind_marker", "kind_tier",
           "tier_label", "OTHER_TIER"]


@dataclass(frozen=True)
class NodeKind:
    """One kind of facility.

    ``label``: its readable name (figures, tables); ``marker``: its matplotlib marker on the
    network map; ``demand``: it may face customer demand (and then needs a ``sector``);
    ``confers_origin``: the default of a node's ``confers_origin`` (its output takes its
    country as origin); ``tier``: its column on the map, upstream (0) to downstream (kinds may
    share a column); ``raw_producer``: it must produce, from no inputs (a mine: a production
    table without recipe inputs).
    """

    label: str
    marker: str
    tier: int
    demand: bool = False
    confers_origin: bool = False
    raw_producer: bool = False


NODE_KINDS: dict[str, NodeKind] = {
    "mine": NodeKind("mine", "^", 0, confers_origin=True, raw_producer=True),
    "processor": NodeKind("refiner", "s", 1, confers_origin=True),
    "magnet_maker": NodeKind("magnet maker", "D", 2),
    "manufacturer": NodeKind("manufacturer", "o", 4, demand=True),
    "defense_user": NodeKind("defense user", "p", 4, demand=True),
    "stockpile": NodeKind("stockpile", "h", 3),
}

# the map's column for a kind without an entry (a figure of an unknown kind still draws)
OTHER_TIER = 1 + max(k.tier for k in NODE_KINDS.values())


def demand_kinds() -> tuple[str, ...]:
    """The kinds that may face customer demand, in registry order."""
    return tuple(k for k, spec in NODE_KINDS.items() if spec.demand)


def kind_label(kind: str) -> str:
    """The readable name of a kind (underscores as spaces when it has no entry)."""
    spec = NODE_KINDS.get(kind)
    return spec.label if spec is not None else str(kind).replace("_", " ").strip()


def kind_marker(kind: str) -> str:
    """The map marker of a kind (a circle when it has no entry)."""
    spec = NODE_KINDS.get(kind)
    return spec.marker if spec is not None else "o"


def kind_tier(kind: str) -> int:
    """The map column of a kind (:data:`OTHER_TIER` when it has no entry)."""
    spec = NODE_KINDS.get(kind)
    return spec.tier if spec is not None else OTHER_TIER


def tier_label(tier: int) -> str:
    """The axis label of a map column: the ids of its kinds (``"manufacturer /\\ndefense
    user"``), or ``"other"``."""
    names = [k.replace("_", " ") for k, spec in NODE_KINDS.items() if spec.tier == tier]
    if not names:
        return "other"
    return " /\n".join(names)
