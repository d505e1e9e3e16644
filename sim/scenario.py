"""Scenarios: the policy timeline, demand changes and horizon of a study, read from TOML.

A scenario says what happens to the rules shipments obey, by calendar date. Schema (every date
and parameter may carry ``source``; say "assumption" where it is one)::

    [scenario]
    name = "truce-expires"
    description = "one line shown by `python -m sim scenario list`"
    start = 2025-01-01            # day 0 of the run
    end = 2029-01-01              # the run stops here (exclusive)
    shortage_after = 2026-11-10   # first_shortage_after_day counts from this date
    network = "rare_earth_2025"   # optional: the network it was written for

    [controls.apr_2025]           # an export control (any id)
    exporter = "CN"
    elements = ["Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y"]
    destinations = "all"          # or ["US", "JP"] or { all_but = ["CN"] }
    start = 2025-04-04
    end = 2030-01-01              # optional
    regime = "licensing"          # "ban" | "licensing" | "quota"
    review_days = { dist = "triangular", min = 30, mode = 63, max = 90 }   # licensing
    approval_probability = 0.25                                             # licensing
    licence_scope = "shipment"    # what one licence covers: "shipment" (each shipment is
                                  # reviewed) | "lane" (exporter node, buyer, material) |
                                  # "buyer" (exporter node and buyer, every material) |
                                  # "country" (exporter node, importing country) | "exporter"
    licence_validity_days = 365   # scopes other than "shipment": a granted licence lasts this
                                  # long; shipments in its scope pass without review meanwhile;
                                  # shipments that find none wait on the scope's pending
                                  # application (the first of them files it)
    on_denial = "cancel"          # "cancel" (goods returned, buyer re-routes) | "requeue"
                                  # (apply again at once) | "reapply" (goods wait; apply again
                                  # after reapply_days)
    reapply_days = 14             # on_denial = "reapply"
    renew_before_days = 90        # scopes other than "shipment": an exporter who used a licence
                                  # files its renewal this many days before it expires (default
                                  # 0: no renewal; the next shipment after the expiry applies)
    licence_validity_from = "grant"   # or "application": the validity runs from the filing,
                                  # so a licence reviewed longer than its validity arrives
                                  # expired and the exporter files again (any scope; needs
                                  # licence_validity_days)
    avoid_days = 60               # "cancel": after a denial the buyer avoids the lane this long
    quota_t = 1000                # quota: tonnes per period
    quota_period_days = 365
    extraterritorial = false      # also cover goods made elsewhere with this country's content
    de_minimis = 0.001            # ... when that content exceeds this share of value
    direct = true                 # false: cover only goods made elsewhere (the extraterritorial part)
    capacity_effect = { nodes = ["neo_narva"], factor = 0.5 }   # optional: while in force, these
                                  # nodes' capacity is multiplied (e.g. technology-transfer limits)
    [[controls.apr_2025.changes]] # parameters that change over time (e.g. general licences)
    from = 2025-12-02
    buyers = ["us_auto"]          # optional: only shipments to these nodes
    destinations = ["US"]         # optional: only shipments into these countries
    until = 2026-06-01            # optional, with buyers or destinations: the change ends
    review_days = 7
    approval_probability = 0.95

Regimes and their parameters are one registry: :data:`REGIME_PARAMS` (each parameter's type,
range, default and meaning) and :data:`REGIME_TABLE` (each regime's parameters, the ones it
requires and its rules across them). They are checked by one function, :func:`regime_params`,
when the scenario is read: a control, each dated change (with what is in force before it: the
control's parameters, earlier changes for everyone and earlier ones for the same buyers or
destinations) and a truce escalation must each leave a complete regime (licensing:
``review_days``; a licence scope other than "shipment", or a validity counted from the
application: ``licence_validity_days``; ``on_denial = "reapply"``: ``reapply_days``;
``renew_before_days`` above 0: a licence scope other than "shipment"; quota: ``quota_t``, a
number of tonnes above 0).

To add a regime: one :class:`Regime` entry in :data:`REGIME_TABLE` (a new parameter also
needs its entry in :data:`REGIME_PARAMS` and a field of :class:`ExportControl`) and its
decision, the function of the same name in :data:`sim.policy.DECISIONS` that decides a shipment
the regime covers.

    [[clearance]]                 # consignments held for testing before they leave a country,
    id = "magnet_testing"         # licensable or not (each is tested, then dispatched)
    exporter = "CN"
    materials = ["ndfeb_magnet"]  # and/or elements = ["Nd"]: materials containing any of them
    destinations = "all"          # as for controls
    start = 2025-04-04
    end = 2026-01-01              # optional
    delay_days = { dist = "triangular", min = 7, mode = 10, max = 30 }   # testing time
    servers = 3                   # optional: consignments tested at once; the others queue
                                  # first come, first served (default: no queue)

    [truce]
    suspends = ["oct_2025"]       # control ids
    start = 2025-11-10
    duration_days = 365
    extension_days = 365          # length of each extension
    [truce.outcomes]              # probabilities at each expiry, summing to 1
    reinstate = 0.3
    extend = 0.6
    escalate = 0.1
    [truce.escalation]            # parameter overrides for the suspended controls if escalated
    regime = "ban"

    [[tariffs]]
    origin = "CN"                 # exporting node's country
    destination = "US"            # importing node's country ("all" allowed)
    materials = ["ndfeb_magnet"]  # optional, default all
    rate = 0.25                   # ad valorem
    start = 2026-01-01
    end = 2026-11-10              # optional

    [[outages]]
    node = "lynas_my"
    start = 2026-03-01
    duration_days = 90            # or mtbf_days / mttr_days for random failures (exponential)

    [[lane_closures]]
    lane = "mine_au->sep_my:concentrate"
    start = 2026-01-01
    duration_days = 30
    queued_orders = "reroute"     # default; "keep": orders already queued still ship

    [[demand_surges]]
    sector = "defense"            # or node = "..."; optional material = "..."
    factor = 1.5
    start = 2026-01-01
    end = 2027-01-01

Composition
-----------
A scenario may extend another and switch on layers (partial scenarios in
``networks/scenarios/layers/``, each with a ``[layer]`` description)::

    extends = "truce-holds"       # a built-in scenario or a path (relative to this file)
    layers = ["japan-2026"]       # built-in layers or paths, applied in order
    remove = ["controls.oct_2025_technology"]   # inherited keys to delete (dotted paths)
    [truce.outcomes]              # tables merge key by key with the inherited ones
    reinstate = 1.0
    extend = 0.0
    [[append.tariffs]]            # appended to the inherited array (a plain [[tariffs]]
    origin = "CN"                 # would replace the whole array)
    rate = 0.1
    start = 2026-11-10

The result is the extended scenario (itself resolved and valid on its own), then each layer,
then the file's own content; each step applies ``remove``, then merges (tables by key; any
other value, arrays and arrays of tables included, replaces the inherited one), then
``append``. A file that extends another without a ``name`` is named after the file. A cycle
of ``extends`` is an error naming the files. ``load_scenario("truce-holds", layers=[...])``
or the name ``"truce-holds+japan-2026"`` (anywhere a scenario name is taken, the command line
included) switches layers on over a whole scenario and adds them to its name.

Sourcing
--------
An optional ``[sourcing]`` section (see :mod:`sim.sourcing`)::

    [sourcing]                    # optional (sim/sourcing.py): absent = the network's fixed shares
    rule = "cost-aware"           # buyers reweight lane shares by landed cost when tariffs change
    elasticity = 0.76             # strength (an assumption: say so in source)

Use :func:`load_scenario` (a file or built-in name), :meth:`Scenario.from_dict`, or build the
dataclasses in Python. :func:`list_scenarios` lists the built-in ones, :func:`list_layers`
the layers.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .distributions import Distribution, from_spec
from .errors import ModelError, ScenarioError
from .materials import parse_elements
from .network import (ISO_COUNTRIES, check_name_arg, parse_date, read_toml, shipped_folder,
                      shipped_names)

__all__ = [
    "Scenario", "ExportControl", "RegimeChange", "Truce", "Tariff", "Outage", "LaneClosure",
    "DemandSurge", "load_scenario", "list_scenarios", "resolve_scenario", "scenario_path",
    "BUILTIN_DIR", "ClearanceHold", "compose", "list_layers", "LAYER_DIR", "with_sourcing",
    "sourcing_layer_path",
    "REGIMES", "REGIME_TABLE", "REGIME_PARAMS", "Regime", "RegimeParam", "regime_params",
    "regime_defaults",
]

BUILTIN_DIR = shipped_folder("scenarios")    # networks/scenarios/, installed as package data


@dataclass(frozen=True)
class RegimeChange:
    """New regime parameters of a control from a date on (optionally for some buyers only;
    those may end on ``until``, after which the buyers have the parameters in force for
    everyone again)."""

    start: _dt.date
    params: dict
    buyers: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    source: str = ""
    until: _dt.date | None = None


@dataclass(frozen=True)
class ExportControl:
    """An export control: who exports, which elements, to whom, under which regime."""

    id: str
    exporter: str
    elements: frozenset[str]
    start: _dt.date
    end: _dt.date | None = None
    destinations: tuple[str, ...] | None = None     # None = all
    excluded: tuple[str, ...] = ()                  # destinations excepted ("all but")
    regime: str = "licensing"
    review_days: Distribution | None = None
    approval_probability: float = 1.0
    on_denial: str = "cancel"
    avoid_days: float = 60.0
    quota_t: float | None = None
    quota_period_days: float = 365.0
    extraterritorial: bool = False
    direct: bool = True
    de_minimis: float = 0.001
    licence_scope: str = "shipment"
    licence_validity_days: float | None = None
    reapply_days: float | None = None
    licence_validity_from: str = "grant"
    renew_before_days: float = 0.0
    changes: tuple[RegimeChange, ...] = ()
    capacity_nodes: tuple[str, ...] = ()
    capacity_factor: float = 1.0
    source: str = ""

    def covers_destination(self, country: str) -> bool:
        """True when shipments into *country* fall under this control."""
        if country in self.excluded:
            return False
        return self.destinations is None or country in self.destinations


@dataclass(frozen=True)
class Truce:
    """Suspension of named controls, with a random outcome at each expiry."""

    suspends: tuple[str, ...]
    start: _dt.date
    duration_days: float
    reinstate: float = 1.0
    extend: float = 0.0
    escalate: float = 0.0
    extension_days: float = 365.0
    escalation: dict = field(default_factory=dict)
    source: str = ""

    @property
    def expiry(self) -> _dt.date:
        """Date the (first) suspension ends."""
        return self.start + _dt.timedelta(days=self.duration_days)


@dataclass(frozen=True)
class Tariff:
    """Ad-valorem tariff on shipments from *origin* to *destination* over a period."""

    origin: str
    destination: str | None
    rate: float
    start: _dt.date
    end: _dt.date | None = None
    materials: tuple[str, ...] | None = None
    source: str = ""


@dataclass(frozen=True)
class Outage:
    """Production outage of a node: fixed (start, duration) or random (MTBF/MTTR, days)."""

    node: str
    start: _dt.date | None = None
    duration_days: float = 0.0
    mtbf_days: float | None = None
    mttr_days: float | None = None
    source: str = ""


LANE_CLOSURE_QUEUED = ("reroute", "keep")


@dataclass(frozen=True)
class LaneClosure:
    """A lane closed for a period: buyers place no new orders on it and order from their other
    lanes (or wait for it to reopen). ``queued_orders`` says what becomes of the orders already
    queued at the supplier for the lane: ``"reroute"`` (the default) cancels them and the buyer
    orders the quantity again elsewhere (an embargo, a route abandoned); ``"keep"`` leaves them
    in the supplier's queue, shipped as stock allows (the lane stops taking orders but delivers
    what it owes: a contract or booking suspension; SupplyNetPy's link disruption)."""

    lane: str
    start: _dt.date
    duration_days: float
    source: str = ""
    queued_orders: str = "reroute"


@dataclass(frozen=True)
class DemandSurge:
    """Demand of a sector (or node, optionally one material) multiplied over a period."""

    factor: float
    start: _dt.date
    end: _dt.date
    sector: str | None = None
    node: str | None = None
    material: str | None = None
    source: str = ""


@dataclass(frozen=True)
class ClearanceHold:
    """Consignments of some materials leaving a country held for testing before they cross
    the border, whether or not a control covers them: each waits a drawn ``delay_days``
    in testing; with ``servers`` (testing capacity: consignments tested at once) they queue
    first come, first served for a free one."""

    id: str
    exporter: str
    delay_days: Distribution
    start: _dt.date
    end: _dt.date | None = None
    materials: frozenset[str] = frozenset()
    elements: frozenset[str] = frozenset()
    destinations: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()
    servers: int | None = None
    source: str = ""

    def covers_destination(self, country: str) -> bool:
        """True when consignments into *country* are held."""
        if country in self.excluded:
            return False
        return self.destinations is None or country in self.destinations


@dataclass(frozen=True)
class Scenario:
    """A policy timeline with its horizon. ``Scenario()`` is the baseline: no policy events."""

    name: str = "baseline"
    description: str = "No export controls, tariffs or disruptions."
    start: _dt.date | None = None
    end: _dt.date | None = None
    shortage_after: _dt.date | None = None
    network: str | None = None
    controls: tuple[ExportControl, ...] = ()
    truce: Truce | None = None
    tariffs: tuple[Tariff, ...] = ()
    outages: tuple[Outage, ...] = ()
    lane_closures: tuple[LaneClosure, ...] = ()
    demand_surges: tuple[DemandSurge, ...] = ()
    clearance: tuple[ClearanceHold, ...] = ()
    sourcing: Any = None        # a sim.sourcing.Sourcing, or None: the network's fixed shares
    source: str = ""
    file: str | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict, *, file: str | None = None,
                  layers: tuple[str, ...] | list[str] = ()) -> "Scenario":
        """Build and validate a scenario from its TOML structure (``extends``, ``layers``,
        ``remove`` and ``append`` are resolved first, see :func:`compose`; *layers* are
        switched on over the result, and their names are added to the scenario's name)."""
        try:
            if layers or any(k in data for k in _DIRECTIVES):
                data = compose(data, file, layers)
            return _parse(data, file)
        except ModelError as exc:
            err = exc if isinstance(exc, ScenarioError) else ScenarioError(
                exc.problem, where=exc.where, field=exc.field)
            raise (err.with_file(file) if file else err) from None

    def to_dict(self) -> dict:
        """The TOML structure (the parsed input for file-based scenarios)."""
        if self.raw:
            return copy.deepcopy(self.raw)
        return {"scenario": {"name": self.name, "description": self.description}}

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form of the scenario."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            # the parsed input itself (to_dict() would copy it first; dumping does not change it)
            data = self.raw or self.to_dict()
            blob = json.dumps(data, sort_keys=True, default=str)
            cached = hashlib.sha256(blob.encode()).hexdigest()
            object.__setattr__(self, "_digest", cached)
        return cached

    def control(self, cid: str) -> ExportControl:
        """The control with id *cid*."""
        for c in self.controls:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def with_changes(self, **kwargs) -> "Scenario":
        """A copy with some fields replaced (dataclasses.replace)."""
        return replace(self, **kwargs)

    def check_network(self, network) -> None:
        """Raise :class:`ScenarioError` when the scenario names nodes, lanes or materials that
        *network* does not have."""
        where_file = self.file
        nodes = network.nodes
        lane_ids = {l.id for l in network.lanes}
        for i, o in enumerate(self.outages):
            if o.node not in nodes:
                raise ScenarioError(f"node {o.node!r} is not in network '{network.name}'",
                                    file=where_file, where=f"outages[{i}]", field="node")
            if not nodes[o.node].production:     # what the run would find at the outage
                raise ScenarioError(f"node {o.node!r} has no production to interrupt",
                                    file=where_file, where=f"outages[{i}]", field="node")
        for lc in self.lane_closures:
            if lc.lane not in lane_ids:
                raise ScenarioError(f"lane {lc.lane!r} is not in network '{network.name}' (lanes are "
                                    "named 'from->to:material')", file=where_file,
                                    where="lane_closures", field="lane")
        sectors = sorted({n.sector for n in nodes.values() if n.sector})
        for i, s in enumerate(self.demand_surges):
            if s.sector is not None and s.sector not in sectors:
                raise ScenarioError(f"sector {s.sector!r} is not a sector of network "
                                    f"'{network.name}' ({', '.join(sectors) or 'none'})",
                                    file=where_file, where=f"demand_surges[{i}]", field="sector")
            if s.node is not None and s.node not in nodes:
                raise ScenarioError(f"node {s.node!r} is not in network '{network.name}'",
                                    file=where_file, where="demand_surges", field="node")
            if s.material is not None and s.material not in network.materials:
                raise ScenarioError(f"material {s.material!r} is not in network '{network.name}'",
                                    file=where_file, where="demand_surges", field="material")
        for h in self.clearance:
            for m in sorted(h.materials):
                if m not in network.materials:
                    raise ScenarioError(f"material {m!r} is not in network '{network.name}'",
                                        file=where_file, where=f"clearance.{h.id}",
                                        field="materials")
        for t in self.tariffs:
            for m in t.materials or ():
                if m not in network.materials:
                    raise ScenarioError(f"material {m!r} is not in network '{network.name}'",
                                        file=where_file, where="tariffs", field="materials")
        for c in self.controls:
            for n in c.capacity_nodes:
                if n not in nodes:
                    raise ScenarioError(f"node {n!r} is not in network '{network.name}'",
                                        file=where_file, where=f"controls.{c.id}.capacity_effect",
                                        field="nodes")
                if not nodes[n].production:
                    raise ScenarioError(f"node {n!r} produces nothing", file=where_file,
                                        where=f"controls.{c.id}.capacity_effect", field="nodes")
            for ch in c.changes:
                for b in ch.buyers:
                    if b not in nodes:
                        raise ScenarioError(f"buyer node {b!r} is not in network '{network.name}'",
                                            file=where_file, where=f"controls.{c.id}.changes",
                                            field="buyers")


# ---------------------------------------------------------------------------------------------

def _num(v: Any, where: str, fld: str, lo: float = 0.0, hi: float = math.inf, strict=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScenarioError(f"must be a finite number, got {v!r}", where=where, field=fld)
    if v < lo or v > hi or (strict and v <= lo):
        rng = f"({lo:g}, {hi:g}]" if strict else f"[{lo:g}, {hi:g}]"
        raise ScenarioError(f"must be in {rng}, got {v!r}", where=where, field=fld)
    return float(v)


def _date(v: Any, where: str, fld: str) -> _dt.date:
    try:
        return parse_date(v, where, fld)
    except ModelError as exc:
        raise ScenarioError(exc.problem, where=where, field=fld) from None


def _keys(t: Any, allowed: set[str], where: str) -> dict:
    if not isinstance(t, dict):
        raise ScenarioError(f"must be a table, got {t!r}", where=where)
    extra = sorted(set(t) - allowed - {"source", "note"})
    if extra:
        raise ScenarioError(f"unknown field(s) {extra}; allowed: {sorted(allowed)}", where=where)
    return t


def _country(v: Any, where: str, fld: str) -> str:
    if not isinstance(v, str) or v not in ISO_COUNTRIES:
        raise ScenarioError(f"must be an ISO 3166-1 alpha-2 code such as 'CN', got {v!r}",
                            where=where, field=fld)
    return v


def _dist(v: Any, where: str, fld: str) -> Distribution:
    try:
        return from_spec(v, where=f"{where}: {fld}")
    except ModelError as exc:
        raise ScenarioError(exc.problem, where=exc.where) from None


# -- the regime registry ----------------------------------------------------------------------
ON_DENIAL = ("cancel", "requeue", "reapply")
LICENCE_SCOPES = ("shipment", "lane", "buyer", "country", "exporter")


@dataclass(frozen=True)
class RegimeParam:
    """A parameter of export-control regimes: its type (``"number"``, ``"distribution"`` of
    days, or ``"choice"`` among *choices*), its range (``[lo, hi]``, or ``(lo, hi]`` when
    *strict*), its default (None: none; a regime that reads it then requires it) and what it
    means (quoted by the error that asks for it)."""

    type: str
    default: Any = None
    lo: float = 0.0
    hi: float = math.inf
    strict: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""

    def parse(self, value: Any, where: str, name: str) -> Any:
        """The checked value of a scenario's *value* for parameter *name*."""
        if self.type == "distribution":
            return _dist(value, where, name)
        if self.type == "choice":
            if value not in self.choices:
                raise ScenarioError(f"must be one of {', '.join(map(repr, self.choices))}, got "
                                    f"{value!r}", where=where, field=name)
            return value
        return _num(value, where, name, self.lo, self.hi, strict=self.strict)


# Every control carries every parameter (a dated change or an escalation may switch it to
# another regime); each regime reads some of them.
REGIME_PARAMS: dict[str, RegimeParam] = {
    "review_days": RegimeParam("distribution",
                               doc="a number or distribution of days: the licence review time"),
    "approval_probability": RegimeParam("number", 1.0, 0.0, 1.0,
                                        doc="probability that a licence is granted"),
    "on_denial": RegimeParam("choice", "cancel", choices=ON_DENIAL,
                             doc="what a denial does to the shipment"),
    "avoid_days": RegimeParam("number", 60.0,
                              doc="days the buyer avoids the lane after a returned shipment"),
    "quota_t": RegimeParam("number", None, 0.0, strict=True,
                           doc="tonnes per quota_period_days"),
    "quota_period_days": RegimeParam("number", 365.0, 0.0, strict=True,
                                     doc="length of a quota period"),
    "de_minimis": RegimeParam("number", 0.001, 0.0, 1.0,
                              doc="share of value above which foreign-made goods are covered"),
    "licence_scope": RegimeParam("choice", "shipment", choices=LICENCE_SCOPES,
                                 doc="what one licence covers"),
    "licence_validity_days": RegimeParam("number", None, 0.0, strict=True,
                                         doc="how long a granted licence lasts"),
    "reapply_days": RegimeParam("number", None,
                                doc="days from a denial to the new application"),
    "licence_validity_from": RegimeParam("choice", "grant", choices=("grant", "application"),
                                         doc="when a licence's validity starts"),
    "renew_before_days": RegimeParam("number", 0.0,
                                     doc="days before its expiry a used licence is renewed"),
}


def _scoped_licence_validity(p: dict) -> tuple[str, str] | None:
    if p.get("licence_scope", "shipment") != "shipment" and "licence_validity_days" not in p:
        return ("licence_validity_days", f"licence_scope = {p['licence_scope']!r} needs "
                "'licence_validity_days' (how long a granted licence lasts)")
    return None


def _validity_from_application(p: dict) -> tuple[str, str] | None:
    if p.get("licence_validity_from") == "application" and "licence_validity_days" not in p:
        return ("licence_validity_days",
                "licence_validity_from = 'application' needs 'licence_validity_days'")
    return None


def _renewal_needs_scope(p: dict) -> tuple[str, str] | None:
    if p.get("renew_before_days", 0.0) > 0 and p.get("licence_scope", "shipment") == "shipment":
        return ("renew_before_days", f"renew_before_days = {p['renew_before_days']!r} needs a "
                "licence_scope other than 'shipment' (only a licence that covers later "
                "shipments is renewed)")
    return None


def _reapply_needs_days(p: dict) -> tuple[str, str] | None:
    if p.get("on_denial") == "reapply" and "reapply_days" not in p:
        return ("reapply_days", "on_denial = 'reapply' needs 'reapply_days' (days from a "
                "denial to the new application)")
    return None


@dataclass(frozen=True)
class Regime:
    """An export-control regime: what it does (*description*), the :data:`REGIME_PARAMS` it
    reads (*params*), those it cannot do without (*required*; they have no default), checks
    across its parameters (*rules*: each returns ``(field, problem)`` or None), whether a
    lane it covers directly is closed to orders (*closes_lane*: buyers re-route, no shipment
    is decided). The function that decides a shipment it covers is its entry of the same name
    in :data:`sim.policy.DECISIONS`."""

    description: str
    params: tuple[str, ...]
    required: tuple[str, ...] = ()
    rules: tuple[Callable[[dict], tuple[str, str] | None], ...] = ()
    closes_lane: bool = False


REGIME_TABLE: dict[str, Regime] = {
    "ban": Regime("no covered shipment passes: directly covered lanes close (buyers re-route), "
                  "shipments covered by origin are returned",
                  ("avoid_days", "de_minimis"), closes_lane=True),
    "licensing": Regime("each covered shipment needs a licence (reviewed, granted with a "
                        "probability), per shipment or per licence scope",
                        ("review_days", "approval_probability", "on_denial", "avoid_days",
                         "reapply_days", "licence_scope", "licence_validity_days",
                         "licence_validity_from", "renew_before_days", "de_minimis"),
                        required=("review_days",),
                        rules=(_scoped_licence_validity, _validity_from_application,
                               _renewal_needs_scope, _reapply_needs_days)),
    "quota": Regime("covered shipments pass while the period's tonnes last; the others wait "
                    "for the next period",
                    ("quota_t", "quota_period_days", "de_minimis"), required=("quota_t",)),
}
REGIMES = tuple(REGIME_TABLE)
# the fields of a control, a dated change or an escalation that set regime parameters
_REGIME_PARAMS = {"regime", *REGIME_PARAMS}


def regime_defaults() -> dict:
    """Every regime parameter at its default (None: no default), as a control starts."""
    return {name: spec.default for name, spec in REGIME_PARAMS.items()}


def regime_params(t: dict, where: str, in_force: dict | None = None, what: str = "") -> dict:
    """The regime parameters a control, a dated change or a truce escalation (*t*, a table)
    writes, each checked against :data:`REGIME_PARAMS`; with *in_force* (the parameters
    already given, merged in the order they take effect), the regime they leave together
    must also be complete (its required parameters given, its rules met). The one check of
    regime parameters: raises :class:`ScenarioError` naming the field (*what* prefixes the
    problem, e.g. which control an escalation makes incomplete)."""
    out: dict[str, Any] = {}
    if "regime" in t:
        if not isinstance(t["regime"], str) or t["regime"] not in REGIME_TABLE:
            raise ScenarioError(f"unknown regime {t['regime']!r}; expected one of {REGIMES}",
                                where=where, field="regime")
        out["regime"] = t["regime"]
    for name, spec in REGIME_PARAMS.items():
        if name in t:
            out[name] = spec.parse(t[name], where, name)
    if in_force is not None:
        given = {**in_force, **out}
        regime = REGIME_TABLE[given.get("regime", "licensing")]
        for name in regime.required:
            if given.get(name) is None:
                raise ScenarioError(f"{what}{given.get('regime', 'licensing')} needs {name!r} "
                                    f"({REGIME_PARAMS[name].doc})", where=where, field=name)
        for rule in regime.rules:
            broken = rule(given)
            if broken is not None:
                raise ScenarioError(what + broken[1], where=where, field=broken[0])
    return out


def _destinations(dest: Any, where: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Covered destinations (None: all) and excepted ones, from ``"all"``, a list of
    countries or ``{all_but = [...]}``."""
    if dest == "all":
        return None, ()
    if isinstance(dest, list):
        return tuple(_country(c, where, "destinations") for c in dest), ()
    if isinstance(dest, dict) and set(dest) == {"all_but"} and isinstance(dest["all_but"], list):
        return None, tuple(_country(c, where, "destinations.all_but") for c in dest["all_but"])
    raise ScenarioError(f"must be \"all\", a list of countries or {{all_but = [...]}}, got "
                        f"{dest!r}", where=where, field="destinations")


def _parse_clearance(i: int, t: Any) -> ClearanceHold:
    where = f"clearance[{i}]"
    t = _keys(t, {"id", "exporter", "materials", "elements", "destinations", "start", "end",
                  "delay_days", "servers"}, where)
    hid = t.get("id", f"clearance{i}")
    if not isinstance(hid, str) or not hid:
        raise ScenarioError(f"must be a non-empty string, got {hid!r}", where=where, field="id")
    where = f"clearance.{hid}"
    for req in ("exporter", "start", "delay_days"):
        if req not in t:
            raise ScenarioError(f"missing '{req}'", where=where, field=req)
    mats = t.get("materials", [])
    if not isinstance(mats, list) or not all(isinstance(m, str) for m in mats):
        raise ScenarioError("must be a list of material ids", where=where, field="materials")
    try:
        elements = parse_elements(t.get("elements", []), where)
    except ModelError as exc:
        raise ScenarioError(exc.problem, where=where, field="elements") from None
    if not mats and not elements:
        raise ScenarioError("give 'materials' or 'elements' (what is held)", where=where,
                            field="materials")
    destinations, excluded = _destinations(t.get("destinations", "all"), where)
    start = _date(t["start"], where, "start")
    end = _date(t["end"], where, "end") if "end" in t else None
    if end is not None and end <= start:
        raise ScenarioError(f"end ({end}) must be after start ({start})", where=where, field="end")
    servers = t.get("servers")
    if servers is not None and (isinstance(servers, bool) or not isinstance(servers, int)
                                or servers < 1):
        raise ScenarioError(f"must be a whole number >= 1, got {servers!r}", where=where,
                            field="servers")
    return ClearanceHold(hid, _country(t["exporter"], where, "exporter"),
                         _dist(t["delay_days"], where, "delay_days"), start, end,
                         frozenset(mats), elements, destinations, excluded, servers,
                         str(t.get("source", "")))


def _parse_control(cid: str, t: Any) -> ExportControl:
    where = f"controls.{cid}"
    t = _keys(t, {"exporter", "elements", "destinations", "start", "end", "extraterritorial",
                  "direct", "changes", "capacity_effect"} | _REGIME_PARAMS, where)
    for req in ("exporter", "elements", "start", "regime"):
        if req not in t:
            raise ScenarioError(f"missing '{req}'", where=where, field=req)
    try:
        elements = parse_elements(t["elements"], where)
    except ModelError as exc:
        raise ScenarioError(exc.problem, where=where, field="elements") from None
    destinations, excluded = _destinations(t.get("destinations", "all"), where)
    params = regime_params(t, where, {})
    regime = params.get("regime", "licensing")
    start = _date(t["start"], where, "start")
    end = _date(t["end"], where, "end") if "end" in t else None
    if end is not None and end <= start:
        raise ScenarioError(f"end ({end}) must be after start ({start})", where=where, field="end")
    changes = []
    raw_changes = t.get("changes", [])
    if not isinstance(raw_changes, list):
        raise ScenarioError("must be an array of tables [[controls.ID.changes]]", where=where,
                            field="changes")
    checks = []         # (date, index, table, selector, where, change): read in date order below
    for i, ch in enumerate(raw_changes):
        w = f"{where}.changes[{i}]"
        ch = _keys(ch, {"from", "until", "buyers", "destinations"} | _REGIME_PARAMS, w)
        if "from" not in ch:
            raise ScenarioError("missing 'from' (a date)", where=w, field="from")
        buyers = ch.get("buyers", [])
        if not isinstance(buyers, list) or not all(isinstance(b, str) for b in buyers):
            raise ScenarioError("must be a list of node ids", where=w, field="buyers")
        dests = ch.get("destinations", [])
        if not isinstance(dests, list):
            raise ScenarioError("must be a list of country codes", where=w, field="destinations")
        dests = tuple(_country(c, w, "destinations") for c in dests)
        if buyers and dests:
            raise ScenarioError("give buyers or destinations, not both", where=w)
        when = _date(ch["from"], w, "from")
        until = _date(ch["until"], w, "until") if "until" in ch else None
        if until is not None and not (buyers or dests):
            raise ScenarioError("'until' needs buyers or destinations (a change for everyone "
                                "lasts until the next one)", where=w, field="until")
        if until is not None and until <= when:
            raise ScenarioError(f"until ({until}) must be after from ({when})", where=w,
                                field="until")
        checks.append((when, i, ch, ("b", tuple(buyers)) if buyers else
                       ("d", dests) if dests else None, w,
                       (tuple(buyers), dests, str(ch.get("source", "")), until)))
    # each change, with what was in force before it (the control's parameters, the earlier
    # changes for everyone and the earlier ones for the same buyers or destinations), must
    # leave a complete regime
    in_force = dict(params)
    for_group: dict = {}
    for when, _, ch, group, w, rest in sorted(checks, key=lambda c: (c[0], c[1])):
        merged = dict(in_force)
        if group is not None:
            merged.update(for_group.get(group, {}))
        cp = regime_params(ch, w, merged)
        changes.append(RegimeChange(when, cp, *rest))
        if group is None:
            in_force.update(cp)
        else:
            for_group.setdefault(group, {}).update(cp)
    ext = t.get("extraterritorial", False)
    direct = t.get("direct", True)
    for key, val in (("extraterritorial", ext), ("direct", direct)):
        if not isinstance(val, bool):
            raise ScenarioError(f"must be true or false, got {val!r}", where=where, field=key)
    if not direct and not ext:
        raise ScenarioError("a control with direct = false must be extraterritorial", where=where,
                            field="direct")
    cap_nodes: tuple[str, ...] = ()
    cap_factor = 1.0
    if "capacity_effect" in t:
        ce = _keys(t["capacity_effect"], {"nodes", "factor"}, f"{where}.capacity_effect")
        nodes = ce.get("nodes")
        if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) for n in nodes):
            raise ScenarioError("must be a non-empty list of node ids", where=f"{where}.capacity_effect",
                                field="nodes")
        cap_nodes = tuple(nodes)
        if "factor" not in ce:
            raise ScenarioError("missing 'factor'", where=f"{where}.capacity_effect", field="factor")
        cap_factor = _num(ce["factor"], f"{where}.capacity_effect", "factor", 0, 1)
    base = regime_defaults()
    base.update(params)
    base["regime"] = regime
    return ExportControl(id=cid, exporter=_country(t["exporter"], where, "exporter"),
                         elements=elements, start=start, end=end, destinations=destinations,
                         excluded=excluded, extraterritorial=ext, direct=direct,
                         changes=tuple(sorted(changes, key=lambda c: c.start)),
                         capacity_nodes=cap_nodes, capacity_factor=cap_factor,
                         source=str(t.get("source", "")), **base)


def _regime_at_end(c: ExportControl) -> dict:
    """The regime parameters a control has for everyone after all its dated changes, as
    given (a truce escalation overrides these)."""
    # a parameter without a default that the control did not give is None: not given
    given = {k: getattr(c, k) for k in _REGIME_PARAMS if getattr(c, k) is not None}
    for ch in c.changes:
        if not ch.buyers and not ch.destinations:
            given.update(ch.params)
    return given


def _parse(data: dict, file: str | None) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a table")
    _keys(data, {"scenario", "controls", "truce", "tariffs", "outages", "lane_closures",
                 "demand_surges", "sources", "clearance", "sourcing"}, "top level")
    head = _keys(data.get("scenario", {}), {"name", "description", "start", "end", "shortage_after",
                                           "network"}, "[scenario]")
    w = "[scenario]"
    if "name" in head and (not isinstance(head["name"], str) or not head["name"].strip()):
        raise ScenarioError(f"must be a non-empty string, got {head['name']!r}", where=w,
                            field="name")
    start = _date(head["start"], w, "start") if "start" in head else None
    end = _date(head["end"], w, "end") if "end" in head else None
    if start and end and end <= start:
        raise ScenarioError(f"end ({end}) must be after start ({start})", where=w, field="end")
    controls_raw = data.get("controls", {})
    if not isinstance(controls_raw, dict):
        raise ScenarioError("must be tables [controls.ID]", where="controls")
    controls = tuple(_parse_control(cid, c) for cid, c in controls_raw.items())
    ids = {c.id for c in controls}
    truce = None
    if "truce" in data:
        tw = "truce"
        t = _keys(data["truce"], {"suspends", "start", "duration_days", "outcomes", "extension_days",
                                  "escalation"}, tw)
        for req in ("suspends", "start", "duration_days"):
            if req not in t:
                raise ScenarioError(f"missing '{req}'", where=tw, field=req)
        sus = t["suspends"]
        if not isinstance(sus, list) or not sus:
            raise ScenarioError("must be a non-empty list of control ids", where=tw, field="suspends")
        for s in sus:
            if not isinstance(s, str) or s not in ids:
                raise ScenarioError(f"unknown control {s!r}; defined controls: {sorted(ids)}",
                                    where=tw, field="suspends")
        out = _keys(t.get("outcomes", {"reinstate": 1.0}), {"reinstate", "extend", "escalate"},
                    "truce.outcomes")
        probs = {k: _num(out.get(k, 0.0), "truce.outcomes", k, 0, 1) for k in
                 ("reinstate", "extend", "escalate")}
        if abs(sum(probs.values()) - 1.0) > 1e-9:
            raise ScenarioError(f"outcome probabilities must sum to 1, got {sum(probs.values()):g}",
                                where="truce.outcomes")
        escalation = _keys(t.get("escalation", {}), _REGIME_PARAMS, "truce.escalation")
        esc = regime_params(escalation, "truce.escalation")
        for cid in sus:
            c = next(c for c in controls if c.id == cid)
            regime_params(escalation, "truce.escalation", _regime_at_end(c),
                          f"escalating control {cid!r}: ")
        truce = Truce(tuple(sus), _date(t["start"], tw, "start"),
                      _num(t["duration_days"], tw, "duration_days", 0, strict=True),
                      extension_days=_num(t.get("extension_days", 365.0), tw, "extension_days", 0,
                                          strict=True),
                      escalation=esc, source=str(t.get("source", "")), **probs)
    tariffs = []
    for i, t in enumerate(_list(data, "tariffs")):
        tw = f"tariffs[{i}]"
        t = _keys(t, {"origin", "destination", "rate", "start", "end", "materials"}, tw)
        for req in ("origin", "rate", "start"):
            if req not in t:
                raise ScenarioError(f"missing '{req}'", where=tw, field=req)
        dest = t.get("destination", "all")
        if "end" in t and _date(t["end"], tw, "end") <= _date(t["start"], tw, "start"):
            raise ScenarioError(f"end ({_date(t['end'], tw, 'end')}) must be after start "
                                f"({_date(t['start'], tw, 'start')})", where=tw, field="end")
        mats = t.get("materials")
        if mats is not None and (not isinstance(mats, list) or not all(isinstance(m, str) for m in mats)):
            raise ScenarioError("must be a list of material ids", where=tw, field="materials")
        tariffs.append(Tariff(_country(t["origin"], tw, "origin"),
                              None if dest == "all" else _country(dest, tw, "destination"),
                              _num(t["rate"], tw, "rate", 0, 10), _date(t["start"], tw, "start"),
                              _date(t["end"], tw, "end") if "end" in t else None,
                              tuple(mats) if mats is not None else None, str(t.get("source", ""))))
    outages = []
    for i, t in enumerate(_list(data, "outages")):
        tw = f"outages[{i}]"
        t = _keys(t, {"node", "start", "duration_days", "mtbf_days", "mttr_days"}, tw)
        if not isinstance(t.get("node"), str):
            raise ScenarioError("missing node id", where=tw, field="node")
        if "mtbf_days" in t or "mttr_days" in t:
            if "mtbf_days" not in t or "mttr_days" not in t:
                raise ScenarioError("random failures need both mtbf_days and mttr_days", where=tw)
            outages.append(Outage(t["node"], None, 0.0,
                                  _num(t["mtbf_days"], tw, "mtbf_days", 0, strict=True),
                                  _num(t["mttr_days"], tw, "mttr_days", 0, strict=True),
                                  str(t.get("source", ""))))
        else:
            if "start" not in t or "duration_days" not in t:
                raise ScenarioError("needs start and duration_days (or mtbf_days and mttr_days)",
                                    where=tw)
            outages.append(Outage(t["node"], _date(t["start"], tw, "start"),
                                  _num(t["duration_days"], tw, "duration_days", 0, strict=True),
                                  source=str(t.get("source", ""))))
    closures = []
    for i, t in enumerate(_list(data, "lane_closures")):
        tw = f"lane_closures[{i}]"
        t = _keys(t, {"lane", "start", "duration_days", "queued_orders"}, tw)
        for req in ("lane", "start", "duration_days"):
            if req not in t:
                raise ScenarioError(f"missing '{req}'", where=tw, field=req)
        queued = t.get("queued_orders", "reroute")
        if queued not in LANE_CLOSURE_QUEUED:
            raise ScenarioError(f"must be one of {', '.join(map(repr, LANE_CLOSURE_QUEUED))}, "
                                f"got {queued!r}", where=tw, field="queued_orders")
        closures.append(LaneClosure(str(t["lane"]), _date(t["start"], tw, "start"),
                                    _num(t["duration_days"], tw, "duration_days", 0, strict=True),
                                    str(t.get("source", "")), queued))
    surges = []
    for i, t in enumerate(_list(data, "demand_surges")):
        tw = f"demand_surges[{i}]"
        t = _keys(t, {"sector", "node", "material", "factor", "start", "end"}, tw)
        for req in ("factor", "start", "end"):
            if req not in t:
                raise ScenarioError(f"missing '{req}'", where=tw, field=req)
        if "sector" not in t and "node" not in t:
            raise ScenarioError("give a sector or a node", where=tw, field="sector")
        s0, s1 = _date(t["start"], tw, "start"), _date(t["end"], tw, "end")
        if s1 <= s0:
            raise ScenarioError(f"end ({s1}) must be after start ({s0})", where=tw, field="end")
        for key in ("sector", "node", "material"):
            if key in t and (not isinstance(t[key], str) or not t[key]):
                raise ScenarioError(f"must be a {key} name (a string), got {t[key]!r}", where=tw,
                                    field=key)
        surges.append(DemandSurge(_num(t["factor"], tw, "factor", 0, 100), s0, s1, t.get("sector"),
                                  t.get("node"), t.get("material"), str(t.get("source", ""))))
    holds = tuple(_parse_clearance(i, t) for i, t in enumerate(_list(data, "clearance")))
    if len({h.id for h in holds}) < len(holds):
        raise ScenarioError("two clearance holds have the same id", where="clearance", field="id")
    return Scenario(
        name=str(head.get("name", Path(file).stem if file else "scenario")),
        description=str(head.get("description", "")), start=start, end=end,
        shortage_after=_date(head["shortage_after"], w, "shortage_after") if "shortage_after" in head
        else None, network=head.get("network"), controls=controls, truce=truce,
        tariffs=tuple(tariffs), outages=tuple(outages), lane_closures=tuple(closures),
        demand_surges=tuple(surges), clearance=holds, source=str(head.get("source", "")),
        file=file, sourcing=_sourcing(data),
        raw=_copy_plain(data))


def _sourcing(data: dict):
    """The ``[sourcing]`` section (see :mod:`sim.sourcing`), or None when absent."""
    if "sourcing" not in data:
        return None
    from .sourcing import parse_sourcing
    return parse_sourcing(data["sourcing"])


_IMMUTABLE = (str, int, float, bool, type(None), _dt.date, _dt.datetime, _dt.time)


def _copy_plain(obj: Any) -> Any:
    """A deep copy of TOML-shaped data (dicts, lists, tuples of scalars and dates), several
    times cheaper than :func:`copy.deepcopy` on it (scenarios sampled per replication are
    built thousands of times); anything else goes to ``copy.deepcopy``."""
    if isinstance(obj, dict):
        return {k: _copy_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_copy_plain(v) for v in obj)
    if isinstance(obj, _IMMUTABLE):
        return obj
    return copy.deepcopy(obj)


def _list(data: dict, key: str) -> list:
    v = data.get(key, [])
    if not isinstance(v, list):
        raise ScenarioError(f"must be an array of tables [[{key}]]", where=key)
    return v


# ---------------------------------------------------------------------------------------------
# composition: extends, layers, remove, append

LAYER_DIR = BUILTIN_DIR / "layers"
_DIRECTIVES = ("extends", "layers", "remove", "append")


def _exists(p: Path) -> bool:
    """Whether *p* exists; False for names the system cannot look up (too long, invalid)."""
    try:
        return p.exists()
    except (OSError, ValueError):
        return False


def _is_file(p: Path) -> bool:
    """Whether *p* is an existing file; False for names the system cannot even look up (too
    long, invalid), which are then reported as not found."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def _resolve_ref(ref: Any, file: str | None, kind: str) -> Path:
    """The file an ``extends`` (kind "scenario") or ``layers`` entry (kind "layer") names: a
    path (relative to the naming file's folder) or a built-in name."""
    if not isinstance(ref, str) or not ref:
        raise ScenarioError(f"must be a scenario name or path, got {ref!r}", file=file,
                            field="extends" if kind == "scenario" else "layers")
    p = Path(ref)
    if p.suffix == ".toml" or "/" in ref or "\\" in ref:
        if not p.is_absolute() and file is not None:
            p = Path(file).parent / p
        if not _is_file(p):
            raise ScenarioError(f"{kind} file not found: {p}", file=file,
                                field="extends" if kind == "scenario" else "layers")
        return p.resolve()
    folder = BUILTIN_DIR if kind == "scenario" else LAYER_DIR
    builtin = folder / f"{ref}.toml"
    if _is_file(builtin):
        return builtin.resolve()
    names = ", ".join(sorted(q.stem for q in folder.glob("*.toml"))) or "none"
    raise ScenarioError(f"unknown {kind} {ref!r}: not a file and not a built-in {kind} ({names})",
                        file=file, field="extends" if kind == "scenario" else "layers")


def _remove(data: dict, paths: Any, file: str | None) -> None:
    if not isinstance(paths, list) or not all(isinstance(q, str) and q for q in paths):
        raise ScenarioError("must be a list of dotted keys such as "
                            "\"controls.oct_2025_technology\"", file=file, field="remove")
    for q in paths:
        *parents, last = q.split(".")
        t = data
        for k in parents:
            t = t.get(k) if isinstance(t, dict) else None
        if not isinstance(t, dict) or last not in t:
            raise ScenarioError(f"cannot remove {q!r}: the scenario it extends has no such key",
                                file=file, field="remove")
        del t[last]


def _merge(base: dict, over: dict) -> None:
    """Merge *over* into *base*: tables merged key by key (recursively), anything else
    (numbers, strings, arrays, arrays of tables) replaced."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = _copy_plain(v)


def _append(base: dict, extra: Any, file: str | None, path: str = "append") -> None:
    """Append the arrays of *extra* to the arrays at the same keys of *base* (created when
    missing); tables are followed key by key."""
    if not isinstance(extra, dict):
        raise ScenarioError(f"must be a table mirroring the keys to append to, got {extra!r}",
                            file=file, field=path)
    for k, v in extra.items():
        where = f"{path}.{k}"
        if isinstance(v, dict):
            if k not in base:
                base[k] = {}
            if not isinstance(base[k], dict):
                raise ScenarioError(f"cannot append into {where[7:]!r}: it is not a table",
                                    file=file, field=where)
            _append(base[k], v, file, where)
        elif isinstance(v, list):
            if k not in base:
                base[k] = []
            if not isinstance(base[k], list):
                raise ScenarioError(f"cannot append to {where[7:]!r}: it is not an array",
                                    file=file, field=where)
            base[k].extend(_copy_plain(v))
        else:
            raise ScenarioError(f"must be an array or a table, got {v!r}", file=file, field=where)


def _apply(base: dict, data: dict, file: str | None) -> None:
    """Apply one file's content over *base*: its ``remove`` list, then its tables and values
    (merged), then its ``append`` table."""
    if "remove" in data:
        _remove(base, data["remove"], file)
    _merge(base, {k: v for k, v in data.items() if k not in _DIRECTIVES and k != "layer"})
    if "append" in data:
        _append(base, data["append"], file)


def _read_layer(path: Path, file: str | None) -> dict:
    """A layer file's structure (a partial scenario, with an optional ``[layer]`` table of
    ``description`` and ``source``)."""
    data = read_toml(path)
    for k in ("extends", "layers"):
        if k in data:
            raise ScenarioError(f"a layer cannot use '{k}' (layers are applied over a scenario)",
                                file=str(path), field=k)
    try:
        _keys(data.get("layer", {}), {"name", "description"}, "[layer]")
    except ScenarioError as exc:
        raise exc.with_file(str(path)) from None
    return data


def compose(data: dict, file: str | None = None, layers=(), _chain: tuple = ()) -> dict:
    """Resolve scenario composition and return the plain scenario structure.

    A scenario file may start with ``extends = "truce-holds"`` (a built-in scenario or a
    path relative to the file) and ``layers = ["japan-2026"]`` (built-in layers in
    ``networks/scenarios/layers/`` or paths). The result is the extended scenario (itself
    resolved), with each layer applied over it in order, then the file's own content. Each
    application: first ``remove = ["controls.oct_2025_technology", ...]`` deletes inherited
    keys (dotted paths to tables or values), then tables are merged key by key and every
    other value, arrays and arrays of tables included, replaces the inherited one, then an
    ``[append]`` table mirroring the scenario's keys appends to inherited arrays (e.g.
    ``[[append.controls.apr_2025.changes]]`` adds a dated change). Without a ``name`` of
    its own, a file that extends another is named after the file. *layers* given here are
    applied last, over the file's content, and added to the name ("truce-holds+japan-2026").
    A cycle of ``extends`` is a :class:`ScenarioError` naming the files."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a table", file=file)
    key = str(Path(file).resolve()) if file else None
    if key is not None and key in _chain:
        cycle = " -> ".join([*_chain[_chain.index(key):], key])
        raise ScenarioError(f"scenarios extend each other in a cycle: {cycle}", file=file,
                            field="extends")
    chain = (*_chain, key) if key is not None else _chain
    if "extends" in data:
        path = _resolve_ref(data["extends"], file, "scenario")
        try:
            base = compose(read_toml(path), str(path), (), chain)
            _parse(base, str(path))     # a scenario extended is valid on its own: its errors
            #                             name its file, not the one extending it
        except ModelError as exc:
            raise (exc.with_file(str(path)) if not exc.file else exc) from None
    else:
        base = {}
    own = data.get("layers", [])
    if not isinstance(own, list):
        raise ScenarioError("must be a list of layer names or paths", file=file, field="layers")
    for ref in own:
        path = _resolve_ref(ref, file, "layer")
        _apply(base, _read_layer(path, file), str(path))
        if "extends" in data:           # over a valid scenario: a layer's errors are its own
            _check_layer(base, path)
    _apply(base, data, file)
    own_head = data.get("scenario", {})
    if ("extends" in data and file is not None and isinstance(own_head, dict)
            and "name" not in own_head and isinstance(base.get("scenario", {}), dict)):
        base.setdefault("scenario", {})["name"] = Path(file).stem
    # (a [scenario] that is no table is reported by the parser, naming the file)
    if layers:
        if isinstance(layers, str):
            layers = [layers]
        _parse(base, file)              # the scenario alone first: its errors name its file
        for ref in layers:
            path = _resolve_ref(ref, None, "layer")
            _apply(base, _read_layer(path, None), str(path))
            _check_layer(base, path)
        head = base.setdefault("scenario", {})
        head["name"] = "+".join([str(head.get("name", Path(file).stem if file else "scenario")),
                                 *(Path(r).stem for r in layers)])
    return base


def _check_layer(data: dict, path: Path) -> None:
    """Parse a valid scenario with a layer applied over it, so that an error names the
    layer's file."""
    try:
        _parse(data, str(path))
    except ModelError as exc:
        err = exc if isinstance(exc, ScenarioError) else ScenarioError(
            exc.problem, where=exc.where, field=exc.field)
        raise err.with_file(str(path)) from None


def list_layers() -> dict[str, str]:
    """Built-in scenario layers (``networks/scenarios/layers/``): name -> description."""
    out = {}
    for p in sorted(LAYER_DIR.glob("*.toml")):
        try:
            out[p.stem] = str(_read_layer(p, None).get("layer", {}).get("description", ""))
        except ModelError as exc:   # pragma: no cover - shipped files are tested
            out[p.stem] = f"(invalid: {exc})"
    return out


def list_scenarios(folder: str = "") -> dict[str, str]:
    """Built-in scenarios: name -> one-line description.

    *folder* lists a subfolder of the built-in scenarios instead (e.g. ``"layers"``), whose
    names carry it (``"layers/<name>"``, as :func:`scenario_path` takes them). A
    :class:`ModelError` when there are none (an install without its data files)."""
    where = BUILTIN_DIR.joinpath(*folder.split("/")) if folder else BUILTIN_DIR
    out = {}
    for stem in shipped_names(where, "scenarios"):
        name = f"{folder}/{stem}" if folder else stem
        try:
            out[name] = load_scenario(where / f"{stem}.toml").description
        except ModelError as exc:   # pragma: no cover - shipped files are tested
            out[name] = f"(invalid: {exc})"
    return out


def _builtin_file(name: str) -> Path | None:
    """The built-in scenario file named *name* (``"truce-holds"``, or with a subfolder,
    ``"layers/<name>"``), or None."""
    parts = name.split("/")
    if name.endswith(".toml") or any(p in ("", ".", "..") for p in parts):
        return None
    f = BUILTIN_DIR.joinpath(*parts[:-1]) / f"{parts[-1]}.toml"
    return f if _is_file(f) else None


def scenario_path(name_or_path: str | Path) -> Path:
    """Resolve a built-in scenario name (``"truce-holds"``, or ``"layers/<name>"`` in a
    subfolder) or a path; a file path that exists comes first."""
    check_name_arg(name_or_path, "scenario", ScenarioError)
    p = Path(name_or_path)
    builtin = _builtin_file(str(name_or_path))
    if p.suffix == ".toml" or "/" in str(name_or_path) or _exists(p):
        if _exists(p) and p.is_dir():
            raise ScenarioError("is a folder, not a scenario file", file=str(p))
        if _exists(p):
            return p
        if builtin is not None:
            return builtin
        raise ScenarioError(f"file not found: {p}")
    if builtin is not None:
        return builtin
    names = (", ".join(sorted(q.stem for q in BUILTIN_DIR.glob("*.toml"))) if BUILTIN_DIR.is_dir()
             else "") or f"none: no scenario files in {BUILTIN_DIR}"
    raise ScenarioError(f"unknown scenario {str(name_or_path)!r}: not a file and not a built-in "
                        f"scenario ({names})")


def load_scenario(name_or_path: str | Path, layers: tuple[str, ...] | list[str] = ()) -> Scenario:
    """Load a built-in scenario by name or a scenario TOML file, with optional *layers*
    (built-in layer names or paths) switched on over it (see :func:`compose`). A name
    ``"truce-holds+japan-2026"`` (not an existing file) is the scenario with those layers,
    so the command line and every function taking a scenario name accept layers too."""
    if isinstance(name_or_path, str) and "+" in name_or_path and not _exists(Path(name_or_path)):
        base, *extra = name_or_path.split("+")
        return load_scenario(base, [*extra, *layers])
    path = scenario_path(name_or_path)
    return Scenario.from_dict(read_toml(path), file=str(path), layers=layers)


def resolve_scenario(scenario: Scenario | str | Path | dict | None) -> Scenario:
    """Accept a Scenario, a name or path, a parsed dict, or None (the baseline)."""
    if scenario is None:
        return Scenario()
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return Scenario.from_dict(scenario)
    return load_scenario(scenario)


# -- sourcing layers (sim.sourcing holds the [sourcing] rule; a scenario is built here) ----------

def sourcing_layer_path(name_or_path) -> Path:
    """A sourcing layer file: a path, or the name of one in ``networks/scenarios/layers``."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or "/" in str(name_or_path):
        if not p.is_file():
            raise ScenarioError(f"file not found: {p}")
        return p
    q = LAYER_DIR / f"{name_or_path}.toml"
    if not q.is_file():
        names = ", ".join(sorted(x.stem for x in LAYER_DIR.glob("*.toml"))) or "none"
        raise ScenarioError(f"unknown layer {str(name_or_path)!r}: not a file and not a "
                            f"shipped layer ({names})")
    return q


def with_sourcing(scenario, layer="cost-aware-sourcing", **overrides):
    """A copy of *scenario* with the ``[sourcing]`` section of *layer* (a layer file's name
    or path, or a dict holding the section's fields), optionally with some fields replaced
    (``elasticity=1.5``); the name gets ``+<layer>`` appended. The copy is parsed again from
    its TOML structure, so its digest (and every manifest) records the sourcing used."""
    sc = resolve_scenario(scenario)
    if isinstance(layer, dict):
        section, tag = dict(layer), "sourcing"
    else:
        path = sourcing_layer_path(layer)
        data = read_toml(path)
        if "sourcing" not in data or set(data) - {"sourcing", "layer"}:
            raise ScenarioError("a sourcing layer holds a [sourcing] section (and an optional "
                                "[layer] description) only", file=str(path))
        section, tag = dict(data["sourcing"]), path.stem
    section.update(overrides)
    raw = sc.to_dict()
    raw["sourcing"] = section
    head = dict(raw.get("scenario", {}))
    head["name"] = f"{sc.name}+{tag}"
    raw["scenario"] = head
    return Scenario.from_dict(raw, file=sc.file)
