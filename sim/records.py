"""What the engine shares with the policy layer and the results: event priorities, the codes
of the change records, and the plain record of a finished run (:class:`Recording`).

A leaf module (it imports nothing from ``sim``), so that :mod:`sim.engine`,
:mod:`sim.policy`, :mod:`sim.results` and :mod:`sim.flows` read the same numbers and
structures without importing one another.

Priorities
----------
SimPy orders simultaneous events by ``(time, priority, insertion id)``; the engine gives every
event one of these priorities (see "Order of events within one instant" in :mod:`sim.engine`).

Record codes
------------
The change log of each stock holds ``(time, code, quantity)`` records. The codes are floats
because the logs become float arrays after the run: numpy converts a Python int to a double
about 2.5 times slower than a float, which made the conversion of a log a third slower.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PRIORITY_POLICY", "PRIORITY_ARRIVAL", "PRIORITY_PRODUCTION", "PRIORITY_DEMAND",
    "PRIORITY_REVIEW", "REC_RECEIVED", "REC_PRODUCED", "REC_SHIPPED", "REC_CONSUMED",
    "REC_ORDERED", "REC_ORDER_IN", "REC_CANCELLED", "REC_RETURNED", "REC_BACKLOG_DROP",
    "Recording", "StockLog", "DemandLog", "LaneLog", "LineLog",
]

PRIORITY_POLICY = 0        # policy changes take effect first
PRIORITY_ARRIVAL = 1       # shipments arrive and are put away; policy reviews end
PRIORITY_PRODUCTION = 2    # batches complete and new ones start
PRIORITY_DEMAND = 3        # customer orders (each demand stock has its own value in [3, 4))
PRIORITY_REVIEW = 4        # periodic inventory reviews

REC_RECEIVED = 0.0      # arrival from a lane
REC_PRODUCED = 1.0      # production completed into this stock
REC_SHIPPED = 2.0       # shipped out on a lane
REC_CONSUMED = 3.0      # consumed as a recipe input
REC_ORDERED = 4.0       # replenishment order placed (on order +)
REC_ORDER_IN = 5.0      # order received from a downstream lane (backlog +)
REC_CANCELLED = 6.0     # replenishment cancelled by the supplier side (on order -)
REC_RETURNED = 7.0      # shipment returned to this stock (e.g. licence denied)
REC_BACKLOG_DROP = 8.0  # backlog removed without shipping (buyer re-routed)



# -- what a run hands over ----------------------------------------------------------------------
# Model.run returns a Recording: numpy arrays and plain values only (no engine object), from
# which sim.results.Run.from_recording builds the Run. Logs are float arrays, one row a record.

@dataclass
class StockLog:
    """Change log and final state of one stock (the Run keeps it as
    :class:`sim.results.StockRecord`)."""

    node: str
    material: str
    kind: str
    country: str
    sector: str
    initial: float
    final_on_hand: float
    final_on_order: float
    final_backlog: float
    log: np.ndarray              # (n, 3): time, code (REC_*), quantity
    price: float
    holding_rate: float
    is_demand: bool


@dataclass
class DemandLog:
    """The customer stream of one demand stock as drawn, and its level by epoch (the times
    between two replenishment arrivals)."""

    node: str
    material: str
    sector: str
    country: str
    lost: bool                   # unmet demand is lost (else backordered)
    times: np.ndarray            # order times (days)
    sizes: np.ndarray            # order sizes (t)
    cum: np.ndarray              # exclusive prefix sums of the sizes (one longer)
    epochs: np.ndarray           # (n, 3): start time, first order index, level at the start


@dataclass
class LaneLog:
    """Shipments of one lane (the Run keeps it as :class:`sim.results.LaneRecord`): shipped
    time (left the supplier), quantity, arrival time, tariff rate and dispatch time (released
    past licensing and clearance: across the border; see :mod:`sim.flows`)."""

    id: str
    src: str
    dst: str
    material: str
    price: float
    # (n, 5): shipped time, quantity, arrival time, tariff rate, dispatch time
    log: np.ndarray
    in_transit_final: float


@dataclass
class LineLog:
    """Batches and capacity of one production line."""

    node: str
    material: str                # its output
    log: np.ndarray              # (n, 3): start, quantity, end of each batch
    wip: float                   # work in process at the end
    capacity: np.ndarray         # (n, 3): time, capacity in force (t/day), outages in force


@dataclass
class Recording:
    """Everything one replication recorded, as :meth:`sim.engine.Model.run` hands it over:
    what was run (names, digests, seed, dates) and the logs of stocks, demand streams, lanes,
    lines and the policy layer."""

    network_name: str
    network_digest: str
    scenario_name: str
    scenario_digest: str
    seed: int
    replication: int
    start: _dt.date
    horizon: float               # days
    shortage_from: float         # day from which first_shortage_after_day counts
    stocks: list[StockLog]
    demand: list[DemandLog]
    lanes: list[LaneLog]
    lines: list[LineLog]
    policy_events: list[tuple[float, str, str]]          # (day, kind, label)
    truce_outcomes: list[str]
    # licence reviews: (time, control id, lane index, tonnes, review days, approved)
    licence_log: list[tuple]
    policy_tables: dict          # the policy layer's decision logs (PolicyEngine.tables)
    # node id -> (its fleet spec, {material: mean daily demand, t}) for fleet nodes
    fleets: dict
    stats: dict = field(default_factory=dict)           # timings and the number of events
    # strategic reserves (sim.engine.Reserve.record): purchases and releases of each
    reserves: list = field(default_factory=list)
