"""The peer benchmark network (the shared peer benchmark's ``PEER_NETWORK.md``) in this
project's schema.

:func:`peer_network` builds the layered network that the peer library SupplyNetPy 0.5.1 runs in
the shared peer driver ``bench_supplynetpy.py`` (see ``PEER_BENCH`` in benchmarks/README.md;
LREE mines, HREE mines, processors, manufacturers,
demand points; 1,095 days; Poisson customers, mean 1 order/day of 1..10 units; lost sales), so
that both simulators do the same work and their times can be compared. :func:`peer_scenario`
builds the "disrupt" variant's scenario.

Mapping, and why (each choice follows what SupplyNetPy 0.5.1 actually does, read from
``SupplyNetPy/Components/core.py``):

* **Mines** -> ``kind = "mine"`` producing ``LREE`` / ``HREE`` at 30 / 10 units a day
  (``capacity_t_per_year`` = 365 x that, ``batch_days = 1``: one batch a day, like the peer's
  ``Supplier.behavior`` that mines ``extraction_quantity`` every ``extraction_time``), with
  ``target_stock`` = the peer's inventory capacity (5,000 / 2,000: the peer stops mining when
  full) and ``initial`` = its initial level (2,500 / 800). No ordering policy (the peer's mines
  have none).
* **Processors** -> ``kind = "processor"`` making ``oxide`` from ``LREE 1.0 + HREE 0.25`` (just
  LREE in the small network, which has no HREE mine), at 100 units per 2 days
  (``capacity_t_per_year = 18,250``, ``batch_days = 2``). The peer's ``Manufacturer`` is
  *make-to-plan*: when its inventory position P (oxide on hand + units planned but not yet made)
  falls to s = 300 it plans S - P units and at that moment orders exactly the raw materials for
  them, then makes them as the raw materials arrive; it starts with 600 oxide and no raw
  material. Ours does the same with *echelon* policies on the raw-material stocks
  (``policy.echelon = true``: their position counts the oxide position times the recipe
  quantity): LREE (s, S) = (300, 800), HREE (75, 200), oxide ``target_stock = 800`` so every
  raw unit that arrives is made into oxide; 600 oxide and no raw material at the start.
* **Manufacturers** -> ``kind = "magnet_maker"`` that only stocks oxide and ships it on
  ((s, S) = (200, 500), initial 400): the peer's ``InventoryNode("distributor")``.
* **Demand points** -> ``kind = "defense_user"``, ``sector = "defense"``, ``unmet = "lost"``,
  oxide (s, S) = (40, 100), initial 100, customers ``process = "renewal"`` with exponential
  inter-arrival times of mean 1 day and ``uniform_int`` 1..10 units.
* **Two suppliers**: the peer's default supplier selection is ``SelectFirst`` in ``"fixed"``
  mode, so *every* order goes to the first supplier link created (the second is used only while
  the first supplier or link is disrupted); a ``Manufacturer`` likewise orders each raw material
  from the first supplier of it that can take orders. So buyers with two lanes have
  ``order_split = "single"`` and shares (1, 0): smooth weighted round-robin then always picks the
  first lane while it is usable and falls back to the other when it is closed. (In ``"fixed"``
  mode the peer remembers the supplier of a node's *first* order, even when that was a
  fallback: see below.)
* **Countries**: every node is in one country ("US"), so provenance tracking (which the peer
  does not have) stays trivial; material prices are the peer's unit prices (3, 12, 20).

* **Whole orders**: a peer supplier ships an order only when it can ship all of it (strict
  FIFO), so every supplier node here sets ``partial_shipments = false``, which does the same.

Differences that remain (engine semantics, not mapping choices; see the benchmark report):

* A peer customer who finds too little stock takes *nothing* (``tolerance = 0``,
  ``consume_available = False``); ours takes what there is (type-2 fill with partial fills).
  This is the whole of the base variant's gap.
* A peer ``InventoryNode`` keeps the supplier of its first order for good (``SelectFirst`` in
  ``"fixed"`` mode). When a manufacturer's first order falls in an outage of its first lane
  (the disrupt variant), its second processor becomes its supplier for the rest of the run
  and serves two manufacturers; ours returns to the first lane when it reopens.
* The peer's first customer order arrives at time 0; a production batch always takes 2 days
  (ours takes quantity / rate).

Fill-rate agreement (``benchmarks/benchmark.py`` reports it in every run). The benchmark's
default diagnostic, ``same-rules``, re-runs the peer on the same seeds with the first two rules
set to ours through the library's own options (customers ``consume_available = True``,
manufacturers ``supplier_selection_mode = "dynamic"``). Against it the fill rates agree in
every configuration (26 Nov 2026, 16 replications, 2-core machine): medium base +0.01 points
(z = 0.0), medium disrupt -0.12 (z = -0.2), large base -0.19 (z = -1.1), large disrupt -0.12
(z = -0.5). Against the peer as the shared driver runs it ours is higher: +0.56 (z = 1.6),
-0.03 (z = -0.1), +0.61 (z = 3.4), +0.83 (z = 3.3). Found one disruption at a time (large, 16
replications, customers taking what there is): the processor->manufacturer lane outages left
+0.63 points (z = 3.2) with the peer's fixed supplier and +0.09 (z = 0.5) with it chosen per
order; whether a closure cancels or keeps the orders queued on the lane moved it by 0.02, so
closures are not the cause.

Variant "disrupt" (:func:`peer_scenario`):

* random mine outages, with the peer's semantics: a disrupted peer ``Supplier`` keeps mining
  but *accepts no new orders* (buyers use the next supplier or are blocked), so by default
  (``mine_outages="lanes"``) the peer's process (probability 0.002 a day, recovery uniform
  10..60 days) is sampled here, seeded by ``seed``, and closes the mine's outbound lanes for
  those periods. ``mine_outages="production"`` instead gives each mine ``[[outages]]`` with
  ``mtbf_days = 500`` and ``mttr_days = 35`` (exponential): the mine *stops producing* but
  still ships from stock, which its 2,500 units cover, so those outages do not move our fill
  rate at all while the peer's lose it 0.6 points (large, 16 replications): with that
  mapping the disrupt variants' fill rates were apart beyond noise (large: ours 1.4 points
  higher, z = 7.4 with 24 replications); with the lanes mapping the gap is that of the base
  variant (see above).
* processors 0 and 1 offline from day 365 for 365 days: ``[[outages]]`` (production stops) plus
  ``[[lane_closures]]`` of their outbound lanes over the same period (a disrupted peer node takes
  no new orders, so its buyers fall back to their other processor).
* random outages of processor->manufacturer lanes (probability 0.002 a day, recovery uniform
  5..30 days): our scenario schema has no random lane outages, so they are *sampled* here from
  that same process (seeded by ``seed``) and written as fixed ``[[lane_closures]]``.
* every closure here has ``queued_orders = "keep"``: a disrupted peer link or node takes no new
  orders but still delivers those already queued, and so do ours (``"reroute"``, this
  project's default, cancels them and the buyer re-orders elsewhere; for the whole disrupt
  variant, large, 16 replications, that moved our fill rate by 0.13 points).
"""

from __future__ import annotations

import datetime as _dt
import math
import random
from typing import Any

import sim

__all__ = ["DAYS", "SIZES", "START", "layer_counts", "network_dict", "peer_network",
           "peer_scenario"]

# name: (lree_mines, hree_mines, processors, manufacturers, demand points)
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "small": (1, 0, 1, 1, 2),
    "medium": (3, 2, 6, 6, 8),
    "large": (12, 8, 24, 24, 32),
}
DAYS = 1095
START = _dt.date(2025, 1, 1)
COUNTRY = "US"

TRI_ORE = {"dist": "triangular", "min": 14, "mode": 30, "max": 60}
TRI_OXIDE = {"dist": "triangular", "min": 7, "mode": 14, "max": 30}
TRI_FINAL = {"dist": "triangular", "min": 2, "mode": 4, "max": 10}


def layer_counts(size: str | int | tuple) -> tuple[int, int, int, int, int]:
    """Tier counts for a size name, an explicit 5-tuple, or a total node count.

    A node count *n* scales the medium network's proportions (3:2:6:6:8 of 25) and puts the
    rounding remainder on the demand points, so the total is exactly *n* (n >= 5).
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)} or a count")
        return SIZES[size]
    if isinstance(size, tuple):
        if len(size) != 5 or any(int(c) < 0 for c in size) or min(size[0], size[2], size[3],
                                                                   size[4]) < 1:
            raise ValueError(f"need 5 counts with at least one mine, processor, manufacturer and "
                             f"demand point, got {size!r}")
        return tuple(int(c) for c in size)  # type: ignore[return-value]
    n = int(size)
    if n < 5:
        raise ValueError(f"need at least 5 nodes, got {n}")
    f = n / 25.0
    base = SIZES["medium"]
    counts = [max(1, round(c * f)) for c in base]
    counts[4] += n - sum(counts)
    if counts[4] < 1:
        raise ValueError(f"cannot lay out {n} nodes")
    return tuple(counts)  # type: ignore[return-value]


def network_dict(size: str | int | tuple = "medium") -> dict[str, Any]:
    """The peer network as the TOML-shaped dict that :meth:`sim.Network.from_dict` reads."""
    n_l, n_h, n_p, n_m, n_d = layer_counts(size)
    hree = n_h > 0
    mats = {
        "LREE": {"name": "LREE concentrate", "elements": ["La", "Ce", "Pr", "Nd"],
                 "price_usd_per_t": 3.0},
        "HREE": {"name": "HREE concentrate", "elements": ["Dy", "Tb"], "price_usd_per_t": 12.0},
        "oxide": {"name": "separated oxide", "elements": ["Nd", "Pr", "Dy", "Tb"],
                  "price_usd_per_t": 20.0},
    }
    if not hree:
        del mats["HREE"]
    nodes: dict[str, dict] = {}
    lanes: list[dict] = []
    for i in range(n_l):
        nodes[f"ML{i}"] = {
            "kind": "mine", "country": COUNTRY, "name": f"LREE mine {i}",
            "partial_shipments": False,
            "production": {"LREE": {"capacity_t_per_year": 30 * 365, "batch_days": 1,
                                    "target_stock": 5000}},
            "stock": {"LREE": {"initial": 2500}},
        }
    for i in range(n_h):
        nodes[f"MH{i}"] = {
            "kind": "mine", "country": COUNTRY, "name": f"HREE mine {i}",
            "partial_shipments": False,
            "production": {"HREE": {"capacity_t_per_year": 10 * 365, "batch_days": 1,
                                    "target_stock": 2000}},
            "stock": {"HREE": {"initial": 800}},
        }
    for i in range(n_p):
        recipe = {"LREE": 1.0, "HREE": 0.25} if hree else {"LREE": 1.0}
        # make-to-plan as the peer: raw materials are ordered on the echelon position (raw on
        # hand + on order + recipe x oxide position), (s, S) = (300, 800) in oxide units
        stock = {
            "oxide": {"initial": 600},
            "LREE": {"initial": 0, "policy": {"type": "sS", "s": 300.0, "S": 800.0,
                                              "echelon": True}},
        }
        if hree:
            stock["HREE"] = {"initial": 0, "policy": {"type": "sS", "s": 75.0, "S": 200.0,
                                                      "echelon": True}}
        nodes[f"P{i}"] = {
            "kind": "processor", "country": COUNTRY, "name": f"processor {i}",
            "order_split": "single", "partial_shipments": False,
            "production": {"oxide": {"capacity_t_per_year": 50 * 365, "batch_days": 2,
                                     "target_stock": 800, "recipe": recipe}},
            "stock": stock,
        }
        for j in range(min(2, n_l)):
            lanes.append({"from": f"ML{(i + j) % n_l}", "to": f"P{i}", "material": "LREE",
                          "lead_time": TRI_ORE, "share": 1.0 if j == 0 else 0.0})
        if hree:
            lanes.append({"from": f"MH{i % n_h}", "to": f"P{i}", "material": "HREE",
                          "lead_time": TRI_ORE, "share": 1.0})
    for i in range(n_m):
        nodes[f"F{i}"] = {
            "kind": "magnet_maker", "country": COUNTRY, "name": f"magnet/OEM {i}",
            "order_split": "single", "partial_shipments": False,
            "stock": {"oxide": {"initial": 400, "policy": {"type": "sS", "s": 200, "S": 500}}},
        }
        for j in range(min(2, n_p)):
            lanes.append({"from": f"P{(i + j) % n_p}", "to": f"F{i}", "material": "oxide",
                          "lead_time": TRI_OXIDE, "share": 1.0 if j == 0 else 0.0})
    for i in range(n_d):
        nodes[f"D{i}"] = {
            "kind": "defense_user", "country": COUNTRY, "sector": "defense", "unmet": "lost",
            "name": f"defense depot {i}", "order_split": "single",
            "stock": {"oxide": {"initial": 100, "policy": {"type": "sS", "s": 40, "S": 100}}},
            "demand": {"oxide": {"process": "renewal",
                                 "interarrival": {"dist": "exponential", "mean": 1},
                                 "order_size": {"dist": "uniform_int", "min": 1, "max": 10}}},
        }
        two = i < n_d // 4 and n_m > 1
        lanes.append({"from": f"F{i % n_m}", "to": f"D{i}", "material": "oxide",
                      "lead_time": TRI_FINAL, "share": 1.0})
        if two:
            lanes.append({"from": f"F{(i + 1) % n_m}", "to": f"D{i}", "material": "oxide",
                          "lead_time": TRI_FINAL, "share": 0.0})
    name = size if isinstance(size, str) else f"{sum((n_l, n_h, n_p, n_m, n_d))}n"
    return {
        "network": {"name": f"peer-{name}",
                    "description": "Layered peer benchmark network (PEER_NETWORK.md)",
                    "source": "PEER_NETWORK.md of the shared peer benchmark"},
        "materials": mats,
        "nodes": nodes,
        "lanes": lanes,
    }


def peer_network(size: str | int | tuple = "medium", variant: str = "base") -> sim.Network:
    """The peer benchmark network of *size* ("small", "medium", "large", a node count, or five
    tier counts) as a validated :class:`sim.Network`.

    The network is the same for both variants; "disrupt" differs only in its scenario
    (:func:`peer_scenario`). Run it for ``DAYS`` (1,095) days, e.g.
    ``sim.simulate(peer_network("medium"), horizon_days=DAYS, seed=1)``.
    """
    if variant not in ("base", "disrupt"):
        raise ValueError(f"variant must be 'base' or 'disrupt', got {variant!r}")
    return sim.Network.from_dict(network_dict(size))


def _sample_outages(rng: random.Random, days: float, p: float, lo: float, hi: float):
    """Outage periods of the peer's random process: each whole day, while up, an outage starts
    with probability *p*; it lasts uniform(lo, hi) days. Returns [(start_day, duration)]."""
    out = []
    t = 0
    log_q = math.log1p(-p)
    while True:
        # failures before the first success of daily Bernoulli(p) checks at t, t+1, ...
        k = int(math.log(1.0 - rng.random()) / log_q)
        start = t + k
        if start >= days:
            return out
        dur = rng.uniform(lo, hi)
        out.append((start, dur))
        t = math.ceil(start + dur)   # the peer resumes its daily checks after recovery


def _merge(periods: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Merge overlapping (start, duration) periods (a lane closed twice at once must stay closed
    until the later one ends; our closure processes would reopen it early)."""
    out: list[list[float]] = []
    for s, d in sorted(periods):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], s + d)
        else:
            out.append([s, s + d])
    return [(s, e - s) for s, e in out]


def peer_scenario(size: str | int | tuple = "medium", variant: str = "disrupt", seed: int = 0,
                  mine_outages: str = "lanes", days: float = DAYS,
                  queued_orders: str = "keep") -> sim.Scenario:
    """The scenario of *variant* ("base": the baseline; "disrupt": see the module docstring).

    *seed* drives the sampled lane closures (pass the replication's seed so each replication
    gets its own draw). ``mine_outages="lanes"`` (default) samples the peer's process of random
    mine outages and closes the mine's outbound lanes for those periods (the peer's semantics:
    a disrupted mine accepts no orders); ``"production"`` models them as ``[[outages]]`` with
    MTBF/MTTR (production stops, stock still ships). *queued_orders* is the closures' rule for
    the orders already queued on a lane: ``"keep"`` (default: they still ship, as the peer's
    do) or ``"reroute"`` (the buyer cancels and re-orders them; this project's default).
    """
    end = START + _dt.timedelta(days=int(days))
    head = {"name": f"peer-{variant}", "description": "Peer benchmark variant " + variant,
            "start": START, "end": end}
    if variant == "base":
        return sim.Scenario.from_dict({"scenario": head})
    if variant != "disrupt":
        raise ValueError(f"variant must be 'base' or 'disrupt', got {variant!r}")
    if mine_outages not in ("production", "lanes"):
        raise ValueError(f"mine_outages must be 'production' or 'lanes', got {mine_outages!r}")
    net = network_dict(size)
    rng = random.Random(f"peer-disrupt-{seed}")
    outages: list[dict] = []
    closures: list[dict] = []

    def day(d: float) -> _dt.date:
        return START + _dt.timedelta(days=int(d))

    closed: dict[str, list[tuple[float, float]]] = {}

    def lane_id(l: dict) -> str:
        return f"{l['from']}->{l['to']}:{l['material']}"

    mines = [nid for nid, n in net["nodes"].items() if n["kind"] == "mine"]
    for nid in mines:
        if mine_outages == "production":
            outages.append({"node": nid, "mtbf_days": 500.0, "mttr_days": 35.0})
        else:
            periods = _sample_outages(rng, days, 0.002, 10.0, 60.0)
            for l in net["lanes"]:
                if l["from"] == nid:
                    closed.setdefault(lane_id(l), []).extend(periods)
    procs = [nid for nid, n in net["nodes"].items() if n["kind"] == "processor"]
    for nid in procs[:2]:
        outages.append({"node": nid, "start": day(365), "duration_days": 365.0})
        for l in net["lanes"]:
            if l["from"] == nid:
                closed.setdefault(lane_id(l), []).append((365.0, 365.0))
    for l in net["lanes"]:
        if l["from"] in procs and net["nodes"][l["to"]]["kind"] == "magnet_maker":
            closed.setdefault(lane_id(l), []).extend(_sample_outages(rng, days, 0.002, 5.0, 30.0))
    for lid, periods in closed.items():
        for s, d in _merge(periods):
            if s < days:
                closures.append({"lane": lid, "start": day(s), "duration_days": max(d, 1e-6),
                                 "queued_orders": queued_orders})
    data: dict[str, Any] = {"scenario": head, "outages": outages}
    if closures:
        data["lane_closures"] = closures
    return sim.Scenario.from_dict(data)
