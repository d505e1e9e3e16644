"""Plant fleets: a demand region made of plants with different stock cover.

A demand node (say ``eu_auto``) stands for many plants. As one node it runs short only when
the whole region is empty, while in fact the first plant stops when *its* stock runs out: the
leanest plant's. A ``fleet`` table splits the node's demand among plants, each with its own
initial stock, so that the KPIs count stoppages plant by plant.

TOML schema (in a network file)::

    [nodes.eu_auto.fleet]
    source = "..."                # where the split and the covers come from
    plants = [
      { name = "just-in-time", share = 0.3, count = 6, cover_days = 21 },
      { name = "buffered", share = 0.7, count = 14,
        cover_days = { dist = "uniform", min = 60, max = 90 } },
    ]

Each entry of ``plants`` is a *class* of ``count`` identical-share plants (``count`` default 1):

* ``share`` (> 0): the class's share of the node's demand, split equally among its plants;
  the shares of the classes sum to 1.
* ``cover_days`` (>= 0): the plants' stock cover, in days of their own demand, when the node
  holds the fleet's mean cover (see below): a number (every plant of the class), a list of
  ``count`` numbers (one per plant), or a distribution
  ``{dist = "uniform", min, max}`` / ``{dist = "triangular", min, mode, max}`` /
  ``{dist = "fixed", value}``, from which plant *j* of *n* takes the quantile
  ``(j - 0.5) / n``. The covers are fixed quantiles, not drawn per replication: the spread of
  cover across a region's plants is a fact about the region (as its demand rate is), not an
  outcome of chance, and fixed covers keep replications and scenarios comparable plant by plant.
  No random stream is used.
* ``name``: the class name, unique in the fleet. Plants are named ``<name>`` (count 1) or
  ``<name>#<j>``, j = 1..count.

How plants are computed (exact, and free for the engine)
--------------------------------------------------------
The engine keeps ONE demand stock per material for the node, as without a fleet, so every
ordering decision is unchanged. Plant *i* takes the fixed fraction ``f_i`` of every customer
order (of every material of the node) and receives the fraction ``f_i`` of every replenishment
that arrives at the node. With backorders the node's level is ``L(t) = I + A(t) - D(t)``
(``I``: initial stock, ``A``: cumulative arrivals, ``D``: cumulative demand), and plant *i*'s
level is exactly ``L_i(t) = I_i + f_i (A(t) - D(t))``. The plants' initial stocks ``I_i`` (summing
to ``I``) are set so that plant *i* holds ``cover_i`` days of its demand when the node holds
``c = sum_j f_j cover_j`` days of its own (the share-weighted mean cover)::

    I_i = f_i * (I - (c - cover_i) * d)          # d: the node's mean daily demand (rate / 365)
    L_i(t) = f_i * (L(t) - (c - cover_i) * d)

So a plant's cover in days is always the node's cover plus ``cover_i - c``: when the node's
pooled stock falls below ``c - cover_i`` days of its demand, plant *i* is short. Summed over
plants this is ``L(t)``. Every plant series (level before each order, what each order got,
end-of-day levels, backlog) is therefore a function of the node's recorded series, computed
after the run with numpy: no engine events and no random numbers per plant. A fleet of one
plant is the node itself, bit for bit.

Why offsets in days, not a split of ``I`` in proportion to ``f_i x cover_i``: that split (with
the same exact levels ``I_i + f_i (L - I)``) makes plant *i* short when the node's level falls
below ``I (1 - cover_i / c)``, a threshold that moves with the node's initial stock, which the
shipped networks set inside the reorder band, not at the normal level. On the default network
(``eu_auto`` starts at 120 days of cover and runs at 65-100 days of on-hand cover with no
policy event), just-in-time plants of 10 and 21 days were short on 1,410 and 326 of 1,461 days
of the baseline scenario. With offsets the thresholds are the covers the sources give, in
days, whatever the initial stock: the two splits agree when the node's initial stock is ``c``
days of its demand. The node's initial stock must cover ``c - min(cover_i)`` days, or its
leanest plant would start short (a validation error).

The pro-rata allocation of arrivals is the assumption that makes this exact: a supplier's
deliveries are shared in proportion to demand, not steered to the plant that is short, and the
node's ordering sees the pooled position (what the region's buyers see in total). The node's
order cycle therefore moves every plant's cover by the same number of days: a plant's cover
must exceed the node's swing below ``c`` in normal operation, or it is short in every cycle.

A plant is a set of demand streams (one per material of the node); it stops when any of them is
short. The KPIs of a fleet node are computed on its plants' streams: scope ``node:<id>`` (and
every ``sector:``, ``country:``, ``civil`` and ``network`` scope holding it) adds up the plants
(demand, filled, backorders, costs: sums over plants; first shortage: the earliest plant's;
stockout days: days on which any plant is in stockout), and each plant class gets the scope
``plants:<node>/<class>``. :meth:`sim.results.Run.plant_kpis` gives the KPIs of each plant.
Holding costs and :meth:`~sim.results.Run.sector_series` count the plants' stock on hand and
backlogs (a plant's surplus does not cover another's backlog); :meth:`~sim.results.Run.series`
and the material balance show the node's pooled stock, which the engine holds.

Fleets need ``unmet = "backorder"``: with lost sales the node's level is floored at zero, so
the plants' levels are not a function of the node's (a plant that is empty would lose sales that
the pooled node fills), and a fleet of a lost-sales node is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .distributions import Fixed, Triangular, Uniform, from_spec
from .errors import ModelError, NetworkError

__all__ = ["PlantClass", "FleetSpec", "parse_fleet", "plant_block", "plant_records"]

_FLEET_KEYS = {"plants", "source", "note"}
_CLASS_KEYS = {"name", "share", "count", "cover_days", "source", "note"}


@dataclass(frozen=True)
class PlantClass:
    """``count`` plants sharing ``share`` of a node's demand equally, with the covers
    ``cover_days`` (one per plant, in days of each plant's demand)."""

    name: str
    share: float
    count: int
    cover_days: tuple[float, ...]
    cover_spec: Any = None          # as written in the file (for to_dict)
    source: str = ""

    def plant_names(self) -> list[str]:
        """The names of the class's plants: the class name, or ``name#j`` for j = 1..count."""
        if self.count == 1:
            return [self.name]
        return [f"{self.name}#{j}" for j in range(1, self.count + 1)]


@dataclass(frozen=True)
class FleetSpec:
    """The plants of a demand node (see the module docstring)."""

    classes: tuple[PlantClass, ...]
    source: str = ""

    def plants(self) -> list[tuple[str, str, float, float]]:
        """``(plant, class, share f_i, cover_i)`` of every plant, class by class (a list made
        once: do not change it)."""
        return self._plants

    @cached_property
    def _plants(self) -> list[tuple[str, str, float, float]]:
        out = []
        for c in self.classes:
            f = c.share / c.count
            out += [(name, c.name, f, cover) for name, cover in zip(c.plant_names(), c.cover_days)]
        return out

    @property
    def mean_cover(self) -> float:
        """The share-weighted mean cover ``c = sum_i f_i cover_i`` (days)."""
        return math.fsum(f * cover for _, _, f, cover in self.plants())

    def offsets(self) -> list[float]:
        """``c - cover_i`` of each plant (days): how far below the node's cover its cover is."""
        c = self.mean_cover
        return [c - cover for _, _, _, cover in self.plants()]

    def initial_split(self, initial: float, daily_demand: float) -> list[float]:
        """Each plant's initial stock of a material of which the node holds *initial* and
        demands *daily_demand* a day: ``f_i * (initial - (c - cover_i) * daily_demand)``."""
        return [f * (initial - g * daily_demand)
                for (_, _, f, _), g in zip(self.plants(), self.offsets())]

    def to_dict(self) -> dict:
        """The TOML table of this fleet (round-trips through :func:`parse_fleet`)."""
        plants = []
        for c in self.classes:
            d: dict[str, Any] = {"name": c.name, "share": c.share, "count": c.count,
                                 "cover_days": c.cover_spec}
            if c.source:
                d["source"] = c.source
            plants.append(d)
        out: dict[str, Any] = {"plants": plants}
        if self.source:
            out["source"] = self.source
        return out


def _quantile(dist, p: float) -> float:
    if isinstance(dist, Fixed):
        return float(dist.value)
    if isinstance(dist, Uniform):
        return dist.min + p * (dist.max - dist.min)
    a, c, b = dist.min, dist.mode, dist.max
    if b == a:
        return float(a)
    cut = (c - a) / (b - a)
    if p <= cut:
        return a + math.sqrt(p * (b - a) * (c - a))
    return b - math.sqrt((1.0 - p) * (b - a) * (b - c))


def _covers(value: Any, count: int, where: str, fld: str) -> tuple[float, ...]:
    def number(v: Any, f: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise NetworkError(f"must be a number >= 0 (days), got {v!r}", where=where, field=f)
        return float(v)

    if isinstance(value, list):
        if len(value) != count:
            raise NetworkError(f"a list of covers needs one per plant ({count}), got {len(value)}",
                               where=where, field=fld)
        return tuple(number(v, f"{fld}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        try:
            dist = from_spec(value, where=f"{where}: {fld}")
        except ModelError as exc:
            raise NetworkError(exc.problem, where=where, field=fld) from None
        if not isinstance(dist, (Fixed, Uniform, Triangular)):
            raise NetworkError("a distribution of covers must be fixed, uniform or triangular "
                               f"(plants take its quantiles), got {value.get('dist')!r}",
                               where=where, field=fld)
        covers = tuple(_quantile(dist, (j - 0.5) / count) for j in range(1, count + 1))
        if min(covers) < 0:
            raise NetworkError("covers must be >= 0 days", where=where, field=fld)
        return covers
    return (number(value, fld),) * count


def parse_fleet(node: str, raw: Any) -> FleetSpec:
    """The :class:`FleetSpec` of the ``[nodes.<node>.fleet]`` table *raw*; raises
    :class:`~sim.errors.NetworkError` naming the node and field."""
    where = f"node '{node}'"
    if not isinstance(raw, dict):
        raise NetworkError(f"must be a table, got {raw!r}", where=where, field="fleet")
    extra = sorted(set(raw) - _FLEET_KEYS)
    if extra:
        raise NetworkError(f"unknown field(s) {extra}; allowed: {sorted(_FLEET_KEYS)}",
                           where=where, field="fleet")
    plants = raw.get("plants")
    if not isinstance(plants, list) or not plants:
        raise NetworkError("needs a non-empty list of plant classes "
                           "{name, share, count, cover_days}", where=where, field="fleet.plants")
    classes = []
    names: set[str] = set()
    for i, c in enumerate(plants):
        fld = f"fleet.plants[{i}]"
        if not isinstance(c, dict):
            raise NetworkError(f"must be a table, got {c!r}", where=where, field=fld)
        extra = sorted(set(c) - _CLASS_KEYS)
        if extra:
            raise NetworkError(f"unknown field(s) {extra}; allowed: {sorted(_CLASS_KEYS)}",
                               where=where, field=fld)
        name = c.get("name")
        if not isinstance(name, str) or not name or "/" in name or "#" in name:
            raise NetworkError(f"needs a name (a non-empty string without '/' or '#'), got "
                               f"{name!r}", where=where, field=f"{fld}.name")
        if name in names:
            raise NetworkError(f"duplicate plant class {name!r}", where=where, field=f"{fld}.name")
        names.add(name)
        share = c.get("share")
        if isinstance(share, bool) or not isinstance(share, (int, float)) \
                or not math.isfinite(share) or share <= 0:
            raise NetworkError(f"must be a number > 0, got {share!r}", where=where,
                               field=f"{fld}.share")
        count = c.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise NetworkError(f"must be an integer >= 1, got {count!r}", where=where,
                               field=f"{fld}.count")
        if "cover_days" not in c:
            raise NetworkError("missing cover_days", where=where, field=f"{fld}.cover_days")
        covers = _covers(c["cover_days"], count, where, f"{fld}.cover_days")
        classes.append(PlantClass(name, float(share), count, covers, c["cover_days"],
                                  str(c.get("source", ""))))
    total = math.fsum(c.share for c in classes)
    if abs(total - 1.0) > 1e-6:
        raise NetworkError(f"shares of the plant classes sum to {total:g}, not 1", where=where,
                           field="fleet.plants")
    return FleetSpec(tuple(classes), str(raw.get("source", "")))


def check_fleet(node) -> None:
    """Check that the :class:`~sim.network.NodeSpec` *node*'s fleet can be computed: the node
    has customer demand and backorders it."""
    where = f"node '{node.id}'"
    if not node.demand:
        raise NetworkError("a fleet needs customer demand at the node ([demand.<material>])",
                           where=where, field="fleet")
    if node.unmet != "backorder":
        raise NetworkError("a fleet needs unmet = 'backorder': with lost sales the plants' "
                           "levels are not a function of the node's", where=where, field="fleet")
    gap = max(node.fleet.offsets())
    for m, spec in node.demand.items():
        stock = node.stocks.get(m)
        initial = stock.initial if stock is not None else 0.0
        need = gap * spec.rate_t_per_year / 365.0
        if initial < need - 1e-9 * max(1.0, need):
            raise NetworkError(
                f"initial stock {initial:g} t is below the {need:g} t ({gap:g} days of demand) "
                "that the fleet's mean cover minus its leanest plant's needs: that plant would "
                "start short", where=where, field=f"stock.{m}.initial")


def plant_block(record, fleet: FleetSpec, daily_demand: float) -> tuple[np.ndarray, ...]:
    """The plants of *fleet* for the node's demand stream *record* (a backorder stream whose
    mean demand is *daily_demand* t/day) as the rows of matrices: order sizes, levels before
    each order, filled, and end-of-day levels, each ``(plants, orders)`` or ``(plants, days)``.

    Plant *i* (share ``f_i``, offset ``g_i = (c - cover_i) * daily_demand``): order sizes
    ``f_i * D``, levels ``f_i * (L - g_i)`` before each order and at each day's end, filled
    ``clip(level, 0, f_i * D)``. A fleet of one plant (``f = 1``, ``g = 0``) gives the node's
    arrays, bit for bit (``1.0 * (L - 0.0)`` is ``L``)."""
    plants = fleet.plants()
    f = np.array([p[2] for p in plants])[:, None]
    g = np.array(fleet.offsets())[:, None] * daily_demand
    D = f * record.D
    level = record.level_before - g
    level *= f
    daily = record.daily_level - g
    daily *= f
    filled = np.clip(level, 0.0, D)
    return D, level, filled, daily


def plant_records(record, fleet: FleetSpec, daily_demand: float) -> list:
    """The :class:`~sim.results.DemandRecord` of each plant of *fleet* for the node's demand
    stream *record*: the rows of :func:`plant_block`, with ``plant`` and ``plant_class`` set."""
    D, level, filled, daily = plant_block(record, fleet, daily_demand)
    cls = type(record)
    return [cls(record.node, record.material, record.sector, record.country, record.lost,
                record.T, D[i], level[i], filled[i], daily[i], name, plant_class)
            for i, (name, plant_class, _, _) in enumerate(fleet.plants())]
