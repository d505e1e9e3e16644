"""The network schema: facilities (nodes), trade lanes (edges) and materials, read from TOML.

A network is a :class:`networkx.MultiDiGraph` (a subclass of :class:`networkx.DiGraph`): nodes
are facilities, each edge is a trade lane carrying one material, keyed by that material, so two
facilities can trade several materials. :class:`Network` holds the graph together with the
validated, typed specifications the engine reads. Build one with :func:`load_network` (a TOML
file or the name of a shipped network), :meth:`Network.from_graph` (a graph built in Python) or
:meth:`Network.from_dict`; write one with :func:`save_network`.

TOML schema (units: tonnes, days, US dollars; every figure may carry a ``source`` string)::

    [network]
    name = "teaching"
    description = "..."

    [materials.ndpr_oxide]
    elements = ["Nd", "Pr"]       # or content = { Nd = 0.64, Pr = 0.21 } (mass fractions)
    content_source = "..."        #    with the source of the content figures
    price_usd_per_t = 60000
    source = "..."

    [nodes.mine_cn]
    kind = "mine"                 # mine | processor | magnet_maker | manufacturer | defense_user | stockpile
    country = "CN"                # ISO 3166-1 alpha-2
    source = "USGS MCS 2025"
    unmet = "backorder"           # or "lost": what happens to demand or orders it cannot fill
    priority = 0                  # > 0: rated orders, served before unrated ones (e.g. DPAS)
    partial_shipments = true      # false: ship only whole orders, strictly first come first served
    max_supplier_wait_days = 60   # optional: skip suppliers that could not ship within this
    [nodes.mine_cn.production.concentrate]
    capacity_t_per_year = 270000  # or capacity_schedule = [{from = "2026-04-01", t_per_year = 5000}, ...]
    recipe = {}                   # inputs per tonne of output, e.g. {concentrate = 2.5}
    batch_days = 7                # production cycle length at full rate
    target_stock = 20000          # produce while on-hand - backlog + WIP is below this
    [nodes.mine_cn.stock.concentrate]
    initial = 10000
    policy = {type = "sS", s = 100, S = 300, review_days = 0}   # 0 = continuous review

    [nodes.us_auto]
    kind = "manufacturer"
    sector = "automotive"
    [nodes.us_auto.demand.ndfeb_magnet]
    rate_t_per_year = 1200
    process = "poisson"           # poisson | renewal | periodic
    order_size = 2.0              # tonnes per order (number or distribution)
    [nodes.us_auto.fleet]         # optional: the node is a fleet of plants (see sim/fleet.py)
    source = "..."
    plants = [                    # classes of plants; shares sum to 1; count default 1
      { name = "just-in-time", share = 0.3, count = 6, cover_days = 21 },
      { name = "buffered", share = 0.7, count = 14,
        cover_days = { dist = "uniform", min = 60, max = 90 } },   # or a number, or a list
    ]

A fleet splits a demand node (backorders only) into plants: plant *i* takes the share ``f_i``
of every order and of every arrival, and holds ``cover_i`` days of its demand when the node
holds ``c = sum_i f_i cover_i`` days of its own (its cover is always the node's plus
``cover_i - c``); a ``cover_days`` distribution gives plant *j* of *n* its quantile
``(j - 0.5) / n`` (fixed, not drawn). The node's initial stock must cover ``c - min cover_i``
days. The engine still runs one stock per material;
the plants' levels are exact functions of it, computed after the run, and the node's KPIs
(first shortage: the leanest plant's) are computed plant by plant. Details: :mod:`sim.fleet`.

A stockpile node may hold a strategic reserve of a material: a policy, not a supplier
(the engine's :class:`~sim.engine.Reserve`)::

    [nodes.nds_us.reserve.ndfeb_hre_magnet]
    source = "..."
    target_t = 1300                 # holding at full build-up
    build_rate_t_per_year = 400     # purchases while the holding (+ on order) is below target
    build_start = 2026-01-01        # optional: purchases from this date (default: the start)
    order_every_days = 30           # optional: one purchase order per this many days
    release_cover_days = 30         # release when a served buyer's cover (on hand / its daily
                                    # demand) falls below this many days
    release_rate_t_per_day = 2.0    # at most this much released per calendar day, in total
    serve = ["defense"]             # sectors or node ids, in priority order
    civil = false                   # also release to the other buyers, after those served
    replenish = true                # rebuild to target after releases, at the build rate
    funded_price_usd_per_t = 150000 # cost of purchases (default: the material's price)

The holder's ``[stock.<material>]`` gives the initial holding and has no ordering policy (the
reserve buys by its build rule, from the node's inbound lanes for the material). Every outbound
lane of the material from the holder is a release lane: it goes to a node with customer demand
for the material that ``serve`` names (by sector or id) or, with ``civil = true``, to any such
node; its share is left out of the buyer's share split (the buyer's other lanes take its orders
in proportion to their shares), and the lane carries releases only. The engine watches the
cover of the buyers on the release lanes (their daily demand is the demand table's
``rate_t_per_year / 365``; scenario surges do not move the threshold): when one falls below
``release_cover_days``, it releases once a day, to the buyers below the threshold in priority
order (those ``serve`` names, in its order, then the others), what restores their on-hand
stock to the threshold (less what is already in transit to them), until every buyer is back at
the threshold or the reserve is empty with nothing on order. Purchases (one order every
``order_every_days`` of ``build_rate_t_per_year`` times that period, from ``build_start``)
run while the holding plus what is on order is below ``target_t``, also during releases; once
the target is reached they stop, and start again after releases only with ``replenish``.

    [[lanes]]
    from = "mine_cn"
    to = "sep_cn"
    material = "concentrate"
    lead_time = {dist = "triangular", min = 3, mode = 5, max = 10}
    share = 1.0                   # share of the buyer's orders for this material sent here
    capacity_t_per_year = 300000  # optional
    qualification_days = 0        # optional: the lane can be used only after this many days

Validation (:meth:`Network.validate`, run by every constructor) raises
:class:`~sim.errors.NetworkError` naming the file, node or lane, and field.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import importlib.resources
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from .distributions import Distribution, Fixed, from_spec
from .errors import ModelError, NetworkError
from .fleet import FleetSpec, check_fleet, parse_fleet
from .materials import Material, material_from_table

__all__ = [
    "KINDS", "Network", "NodeSpec", "LaneSpec", "StockSpec", "ProductionSpec", "DemandSpec",
    "PolicySpec", "load_network", "save_network", "network_path", "list_networks",
    "ReserveSpec", "with_reserve",
    "shipped_folder", "shipped_names",
    "ISO_COUNTRIES", "parse_date",
]

KINDS = ("mine", "processor", "magnet_maker", "manufacturer", "defense_user", "stockpile")
DEMAND_KINDS = ("manufacturer", "defense_user")
POLICY_TYPES = ("none", "base_stock", "sS", "rQ")
UNMET = ("backorder", "lost")
PROCESSES = ("poisson", "renewal", "periodic")

ISO_COUNTRIES = frozenset(
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR "
    "BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ "
    "EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW "
    "GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY "
    "KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV "
    "MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY "
    "QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG "
    "TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM "
    "ZW".split()
)

_NETWORKS_DIR = Path(__file__).resolve().parent.parent / "networks"


def parse_date(value: Any, where: str, field_name: str) -> _dt.date:
    """Parse a calendar date (a TOML date or an ISO ``YYYY-MM-DD`` string)."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ModelError(f"must be a date YYYY-MM-DD, got {value!r}", where=where, field=field_name)


# ---------------------------------------------------------------------------------------------
# Typed specifications
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicySpec:
    """Replenishment policy of a stock.

    ``base_stock``: order up to ``S`` whenever the inventory position is below ``S``.
    ``sS``: when the position is at or below ``s``, order up to ``S``.
    ``rQ``: when the position is at or below ``r``, order the smallest multiple of ``Q`` that
    lifts it above ``r``. ``review_days`` = 0 means continuous review (the check runs in the
    callback that lowers the stock); > 0 means periodic review every that many days.
    ``echelon = true`` (recipe inputs only): the position also counts the node's output of the
    line that consumes this stock (on hand - backlog + work in process, times the recipe
    quantity), so raw-material orders follow what the plant owes downstream (an echelon, or
    make-to-plan, policy).
    """

    type: str = "none"
    s: float = 0.0
    S: float = 0.0
    Q: float = 0.0
    review_days: float = 0.0
    echelon: bool = False

    @property
    def reorder_level(self) -> float:
        """The position at or below which an order is placed (``inf`` for none)."""
        if self.type == "base_stock":
            return self.S - 1e-9
        if self.type in ("sS", "rQ"):
            return self.s
        return -math.inf

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"type": self.type}
        if self.type == "base_stock":
            d["S"] = self.S
        elif self.type == "sS":
            d.update(s=self.s, S=self.S)
        elif self.type == "rQ":
            d.update(r=self.s, Q=self.Q)
        if self.review_days:
            d["review_days"] = self.review_days
        if self.echelon:
            d["echelon"] = True
        return d


@dataclass(frozen=True)
class StockSpec:
    """Initial inventory and replenishment policy of one material at one node."""

    initial: float = 0.0
    policy: PolicySpec = PolicySpec()
    source: str = ""


@dataclass(frozen=True)
class ProductionSpec:
    """Production of one output material: capacity over time, bill of materials, cycle."""

    capacity: tuple[tuple[_dt.date | None, float], ...]  # (from date or None, t/yr), sorted
    recipe: dict[str, float] = field(default_factory=dict)
    batch_days: float = 7.0
    target_stock: float = 0.0
    source: str = ""

    def capacity_on(self, day: _dt.date) -> float:
        """Capacity (t/yr) in force on *day*."""
        cap = 0.0
        for start, value in self.capacity:
            if start is None or start <= day:
                cap = value
        return cap


@dataclass(frozen=True)
class DemandSpec:
    """Customer demand for one material at a demand node (units: tonnes)."""

    process: str
    rate_t_per_year: float
    order_size: Distribution = Fixed(1.0)
    interarrival: Distribution | None = None   # renewal process, days
    period_days: float = 7.0                   # periodic process
    size: Distribution | None = None           # periodic process: demand per period
    source: str = ""


@dataclass(frozen=True)
class ReserveSpec:
    """A strategic reserve of one material at a stockpile node: build-up, release rule,
    replenishment and funded price (schema in the module docstring; runtime:
    :class:`sim.engine.Reserve`)."""

    target_t: float
    release_cover_days: float
    release_rate_t_per_day: float
    build_rate_t_per_year: float = 0.0
    build_start: _dt.date | None = None         # None: purchases from the start of the run
    order_every_days: float = 30.0
    serve: tuple[str, ...] = ("defense",)
    civil: bool = False
    replenish: bool = True
    funded_price_usd_per_t: float | None = None  # None: the material's price
    source: str = ""

    def to_dict(self) -> dict:
        """The TOML table of this reserve (round-trips through the parser)."""
        d: dict[str, Any] = {"target_t": self.target_t,
                             "build_rate_t_per_year": self.build_rate_t_per_year}
        if self.build_start is not None:
            d["build_start"] = self.build_start
        d.update(order_every_days=self.order_every_days,
                 release_cover_days=self.release_cover_days,
                 release_rate_t_per_day=self.release_rate_t_per_day,
                 serve=list(self.serve), civil=self.civil, replenish=self.replenish)
        if self.funded_price_usd_per_t is not None:
            d["funded_price_usd_per_t"] = self.funded_price_usd_per_t
        if self.source:
            d["source"] = self.source
        return d


@dataclass(frozen=True)
class NodeSpec:
    """A facility."""

    id: str
    kind: str
    country: str
    name: str = ""
    source: str = ""
    sector: str = ""
    unmet: str = "backorder"
    confers_origin: bool = False
    holding_cost_rate: float = 0.2
    order_split: str = "proportional"
    priority: int = 0
    partial_shipments: bool = True
    max_supplier_wait_days: float | None = None
    stocks: dict[str, StockSpec] = field(default_factory=dict)
    production: dict[str, ProductionSpec] = field(default_factory=dict)
    demand: dict[str, DemandSpec] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    fleet: FleetSpec | None = None             # the node's plants (sim.fleet), if any
    reserve: dict[str, ReserveSpec] = field(default_factory=dict)   # stockpile nodes only


@dataclass(frozen=True)
class LaneSpec:
    """A trade lane: one material from ``src`` to ``dst``."""

    src: str
    dst: str
    material: str
    lead_time: Distribution
    share: float = 1.0
    capacity_t_per_year: float | None = None
    qualification_days: float = 0.0
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable identifier ``src->dst:material``."""
        return f"{self.src}->{self.dst}:{self.material}"


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------

def _number(value: Any, where: str, field_name: str, *, minimum: float = 0.0, strict: bool = False,
            allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NetworkError(f"must be a number, got {value!r}", where=where, field=field_name)
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise NetworkError(f"must be finite, got {value!r}", where=where, field=field_name)
    if v < minimum or (strict and v <= minimum):
        op = ">" if strict else ">="
        raise NetworkError(f"must be {op} {minimum:g}, got {value!r}", where=where, field=field_name)
    return v


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise NetworkError(f"unknown field(s) {extra}; allowed: {sorted(allowed)}", where=where)


def _table(value: Any, where: str, field_name: str) -> dict:
    if not isinstance(value, dict):
        raise NetworkError(f"must be a table, got {value!r}", where=where, field=field_name)
    return value


def _parse_policy(raw: Any, where: str) -> PolicySpec:
    if raw is None:
        return PolicySpec()
    raw = _table(raw, where, "policy")
    ptype = raw.get("type", "none")
    w = f"{where}.policy"
    if ptype not in POLICY_TYPES:
        raise NetworkError(f"unknown policy type {ptype!r}; expected one of {POLICY_TYPES}",
                           where=where, field="policy.type")
    review = _number(raw.get("review_days", 0), w, "review_days")
    echelon = raw.get("echelon", False)
    if not isinstance(echelon, bool):
        raise NetworkError(f"must be true or false, got {echelon!r}", where=w, field="echelon")
    if ptype == "none":
        _check_keys(raw, {"type"}, w)
        return PolicySpec()
    if ptype == "base_stock":
        _check_keys(raw, {"type", "S", "review_days", "echelon"}, w)
        if "S" not in raw:
            raise NetworkError("base_stock policy needs 'S'", where=w, field="S")
        return PolicySpec("base_stock", S=_number(raw["S"], w, "S"), review_days=review,
                          echelon=echelon)
    if ptype == "sS":
        _check_keys(raw, {"type", "s", "S", "review_days", "echelon"}, w)
        for k in ("s", "S"):
            if k not in raw:
                raise NetworkError(f"sS policy needs '{k}'", where=w, field=k)
        s = _number(raw["s"], w, "s")
        big_s = _number(raw["S"], w, "S")
        if not s < big_s:
            raise NetworkError(f"need s < S, got s={s:g}, S={big_s:g}", where=w, field="s")
        return PolicySpec("sS", s=s, S=big_s, review_days=review, echelon=echelon)
    _check_keys(raw, {"type", "r", "Q", "review_days", "echelon"}, w)
    for k in ("r", "Q"):
        if k not in raw:
            raise NetworkError(f"rQ policy needs '{k}'", where=w, field=k)
    return PolicySpec("rQ", s=_number(raw["r"], w, "r"),
                      Q=_number(raw["Q"], w, "Q", strict=True), review_days=review, echelon=echelon)


def _parse_dist(value: Any, where: str, field_name: str) -> Distribution:
    try:
        return from_spec(value, where=f"{where}: {field_name}")
    except NetworkError:
        raise
    except ModelError as exc:
        raise NetworkError(exc.problem, where=exc.where) from None


def _parse_production(node: str, mat: str, raw: Any) -> ProductionSpec:
    where = f"node '{node}'"
    fld = f"production.{mat}"
    raw = _table(raw, where, fld)
    _check_keys(raw, {"capacity_t_per_year", "capacity_schedule", "recipe", "batch_days",
                      "target_stock", "source", "note"}, f"{where}: {fld}")
    caps: list[tuple[_dt.date | None, float]] = []
    if "capacity_t_per_year" in raw:
        caps.append((None, _number(raw["capacity_t_per_year"], where, f"{fld}.capacity_t_per_year")))
    if "capacity_schedule" in raw:
        sched = raw["capacity_schedule"]
        if not isinstance(sched, list) or not sched:
            raise NetworkError("must be a non-empty list of {from, t_per_year}", where=where,
                               field=f"{fld}.capacity_schedule")
        for i, step in enumerate(sched):
            f = f"{fld}.capacity_schedule[{i}]"
            step = _table(step, where, f)
            _check_keys(step, {"from", "t_per_year", "source", "note"}, f"{where}: {f}")
            if "from" not in step or "t_per_year" not in step:
                raise NetworkError("needs 'from' (a date) and 't_per_year'", where=where, field=f)
            caps.append((parse_date(step["from"], where, f"{f}.from"),
                         _number(step["t_per_year"], where, f"{f}.t_per_year")))
    if not caps:
        raise NetworkError("missing capacity: give capacity_t_per_year or capacity_schedule",
                           where=where, field=f"{fld}.capacity_t_per_year")
    dated = [c for c in caps if c[0] is not None]
    if dated != sorted(dated, key=lambda c: c[0]):
        raise NetworkError("capacity_schedule dates must be increasing", where=where,
                           field=f"{fld}.capacity_schedule")
    recipe_raw = _table(raw.get("recipe", {}), where, f"{fld}.recipe")
    recipe = {m: _number(q, where, f"{fld}.recipe.{m}", strict=True) for m, q in recipe_raw.items()}
    batch = _number(raw.get("batch_days", 7.0), where, f"{fld}.batch_days", strict=True)
    target = _number(raw.get("target_stock", 0.0), where, f"{fld}.target_stock")
    return ProductionSpec(tuple(caps), recipe, batch, target, str(raw.get("source", "")))


def _parse_demand(node: str, mat: str, raw: Any) -> DemandSpec:
    where = f"node '{node}'"
    fld = f"demand.{mat}"
    raw = _table(raw, where, fld)
    _check_keys(raw, {"rate_t_per_year", "process", "order_size", "interarrival", "period_days",
                      "cv", "size", "source", "note"}, f"{where}: {fld}")
    process = raw.get("process", "poisson")
    if process not in PROCESSES:
        raise NetworkError(f"unknown process {process!r}; expected one of {PROCESSES}",
                           where=where, field=f"{fld}.process")
    order_size = _parse_dist(raw.get("order_size", 1.0), where, f"{fld}.order_size")
    src = str(raw.get("source", ""))
    if process == "renewal":
        if "interarrival" not in raw:
            raise NetworkError("renewal demand needs 'interarrival' (days)", where=where,
                               field=f"{fld}.interarrival")
        ia = _parse_dist(raw["interarrival"], where, f"{fld}.interarrival")
        if ia.mean <= 0:
            raise NetworkError("interarrival mean must be > 0", where=where, field=f"{fld}.interarrival")
        rate = order_size.mean * 365.0 / ia.mean
        return DemandSpec("renewal", rate, order_size, interarrival=ia, source=src)
    if "rate_t_per_year" not in raw:
        raise NetworkError("missing 'rate_t_per_year'", where=where, field=f"{fld}.rate_t_per_year")
    rate = _number(raw["rate_t_per_year"], where, f"{fld}.rate_t_per_year")
    if process == "poisson":
        if order_size.mean <= 0:
            raise NetworkError("order_size mean must be > 0", where=where, field=f"{fld}.order_size")
        return DemandSpec("poisson", rate, order_size, source=src)
    period = _number(raw.get("period_days", 7.0), where, f"{fld}.period_days", strict=True)
    mean = rate * period / 365.0
    if "size" in raw:
        size = _parse_dist(raw["size"], where, f"{fld}.size")
    else:
        cv = _number(raw.get("cv", 0.0), where, f"{fld}.cv")
        size = from_spec({"dist": "gamma", "mean": mean, "cv": cv}) if cv > 0 and mean > 0 else Fixed(mean)
    if abs(size.mean - mean) > 1e-6 * max(1.0, mean):
        raise NetworkError(f"size mean {size.mean:g} does not match rate_t_per_year x period_days / 365"
                           f" = {mean:g}", where=where, field=f"{fld}.size")
    return DemandSpec("periodic", rate, period_days=period, size=size, source=src)


_NODE_KEYS = {"kind", "country", "name", "source", "sector", "unmet", "confers_origin",
              "holding_cost_rate", "order_split", "priority", "partial_shipments", "max_supplier_wait_days", "stock", "production", "demand", "note",
              "lat", "lon", "operator", "status", "fleet", "reserve"}

_RESERVE_KEYS = {"target_t", "build_rate_t_per_year", "build_start", "order_every_days",
                 "release_cover_days", "release_rate_t_per_day", "serve", "civil", "replenish",
                 "funded_price_usd_per_t", "source", "note"}


def _parse_reserve(node: str, mat: str, raw: Any) -> ReserveSpec:
    where = f"node '{node}'"
    fld = f"reserve.{mat}"
    raw = _table(raw, where, fld)
    _check_keys(raw, _RESERVE_KEYS, f"{where}: {fld}")
    for key in ("target_t", "release_cover_days", "release_rate_t_per_day"):
        if key not in raw:
            raise NetworkError(f"missing '{key}'", where=where, field=f"{fld}.{key}")
    serve = raw.get("serve", ["defense"])
    if isinstance(serve, str):
        serve = [serve]
    if (not isinstance(serve, list) or not serve
            or not all(isinstance(x, str) and x.strip() for x in serve)):
        raise NetworkError(f"must be a non-empty list of sectors or node ids, got {serve!r}",
                           where=where, field=f"{fld}.serve")
    if len(set(serve)) != len(serve):
        raise NetworkError(f"names an entry twice: {serve!r}", where=where, field=f"{fld}.serve")
    price = raw.get("funded_price_usd_per_t")
    return ReserveSpec(
        target_t=_number(raw["target_t"], where, f"{fld}.target_t"),
        release_cover_days=_number(raw["release_cover_days"], where,
                                   f"{fld}.release_cover_days", strict=True),
        release_rate_t_per_day=_number(raw["release_rate_t_per_day"], where,
                                       f"{fld}.release_rate_t_per_day", strict=True),
        build_rate_t_per_year=_number(raw.get("build_rate_t_per_year", 0.0), where,
                                      f"{fld}.build_rate_t_per_year"),
        build_start=None if raw.get("build_start") is None else parse_date(
            raw["build_start"], where, f"{fld}.build_start"),
        order_every_days=_number(raw.get("order_every_days", 30.0), where,
                                 f"{fld}.order_every_days", strict=True),
        serve=tuple(serve),
        civil=_flag(raw.get("civil", False), where, f"{fld}.civil"),
        replenish=_flag(raw.get("replenish", True), where, f"{fld}.replenish"),
        funded_price_usd_per_t=None if price is None else _number(
            price, where, f"{fld}.funded_price_usd_per_t"),
        source=str(raw.get("source", "")))


def _parse_node(nid: str, raw: Any) -> NodeSpec:
    where = f"node '{nid}'"
    raw = _table(raw, where, "")
    _check_keys(raw, _NODE_KEYS, where)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise NetworkError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}",
                           where=where, field="kind")
    country = raw.get("country")
    if not isinstance(country, str) or country not in ISO_COUNTRIES:
        raise NetworkError(f"must be an ISO 3166-1 alpha-2 code such as 'CN', got {country!r}",
                           where=where, field="country")
    unmet = raw.get("unmet", "backorder")
    if unmet not in UNMET:
        raise NetworkError(f"must be 'backorder' or 'lost', got {unmet!r}", where=where, field="unmet")
    split = raw.get("order_split", "proportional")
    if split not in ("proportional", "single"):
        raise NetworkError(f"must be 'proportional' or 'single', got {split!r}", where=where,
                           field="order_split")
    stocks = {}
    for mat, sraw in _table(raw.get("stock", {}), where, "stock").items():
        f = f"stock.{mat}"
        sraw = _table(sraw, where, f)
        _check_keys(sraw, {"initial", "policy", "source", "note"}, f"{where}: {f}")
        stocks[mat] = StockSpec(_number(sraw.get("initial", 0.0), where, f"{f}.initial"),
                                _parse_policy(sraw.get("policy"), f"{where}: {f}"),
                                str(sraw.get("source", "")))
    production = {m: _parse_production(nid, m, p)
                  for m, p in _table(raw.get("production", {}), where, "production").items()}
    demand = {m: _parse_demand(nid, m, d)
              for m, d in _table(raw.get("demand", {}), where, "demand").items()}
    confers = raw.get("confers_origin", kind in ("mine", "processor"))
    if not isinstance(confers, bool):
        raise NetworkError(f"must be true or false, got {confers!r}", where=where, field="confers_origin")
    extra = {k: raw[k] for k in ("note", "lat", "lon", "operator", "status") if k in raw}
    return NodeSpec(
        id=nid, kind=kind, country=country, name=str(raw.get("name", nid)),
        source=str(raw.get("source", "")), sector=str(raw.get("sector", "")), unmet=unmet,
        confers_origin=confers,
        holding_cost_rate=_number(raw.get("holding_cost_rate", 0.2), where, "holding_cost_rate"),
        order_split=split, priority=_priority(raw.get("priority", 0), where),
        partial_shipments=_flag(raw.get("partial_shipments", True), where, "partial_shipments"),
        max_supplier_wait_days=None if raw.get("max_supplier_wait_days") is None else _number(
            raw["max_supplier_wait_days"], where, "max_supplier_wait_days"),
        stocks=stocks, production=production, demand=demand, extra=extra,
        fleet=None if raw.get("fleet") is None else parse_fleet(nid, raw["fleet"]),
        reserve={m: _parse_reserve(nid, m, r)
                 for m, r in _table(raw.get("reserve", {}), where, "reserve").items()})


def _flag(value: Any, where: str, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise NetworkError(f"must be true or false, got {value!r}", where=where, field=field_name)
    return value


def _priority(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NetworkError(f"must be a non-negative integer, got {value!r}", where=where,
                           field="priority")
    return value


_LANE_KEYS = {"from", "to", "material", "lead_time", "share", "capacity_t_per_year",
              "qualification_days", "source", "note", "route"}


def _parse_lane(i: int, raw: Any) -> LaneSpec:
    where = f"lane #{i + 1}"
    raw = _table(raw, where, "")
    for k in ("from", "to", "material"):
        if not isinstance(raw.get(k), str):
            raise NetworkError(f"missing or not a string: {raw.get(k)!r}", where=where, field=k)
    where = f"lane {raw['from']}->{raw['to']}:{raw['material']}"
    _check_keys(raw, _LANE_KEYS, where)
    if "lead_time" not in raw:
        raise NetworkError("missing lead_time", where=where, field="lead_time")
    cap = raw.get("capacity_t_per_year")
    return LaneSpec(
        src=raw["from"], dst=raw["to"], material=raw["material"],
        lead_time=_parse_dist(raw["lead_time"], where, "lead_time"),
        share=_number(raw.get("share", 1.0), where, "share"),
        capacity_t_per_year=None if cap is None else _number(cap, where, "capacity_t_per_year", strict=True),
        qualification_days=_number(raw.get("qualification_days", 0.0), where, "qualification_days"),
        source=str(raw.get("source", "")),
        extra={k: raw[k] for k in ("note", "route") if k in raw})


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------

class Network:
    """A validated network: the graph plus typed node, lane and material specifications.

    Use :func:`load_network`, :meth:`from_dict` or :meth:`from_graph` to build one; all run
    :meth:`validate`. ``graph`` is a :class:`networkx.MultiDiGraph` whose node attributes are the
    :class:`NodeSpec` fields and whose edges (keyed by material) carry :class:`LaneSpec` fields.
    """

    def __init__(self, name: str, materials: dict[str, Material], nodes: dict[str, NodeSpec],
                 lanes: list[LaneSpec], *, description: str = "", source: str = "",
                 file: str | None = None, meta: dict | None = None) -> None:
        self.name = name
        self.description = description
        self.source = source
        self.file = file
        self.meta = dict(meta or {})
        self.materials = materials
        self.nodes = nodes
        self.lanes = lanes
        try:
            self.validate()
        except ModelError as exc:
            raise (exc.with_file(file) if file else exc) from None
        self.graph = self._build_graph()

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, *, file: str | None = None) -> "Network":
        """Build from the parsed TOML structure (see the module docstring for the schema)."""
        try:
            return cls._from_dict(data, file)
        except ModelError as exc:
            raise (exc.with_file(file) if file else exc) from None

    @classmethod
    def _from_dict(cls, data: dict, file: str | None) -> "Network":
        if not isinstance(data, dict):
            raise NetworkError("a network must be a table")
        _check_keys(data, {"network", "materials", "nodes", "lanes", "sources"}, "top level")
        head = _table(data.get("network", {}), "[network]", "")
        materials: dict[str, Material] = {}
        for mid, mraw in _table(data.get("materials", {}), "[materials]", "").items():
            w = f"material '{mid}'"
            mraw = _table(mraw, w, "")
            _check_keys(mraw, {"elements", "content", "content_source", "price_usd_per_t",
                               "name", "source", "note"}, w)
            materials[mid] = material_from_table(
                mid, mraw, w, _number(mraw.get("price_usd_per_t", 0.0), w, "price_usd_per_t"))
        nodes = {nid: _parse_node(nid, nraw)
                 for nid, nraw in _table(data.get("nodes", {}), "[nodes]", "").items()}
        lanes_raw = data.get("lanes", [])
        if not isinstance(lanes_raw, list):
            raise NetworkError("must be an array of tables [[lanes]]", where="lanes")
        lanes = [_parse_lane(i, l) for i, l in enumerate(lanes_raw)]
        meta = {k: v for k, v in head.items() if k not in ("name", "description", "source")}
        if "sources" in data:
            meta["sources"] = data["sources"]
        return cls(str(head.get("name", Path(file).stem if file else "network")), materials, nodes,
                   lanes, description=str(head.get("description", "")),
                   source=str(head.get("source", "")), file=file, meta=meta)

    @classmethod
    def from_graph(cls, graph: nx.DiGraph, *, name: str | None = None) -> "Network":
        """Build from a graph made in Python.

        ``graph.graph["materials"]`` maps material id to ``{"elements": [...], "price_usd_per_t":
        ...}``; node attributes follow the ``[nodes.ID]`` tables; edge attributes follow
        ``[[lanes]]`` (``material`` and ``lead_time`` required). Plain :class:`networkx.DiGraph`
        and :class:`networkx.MultiDiGraph` are both accepted.
        """
        data: dict[str, Any] = {
            "network": {"name": name or graph.graph.get("name", "graph"),
                        "description": graph.graph.get("description", "")},
            "materials": copy.deepcopy(graph.graph.get("materials", {})),
            "nodes": {str(n): copy.deepcopy(dict(a)) for n, a in graph.nodes(data=True)},
            "lanes": [],
        }
        edges = graph.edges(data=True)
        for u, v, a in edges:
            lane = {"from": str(u), "to": str(v)}
            lane.update(copy.deepcopy(dict(a)))
            data["lanes"].append(lane)
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        """The TOML structure of this network (round-trips through :meth:`from_dict`)."""
        head: dict[str, Any] = {"name": self.name}
        if self.description:
            head["description"] = self.description
        if self.source:
            head["source"] = self.source
        meta = dict(self.meta)
        sources = meta.pop("sources", None)
        head.update(meta)
        out: dict[str, Any] = {"network": head, "materials": {}, "nodes": {}, "lanes": []}
        if sources is not None:
            out["sources"] = sources
        for m in self.materials.values():
            md: dict[str, Any] = {"name": m.name, "elements": sorted(m.elements),
                                  "price_usd_per_t": m.price_usd_per_t}
            if m.source:
                md["source"] = m.source
            if m.content is not None:
                md["content"] = dict(m.content)
                if m.content_source:
                    md["content_source"] = m.content_source
            md.update(m.extra)
            out["materials"][m.id] = md
        for n in self.nodes.values():
            nd: dict[str, Any] = {"kind": n.kind, "country": n.country, "name": n.name}
            for k in ("source", "sector"):
                if getattr(n, k):
                    nd[k] = getattr(n, k)
            if n.unmet != "backorder":
                nd["unmet"] = n.unmet
            if n.confers_origin != (n.kind in ("mine", "processor")):
                nd["confers_origin"] = n.confers_origin
            if n.holding_cost_rate != 0.2:
                nd["holding_cost_rate"] = n.holding_cost_rate
            if n.order_split != "proportional":
                nd["order_split"] = n.order_split
            if n.priority:
                nd["priority"] = n.priority
            if not n.partial_shipments:
                nd["partial_shipments"] = False
            if n.max_supplier_wait_days is not None:
                nd["max_supplier_wait_days"] = n.max_supplier_wait_days
            nd.update(n.extra)
            if n.stocks:
                nd["stock"] = {}
                for m, s in n.stocks.items():
                    sd: dict[str, Any] = {"initial": s.initial}
                    if s.policy.type != "none":
                        sd["policy"] = s.policy.to_dict()
                    if s.source:
                        sd["source"] = s.source
                    nd["stock"][m] = sd
            if n.production:
                nd["production"] = {}
                for m, p in n.production.items():
                    pd_: dict[str, Any] = {}
                    undated = [c for d, c in p.capacity if d is None]
                    if undated:
                        pd_["capacity_t_per_year"] = undated[-1]
                    dated = [{"from": d, "t_per_year": c} for d, c in p.capacity if d is not None]
                    if dated:
                        pd_["capacity_schedule"] = dated
                    pd_.update(recipe=dict(p.recipe), batch_days=p.batch_days,
                               target_stock=p.target_stock)
                    if p.source:
                        pd_["source"] = p.source
                    nd["production"][m] = pd_
            if n.demand:
                nd["demand"] = {}
                for m, d in n.demand.items():
                    dd: dict[str, Any] = {"process": d.process}
                    if d.process == "renewal":
                        dd["interarrival"] = d.interarrival.to_dict()  # type: ignore[union-attr]
                        dd["order_size"] = d.order_size.to_dict()
                    elif d.process == "poisson":
                        dd["rate_t_per_year"] = d.rate_t_per_year
                        dd["order_size"] = d.order_size.to_dict()
                    else:
                        dd["rate_t_per_year"] = d.rate_t_per_year
                        dd["period_days"] = d.period_days
                        dd["size"] = d.size.to_dict()  # type: ignore[union-attr]
                    if d.source:
                        dd["source"] = d.source
                    nd["demand"][m] = dd
            if n.fleet is not None:
                nd["fleet"] = n.fleet.to_dict()
            if n.reserve:
                nd["reserve"] = {m: r.to_dict() for m, r in n.reserve.items()}
            out["nodes"][n.id] = nd
        for l in self.lanes:
            ld: dict[str, Any] = {"from": l.src, "to": l.dst, "material": l.material,
                                  "lead_time": l.lead_time.to_dict(), "share": l.share}
            if l.capacity_t_per_year is not None:
                ld["capacity_t_per_year"] = l.capacity_t_per_year
            if l.qualification_days:
                ld["qualification_days"] = l.qualification_days
            if l.source:
                ld["source"] = l.source
            ld.update(l.extra)
            out["lanes"].append(ld)
        return out

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> None:
        """Check references, shares, policies and supplier paths; raise :class:`NetworkError`."""
        if not self.nodes:
            raise NetworkError("the network has no nodes", where="[nodes]")
        mats = self.materials
        for n in self.nodes.values():
            where = f"node '{n.id}'"
            for table, keys in (("stock", n.stocks), ("production", n.production),
                                ("demand", n.demand)):
                for m in keys:
                    if m not in mats:
                        raise NetworkError(f"unknown material {m!r}; declared: {sorted(mats)}",
                                           where=where, field=f"{table}.{m}")
            for m, p in n.production.items():
                for inp in p.recipe:
                    if inp not in mats:
                        raise NetworkError(f"recipe references undeclared material {inp!r}",
                                           where=where, field=f"production.{m}.recipe")
                    if inp == m:
                        raise NetworkError("a recipe cannot consume its own output", where=where,
                                           field=f"production.{m}.recipe")
                if p.target_stock <= 0 and not any(l.src == n.id and l.material == m for l in self.lanes):
                    pass  # produced only for stock; allowed
            if n.kind == "mine":
                if not n.production:
                    raise NetworkError("a mine needs a [production.<material>] table with a capacity",
                                       where=where, field="production")
                for m, p in n.production.items():
                    if p.recipe:
                        raise NetworkError("a mine's production cannot have recipe inputs", where=where,
                                           field=f"production.{m}.recipe")
            if n.demand and n.kind not in DEMAND_KINDS:
                raise NetworkError(f"only {' and '.join(DEMAND_KINDS)} nodes have customer demand, "
                                   f"this node is a {n.kind}", where=where, field="demand")
            if n.kind in DEMAND_KINDS and not n.sector:
                raise NetworkError("a demand node needs a sector label (e.g. 'defense', 'automotive')",
                                   where=where, field="sector")
            for m in n.demand:
                if m in n.production:
                    raise NetworkError("a node cannot both produce and face customer demand for "
                                       f"material {m!r}", where=where, field=f"demand.{m}")
            if n.fleet is not None:
                check_fleet(n)
        seen: set[str] = set()
        for l in self.lanes:
            where = f"lane {l.id}"
            if l.id in seen:
                raise NetworkError("duplicate lane (same from, to and material)", where=where)
            seen.add(l.id)
            for end, nid in (("from", l.src), ("to", l.dst)):
                if nid not in self.nodes:
                    raise NetworkError(f"node {nid!r} does not exist", where=where, field=end)
            if l.src == l.dst:
                raise NetworkError("a lane cannot connect a node to itself", where=where)
            if l.material not in mats:
                raise NetworkError(f"unknown material {l.material!r}; declared: {sorted(mats)}",
                                   where=where, field="material")
            src = self.nodes[l.src]
            if l.material not in src.production and l.material not in src.stocks:
                raise NetworkError(f"source node '{l.src}' neither produces nor stocks {l.material!r}",
                                   where=where, field="from")
            if l.material in src.demand:
                raise NetworkError(f"source node '{l.src}' consumes {l.material!r} as customer demand",
                                   where=where, field="from")
            dst = self.nodes[l.dst]
            if l.material in dst.production:
                raise NetworkError(f"destination '{l.dst}' produces {l.material!r} itself",
                                   where=where, field="to")
        for n in self.nodes.values():
            for m, st in n.stocks.items():
                if st.policy.echelon:
                    users = [o for o, p in n.production.items() if m in p.recipe]
                    if len(users) != 1:
                        raise NetworkError("an echelon policy needs exactly one production line "
                                           f"consuming {m!r} at this node, found {len(users)}",
                                           where=f"node '{n.id}'", field=f"stock.{m}.policy.echelon")
        # shares per (buyer, material) sum to one; stocks with inbound lanes have a policy
        inbound: dict[tuple[str, str], list[LaneSpec]] = {}
        for l in self.lanes:
            inbound.setdefault((l.dst, l.material), []).append(l)
        for (dst, m), ls in inbound.items():
            total = sum(l.share for l in ls)
            if abs(total - 1.0) > 1e-6:
                detail = ", ".join(f"{l.src}={l.share:g}" for l in ls)
                raise NetworkError(f"shares of lanes into '{dst}' for {m!r} sum to {total:g}, not 1 "
                                   f"({detail})", where=f"node '{dst}'", field="share")
            st = self.nodes[dst].stocks.get(m)
            if m in self.nodes[dst].reserve:
                continue            # a reserve buys by its build rule (checked below)
            if st is None or st.policy.type == "none":
                raise NetworkError(f"has inbound lanes for {m!r} but no ordering policy; add "
                                   f"[nodes.{dst}.stock.{m}] with a policy",
                                   where=f"node '{dst}'", field=f"stock.{m}.policy")
        for n in self.nodes.values():
            for m, r in n.reserve.items():
                self._check_reserve(n, m, r, inbound)
        for n in self.nodes.values():
            for m in n.demand:
                if not self._supplied(n.id, m, set()) or ((n.id, m) not in inbound and \
                        n.stocks.get(m, StockSpec()).initial <= 0):
                    raise NetworkError(f"demand for {m!r} has no supplier path (no inbound lane from "
                                       "a node that produces or holds it)",
                                       where=f"node '{n.id}'", field=f"demand.{m}")
            for m, p in n.production.items():
                for inp in p.recipe:
                    if not self._supplied(n.id, inp, set()):
                        raise NetworkError(f"recipe input {inp!r} of {m!r} has no supplier path",
                                           where=f"node '{n.id}'", field=f"production.{m}.recipe")

    def _check_reserve(self, n: NodeSpec, m: str, r: ReserveSpec, inbound: dict) -> None:
        """A reserve sits on a stockpile node's policy-free stock, buys on inbound lanes and
        releases on lanes to demand nodes that it serves (see the module docstring)."""
        where = f"node '{n.id}'"
        fld = f"reserve.{m}"
        if n.kind != "stockpile":
            raise NetworkError(f"only a stockpile node holds a reserve, this node is a {n.kind}",
                               where=where, field=fld)
        if m not in self.materials:
            raise NetworkError(f"unknown material {m!r}; declared: {sorted(self.materials)}",
                               where=where, field=fld)
        st = n.stocks.get(m)
        if st is None:
            raise NetworkError(f"a reserve of {m!r} needs [stock.{m}] (its initial holding)",
                               where=where, field=fld)
        if st.policy.type != "none":
            raise NetworkError("a reserve buys by its build rule: the stock has no ordering "
                               f"policy (remove stock.{m}.policy)", where=where,
                               field=f"stock.{m}.policy")
        if r.build_rate_t_per_year > 0 and st.initial < r.target_t and (n.id, m) not in inbound:
            raise NetworkError(f"builds up at {r.build_rate_t_per_year:g} t/yr but the node has "
                               f"no inbound lane for {m!r} to buy on", where=where,
                               field=f"{fld}.build_rate_t_per_year")
        out = [l for l in self.lanes if l.src == n.id and l.material == m]
        if not out:
            raise NetworkError(f"has no outbound lane for {m!r} to release on", where=where,
                               field=fld)
        matched: set[str] = set()
        for l in out:
            buyer = self.nodes[l.dst]
            if m not in buyer.demand:
                raise NetworkError(f"release lane {l.id} goes to '{l.dst}', which has no "
                                   f"customer demand for {m!r} (a reserve serves demand nodes)",
                                   where=where, field=fld)
            names = {x for x in r.serve if x in (buyer.id, buyer.sector)}
            matched |= names
            if not names and not r.civil:
                raise NetworkError(f"release lane {l.id} goes to '{l.dst}' (sector "
                                   f"{buyer.sector!r}), which serve = {list(r.serve)} does not "
                                   "name (or set civil = true)", where=where, field=f"{fld}.serve")
        for x in r.serve:
            if x not in matched:
                raise NetworkError(f"{x!r} is neither the sector nor the id of a buyer on the "
                                   f"reserve's release lanes ({', '.join(l.dst for l in out)})",
                                   where=where, field=f"{fld}.serve")

    def _supplied(self, nid: str, m: str, visiting: set) -> bool:
        key = (nid, m)
        if key in visiting:
            return False
        visiting = visiting | {key}
        n = self.nodes[nid]
        if n.stocks.get(m) is not None and n.stocks[m].initial > 0:
            return True
        if m in n.production:
            return all(self._supplied(nid, i, visiting) for i in n.production[m].recipe)
        return any(self._supplied(l.src, m, visiting) for l in self.lanes
                   if l.dst == nid and l.material == m)

    # -- graph ----------------------------------------------------------------------------
    def _build_graph(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph(name=self.name, materials={m.id: m for m in self.materials.values()})
        for n in self.nodes.values():
            g.add_node(n.id, **{k: getattr(n, k) for k in NodeSpec.__dataclass_fields__ if k != "id"})
        for l in self.lanes:
            g.add_edge(l.src, l.dst, key=l.material, spec=l, lane_id=l.id, material=l.material,
                       lead_time=l.lead_time, share=l.share, capacity_t_per_year=l.capacity_t_per_year)
        return g

    def copy(self) -> "Network":
        """A deep copy (networks are treated as values)."""
        return Network.from_dict(self.to_dict(), file=self.file)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: the identity of the network's content."""
        cached = self.__dict__.get("_digest")
        if cached is not None:
            return cached
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        self._digest = hashlib.sha256(blob).hexdigest()
        return self._digest

    @property
    def countries(self) -> list[str]:
        """Countries of the nodes, sorted."""
        return sorted({n.country for n in self.nodes.values()})

    def __repr__(self) -> str:
        return (f"Network({self.name!r}: {len(self.nodes)} nodes, {len(self.lanes)} lanes, "
                f"{len(self.materials)} materials)")


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def shipped_folder(*parts: str) -> Path:
    """The folder of the shipped data files (networks; *parts* name a subfolder, e.g.
    ``"scenarios"`` or ``"scenarios", "layers"``).

    The data live in the repository's top-level ``networks/`` folder. A wheel installs that
    folder as the data package ``sim._networks`` (pyproject.toml maps it there, so no
    top-level package named ``networks`` is installed), found with :mod:`importlib.resources`;
    in a source checkout, where that package does not exist, it is the ``networks/`` folder
    beside ``sim/``. Whether the folder exists is for the caller to check."""
    try:
        # relative to this package, which benchmarks/compare_versions.py imports under aliases
        root = importlib.resources.files(f"{__package__}._networks")
    except ModuleNotFoundError:
        root = _NETWORKS_DIR
    # pip installs wheels unpacked, so the package data are files on disk (a Path); a zipped
    # install (a Traversable that is no Path) has no files that a manifest could hash
    return Path(os.fspath(root)).joinpath(*parts)


def shipped_names(folder: Path, what: str) -> list[str]:
    """Names (file stems) of the ``*.toml`` files in a shipped *folder*, sorted; a
    :class:`ModelError` naming the folder when there are none (an install without its data
    files), so that a listing of nothing is an error, not an empty success."""
    names = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    if not names:
        raise ModelError(f"no shipped {what} found (no *.toml files): the package's data files "
                         "are missing; reinstall rare-earth-sim", file=str(folder))
    return names


def list_networks() -> list[str]:
    """Names of the shipped networks (the repository's ``networks/`` folder, installed as
    package data); a :class:`ModelError` when none are found."""
    return shipped_names(shipped_folder(), "networks")


def network_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped network name or a file path to a path (raising :class:`NetworkError`)."""
    _check_name_arg(name_or_path, "network", NetworkError)
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or "/" in str(name_or_path):
        if not p.exists():
            raise NetworkError(f"file not found: {p}")
        if p.is_dir():
            raise NetworkError("is a folder, not a network file", file=str(p))
        return p
    shipped = shipped_folder() / f"{name_or_path}.toml"
    if shipped.exists():
        return shipped
    raise NetworkError(f"unknown network {str(name_or_path)!r}: not a file and not one of the "
                       f"shipped networks ({', '.join(list_networks())})")


def _check_name_arg(value: Any, what: str, error: type[ModelError]) -> None:
    """Raise *error* unless *value* is a non-empty name or path (``''`` would be the current
    folder, a number or ``None`` no name at all)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise error(f"must be a {what} name or a TOML path, got {value!r}", field=what)
    if not value.strip():
        raise error(f"must be a {what} name or a TOML path, got {value!r}", field=what)


def read_toml(path: Path) -> dict:
    """Read a TOML file, turning syntax errors into :class:`ModelError` naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"malformed TOML: {exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"not UTF-8 text (byte {exc.start}): a TOML file must be UTF-8 encoded",
                         file=str(path)) from None
    except RecursionError:
        raise ModelError("arrays or tables nested too deeply", file=str(path)) from None
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None


def load_network(name_or_path: str | Path | Network | nx.DiGraph = "rare_earth_2025") -> Network:
    """Load a network: a shipped name (``"teaching"``), a TOML path, or a graph built in Python."""
    if isinstance(name_or_path, Network):
        return name_or_path
    if isinstance(name_or_path, nx.DiGraph):
        return Network.from_graph(name_or_path)
    path = network_path(name_or_path)
    return Network.from_dict(read_toml(path), file=str(path))


def with_reserve(network: str | Path | Network | nx.DiGraph, node: str, material: str, *,
                 release_to: list[str] | tuple[str, ...] = (), **fields: Any) -> Network:
    """A copy of *network* in which the stock of *material* at the stockpile *node* is a
    strategic reserve with *fields* (those of ``[nodes.<node>.reserve.<material>]``, see
    :class:`ReserveSpec`; ``target_t``, ``release_cover_days`` and
    ``release_rate_t_per_day`` are required) instead of an ordinary supplier.

    The stock keeps its initial holding and loses its ordering policy (the reserve buys by
    its build rule, on the node's inbound lanes); the node's outbound lanes of the material
    become release lanes. *release_to* names further buyers (nodes with customer demand for
    the material, e.g. civil users with ``civil=True``) that get a release lane from *node*,
    with share 0 and the lead time of the node's first outbound lane of the material (its
    source says so). Everything else is unchanged; *network* itself is not modified.
    Example: the shipped network's US stockpile of NdFeB-HRE magnets, which otherwise rotates
    a fixed share of defense orders, as a reserve whose holding a sweep can vary::

        net = with_reserve("rare_earth_2025", "nds_us", "ndfeb_hre_magnet", target_t=500,
                           release_cover_days=30, release_rate_t_per_day=2.0)
    """
    net = load_network(network)
    data = net.to_dict()
    spec = data["nodes"].get(node)
    if spec is None:
        raise NetworkError(f"no node {node!r} in network {net.name!r}", field="node")
    stock = spec.setdefault("stock", {}).setdefault(material, {"initial": 0.0})
    stock.pop("policy", None)
    out = [lane for lane in data["lanes"] if lane["from"] == node and lane["material"] == material]
    for buyer in release_to:
        if buyer not in data["nodes"]:
            raise NetworkError(f"no node {buyer!r} in network {net.name!r}", field="release_to")
        if any(lane["to"] == buyer for lane in out):
            continue
        if not out:
            raise NetworkError(f"node {node!r} has no outbound lane of {material!r} whose lead "
                               "time a new release lane could take", field="release_to")
        data["lanes"].append({
            "from": node, "to": buyer, "material": material,
            "lead_time": copy.deepcopy(out[0]["lead_time"]), "share": 0.0,
            "source": f"release lane of the reserve (sim.with_reserve); lead time as lane "
                      f"{node}->{out[0]['to']}:{material}"})
    reserve = {k: v for k, v in fields.items() if v is not None}
    spec.setdefault("reserve", {})[material] = reserve
    data["network"]["name"] = f"{net.name}+reserve"
    return Network.from_dict(data)


def save_network(network: Network, path: str | Path) -> Path:
    """Write *network* as TOML to *path* (atomically) and return the path."""
    import tomli_w

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(tomli_w.dumps(_toml_ready(network.to_dict())))
    tmp.replace(path)
    return path


def _toml_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _toml_ready(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_toml_ready(v) for v in obj]
    return obj
