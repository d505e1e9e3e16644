"""Plans: named, documented, validated sets of changes (levers) to a network and a scenario.

A plan is what a policy maker would do about the supply chain: build a magnet plant, expand a
separator, hold a strategic reserve, ask buyers to keep more cover, qualify a second source,
substitute or recycle. :func:`load_plan` reads one from TOML (a shipped name from
``networks/plans/``, a path, a dict, ``"a+b"`` for a composition); :func:`apply_plan` turns a
network and a scenario into new, validated ones with the plan's changes (the inputs are left
untouched). A plan is applied once, before replications start, so it costs nothing per
replication. :meth:`Plan.cost` gives its dollars over a study window, so plans are compared
per dollar.

TOML schema (units: tonnes, days, US dollars; every figure carries its source in the file, an
assumption says "assumption: ..." with its reason)::

    [plan]
    name = "allied-capacity"
    description = "one line shown by `python -m sim plan list`"
    source = "..."
    extends = "status-quo"        # optional: a shipped plan or a path (relative to this file)
    remove = ["lever-id"]         # optional: inherited levers to drop
    delay_days = 730              # optional: every lever (inherited ones too) starts this much
    delay_source = "..."          #   later: each date inside each lever moves by delay_days

    [[levers]]
    id = "vulcan-magnets"         # unique in the plan (default "<type>-<n>"); a lever with an
                                  # inherited id replaces the inherited one
    type = "new_facility"         # see the lever types below
    start = 2025-11-03            # when the lever starts (decision, financing, application)
    lag_days = 424                # start -> first effect (construction, qualification); default 0
    ramp = { days = 730, steps = 4 }   # equal steps from the first effect (1/4 of the full
                                  # size) to the full size days later (default: at once),
                                  # or a list of steps:
                                  # [{after_days = 0, share = 0.25}, {after_days = 365, share = 1}]
    source = "..."                # the source of the lever's dates and sizes
    [levers.cost]
    capital_usd = 1.22e9          # spent evenly over [start, first effect] (at start if no lag;
                                  # a stockpile's over its build-up)
    capital_source = "..."
    yearly_usd = 0                # from the first effect on
    yearly_source = "assumption: ..."

The *online* date of a lever is ``start + lag_days``; its level on day *d* is the share of its
full size reached by the ramp (0 before online). Lever types and their full size (the *cap*):

``new_facility``
    A node added to the network: ``node_id``, ``[levers.node]`` in the network's node schema
    (kind, country, name, source, production with ``capacity_t_per_year`` = the cap of each
    line and a recipe, optional stock tables). Each production line's capacity follows the
    lever's ramp as a dated ``capacity_schedule`` (0 before online). Recipe inputs without a
    stock table get an (s, S) policy by the default network's rule (s = usage at full capacity
    x (mean inbound lead time + 7 d supplier allowance + 30 d cover + one batch), S = s + 14 d
    of usage, initial stock 0). ``[[levers.lanes]]`` are its inbound lanes (network lane
    schema, ``to`` defaults to the new node); they are qualified ``inputs_days`` (default 90)
    before online (or from the lane's own ``usable_from`` date), so the node draws nothing
    earlier. ``[[levers.buyers]]`` say who buys from
    it (see *Buyers* below).
``capacity_expansion``
    ``node``, ``material``, ``add_t_per_year`` (the cap): the line's capacity schedule gains
    the cap times the ramp level; optional ``[[levers.buyers]]``.
``offtake``
    ``supplier`` (an existing node) and ``[[levers.buyers]]``: buyers move a share of their
    orders to the supplier (an offtake or supply agreement for capacity the network already
    schedules). No ramp: the supplier's capacity schedule is the ramp.
``stockpile``
    A strategic reserve held by ``holder`` (an existing node, or a new one with ``node_id`` and
    ``[levers.node]`` of kind "stockpile"): writes ``[nodes.<holder>.reserve.<material>]`` with
    ``target_t`` (the cap), ``build_rate_t_per_year``, ``build_start`` (the online date),
    ``release_cover_days``, ``release_rate_t_per_day``, ``serve`` (sectors or node ids, in
    priority order), ``civil``, ``replenish``, ``funded_price_usd_per_t``, optional
    ``order_every_days``, and ``source`` (schema: :mod:`sim.network`); the holder's stock of
    the material keeps its initial holding and loses its ordering policy (the reserve buys by
    its build rule on the holder's inbound lanes). It adds a release lane (share 0; a
    reserve's lanes are left out of the buyers' share split) from the holder to each served
    buyer of the material that has none (``lead_time``, default 6 days); ``[[levers.lanes]]``
    add inbound lanes to a new holder (or to an existing one). The engine's reserve releases
    on those lanes (:class:`sim.engine.Reserve`).
``safety_stock``
    ``extra_days`` (the cap) of usage added to s and S (r for rQ) of the stocks of the chosen
    nodes: ``kinds``, ``countries`` and/or ``nodes`` (all given selectors must match), and
    optionally ``materials``. Usage is the node's demand rate for a demand material, and for a
    recipe input the capacity in force at the run start times the recipe quantity (an upper
    bound). Network policies are not dated: the raise holds from the run start (buyers order
    the extra at once), so ``start`` must not be after the run start.
``qualification``
    A new lane ``from`` -> ``to`` for ``material`` with ``lead_time`` and ``share``, usable from
    the online date (start = the application, lag = the qualification time; the lane's
    ``qualification_days`` are counted from the run start). The buyer's other lanes for the
    material scale down proportionally.
``substitution``
    A share of the demand for ``material`` of the chosen demand nodes (``sectors``,
    ``countries``, ``nodes``) switches to material ``to`` (``ratio`` t of it per t, default 1)
    or, without ``to``, leaves rare earths altogether (thrifting, other motor designs). The share
    grows by ``share_per_year`` each year from the online date up to ``cap_share``; it is
    written as the scenario's ``[[demand_surges]]`` (one per node, material and year: factor
    1 - share on the old material, 1 + share x ratio x old rate / new rate on the new one), so
    it multiplies with the scenario's own surges. A node switching to ``to`` must already buy
    it. No ``ramp`` (``share_per_year`` is the ramp).
``recycling``
    A recycler node (``node_id``, ``[levers.node]``, producing ``material`` from scrap, no
    recipe) whose capacity in each year from the online date is ``share`` (the cap, reached
    by ``share_per_year`` steps, or at once) x ``yield_t_per_t`` x the modelled demand for the
    ``scrap_materials`` of the chosen demand nodes ``delay_years`` earlier (the network's rates
    times the scenario's surges then). ``[[levers.buyers]]`` say who buys the recovered
    material.

Buyers
    ``[[levers.buyers]]`` entries: ``material``, ``share``, ``lead_time`` and either ``node``
    (a buyer id) or a selector ``countries`` / ``kinds`` / ``sectors`` (all given must match).
    Selectors are resolved when the lever is applied, against the network as the plan has made
    it so far: nodes added by earlier levers fall under them. Rule: the supplier takes ``share``
    of each buyer's orders for the material and the buyer's other lanes scale down
    proportionally (shares still sum to 1); an existing lane from the supplier has its share
    set to ``share`` from the run start (network shares are not dated: giving ``from`` for an
    existing lane is an error). A new lane is usable from ``from`` (a date; default the online
    date): before it the engine spreads orders over the other lanes with their old shares.

Controls that name nodes
    A scenario's export controls name nodes in ``capacity_effect.nodes`` and in the
    ``buyers`` of dated changes. A node a plan adds falls under those lists by the lever's
    ``controls`` field: ``"same-country-kind"`` (the default: added to every list that names
    a node of its country and kind), ``"none"``, or ``{ like = "<node id>" }`` (added wherever
    that node is named). Outages and demand surges that name nodes are not extended.

Composition
    ``extends`` (above) and ``a + b`` (:func:`compose_plans`, the name ``"a+b"``): the levers
    of *a* then those of *b*. A lever present in both with the same id and the same content is
    kept once (two plans extending one base compose without a conflict); the same id with
    different content, two levers adding the same node, or two writing the same reserve, lane
    or safety-stock target is an error naming both plans. Composition is associative; it is
    commutative only for levers that do not touch the same buyer's shares.

Applying a plan marks the network (``[network] plans``): applying the same plan (or any plan
sharing a lever with it) to that network again is an error.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ModelError
from .network import (Network, load_network, parse_date, read_toml, shipped_folder,
                      shipped_names)
from .scenario import Scenario, resolve_scenario

__all__ = [
    "Plan", "Lever", "LEVER_TYPES", "load_plan", "list_plans", "apply_plan", "resolve_plan",
    "compose_plans", "plan_path", "PLANS_DIR", "RUN_START",
]

PLANS_DIR = shipped_folder("plans")      # networks/plans/, installed as package data
LEVER_TYPES = ("new_facility", "capacity_expansion", "offtake", "stockpile", "safety_stock",
               "qualification", "substitution", "recycling")
# The run start assumed when the scenario gives none: the engine's default start
# (sim.engine.DEFAULT_START; this module sits below the engine and cannot import it, a test
# keeps the two equal). Lane qualification days are counted from it.
RUN_START = _dt.date(2025, 1, 1)
# Open end of the demand surges written by substitution levers (surges need an end date;
# the run clips them to its horizon).
_OPEN_END = _dt.date(2200, 1, 1)
_CONTROL_RULES = ("same-country-kind", "none")

_COMMON_KEYS = {"id", "type", "start", "lag_days", "ramp", "source", "note", "cost",
                "from_plan"}
_TYPE_KEYS = {
    "new_facility": {"node_id", "node", "lanes", "buyers", "inputs_days", "controls"},
    "capacity_expansion": {"node", "material", "add_t_per_year", "buyers"},
    "offtake": {"supplier", "buyers"},
    "stockpile": {"holder", "node_id", "node", "material", "target_t", "build_rate_t_per_year",
                  "release_cover_days", "release_rate_t_per_day", "serve", "civil",
                  "replenish", "funded_price_usd_per_t", "lanes", "lead_time", "controls",
                  "order_every_days"},
    "safety_stock": {"extra_days", "kinds", "countries", "nodes", "materials"},
    "qualification": {"from", "to", "material", "share", "lead_time"},
    "substitution": {"material", "to", "ratio", "share_per_year", "cap_share", "sectors",
                     "countries", "nodes"},
    "recycling": {"node_id", "node", "material", "scrap_materials", "yield_t_per_t",
                  "delay_years", "share", "share_per_year", "sectors", "countries", "nodes",
                  "buyers", "controls"},
}
_REQUIRED = {
    "new_facility": ("node_id", "node"),
    "capacity_expansion": ("node", "material", "add_t_per_year"),
    "offtake": ("supplier", "buyers"),
    "stockpile": ("holder", "material", "target_t", "build_rate_t_per_year",
                  "release_cover_days", "release_rate_t_per_day", "serve",
                  "funded_price_usd_per_t"),
    "safety_stock": ("extra_days",),
    "qualification": ("from", "to", "material", "share", "lead_time"),
    "substitution": ("material", "share_per_year", "cap_share"),
    "recycling": ("node_id", "node", "material", "scrap_materials", "yield_t_per_t",
                  "delay_years", "share"),
}


# ---------------------------------------------------------------------------------------------
# Small checks (errors name the plan file, the lever and the field)
# ---------------------------------------------------------------------------------------------

def _err(msg: str, where: str | None = None, fld: str | None = None,
         file: str | None = None) -> ModelError:
    return ModelError(msg, file=file, where=where, field=fld)


def _num(v: Any, where: str, fld: str, lo: float = 0.0, hi: float = math.inf,
         strict: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _err(f"must be a finite number, got {v!r}", where, fld)
    if v < lo or (strict and v <= lo) or v > hi:
        rng = f"{'>' if strict else '>='} {lo:g}" + (f" and <= {hi:g}" if hi < math.inf else "")
        raise _err(f"must be {rng}, got {v!r}", where, fld)
    return float(v)


def _date(v: Any, where: str, fld: str) -> _dt.date:
    return parse_date(v, where, fld)


def _str(v: Any, where: str, fld: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _err(f"must be a non-empty string, got {v!r}", where, fld)
    return v


def _strs(v: Any, where: str, fld: str) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise _err(f"must be a non-empty list of strings, got {v!r}", where, fld)
    return list(v)


def _table(v: Any, where: str, fld: str) -> dict:
    if not isinstance(v, dict):
        raise _err(f"must be a table, got {v!r}", where, fld)
    return v


def _tables(v: Any, where: str, fld: str) -> list[dict]:
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise _err("must be an array of tables", where, fld)
    return v


def _plain(obj: Any) -> Any:
    """A deep copy of TOML-shaped data (dates stay dates)."""
    return copy.deepcopy(obj)


def _shift_dates(obj: Any, days: float) -> Any:
    """*obj* with every date inside it moved by *days* (the plan's ``delay_days``)."""
    if isinstance(obj, dict):
        return {k: _shift_dates(v, days) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shift_dates(v, days) for v in obj]
    if isinstance(obj, _dt.datetime):
        return (obj + _dt.timedelta(days=days)).date()
    if isinstance(obj, _dt.date):
        return obj + _dt.timedelta(days=days)
    return obj


def _days(d: float) -> _dt.timedelta:
    return _dt.timedelta(days=float(d))


# ---------------------------------------------------------------------------------------------
# Levers
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lever:
    """One change a plan makes, with its timing, size and cost.

    ``params`` holds the lever's table as written (TOML-shaped); the typed fields are the parts
    every lever has. ``ramp`` is a tuple of ``(days after online, share of the full size)``
    steps, increasing, the last one 1.0. ``plan`` names the plan that defined the lever.
    """

    id: str
    type: str
    start: _dt.date
    lag_days: float = 0.0
    ramp: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    capital_usd: float = 0.0
    yearly_usd: float = 0.0
    capital_source: str = ""
    yearly_source: str = ""
    source: str = ""
    params: dict = field(default_factory=dict, compare=False, repr=False)
    plan: str = field(default="", compare=False)
    file: str | None = field(default=None, compare=False, repr=False)   # where it is defined

    @property
    def online(self) -> _dt.date:
        """The date of the lever's first effect: ``start + lag_days``."""
        return self.start + _days(self.lag_days)

    @property
    def full(self) -> _dt.date:
        """The date the lever reaches its full size (the last ramp step; for levers that ramp
        by ``share_per_year``, the year the share reaches its cap)."""
        p = self.params
        if self.type in ("substitution", "recycling") and p.get("share_per_year"):
            cap = float(p["cap_share"] if self.type == "substitution" else p["share"])
            years = max(0, math.ceil(cap / float(p["share_per_year"]) - 1e-9) - 1)
            return _add_years(self.online, years)
        return self.online + _days(self.ramp[-1][0])

    def level_on(self, day: _dt.date) -> float:
        """Share of the full size in force on *day* (0 before the online date)."""
        level = 0.0
        for after, share in self.ramp:
            if self.online + _days(after) <= day:
                level = share
        return level

    def steps(self) -> list[tuple[_dt.date, float]]:
        """The ramp as dated ``(date, share of full size)`` steps."""
        return [(self.online + _days(after), share) for after, share in self.ramp]

    @property
    def cap(self) -> tuple[float, str]:
        """The lever's full size and its unit (see the module docstring, per lever type)."""
        p = self.params
        if self.type == "new_facility":
            prod = p.get("node", {}).get("production", {})
            return (sum(float(t.get("capacity_t_per_year", 0)) for t in prod.values()), "t/yr")
        return {
            "capacity_expansion": (p.get("add_t_per_year", 0.0), "t/yr"),
            "offtake": (sum(b.get("share", 0.0) for b in p.get("buyers", [])),
                        "sum of buyers' shares"),
            "stockpile": (p.get("target_t", 0.0), "t"),
            "safety_stock": (p.get("extra_days", 0.0), "days of cover"),
            "qualification": (p.get("share", 0.0), "share of the buyer's orders"),
            "substitution": (p.get("cap_share", 0.0), "share of demand"),
            "recycling": (p.get("share", 0.0), "share of end-of-life material"),
        }[self.type]

    def capital_period(self) -> tuple[_dt.date, _dt.date]:
        """When the capital is spent: ``[start, online]`` (construction, qualification), or
        for a stockpile the build-up ``[online, online + target / build rate]`` (purchases)."""
        if self.type == "stockpile":
            p = self.params
            years = float(p["target_t"]) / float(p["build_rate_t_per_year"])
            return self.online, self.online + _days(round(365.25 * years))
        return self.start, self.online

    def cost(self, start_date: _dt.date, end_date: _dt.date) -> dict:
        """Dollars inside ``[start_date, end_date)``: capital spread evenly over
        :meth:`capital_period` (all on its first day when it has no length), yearly costs from
        the online date on (365.25-day years)."""
        capital = 0.0
        if self.capital_usd:
            a, b = self.capital_period()
            if b <= a:
                capital = self.capital_usd if start_date <= a < end_date else 0.0
            else:
                lo, hi = max(a, start_date), min(b, end_date)
                span = (b - a).days
                capital = self.capital_usd * max(0, (hi - lo).days) / span
        yearly = 0.0
        if self.yearly_usd:
            lo, hi = max(self.online, start_date), end_date
            yearly = self.yearly_usd * max(0, (hi - lo).days) / 365.25
        return {"capital_usd": capital, "yearly_usd": yearly, "total_usd": capital + yearly}

    def to_dict(self) -> dict:
        """The lever's TOML table."""
        return _plain(self.params)

    def signature(self) -> str:
        """A canonical text of the lever's content (what composition compares)."""
        return repr(sorted(_flatten(self.params)))


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list):
        out = []
        for i, v in enumerate(obj):
            out.extend(_flatten(v, f"{prefix}[{i}]"))
        return out
    return [(prefix, repr(obj))]


def _parse_ramp(raw: Any, where: str) -> tuple[tuple[float, float], ...]:
    if raw is None:
        return ((0.0, 1.0),)
    if isinstance(raw, dict):
        for k in raw:
            if k not in ("days", "steps", "source", "note"):
                raise _err(f"unknown field {k!r}; allowed: days, steps", where, "ramp")
        days = _num(raw.get("days", 0.0), where, "ramp.days")
        steps = raw.get("steps", 4)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise _err(f"must be a positive integer, got {steps!r}", where, "ramp.steps")
        if days == 0:
            return ((0.0, 1.0),)
        if steps == 1:
            raise _err("one step is the full size at once: give days = 0 or more steps",
                       where, "ramp.steps")
        # the first step at the online date, the last (the full size) days later
        return tuple((days * k / (steps - 1), (k + 1) / steps) for k in range(steps))
    if isinstance(raw, list) and raw:
        out = []
        for i, step in enumerate(raw):
            f = f"ramp[{i}]"
            step = _table(step, where, f)
            extra = sorted(set(step) - {"after_days", "share", "source", "note"})
            if extra or "after_days" not in step or "share" not in step:
                raise _err("each step needs after_days and share (and nothing else)", where, f)
            out.append((_num(step["after_days"], where, f"{f}.after_days"),
                        _num(step["share"], where, f"{f}.share", 0.0, 1.0, strict=True)))
        if any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(out, out[1:])):
            raise _err("steps must have increasing after_days and non-decreasing shares",
                       where, "ramp")
        if out[-1][1] != 1.0:
            raise _err(f"the last step must reach share 1 (the full size), got {out[-1][1]:g}",
                       where, "ramp")
        return tuple(out)
    raise _err(f"must be a table {{days, steps}} or a list of {{after_days, share}}, got {raw!r}",
               where, "ramp")


def _parse_lever(i: int, raw: Any, plan: str) -> Lever:
    where = f"levers[{i}]"
    raw = _table(raw, where, "")
    ltype = raw.get("type")
    if ltype not in LEVER_TYPES:
        raise _err(f"unknown lever type {ltype!r}; expected one of {', '.join(LEVER_TYPES)}",
                   where, "type")
    lid = raw.get("id", f"{ltype}-{i + 1}")
    lid = _str(lid, where, "id")
    where = f"lever '{lid}'"
    extra = sorted(set(raw) - _COMMON_KEYS - _TYPE_KEYS[ltype])
    if extra:
        raise _err(f"unknown field(s) {extra} for a {ltype} lever; allowed: "
                   f"{sorted(_COMMON_KEYS | _TYPE_KEYS[ltype])}", where)
    for req in ("start", "source") + _REQUIRED[ltype]:
        if req not in raw:
            raise _err(f"missing '{req}' (a {ltype} lever needs "
                       f"{', '.join(('start', 'source') + _REQUIRED[ltype])})", where, req)
    _str(raw["source"], where, "source")
    start = _date(raw["start"], where, "start")
    lag = _num(raw.get("lag_days", 0.0), where, "lag_days")
    if ltype == "substitution" and "ramp" in raw:
        raise _err("a substitution lever ramps by share_per_year, not by ramp", where, "ramp")
    ramp = _parse_ramp(raw.get("ramp"), where)
    if "cost" not in raw:
        raise _err("missing [levers.cost] (capital_usd, yearly_usd with their sources): plans "
                   "are compared per dollar", where, "cost")
    cost = _table(raw["cost"], where, "cost")
    extra = sorted(set(cost) - {"capital_usd", "capital_source", "yearly_usd", "yearly_source",
                                "note"})
    if extra:
        raise _err(f"unknown field(s) {extra}; allowed: capital_usd, capital_source, "
                   "yearly_usd, yearly_source", where, "cost")
    money = {}
    for k in ("capital", "yearly"):
        v = _num(cost.get(f"{k}_usd", 0.0), where, f"cost.{k}_usd")
        if f"{k}_usd" in cost:
            _str(cost.get(f"{k}_source"), where, f"cost.{k}_source")
        money[k] = v
    _check_type(ltype, raw, where)
    params = _plain(raw)
    # a resolved plan written out (Plan.to_dict) names the plan each lever came from
    origin = _str(params.pop("from_plan", plan), where, "from_plan")
    return Lever(lid, ltype, start, lag, ramp, money["capital"], money["yearly"],
                 str(cost.get("capital_source", "")), str(cost.get("yearly_source", "")),
                 str(raw["source"]), params, origin)


def _check_buyers(raw: Any, where: str) -> None:
    for j, b in enumerate(_tables(raw, where, "buyers")):
        f = f"buyers[{j}]"
        extra = sorted(set(b) - {"node", "countries", "kinds", "sectors", "material", "share",
                                 "lead_time", "from", "source", "note", "capacity_t_per_year",
                                 "route"})
        if extra:
            raise _err(f"unknown field(s) {extra}", where, f)
        for req in ("material", "share", "lead_time"):
            if req not in b:
                raise _err(f"missing '{req}'", where, f"{f}.{req}")
        if "node" not in b and not any(k in b for k in ("countries", "kinds", "sectors")):
            raise _err("give a buyer node or a selector (countries, kinds, sectors)", where,
                       f"{f}.node")
        _num(b["share"], where, f"{f}.share", 0.0, 1.0, strict=True)
        if b["share"] >= 1.0:
            raise _err("must be below 1 (the buyer's other lanes keep the rest)", where,
                       f"{f}.share")
        if "from" in b:
            _date(b["from"], where, f"{f}.from")
        for k in ("countries", "kinds", "sectors"):
            if k in b:
                _strs(b[k], where, f"{f}.{k}")


def _check_controls(raw: dict, where: str) -> None:
    c = raw.get("controls", "same-country-kind")
    if isinstance(c, str) and c in _CONTROL_RULES:
        return
    if isinstance(c, dict) and set(c) == {"like"} and isinstance(c["like"], str):
        return
    raise _err(f"must be \"same-country-kind\", \"none\" or {{like = \"<node id>\"}}, got {c!r}",
               where, "controls")


def _check_type(ltype: str, raw: dict, where: str) -> None:
    """Checks that need no network (types, ranges)."""
    if ltype in ("new_facility", "recycling") or (ltype == "stockpile" and "node" in raw):
        _str(raw.get("node_id"), where, "node_id")
        node = _table(raw["node"], where, "node")
        prod = _table(node.get("production", {}), where, "node.production")
        for m, p in prod.items():
            p = _table(p, where, f"node.production.{m}")
            if "capacity_schedule" in p:
                raise _err("give capacity_t_per_year (the full size); the lever's start, lag "
                           "and ramp make the schedule", where, f"node.production.{m}")
        _check_controls(raw, where)
    if ltype == "new_facility":
        prod = raw["node"].get("production", {})
        if not prod:
            raise _err("a new facility needs a production table", where, "node.production")
        for m, p in prod.items():
            _num(p.get("capacity_t_per_year"), where, f"node.production.{m}.capacity_t_per_year",
                 strict=True)
        _num(raw.get("inputs_days", 90), where, "inputs_days")
        _tables(raw.get("lanes", []), where, "lanes")
        _check_buyers(raw.get("buyers", []), where)
    elif ltype == "capacity_expansion":
        _str(raw["node"], where, "node")
        _str(raw["material"], where, "material")
        _num(raw["add_t_per_year"], where, "add_t_per_year", strict=True)
        _check_buyers(raw.get("buyers", []), where)
    elif ltype == "offtake":
        _str(raw["supplier"], where, "supplier")
        if not raw["buyers"]:
            raise _err("an offtake needs at least one buyer", where, "buyers")
        _check_buyers(raw["buyers"], where)
        if raw.get("ramp") is not None:
            raise _err("an offtake has no ramp (the supplier's capacity has one)", where, "ramp")
    elif ltype == "stockpile":
        _str(raw["holder"], where, "holder")
        _str(raw["material"], where, "material")
        _num(raw["target_t"], where, "target_t", strict=True)
        _num(raw["build_rate_t_per_year"], where, "build_rate_t_per_year", strict=True)
        _num(raw["release_cover_days"], where, "release_cover_days")
        _num(raw["release_rate_t_per_day"], where, "release_rate_t_per_day", strict=True)
        _num(raw["funded_price_usd_per_t"], where, "funded_price_usd_per_t")
        _strs(raw["serve"], where, "serve")
        for k in ("civil", "replenish"):
            if k in raw and not isinstance(raw[k], bool):
                raise _err(f"must be true or false, got {raw[k]!r}", where, k)
        _tables(raw.get("lanes", []), where, "lanes")
        if "node" in raw and raw["node_id"] != raw["holder"]:
            raise _err("a new holder's node_id must equal holder", where, "node_id")
    elif ltype == "safety_stock":
        _num(raw["extra_days"], where, "extra_days", strict=True)
        if not any(k in raw for k in ("kinds", "countries", "nodes")):
            raise _err("choose the stocks: give kinds, countries and/or nodes", where, "kinds")
        for k in ("kinds", "countries", "nodes", "materials"):
            if k in raw:
                _strs(raw[k], where, k)
        if raw.get("ramp") is not None:
            raise _err("network policies are not dated: a safety-stock raise has no ramp",
                       where, "ramp")
    elif ltype == "qualification":
        for k in ("from", "to", "material"):
            _str(raw[k], where, k)
        s = _num(raw["share"], where, "share", 0.0, 1.0, strict=True)
        if s >= 1.0:
            raise _err("must be below 1 (the buyer's other lanes keep the rest)", where, "share")
    elif ltype == "substitution":
        _str(raw["material"], where, "material")
        if "to" in raw:
            _str(raw["to"], where, "to")
            if raw["to"] == raw["material"]:
                raise _err("a material cannot substitute for itself", where, "to")
        _num(raw.get("ratio", 1.0), where, "ratio", strict=True)
        _num(raw["share_per_year"], where, "share_per_year", 0.0, 1.0, strict=True)
        _num(raw["cap_share"], where, "cap_share", 0.0, 1.0, strict=True)
        for k in ("sectors", "countries", "nodes"):
            if k in raw:
                _strs(raw[k], where, k)
    elif ltype == "recycling":
        prod = raw["node"].get("production", {})
        if set(prod) - {raw["material"]}:
            raise _err(f"a recycler produces only its material {raw['material']!r}", where,
                       "node.production")
        _strs(raw["scrap_materials"], where, "scrap_materials")
        _num(raw["yield_t_per_t"], where, "yield_t_per_t", strict=True)
        _num(raw["delay_years"], where, "delay_years")
        _num(raw["share"], where, "share", 0.0, 1.0, strict=True)
        if "share_per_year" in raw:
            _num(raw["share_per_year"], where, "share_per_year", 0.0, 1.0, strict=True)
        if raw.get("ramp") is not None:
            raise _err("a recycling lever ramps by share_per_year, not by ramp", where, "ramp")
        for k in ("sectors", "countries", "nodes"):
            if k in raw:
                _strs(raw[k], where, k)
        _check_buyers(raw.get("buyers", []), where)


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """A named set of levers. ``Plan("status-quo")`` is the empty plan.

    Build one with :func:`load_plan` (TOML), :meth:`from_dict`, or by composing plans
    (``a + b``). ``levers`` are applied in order by :func:`apply_plan`.
    """

    name: str = "status-quo"
    description: str = "No changes: the network and scenario as they are."
    levers: tuple[Lever, ...] = ()
    source: str = ""
    file: str | None = None

    @classmethod
    def from_dict(cls, data: dict, *, file: str | None = None) -> "Plan":
        """Build and validate a plan from its TOML structure (``extends`` resolved)."""
        try:
            return _from_dict(data, file, ())
        except ModelError as exc:
            raise (exc.with_file(file) if file else exc) from None

    def to_dict(self) -> dict:
        """The TOML structure of the resolved plan (``extends`` and delays already applied;
        a lever defined by another plan says so in ``from_plan``)."""
        head: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.source:
            head["source"] = self.source
        levers = []
        for lv in self.levers:
            d = lv.to_dict()
            if lv.plan and lv.plan != self.name:
                d["from_plan"] = lv.plan
            levers.append(d)
        return {"plan": head, "levers": levers}

    def cost(self, start_date, end_date) -> dict:
        """Dollars of the plan inside ``[start_date, end_date)``: ``capital_usd`` (spread over
        each lever's lag), ``yearly_usd`` (from each lever's online date) and ``total_usd``."""
        a = _date(start_date, f"plan '{self.name}'", "start_date")
        b = _date(end_date, f"plan '{self.name}'", "end_date")
        if b < a:
            raise _err(f"end_date ({b}) is before start_date ({a})", f"plan '{self.name}'",
                       "end_date")
        out = {"capital_usd": 0.0, "yearly_usd": 0.0, "total_usd": 0.0}
        for lv in self.levers:
            for k, v in lv.cost(a, b).items():
                out[k] += v
        return out

    def cost_table(self, start_date, end_date) -> list[dict]:
        """One row per lever: id, type, start, online, full size, and its dollars in the
        window (for tables and `plan show`)."""
        a = _date(start_date, f"plan '{self.name}'", "start_date")
        b = _date(end_date, f"plan '{self.name}'", "end_date")
        rows = []
        for lv in self.levers:
            cap, unit = lv.cap
            rows.append({"lever": lv.id, "type": lv.type, "start": lv.start,
                         "online": lv.online, "full": lv.full, "cap": cap, "unit": unit,
                         **lv.cost(a, b)})
        return rows

    def __add__(self, other: "Plan") -> "Plan":
        return compose_plans(self, other)

    @property
    def lever_ids(self) -> list[str]:
        """Ids of the levers, in order."""
        return [lv.id for lv in self.levers]

    def __repr__(self) -> str:
        return f"Plan({self.name!r}: {len(self.levers)} levers)"


def _from_dict(data: Any, file: str | None, chain: tuple[str, ...]) -> Plan:
    if not isinstance(data, dict):
        raise _err("a plan must be a table")
    extra = sorted(set(data) - {"plan", "levers", "sources"})
    if extra:
        raise _err(f"unknown top-level field(s) {extra}; allowed: plan, levers, sources")
    head = _table(data.get("plan", {}), "[plan]", "")
    extra = sorted(set(head) - {"name", "description", "source", "extends", "remove",
                                "delay_days", "delay_source", "note"})
    if extra:
        raise _err(f"unknown field(s) {extra}", "[plan]")
    name = head.get("name", Path(file).stem if file else None)
    name = _str(name, "[plan]", "name")
    levers: list[Lever] = []
    description = str(head.get("description", ""))
    if "extends" in head:
        path = _ref_path(_str(head["extends"], "[plan]", "extends"), file)
        key = str(path.resolve()) if path is not None else str(head["extends"])
        if key in chain:
            raise _err(f"extends cycle: {' -> '.join(chain + (key,))}", "[plan]", "extends")
        parent = _load_one(head["extends"], file, chain + (key,))
        levers = list(parent.levers)
        removed = head.get("remove", [])
        if removed:
            removed = _strs(removed, "[plan]", "remove")
            for r in removed:
                if r not in {lv.id for lv in levers}:
                    raise _err(f"no inherited lever {r!r} to remove (levers of "
                               f"'{parent.name}': {', '.join(lv.id for lv in levers) or 'none'})",
                               "[plan]", "remove")
            levers = [lv for lv in levers if lv.id not in removed]
        description = description or parent.description
    elif "remove" in head:
        raise _err("remove needs extends (there is nothing inherited)", "[plan]", "remove")
    own = [replace(_parse_lever(i, raw, name), file=file)
           for i, raw in enumerate(_tables(data.get("levers", []), "levers", ""))]
    seen: set[str] = set()
    for lv in own:
        if lv.id in seen:
            raise _err("two levers have this id", f"lever '{lv.id}'", "id")
        seen.add(lv.id)
    for lv in own:
        idx = next((k for k, old in enumerate(levers) if old.id == lv.id), None)
        if idx is None:
            levers.append(lv)
        else:
            levers[idx] = lv
    if "delay_days" in head:
        delay = _num(head["delay_days"], "[plan]", "delay_days")
        why = _str(head.get("delay_source"), "[plan]", "delay_source")
        if delay:
            levers = [_delayed(lv, delay, name, why) for lv in levers]
    plan = Plan(name, description, tuple(levers), str(head.get("source", "")), file)
    _check_conflicts(plan.levers)
    return plan


def _delayed(lv: Lever, days: float, plan: str, why: str) -> Lever:
    params = _shift_dates(lv.params, days)
    # the lever's source describes its own dates; say that they moved, and why
    note = f"; every date moved {days:g} days later by plan '{plan}' ({why})"
    params["source"] = str(params.get("source", "")) + note
    return replace(lv, start=lv.start + _days(days), params=params, plan=plan,
                   source=lv.source + note)


def _targets(lv: Lever) -> list[str]:
    """What a lever creates or owns exclusively (two levers owning one thing conflict)."""
    p = lv.params
    out = []
    if lv.type in ("new_facility", "recycling") or (lv.type == "stockpile" and "node" in p):
        out.append(f"node {p['node_id']}")
    if lv.type == "stockpile":
        out.append(f"reserve {p['holder']}/{p['material']}")
    if lv.type == "qualification":
        out.append(f"lane {p['from']}->{p['to']}:{p['material']}")
    if lv.type == "capacity_expansion":
        pass    # expansions of one line add up: no exclusive target
    return out


def _check_conflicts(levers: tuple[Lever, ...]) -> None:
    owner: dict[str, Lever] = {}
    for lv in levers:
        for t in _targets(lv):
            if t in owner:
                o = owner[t]
                raise _err(f"levers '{o.id}' (plan '{o.plan}') and '{lv.id}' (plan '{lv.plan}') "
                           f"both create {t}", f"lever '{lv.id}'")
            owner[t] = lv


def compose_plans(*plans: "Plan") -> Plan:
    """The plan that applies each of *plans* in turn (``a + b``): levers of the first, then of
    the next; a lever with the same id and content in several is kept once, the same id with
    different content (or two levers creating the same node, reserve or lane) is an error
    naming both plans."""
    if not plans:
        return Plan()
    levers: list[Lever] = []
    by_id: dict[str, Lever] = {}
    names: list[str] = []
    for p in plans:
        if not isinstance(p, Plan):
            raise _err(f"can only compose plans, got {type(p).__name__}")
        for n in p.name.split("+"):
            if n != "status-quo" and n not in names:
                names.append(n)
        for lv in p.levers:
            old = by_id.get(lv.id)
            if old is None:
                by_id[lv.id] = lv
                levers.append(lv)
            elif old.signature() != lv.signature() or old.type != lv.type:
                raise _err(f"plans '{old.plan}' and '{lv.plan}' both have a lever '{lv.id}' "
                           "with different content", f"lever '{lv.id}'")
    name = "+".join(names) or "status-quo"
    descs = [p.description.rstrip(". ") for p in plans if p.levers and p.description]
    plan = Plan(name, "; ".join(descs) + "." if descs else Plan().description, tuple(levers),
                "; ".join(p.source for p in plans if p.source))
    _check_conflicts(plan.levers)
    return plan


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def list_plans() -> dict[str, str]:
    """Shipped plans (``networks/plans/*.toml``): ``{name: description}``."""
    out = {}
    for stem in shipped_names(PLANS_DIR, "plans"):
        data = read_toml(PLANS_DIR / f"{stem}.toml")
        head = data.get("plan", {}) if isinstance(data, dict) else {}
        out[stem] = str(head.get("description", "")) if isinstance(head, dict) else ""
    return out


def _ref_path(ref: str, file: str | None) -> Path | None:
    """The file an ``extends`` reference names (relative to *file*), or None for a shipped
    name."""
    p = Path(ref)
    if p.suffix == ".toml" or "/" in ref or os.sep in ref:
        if not p.is_absolute() and file:
            p = Path(file).parent / p
        return p
    return None


def plan_path(name_or_path: str | Path) -> Path:
    """Resolve a shipped plan name or a file path to a path (a :class:`ModelError` if none)."""
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise _err(f"must be a plan name or a TOML path, got {name_or_path!r}", fld="plan")
    p = Path(name_or_path)
    if p.suffix == ".toml" or "/" in name_or_path or os.sep in name_or_path:
        if not p.is_file():
            raise _err(f"file not found: {p}" if not p.exists() else "is not a plan file",
                       file=str(p) if p.exists() else None)
        return p
    shipped = PLANS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    if p.is_file():
        return p
    raise _err(f"unknown plan {name_or_path!r}: not a file and not one of the shipped plans "
               f"({', '.join(shipped_names(PLANS_DIR, 'plans'))})", fld="plan")


def _load_one(ref: str, base_file: str | None, chain: tuple[str, ...]) -> Plan:
    rel = _ref_path(ref, base_file)
    path = rel if rel is not None else plan_path(ref)
    if rel is not None and not path.is_file():
        raise _err(f"extends {ref!r}: file not found: {path}", "[plan]", "extends")
    try:
        return _from_dict(read_toml(path), str(path), chain)
    except ModelError as exc:
        raise exc.with_file(str(path)) from None


def load_plan(plan: "str | Path | dict | Plan") -> Plan:
    """A plan from a shipped name (``"allied-capacity"``), a TOML path, a parsed dict, a
    :class:`Plan` (returned as is) or ``"a+b"`` (the composition of shipped names or paths)."""
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, dict):
        return Plan.from_dict(plan)
    if isinstance(plan, os.PathLike):
        plan = os.fspath(plan)
    if isinstance(plan, str) and "+" in plan and not Path(plan).is_file():
        parts = [s.strip() for s in plan.split("+")]
        if not all(parts):
            raise _err(f"empty part in the plan composition {plan!r}", fld="plan")
        return compose_plans(*(load_plan(s) for s in parts))
    path = plan_path(plan)
    return _load_one(str(path), None, (str(path.resolve()),))


def resolve_plan(plan: "Plan | str | Path | dict | list | tuple | None") -> Plan:
    """Accept what :func:`load_plan` accepts, ``None`` (the status quo) or a list of those
    (their composition)."""
    if plan is None:
        return Plan()
    if isinstance(plan, (list, tuple)):
        return compose_plans(*(resolve_plan(p) for p in plan))
    return load_plan(plan)


# ---------------------------------------------------------------------------------------------
# Applying a plan
# ---------------------------------------------------------------------------------------------

class _Ctx:
    """The network and scenario being changed (plain dicts) and what applying needs to know."""

    def __init__(self, plan: Plan, net: Network, scen: Scenario, start: _dt.date) -> None:
        self.plan = plan
        self.net_file = net.file
        self.data = net.to_dict()
        self.net = net
        self.scen = scen
        self.scen_raw = scen.to_dict() if scen.raw else None
        self.surges: list[dict] = []            # demand surges to add
        self.control_nodes: list[tuple[dict, str]] = []   # (lever params, new node id)
        self.start = start

    def where(self, lv: Lever) -> str:
        return f"plan '{self.plan.name}': lever '{lv.id}'"

    def err(self, lv: Lever, msg: str, fld: str | None = None) -> ModelError:
        return ModelError(msg, file=lv.file or self.plan.file, where=self.where(lv), field=fld)

    def rebuild(self, lv: Lever) -> None:
        """Validate the network after a lever (errors name the lever)."""
        try:
            self.net = Network.from_dict(self.data, file=self.net_file)
        except ModelError as exc:
            raise self.err(lv, f"the changed network is invalid: {exc}") from None
        self.data = self.net.to_dict()

    def day(self, d: _dt.date) -> float:
        """Days from the run start to *d* (at least 0)."""
        return max(0.0, float((d - self.start).days))


def _node(ctx: _Ctx, lv: Lever, nid: str, fld: str) -> dict:
    nodes = ctx.data["nodes"]
    if nid not in nodes:
        raise ctx.err(lv, f"node {nid!r} is not in network '{ctx.net.name}'", fld)
    return nodes[nid]


def _select(ctx: _Ctx, sel: dict, *, demand_of: str | None = None) -> list[str]:
    """Node ids matching a selector (``node``/``nodes``, ``countries``, ``kinds``,
    ``sectors``: all given must match), in network order."""
    out = []
    ids = sel.get("nodes") or ([sel["node"]] if "node" in sel else None)
    if isinstance(ids, str):
        ids = [ids]
    for nid, n in ctx.data["nodes"].items():
        if ids is not None and nid not in ids:
            continue
        if "countries" in sel and n.get("country") not in _as_list(sel["countries"]):
            continue
        if "kinds" in sel and n.get("kind") not in _as_list(sel["kinds"]):
            continue
        if "sectors" in sel and n.get("sector") not in _as_list(sel["sectors"]):
            continue
        if demand_of is not None and demand_of not in n.get("demand", {}):
            continue
        out.append(nid)
    return out


def _as_list(v: Any) -> list:
    return [v] if isinstance(v, str) else list(v)


def _rebalance(ctx: _Ctx, lv: Lever, supplier: str, buyer: str, material: str, share: float,
               lead_time: Any, usable_from: _dt.date | None, fld: str,
               extra: dict | None = None, explicit_from: bool = False) -> None:
    """The supplier takes *share* of the buyer's orders for *material*; the buyer's other lanes
    scale down proportionally. An existing lane from the supplier has its share set."""
    lanes = ctx.data["lanes"]
    inbound = [l for l in lanes if l["to"] == buyer and l["material"] == material]
    own = [l for l in inbound if l["from"] == supplier]
    others = [l for l in inbound if l["from"] != supplier]
    rest = sum(l["share"] for l in others)
    if not others or rest <= 0:
        raise ctx.err(lv, f"buyer {buyer!r} has no other lane for {material!r} to take a share "
                          "from", fld)
    for l in others:
        l["share"] = l["share"] * (1.0 - share) / rest
    if own:
        if explicit_from:
            raise ctx.err(lv, f"lane {supplier}->{buyer}:{material} exists: network shares are "
                              "not dated, so its new share holds from the run start; drop "
                              "'from'", fld)
        own[0]["share"] = share
        return
    lane = {"from": supplier, "to": buyer, "material": material, "lead_time": lead_time,
            "share": share,
            "source": f"plan '{lv.plan}', lever '{lv.id}': {lv.source}"}
    if usable_from is not None:
        q = ctx.day(usable_from)
        if q > 0:
            lane["qualification_days"] = q
    if extra:
        lane.update(extra)
    lanes.append(lane)


def _apply_buyers(ctx: _Ctx, lv: Lever, supplier: str, buyers: list[dict]) -> None:
    for j, b in enumerate(buyers):
        fld = f"buyers[{j}]"
        m = b["material"]
        if "node" in b:
            _node(ctx, lv, b["node"], f"{fld}.node")
            chosen = [b["node"]]
        else:
            chosen = [n for n in _select(ctx, b)
                      if n != supplier and any(l["to"] == n and l["material"] == m
                                               for l in ctx.data["lanes"])]
            if not chosen:
                raise ctx.err(lv, f"no node matches the selector and buys {m!r}", fld)
        usable = _date(b["from"], ctx.where(lv), f"{fld}.from") if "from" in b else lv.online
        extra = {k: b[k] for k in ("capacity_t_per_year", "route") if k in b}
        for buyer in chosen:
            _rebalance(ctx, lv, supplier, buyer, m, float(b["share"]), b["lead_time"], usable,
                       fld, extra, explicit_from="from" in b)


def _schedule(lv: Lever, full: float) -> dict:
    """The production table's capacity fields for a line of full size *full* on the lever's
    ramp (0 before online)."""
    sched = [{"from": d, "t_per_year": full * s} for d, s in lv.steps()]
    return {"capacity_t_per_year": 0.0, "capacity_schedule": sched}


def _add_node(ctx: _Ctx, lv: Lever, nid: str, node: dict, inbound: list[dict],
              inputs_from: _dt.date) -> None:
    if nid in ctx.data["nodes"]:
        raise ctx.err(lv, f"node {nid!r} is already in network '{ctx.net.name}'", "node_id")
    node = _plain(node)
    node.setdefault("name", nid)
    node.setdefault("source", f"plan '{lv.plan}', lever '{lv.id}': {lv.source}")
    for m, p in node.get("production", {}).items():
        full = float(p.pop("capacity_t_per_year"))
        p.update(_schedule(lv, full))
        p.setdefault("target_stock", full * (float(p.get("batch_days", 7.0)) + 14.0) / 365.0)
        p.setdefault("source", f"plan '{lv.plan}', lever '{lv.id}': {lv.source}; "
                               "target stock derived: full capacity x (batch + 14 d)")
    ctx.data["nodes"][nid] = node
    q = ctx.day(inputs_from)
    for j, l in enumerate(inbound):
        l = _plain(l)
        if "usable_from" in l:     # a date for this lane instead of inputs_from
            l["qualification_days"] = ctx.day(_date(l.pop("usable_from"), ctx.where(lv),
                                                    f"lanes[{j}].usable_from"))
        l.setdefault("to", nid)
        if l["to"] != nid:
            raise ctx.err(lv, f"an inbound lane must go to {nid!r}", f"lanes[{j}].to")
        l.setdefault("source", f"plan '{lv.plan}', lever '{lv.id}': {lv.source}")
        if q > 0 and "qualification_days" not in l:
            l["qualification_days"] = q
        ctx.data["lanes"].append(l)
    # recipe inputs without a stock table: an (s, S) policy by the default network's rule
    stocks = node.setdefault("stock", {})
    for m, p in node.get("production", {}).items():
        full = max(s["t_per_year"] for s in p["capacity_schedule"])
        for inp, qty in p.get("recipe", {}).items():
            if inp in stocks:
                continue
            ins = [l for l in ctx.data["lanes"] if l["to"] == nid and l["material"] == inp]
            if not ins:
                raise ctx.err(lv, f"recipe input {inp!r} of {m!r} has no inbound lane; add "
                                  "[[levers.lanes]]", "lanes")
            try:
                from .distributions import from_spec
                lead = sum(l.get("share", 1.0) * from_spec(l["lead_time"]).mean for l in ins)
            except (ModelError, KeyError, TypeError) as exc:
                raise ctx.err(lv, f"inbound lane lead_time: {exc}", "lanes") from None
            use = full * float(qty) / 365.0
            s = use * (lead + 7.0 + 30.0 + float(p.get("batch_days", 7.0)))
            stocks[inp] = {"initial": 0.0,
                           "policy": {"type": "sS", "s": s, "S": s + 14.0 * use},
                           "source": "derived by sim.plans (rule of "
                                     "networks/rare_earth_2025.toml): "
                                     f"usage {use:.3g} t/d at full capacity x (lead time "
                                     f"{lead:.3g} d + 7 d + 30 d cover + one batch) = s; S = s "
                                     "+ 14 d of usage; initial 0 (bought before online)"}
    ctx.control_nodes.append((lv.params, nid))


def _lever_new_facility(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    inputs_from = lv.online - _days(float(p.get("inputs_days", 90)))
    _add_node(ctx, lv, p["node_id"], p["node"], p.get("lanes", []), inputs_from)
    _apply_buyers(ctx, lv, p["node_id"], p.get("buyers", []))


def _lever_capacity_expansion(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    node = _node(ctx, lv, p["node"], "node")
    m = p["material"]
    prod = node.get("production", {}).get(m)
    if prod is None:
        raise ctx.err(lv, f"node {p['node']!r} does not produce {m!r}", "material")
    spec = ctx.net.nodes[p["node"]].production[m]
    add = float(p["add_t_per_year"])
    dates = sorted({d for d, _ in spec.capacity if d is not None} | {d for d, _ in lv.steps()})
    undated = [c for d, c in spec.capacity if d is None]
    prod.pop("capacity_t_per_year", None)
    if undated:
        prod["capacity_t_per_year"] = undated[-1]
    prod["capacity_schedule"] = [
        {"from": d, "t_per_year": spec.capacity_on(d) + add * lv.level_on(d)} for d in dates]
    prod["source"] = (prod.get("source", "") + f"; plan '{lv.plan}', lever '{lv.id}' adds "
                      f"{add:g} t/yr from {lv.online} ({lv.source})")
    _apply_buyers(ctx, lv, p["node"], p.get("buyers", []))


def _lever_offtake(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    _node(ctx, lv, p["supplier"], "supplier")
    _apply_buyers(ctx, lv, p["supplier"], p["buyers"])


def _lever_stockpile(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    holder = p["holder"]
    if "node" in p:
        node = _plain(p["node"])
        if node.get("kind") != "stockpile":
            raise ctx.err(lv, "a new reserve holder must be of kind \"stockpile\"", "node.kind")
        _add_node(ctx, lv, holder, node, p.get("lanes", []), lv.online)
    else:
        if p.get("lanes"):
            for l in p["lanes"]:
                l = _plain(l)
                l.setdefault("to", holder)
                l.setdefault("source", f"plan '{lv.plan}', lever '{lv.id}': {lv.source}")
                ctx.data["lanes"].append(l)
    node = _node(ctx, lv, holder, "holder")
    m = p["material"]
    if m not in ctx.data["materials"]:
        raise ctx.err(lv, f"material {m!r} is not in network '{ctx.net.name}'", "material")
    reserve = node.setdefault("reserve", {})
    if m in reserve:
        raise ctx.err(lv, f"node {holder!r} already holds a reserve of {m!r}", "material")
    reserve[m] = {
        "target_t": float(p["target_t"]),
        "build_rate_t_per_year": float(p["build_rate_t_per_year"]),
        "build_start": lv.online,
        "release_cover_days": float(p["release_cover_days"]),
        "release_rate_t_per_day": float(p["release_rate_t_per_day"]),
        "serve": list(_as_list(p["serve"])),
        "civil": bool(p.get("civil", False)),
        "replenish": bool(p.get("replenish", True)),
        "funded_price_usd_per_t": float(p["funded_price_usd_per_t"]),
        "source": f"plan '{lv.plan}', lever '{lv.id}': {lv.source}",
    }
    if "order_every_days" in p:
        reserve[m]["order_every_days"] = float(p["order_every_days"])
    # the reserve buys by its build rule: the holder's stock keeps its holding, loses its policy
    st = node.setdefault("stock", {}).setdefault(m, {"initial": 0.0})
    if st.pop("policy", None) is not None:
        st["source"] = (st.get("source", "") + f"; plan '{lv.plan}', lever '{lv.id}': the "
                        "ordering policy gives way to the reserve's build rule")
    # lanes from the holder to each served buyer of the material (share 0: release only)
    sectors = {n.get("sector") for n in ctx.data["nodes"].values()}
    served = []
    for s in _as_list(p["serve"]):
        if s in ctx.data["nodes"]:
            served.append(s)
        elif s in sectors:
            served.extend(_select(ctx, {"sectors": [s]}, demand_of=m))
        else:
            raise ctx.err(lv, f"{s!r} is neither a node nor a sector of network "
                              f"'{ctx.net.name}'", "serve")
    lead = p.get("lead_time", {"dist": "fixed", "value": 6.0})
    for buyer in served:
        if buyer == holder:
            continue
        if not any(l["from"] == holder and l["to"] == buyer and l["material"] == m
                   for l in ctx.data["lanes"]):
            ctx.data["lanes"].append({
                "from": holder, "to": buyer, "material": m, "lead_time": lead, "share": 0.0,
                "source": f"plan '{lv.plan}', lever '{lv.id}': release lane of the "
                          "reserve (share 0: buyers do not order from it)"})


def _lever_safety_stock(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    if lv.start > ctx.start:
        raise ctx.err(lv, f"starts {lv.start}, after the run start {ctx.start}: network "
                          "policies are not dated, so a safety-stock raise holds from the run "
                          "start", "start")
    extra = float(p["extra_days"])
    chosen = _select(ctx, p)
    if "nodes" in p:
        for nid in _as_list(p["nodes"]):
            _node(ctx, lv, nid, "nodes")
    mats = set(_as_list(p["materials"])) if "materials" in p else None
    changed = 0
    for nid in chosen:
        spec = ctx.net.nodes[nid]
        node = ctx.data["nodes"][nid]
        for m, st in node.get("stock", {}).items():
            pol = st.get("policy")
            if pol is None or pol.get("type", "none") == "none":
                continue
            if mats is not None and m not in mats:
                continue
            if m in spec.demand:
                use = spec.demand[m].rate_t_per_year / 365.0
            else:
                use = sum(pr.capacity_on(ctx.start) * pr.recipe.get(m, 0.0)
                          for pr in spec.production.values()) / 365.0
            if use <= 0:
                continue
            add = use * extra
            if pol["type"] == "sS":
                pol["s"] += add
                pol["S"] += add
            elif pol["type"] == "base_stock":
                pol["S"] += add
            elif pol["type"] == "rQ":
                pol["r"] += add
            st["source"] = (st.get("source", "") + f"; plan '{lv.plan}', lever "
                            f"'{lv.id}': +{extra:g} d of usage ({add:.3g} t) on the policy "
                            f"levels ({lv.source})")
            changed += 1
    if not changed:
        raise ctx.err(lv, "no stock with an ordering policy matches the selectors", "kinds")


def _lever_qualification(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    for k in ("from", "to"):
        _node(ctx, lv, p[k], k)
    if any(l["from"] == p["from"] and l["to"] == p["to"] and l["material"] == p["material"]
           for l in ctx.data["lanes"]):
        raise ctx.err(lv, f"lane {p['from']}->{p['to']}:{p['material']} already exists", "from")
    _rebalance(ctx, lv, p["from"], p["to"], p["material"], float(p["share"]), p["lead_time"],
               lv.online, "to")


def _surge_factor(ctx: _Ctx, nid: str, m: str, day: _dt.date) -> float:
    """The scenario's demand multiplier of (node, material) on *day* (overlaps multiply)."""
    node = ctx.net.nodes[nid]
    f = 1.0
    for s in ctx.scen.demand_surges:
        if s.node is not None and s.node != nid:
            continue
        if s.sector is not None and s.sector != node.sector:
            continue
        if s.material is not None and s.material != m:
            continue
        if s.start <= day < s.end:
            f *= s.factor
    return f


def _year_steps(lv: Lever, per_year: float | None,
                cap: float) -> list[tuple[_dt.date, _dt.date, float]]:
    """(from, to, share) pieces: the share grows by *per_year* each year from the online date
    up to *cap* (at once without *per_year*); the last piece is open-ended."""
    out = []
    k = 1
    while True:
        share = cap if per_year is None else min(cap, k * per_year)
        a = _add_years(lv.online, k - 1)
        if share >= cap - 1e-12:
            out.append((a, _OPEN_END, cap))
            return out
        out.append((a, _add_years(lv.online, k), share))
        k += 1


def _add_years(d: _dt.date, years: float) -> _dt.date:
    """*d* moved by *years*: calendar years when whole (29 Feb -> 28 Feb), else 365.25-day
    years."""
    if float(years).is_integer():
        y = d.year + int(years)
        try:
            return d.replace(year=y)
        except ValueError:
            return d.replace(year=y, day=28)
    return d + _days(round(365.25 * years))


def _lever_substitution(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    old = p["material"]
    new = p.get("to")
    for m in filter(None, (old, new)):
        if m not in ctx.data["materials"]:
            raise ctx.err(lv, f"material {m!r} is not in network '{ctx.net.name}'",
                          "material" if m == old else "to")
    chosen = _select(ctx, p, demand_of=old)
    if not chosen:
        raise ctx.err(lv, f"no demand node matches the selectors and buys {old!r}", "sectors")
    ratio = float(p.get("ratio", 1.0))
    for nid in chosen:
        spec = ctx.net.nodes[nid]
        if new is not None and new not in spec.demand:
            raise ctx.err(lv, f"node {nid!r} does not buy {new!r}: it cannot switch to it "
                              "(narrow the selectors, or leave 'to' out for thrifting)", "to")
        r_old = spec.demand[old].rate_t_per_year
        for a, b, share in _year_steps(lv, float(p["share_per_year"]), float(p["cap_share"])):
            src = (f"plan '{lv.plan}', lever '{lv.id}': {share:.3g} of {old} demand "
                   f"switches{' to ' + new if new else ''} ({lv.source})")
            ctx.surges.append({"node": nid, "material": old, "factor": 1.0 - share,
                               "start": a, "end": b, "source": src})
            if new is not None:
                r_new = spec.demand[new].rate_t_per_year
                ctx.surges.append({"node": nid, "material": new,
                                   "factor": 1.0 + share * ratio * r_old / r_new,
                                   "start": a, "end": b, "source": src})


def _lever_recycling(ctx: _Ctx, lv: Lever) -> None:
    p = lv.params
    m = p["material"]
    scrap = _as_list(p["scrap_materials"])
    for s in scrap:
        if s not in ctx.data["materials"]:
            raise ctx.err(lv, f"material {s!r} is not in network '{ctx.net.name}'",
                          "scrap_materials")
    sel = {k: p[k] for k in ("sectors", "countries", "nodes") if k in p}
    chosen = [n for n in _select(ctx, sel)
              if any(s in ctx.data["nodes"][n].get("demand", {}) for s in scrap)]
    if not chosen:
        raise ctx.err(lv, "no demand node matches the selectors and buys the scrap materials",
                      "sectors")
    delay = float(p["delay_years"])
    yld = float(p["yield_t_per_t"])
    per_year = float(p["share_per_year"]) if "share_per_year" in p else None
    pieces = _year_steps(lv, per_year, float(p["share"]))
    # one step a year from the online date (the share's ramp, and the demand of delay_years
    # before), for ten years after the share reaches its cap
    steps = []
    last = len(pieces) - 1 + 10
    for k in range(last + 1):
        d = _add_years(lv.online, k)
        share = next(sh for a, b, sh in pieces if a <= d < b)
        then = _add_years(d, -delay)
        eol = sum(ctx.net.nodes[n].demand[s].rate_t_per_year * _surge_factor(ctx, n, s, then)
                  for n in chosen for s in scrap if s in ctx.net.nodes[n].demand)
        steps.append({"from": d, "t_per_year": share * yld * eol})
    nid = p["node_id"]
    node = _plain(p["node"])
    prod = node.setdefault("production", {}).setdefault(m, {})
    prod["recipe"] = {}
    prod["capacity_t_per_year"] = max(s["t_per_year"] for s in steps) if steps else 0.0
    # _add_node makes a schedule on the lever's ramp; the recycler's follows demand instead
    _add_node(ctx, lv, nid, node, [], lv.online)
    ctx.data["nodes"][nid]["production"][m]["capacity_schedule"] = steps
    ctx.data["nodes"][nid]["production"][m]["source"] = (
        f"plan '{lv.plan}', lever '{lv.id}': capacity = share x {yld:g} t/t x modelled "
        f"demand for {', '.join(scrap)} of {len(chosen)} nodes {delay:g} years before "
        f"({lv.source})")
    _apply_buyers(ctx, lv, nid, p.get("buyers", []))


_APPLY = {
    "new_facility": _lever_new_facility,
    "capacity_expansion": _lever_capacity_expansion,
    "offtake": _lever_offtake,
    "stockpile": _lever_stockpile,
    "safety_stock": _lever_safety_stock,
    "qualification": _lever_qualification,
    "substitution": _lever_substitution,
    "recycling": _lever_recycling,
}


def _extend_controls(ctx: _Ctx, raw: dict) -> None:
    """Put the plan's new nodes on the scenario's node lists (capacity_effect.nodes, changes'
    buyers) by each lever's ``controls`` rule."""
    controls = raw.get("controls", {})
    if not isinstance(controls, dict):
        return
    kinds = {nid: (n.get("country"), n.get("kind")) for nid, n in ctx.data["nodes"].items()}
    for params, nid in ctx.control_nodes:
        rule = params.get("controls", "same-country-kind")
        if rule == "none":
            continue

        def falls(listed: list[str]) -> bool:
            if isinstance(rule, dict):
                return rule["like"] in listed
            return any(kinds.get(x) == kinds[nid] for x in listed if x != nid)

        for c in controls.values():
            if not isinstance(c, dict):
                continue
            ce = c.get("capacity_effect")
            if isinstance(ce, dict) and isinstance(ce.get("nodes"), list) and falls(ce["nodes"]) \
                    and nid not in ce["nodes"] and ctx.net.nodes[nid].production:
                ce["nodes"].append(nid)
            for ch in c.get("changes", []) or []:
                if isinstance(ch, dict) and isinstance(ch.get("buyers"), list) \
                        and falls(ch["buyers"]) and nid not in ch["buyers"]:
                    ch["buyers"].append(nid)


def _extend_controls_objects(ctx: _Ctx, scen: Scenario) -> Scenario:
    """The same rule as :func:`_extend_controls` on a scenario built in Python (no raw)."""
    kinds = {nid: (n.get("country"), n.get("kind")) for nid, n in ctx.data["nodes"].items()}
    controls = []
    for c in scen.controls:
        cap_nodes = list(c.capacity_nodes)
        changes = [replace(ch) for ch in c.changes]
        for params, nid in ctx.control_nodes:
            rule = params.get("controls", "same-country-kind")
            if rule == "none":
                continue

            def falls(listed) -> bool:
                if isinstance(rule, dict):
                    return rule["like"] in listed
                return any(kinds.get(x) == kinds[nid] for x in listed if x != nid)

            if cap_nodes and falls(cap_nodes) and nid not in cap_nodes \
                    and ctx.net.nodes[nid].production:
                cap_nodes.append(nid)
            for k, ch in enumerate(changes):
                if ch.buyers and falls(ch.buyers) and nid not in ch.buyers:
                    changes[k] = replace(ch, buyers=ch.buyers + (nid,))
        controls.append(replace(c, capacity_nodes=tuple(cap_nodes), changes=tuple(changes)))
    return replace(scen, controls=tuple(controls))


def apply_plan(plan: "Plan | str | Path | dict | None", network: "Network | str | Path",
               scenario: "Scenario | str | Path | dict | None" = None, *,
               start: "_dt.date | str | None" = None) -> tuple[Network, Scenario]:
    """Apply *plan* to *network* and *scenario*: new, validated ``(Network, Scenario)``; the
    inputs are untouched.

    Levers apply in order, each validated (an error names the plan file, the lever and the
    field). Dates become run days from *start* (default: the scenario's start, else
    :data:`RUN_START`, the engine's default start). The network is marked with the plan's
    name and lever ids (``[network] plans`` and ``plan_levers``): applying the plan, or one
    sharing a lever with it, to that network again is an error. The scenario gains the plan's
    demand surges and the plan's new nodes on its node lists (see the module docstring), and is
    checked against the new network.
    """
    plan = resolve_plan(plan)
    net = load_network(network) if not isinstance(network, Network) else network
    scen = resolve_scenario(scenario)
    run_start = (_date(start, "apply_plan", "start") if start is not None
                 else scen.start or RUN_START)
    applied = list(net.meta.get("plans", []) or [])
    applied_levers = set(net.meta.get("plan_levers", []) or [])
    for lv in plan.levers:
        key = f"{lv.plan}:{lv.id}"
        if key in applied_levers:
            raise ModelError(f"lever '{lv.id}' of plan '{lv.plan}' is already applied to "
                             f"network '{net.name}' (plans applied: {', '.join(applied)}): a "
                             "plan is applied once", file=plan.file,
                             where=f"plan '{plan.name}'")
    if plan.name in applied:
        raise ModelError(f"plan '{plan.name}' is already applied to network '{net.name}': a "
                         "plan is applied once", file=plan.file, where=f"plan '{plan.name}'")
    ctx = _Ctx(plan, net, scen, run_start)
    for lv in plan.levers:
        _APPLY[lv.type](ctx, lv)
        ctx.rebuild(lv)
    head = ctx.data["network"]
    head["plans"] = applied + [plan.name]
    head["plan_levers"] = sorted(applied_levers | {f"{lv.plan}:{lv.id}" for lv in plan.levers})
    try:
        net2 = Network.from_dict(ctx.data, file=net.file)
    except ModelError as exc:
        raise ModelError(f"the changed network is invalid: {exc}", file=plan.file,
                         where=f"plan '{plan.name}'") from None
    ctx.net = net2
    if ctx.scen_raw is not None:
        raw = ctx.scen_raw
        if ctx.surges:
            raw.setdefault("demand_surges", [])
            raw["demand_surges"] = list(raw["demand_surges"]) + ctx.surges
        _extend_controls(ctx, raw)
        try:
            scen2 = Scenario.from_dict(raw, file=scen.file)
        except ModelError as exc:
            raise ModelError(f"the changed scenario is invalid: {exc}", file=plan.file,
                             where=f"plan '{plan.name}'") from None
    else:
        from .scenario import DemandSurge
        surges = tuple(DemandSurge(s["factor"], s["start"], s["end"], node=s["node"],
                                   material=s["material"], source=s["source"])
                       for s in ctx.surges)
        scen2 = _extend_controls_objects(
            ctx, replace(scen, demand_surges=scen.demand_surges + surges))
    try:
        scen2.check_network(net2)
    except ModelError as exc:
        raise ModelError(f"the scenario does not fit the changed network: {exc}",
                         file=plan.file, where=f"plan '{plan.name}'") from None
    return net2, scen2
