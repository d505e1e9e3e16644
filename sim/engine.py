"""The discrete-event engine: a validated network (plus a scenario) becomes SimPy callbacks.

Time
----
Simulated time is in **days** (floats) since the run's ``start`` date (day 0 = 00:00 of the
start date); day *d* covers ``[d, d + 1)``. Calendar dates in networks and scenarios are turned
into day numbers once, before time starts.

Order of events within one instant
----------------------------------
SimPy orders simultaneous events by ``(time, priority, insertion id)``. The engine gives every
event one of these priorities, so ties are resolved the same way in every run and no tiny time
offsets are needed:

1. ``PRIORITY_POLICY`` (0) -- policy changes (controls, truce, outages, capacity steps) take
   effect first, so a rule that starts on a date applies to everything on that date;
2. ``PRIORITY_ARRIVAL`` (1) -- shipments arrive and are put away (backorders are filled);
3. ``PRIORITY_PRODUCTION`` (2) -- production batches complete and new ones start;
4. ``PRIORITY_DEMAND`` (3) -- customer orders are served; simultaneous orders at different
   demand stocks (e.g. weekly call-offs) in the order the stocks appear in the network
   (each demand stock has its own priority in ``[3, 4)``), so the bulk and the one-event-per-
   order paths break such ties identically;
5. ``PRIORITY_REVIEW`` (4) -- periodic inventory reviews place replenishment orders.

Within one priority, events run in the order they were scheduled (SimPy's FIFO tie-break).
The priorities and the codes of the change records are defined in :mod:`sim.records`, which
the policy layer and the results read too.

What a run hands over
---------------------
:meth:`Model.run` returns a :class:`~sim.records.Recording`: the change logs as numpy arrays
and plain values (names, digests, dates, the final state of each stock). The engine knows
nothing of what is made of it; :func:`sim.simulate` (:mod:`sim.simulation`) builds the
:class:`~sim.results.Run` of it.

What makes it fast
------------------
* No event carries no decision. Customer orders do not depend on the model's state, so each
  demand stream is drawn up front (arrival times and sizes). A demand stock keeps a pointer into
  that stream and a running prefix sum; between replenishment arrivals its level is a known
  function of cumulative demand, so the engine computes (by bisection) the exact customer order
  at which the inventory position first reaches the reorder level and schedules a single event
  there. Orders in between are accounted in bulk, with exactly the results of serving them one
  by one (``demand_mode="events"`` does that, for testing).
* Production lines without inputs (mines) whose output nobody at the node consumes run lazily:
  a batch that completes while no order is queued for the output ships nothing and decides
  nothing, so it is not an event; it is completed (back-to-back full batches in one step) when
  something next touches the output stock. A batch becomes a real event as soon as an order
  queues for the output (``production_mode="events"`` makes every batch an event, for testing).
* Arrivals that decide nothing are not events. With backorders, an arrival at a demand stock
  leaves its inventory position (and so every decision) unchanged: it is settled after the
  run. An arrival at another stock that finds no queued order and no consumer waiting for
  inputs only adds stock: it is held back (with the event id it would have had) and put away
  when the stock is next read, or given its event the moment the stock stops being quiet (an
  order queues, a consumer runs short of inputs). Results are exactly those of one event per
  arrival (``demand_mode="events"`` for demand stocks and ``production_mode="events"`` for
  the others make every arrival an event, for testing).
* Everything frequent is a ``(callback, value)`` entry on SimPy's event queue, keyed like a
  SimPy event by ``(time, priority, id)`` (the compiled build keeps these entries on a heap of
  its own with C keys, :class:`EventHeap`, merged with SimPy's queue by the same keys);
  generator processes are used only for rare things (policy events). :meth:`Model._loop` is SimPy's ``Environment.step`` inlined in a loop,
  which also records the priority and id of the event being processed (lazy lines and
  held-back arrivals need them to order simultaneous events exactly). The SimPy internals
  this needs (its queue, id counter and clock) are read in :mod:`sim.simpy_access` only;
  SimPy's clock is ``Model.now`` itself, so setting it costs nothing per event.
* Suppliers serve queued orders in the callback that adds stock; reorder reviews run in the
  callback that lowers stock; production starts when output falls below target or inputs arrive.
* Python's cyclic garbage collector is paused while a model is built and run (see
  :func:`gc_paused`), and :func:`sim.simulate` takes the finished model apart
  (:meth:`Model.release`) so that reference counting frees it at once: no collection ever
  has to walk it.
* Statistics are appended to flat lists as ``(time, code, quantity)`` records (``list.extend``
  of a tuple costs a fifth of ``array('d').extend``; the compiled build writes C doubles into
  :class:`RecordLog` buffers instead) and turned into daily series and KPIs with numpy after
  the run (:mod:`sim.results`, :mod:`sim.metrics`).
* The install compiles this module with Cython, typed by ``engine.pxd`` (see "The compiled
  engine" at the end): the same code and the same results, a faster engine (figures in
  benchmarks/README.md).

Flow rules
----------
* Orders placed on lanes are split among the buyer's usable lanes in proportion to their shares
  (``order_split = "proportional"``) or sent whole to one lane by smooth weighted round-robin
  (``"single"``); the shares are the network's, or follow landed costs under a scenario's
  ``[sourcing]`` rule (set by :mod:`sim.sourcing` when tariffs change).
  A buyer with ``max_supplier_wait_days`` leaves out, for each order, the lanes
  whose supplier could not ship it within that many days (its queue beyond stock, at its
  production rate), so it does not queue behind a congested supplier while others have stock.
  Orders reach the supplier at once; what it cannot ship now waits in its FIFO backlog.
  Partial shipments are allowed, unless the supplier node sets ``partial_shipments = false``
  (then it ships whole orders only, strictly first come first served). Orders from nodes with
  ``priority > 0`` (rated orders, e.g. US defense under the Defense Priorities and Allocations
  System, 15 CFR 700) are served before unrated ones, first-come first-served within each
  class.
* Raw-material stocks with an ``echelon`` policy order on their own position plus the consuming
  line's output position times the recipe quantity (make-to-plan).
* A lane with ``capacity_t_per_year`` loads shipments one after another at that rate before the
  lead time starts (a single loading dock), so throughput never exceeds capacity.
* Customers who find too little stock take what there is; the rest is backordered or lost per
  the node's ``unmet`` setting.
* Production makes to stock: while output position (on hand - backlog + work in process) is
  below ``target_stock`` and the line is idle, a batch of up to ``capacity x batch_days`` is
  started, limited by the inputs on hand, consuming them at the start and adding output after
  ``quantity / daily capacity`` days.
* Provenance: every stock carries the value share of its rare-earth content by country of origin.
  Mines and processors (``confers_origin``) stamp their country on what they make; other
  producers pass on the value-weighted mix of their inputs; stocks mix what they receive.
  Only extraterritorial controls read it (their exporter's share, against the de minimis
  threshold), so the vectors hold only those exporters' shares (``Model.origins``) and are
  kept only in stocks from which material can reach a lane such a control inspects.
* Strategic reserves (``[nodes.<id>.reserve.<material>]`` on a stockpile; :class:`Reserve`)
  are a policy, not a supplier: their release lanes are outside the buyers' share split; a
  reserve buys at its build rate up to its target and releases, at most its daily rate and to
  its buyers in priority order, while a buyer's cover is below the threshold. A buyer's check
  is one predicted event (as a demand stock's reorder is), not a poll; the buyers' arrivals
  are events (their level is read during the run). Without reserves none of this runs.
"""

from __future__ import annotations

import datetime as _dt
import gc
import math
import time as _time
from bisect import bisect_left
from bisect import bisect_right
from collections import deque
from contextlib import contextmanager
from heapq import heappop as _heappop
from heapq import heappush as _heappush
from operator import itemgetter
from typing import Any

import numpy as np
import simpy

from .errors import ModelError, check_horizon_days
from .network import Network, NodeSpec
from .records import (
    PRIORITY_ARRIVAL,
    PRIORITY_DEMAND,
    PRIORITY_POLICY,
    PRIORITY_PRODUCTION,
    PRIORITY_REVIEW,
    REC_BACKLOG_DROP,
    REC_CANCELLED,
    REC_CONSUMED,
    REC_ORDER_IN,
    REC_ORDERED,
    REC_PRODUCED,
    REC_RECEIVED,
    REC_RETURNED,
    REC_SHIPPED,
    DemandLog,
    LaneLog,
    LineLog,
    Recording,
    StockLog,
)
from .simpy_access import (
    Environment,
    close_process_waiting_on,
    event_ids,
    event_queue,
    raise_if_failed,
    triggered_event,
)
from .streams import BlockSampler, Streams

__all__ = [
    "Model", "run_window", "PRIORITY_POLICY", "PRIORITY_ARRIVAL", "PRIORITY_PRODUCTION",
    "PRIORITY_DEMAND", "PRIORITY_REVIEW", "DEFAULT_START", "DEFAULT_HORIZON_END",
    # the record codes live in sim.records; named here too for code that reads them here
    "REC_RECEIVED", "REC_PRODUCED", "REC_SHIPPED", "REC_CONSUMED", "REC_ORDERED",
    "REC_ORDER_IN", "REC_CANCELLED", "REC_RETURNED", "REC_BACKLOG_DROP",
]

DEFAULT_START = _dt.date(2025, 1, 1)
DEFAULT_HORIZON_END = _dt.date(2029, 1, 1)   # runs cover 2025-2028 unless told otherwise
EPS = 1e-9
_first = itemgetter(0)


try:
    import cython
    _COMPILED = cython.compiled      # a constant: True in the compiled build, else False
except ImportError:                  # Cython is needed only to build the compiled engine
    _COMPILED = False


def records_array(values, width: int) -> np.ndarray:
    """A change log (a flat list of numbers, or a :class:`RecordLog`) as an (n, *width*)
    float array, after the run.

    The compiled build converts in a C loop, without a Python float per number (the logs of a
    default replication hold ~100,000 numbers); both convert each number as ``float()``
    does, so the arrays are the same."""
    if not isinstance(values, list):     # a RecordLog (of either build)
        return values.array()
    n = len(values)
    if _COMPILED:
        out = np.empty(n)
        view = out          # a typed memoryview in the compiled build (engine.pxd)
        for i in range(n):
            view[i] = values[i]
        return out.reshape(-1, width)
    return np.fromiter(values, dtype=float, count=n).reshape(-1, width)


def _fsum_plain(values) -> float:
    """Sum floats left to right, as ``sum`` did before Python 3.12 (which compensates the
    rounding, while the compiled build's ``sum`` would not): the same bits on every Python
    version and in both builds of the engine."""
    total = 0.0
    for v in values:
        total += v
    return total


class RecordLog:
    """A change log kept as C doubles: the compiled build's form of the flat lists of records
    that the Python build appends to (see :func:`new_log`).

    In the Python build a log is a list, and ``log.extend((t, code, qty))`` is the cheapest way
    to record a change. Compiled, that costs a tuple and a float object per record (about
    100,000 numbers in a default replication), then their conversion and freeing; this class
    writes the doubles into a numpy buffer that doubles as it fills. It works as plain Python
    too (slowly), and has ``extend`` and ``len`` as a list has, for the policy code."""

    def __init__(self, width: int, capacity: int = 384) -> None:
        self.width = width
        self.n = 0
        self.buf = np.empty(capacity)
        self.view = self.buf     # a typed memoryview in the compiled build (engine.pxd)

    def _grow(self, need: int) -> None:
        capacity = 2 * len(self.buf)
        while capacity < need:
            capacity *= 2
        buf = np.empty(capacity)
        buf[:self.n] = self.buf[:self.n]
        self.buf = buf
        self.view = buf

    def add3(self, a: float, b: float, c: float) -> None:
        """Append one record of three numbers."""
        n = self.n
        if n + 3 > self.view.shape[0]:
            self._grow(n + 3)
        self.view[n] = a
        self.view[n + 1] = b
        self.view[n + 2] = c
        self.n = n + 3

    def add4(self, a: float, b: float, c: float, d: float) -> None:
        """Append one record of four numbers."""
        n = self.n
        if n + 4 > self.view.shape[0]:
            self._grow(n + 4)
        self.view[n] = a
        self.view[n + 1] = b
        self.view[n + 2] = c
        self.view[n + 3] = d
        self.n = n + 4

    def add5(self, a: float, b: float, c: float, d: float, e: float) -> None:
        """Append one record of five numbers."""
        n = self.n
        if n + 5 > self.view.shape[0]:
            self._grow(n + 5)
        self.view[n] = a
        self.view[n + 1] = b
        self.view[n + 2] = c
        self.view[n + 3] = d
        self.view[n + 4] = e
        self.n = n + 5

    def extend(self, values) -> None:
        """Append numbers, as ``list.extend`` does (the policy code records so)."""
        for value in values:
            n = self.n
            if n == self.view.shape[0]:
                self._grow(n + 1)
            self.view[n] = value
            self.n = n + 1

    def __len__(self) -> int:
        return self.n

    def array(self) -> np.ndarray:
        """The records as an (n, width) array (a copy: the buffer is usually larger)."""
        return self.buf[:self.n].reshape(-1, self.width).copy()


def record3(log, a: float, b: float, c: float) -> None:
    """Append the record ``(a, b, c)`` to a change log of :func:`new_log` (of either build):
    the one place that chooses between the two forms of a log on the hot paths."""
    if _COMPILED:
        log.add3(a, b, c)
    else:
        log.extend((a, b, c))


def record5(log, a: float, b: float, c: float, d: float, e: float) -> None:
    """Append the record ``(a, b, c, d, e)`` to a change log of :func:`new_log`."""
    if _COMPILED:
        log.add5(a, b, c, d, e)
    else:
        log.extend((a, b, c, d, e))


def new_log(width: int):
    """An empty change log of records *width* numbers wide: a list in the Python build, a
    :class:`RecordLog` in the compiled one (hot paths append to either with :func:`record3`
    and :func:`record5`; :func:`records_array` reads both)."""
    return RecordLog(width) if _COMPILED else []


class EventHeap:
    """The engine's own scheduled entries, in the compiled build: a binary heap on C arrays
    of SimPy's key ``(time, priority, event id)``, holding the ``(callback, value)`` pair (or
    the :class:`simpy.Event`) of each.

    The Python build puts these entries on SimPy's queue as tuples, where ordering them
    costs a Python comparison of tuples at every step of every push and pop (figures in
    benchmarks/README.md). Here the keys are compared as C numbers. Event ids are unique
    and come from SimPy's own counter, so this heap and SimPy's queue, merged by key in
    :meth:`Model._loop`, give exactly the order of one queue. It works as plain Python too
    (slowly: the tests use it so)."""

    def __init__(self, capacity: int = 256) -> None:
        self.n = 0
        self.items: list = [None] * capacity
        self.times = np.empty(capacity)
        self.prios = np.empty(capacity)
        self.eids = np.empty(capacity, dtype=np.intp)
        self._views()

    def _views(self) -> None:
        # typed memoryviews in the compiled build (engine.pxd); the arrays themselves here
        self.tv = self.times
        self.pv = self.prios
        self.ev = self.eids

    def _grow(self) -> None:
        n = self.n
        capacity = 2 * len(self.items)
        self.items.extend([None] * (capacity - len(self.items)))
        for name in ("times", "prios", "eids"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)
        self._views()

    def __len__(self) -> int:
        return self.n

    def _comes_before(self, t: float, priority: float, eid: int, j: int) -> bool:
        """Whether the key ``(t, priority, eid)`` sorts before entry *j*'s."""
        tj = self.tv[j]
        if t != tj:
            return t < tj
        if priority != self.pv[j]:
            return priority < self.pv[j]
        return eid < self.ev[j]

    def _put(self, i: int, t: float, priority: float, eid: int, item) -> None:
        self.tv[i] = t
        self.pv[i] = priority
        self.ev[i] = eid
        self.items[i] = item

    def _move(self, i: int, j: int) -> None:
        """Copy entry *j* to place *i*."""
        self._put(i, self.tv[j], self.pv[j], self.ev[j], self.items[j])

    def push(self, t: float, priority: float, eid: int, item) -> None:
        """Add *item* with key ``(t, priority, eid)``."""
        if self.n == len(self.items):
            self._grow()
        i = self.n
        self.n = i + 1
        while i > 0:            # sift up: move parents that come later down a level
            parent = (i - 1) >> 1
            if not self._comes_before(t, priority, eid, parent):
                break
            self._move(i, parent)
            i = parent
        self._put(i, t, priority, eid, item)

    def pop(self):
        """Remove the first entry and return its item (read its key from ``tv[0]``,
        ``pv[0]``, ``ev[0]`` first)."""
        items = self.items
        first = items[0]
        n = self.n - 1
        self.n = n
        last = items[n]
        items[n] = None
        if n == 0:
            items[0] = None
            return first
        # the last entry goes where the hole at the top sinks to
        t = self.tv[n]
        priority = self.pv[n]
        eid = self.ev[n]
        i = 0
        while True:             # sift down: move the earlier child up until the last fits
            child = 2 * i + 1
            if child >= n:
                break
            right = child + 1
            if right < n and self._comes_before(self.tv[right], self.pv[right], self.ev[right],
                                                child):
                child = right
            if self._comes_before(t, priority, eid, child):
                break
            self._move(i, child)
            i = child
        self._put(i, t, priority, eid, last)
        return first

    def first_before(self, entry: tuple) -> bool:
        """Whether the first entry comes before SimPy's queue *entry*
        ``(time, priority, id, event)`` (keys are never equal: ids are unique)."""
        return not self._comes_before(entry[0], entry[1], entry[2], 0)

    def entries(self) -> list:
        """The pending items, in no particular order."""
        return self.items[:self.n]

    def clear(self) -> None:
        """Drop every entry."""
        for i in range(self.n):
            self.items[i] = None
        self.n = 0


def _lead_time_stream(lane_id: str) -> tuple:
    """Name of a lane's lead-time stream (see :mod:`sim.streams`)."""
    return ("lead_time", lane_id)


def _demand_streams(node_id: str, material: str) -> tuple[tuple, tuple]:
    """Names of a demand stream's order-time and order-size streams."""
    return ("demand", node_id, material), ("demand_size", node_id, material)



class Lane:
    """Runtime state of a trade lane."""

    __slots__ = ("spec", "id", "index", "src", "dst", "material", "share", "sample", "rate",
                 "dock_free", "in_transit", "usable", "qualified_at", "gate", "log", "price",
                 "cw", "closed", "banned", "tariff", "avoid", "priority")

    def __init__(self, spec, index, src, dst, sampler, price) -> None:
        self.spec = spec
        self.id = spec.id
        self.index = index
        self.src: Stock = src
        self.dst: Stock = dst
        self.material = spec.material
        self.share = spec.share
        self.sample = sampler
        cap = spec.capacity_t_per_year
        self.rate = None if cap is None else cap / 365.0
        self.dock_free = 0.0
        self.in_transit = 0.0
        self.qualified_at = spec.qualification_days
        self.usable = spec.qualification_days <= 0
        self.closed = 0            # closures in force (scenario); overlapping ones count
        self.banned = False        # export ban (policy)
        self.gate = None           # licensing/quota gate (policy), or None
        self.tariff = 0.0          # ad-valorem tariff rate in force (policy)
        self.avoid = False         # buyer avoids the lane after a licence denial (policy)
        # records: shipped time (left the supplier), quantity, arrival time, tariff rate,
        # dispatch time (released past licensing and clearance: when the goods cross the border)
        self.log = new_log(5)
        self.priority = dst.node.priority > 0   # rated orders are served first
        self.price = price
        self.cw = 0.0              # smooth weighted round-robin weight


class Stock:
    """Inventory of one material at one node (the supplier side and the buyer side)."""

    __slots__ = ("model", "node", "material", "key", "on_hand", "backlog", "rush", "backlog_qty",
                 "on_order", "ptype", "level", "S", "Q", "review_days", "lanes_in",
                 "active", "consumers", "producer", "prov", "log", "initial", "price",
                 "single", "is_demand", "lanes_out", "waiting", "track_prov", "partial",
                 "echelon", "echelon_inputs", "max_wait", "deferred", "defers", "pending",
                 "log_array")

    def __init__(self, model, node: NodeSpec, material: str, initial: float, policy, prov,
                 price) -> None:
        self.model = model
        self.node = node
        self.material = material
        self.key = (node.id, material)
        self.on_hand = float(initial)
        self.initial = float(initial)
        self.backlog: deque = deque()      # unrated orders waiting: [lane, quantity, time]
        self.rush: deque = deque()         # rated (priority) orders waiting
        self.backlog_qty = 0.0
        self.on_order = 0.0
        self.ptype = policy.type
        self.level = policy.reorder_level
        self.S = policy.S
        self.Q = policy.Q
        self.review_days = policy.review_days
        self.lanes_in: list[Lane] = []
        self.lanes_out: list[Lane] = []
        self.active: list[tuple[Lane, float]] = []
        self.consumers: list[Production] = []
        self.producer: Production | None = None
        self.prov = prov
        self.log = new_log(3)      # records: time, code, quantity
        self.log_array = None      # the log as an (n, 3) array, when settle_deferred made it
        self.price = price
        self.single = node.order_split == "single"
        self.partial = node.partial_shipments   # False: ship whole orders only (strict FIFO)
        self.max_wait = node.max_supplier_wait_days   # responsive sourcing (None: off)
        self.echelon = None        # (production line, recipe qty) for echelon input policies
        self.echelon_inputs: list[Stock] = []   # output stock: inputs whose position counts it
        self.is_demand = False
        self.waiting = False       # an order could not be placed (no usable lane)
        self.track_prov = True     # False when nothing downstream reads this stock's provenance
        self.deferred = None       # arrivals settled after the run (see Model._build), or None
        self.defers = False        # may hold quiet arrivals back (see Model._build)
        self.pending: list = []    # held-back arrivals: heap of (time, event id, qty, prov, lane)

    # -- the buyer side ---------------------------------------------------------------------
    def position(self) -> float:
        """Inventory position: on hand - backlog + on order + work in process (plus, for an
        echelon policy, the consuming line's output position times its recipe quantity)."""
        wip = self.producer.wip if self.producer is not None else 0.0
        ip = self.on_hand - self.backlog_qty + self.on_order + wip
        if self.echelon is not None:
            prod, a = self.echelon
            out = prod.out
            ip += a * (out.on_hand - out.backlog_qty + prod.wip)
        return ip

    def review(self, now: float) -> None:
        """Continuous review: order if the position is at or below the reorder level."""
        if self.review_days or self.ptype == "none":
            return
        if self.pending and self.pending[0][0] <= now:
            self.settle_arrivals(now)
        # position(), inlined: this runs after every shipment and batch start
        producer = self.producer
        ip = self.on_hand - self.backlog_qty + self.on_order
        if producer is not None:
            ip += producer.wip
        if self.echelon is not None:
            prod, a = self.echelon
            out = prod.out
            ip += a * (out.on_hand - out.backlog_qty + prod.wip)
        if ip <= self.level:
            self.order(self.order_quantity(ip), now)

    def order_quantity(self, ip: float) -> float:
        """How much the policy orders at position *ip* (0 when no order is due)."""
        if ip > self.level:
            return 0.0
        if self.ptype == "rQ":
            return self.Q * (math.floor((self.level - ip) / self.Q) + 1)
        return self.S - ip

    def order(self, qty: float, now: float) -> None:
        """Split an order of *qty* over the usable inbound lanes and send it to the suppliers."""
        if qty <= EPS:
            return
        active = self.active
        if not active:
            self.waiting = True
            return
        self.waiting = False
        self.on_order += qty
        record3(self.log, now, REC_ORDERED, qty)
        if self.max_wait is not None and len(active) > 1:
            active = self.responsive(active, qty, now)
        if self.single or len(active) == 1:
            if len(active) == 1:
                lane = active[0][0]
            else:
                best = None
                for lane_, share in active:
                    lane_.cw += share
                    if best is None or lane_.cw > best.cw:
                        best = lane_
                best.cw -= 1.0
                lane = best
            lane.src.receive_order(lane, qty, now)
        else:
            for lane, share in active:
                if share > 0.0:
                    lane.src.receive_order(lane, qty * share, now)

    def responsive(self, active: list, qty: float, now: float) -> list:
        """Drop the lanes whose supplier would take longer than ``max_supplier_wait_days`` to
        ship (its queue beyond stock, at its production rate; a supplier that does not produce
        and cannot ship now counts as too slow) and renormalise the shares of the others. If
        every lane is too slow the order is split as usual."""
        keep = None         # built only once a lane is dropped (four in five orders keep all)
        limit = self.max_wait
        for i, (lane, share) in enumerate(active):
            src = lane.src
            src.bring_up_to_date(now)
            queued = src.backlog_qty + qty * share - src.on_hand
            if queued > EPS:
                prod = src.producer
                rate = prod.rate if prod is not None and not prod.down else 0.0
                if rate <= 0.0 or queued / rate > limit:
                    if keep is None:
                        keep = active[:i]
                    continue
            if keep is not None:
                keep.append((lane, share))
        if not keep:
            return active
        total = _fsum_plain([share for _, share in keep])
        if total <= 0.0:
            return [(lane, 1.0 / len(keep)) for lane, _ in keep]
        return [(lane, share / total) for lane, share in keep]

    # -- the supplier side ------------------------------------------------------------------
    def receive_order(self, lane: Lane, qty: float, now: float) -> None:
        """A downstream buyer orders *qty* on *lane*: ship what is on hand, queue the rest."""
        producer = self.producer
        if producer is not None and producer.lazy:
            producer.sync(now)
        if self.pending and self.pending[0][0] <= now:
            self.settle_arrivals(now)
        record3(self.log, now, REC_ORDER_IN, qty)
        queue = self.rush if lane.priority else self.backlog
        if not queue and not self.rush and self.on_hand > EPS:
            if qty <= self.on_hand:
                self.model.ship(lane, qty, now)
                qty = 0.0
            elif self.partial:
                x = self.on_hand
                self.model.ship(lane, x, now)
                qty -= x
        if qty > EPS:
            queue.append([lane, qty, now])
            self.backlog_qty += qty
            if producer is not None and producer.lazy:
                producer.materialize(now)
            if self.pending:
                self.materialize_arrivals()     # arrivals now serve the queue
        if self.ptype != "none":
            self.review(now)
        for inp in self.echelon_inputs:
            inp.review(now)
        if producer is not None and not producer.busy:
            producer.try_start(now)

    def serve_backlog(self, now: float) -> None:
        """Ship queued orders while stock lasts: rated orders first, then first-come
        first-served."""
        ship = self.model.ship
        partial = self.partial
        for backlog in (self.rush, self.backlog):
            while backlog and self.on_hand > EPS:
                entry = backlog[0]
                lane, qty = entry[0], entry[1]
                if not partial and qty > self.on_hand + EPS:
                    return          # whole orders only: the head of the queue waits
                x = qty if qty <= self.on_hand else self.on_hand
                if x >= qty - EPS:
                    backlog.popleft()
                    x = qty
                else:
                    entry[1] = qty - x
                self.backlog_qty -= x
                ship(lane, x, now)
        if not self.backlog and not self.rush:
            self.backlog_qty = 0.0

    def receive(self, qty: float, prov, now: float, lane: Lane | None) -> None:
        """A shipment of *qty* arrives (or production completes when *lane* is None)."""
        producer = self.producer
        if producer is not None and producer.lazy and lane is None and producer.pend_event is None:
            producer.sync(now)          # e.g. a denied shipment coming back to a mine
        if self.pending and self.pending[0][0] <= now:
            self.settle_arrivals(now)
        if self.track_prov and prov is not self.prov:
            self.take_origin(prov, qty)
        self.on_hand += qty
        if lane is not None:
            self.on_order -= qty
            record3(self.log, now, REC_RECEIVED, qty)
        if self.backlog or self.rush:
            self.serve_backlog(now)
        for prod in self.consumers:
            if not prod.busy:
                prod.try_start(now)


    def take_origin(self, prov, qty: float) -> None:
        """Mix the origin *prov* of *qty* arriving into this stock's (before it is added)."""
        if self.on_hand <= EPS:
            self.prov = prov
        elif prov != self.prov:
            self.prov = self.model.mix(self.prov, self.on_hand, prov, qty)

    # -- held-back arrivals ------------------------------------------------------------------
    def bring_up_to_date(self, now: float) -> None:
        """Before the stock is read or changed from outside its own callbacks (a buyer judging
        it, a policy cancelling orders): complete its lazy producer's batches and put away
        its held-back arrivals that precede the current event."""
        prod = self.producer
        if prod is not None and prod.lazy:
            prod.sync(now)
        if self.pending:
            self.settle_arrivals(now)

    def settle_arrivals(self, now: float) -> None:
        """Put away the held-back arrivals that precede the current event (in SimPy's order:
        time, priority, event id), as :meth:`receive` would have done at each of them. They
        were quiet (no queued order to serve, no consumer waiting for inputs), so putting
        them away is all that their events would have done. (Hot callers skip the call when
        the earliest one is later than *now*: two in three calls would settle nothing.)"""
        pending = self.pending
        model = self.model
        prio = model.prio
        cur = model.cur_eid
        log = self.log
        while pending:
            t, eid, qty, prov, lane = pending[0]
            if t > now or (t == now and (prio < PRIORITY_ARRIVAL
                                         or (prio == PRIORITY_ARRIVAL and eid > cur))):
                break
            _heappop(pending)
            lane.in_transit -= qty
            if self.track_prov and prov is not self.prov:
                self.take_origin(prov, qty)
            self.on_hand += qty
            self.on_order -= qty
            record3(log, t, REC_RECEIVED, qty)

    def materialize_arrivals(self) -> None:
        """The stock is no longer quiet: give its held-back arrivals their events (with the
        event ids reserved when they were shipped, so they run exactly when they would have)."""
        model = self.model
        call = model.on_arrival
        for t, eid, qty, prov, lane in self.pending:
            model.push(t, PRIORITY_ARRIVAL, eid, (call, (lane, qty, prov)))
        self.pending = []


class DemandStock(Stock):
    """A stock that faces pre-drawn customer demand, served in bulk between decisions.

    ``T`` and ``C`` are the order times and exclusive prefix sums of the sizes of the customer
    stream (``C[k]`` = demand of orders before *k*). The level is tracked per *epoch* (the time
    between two replenishment arrivals): at the start of an epoch the level is ``L_e`` before
    order ``k_e``; before order ``k`` of the same epoch it is ``L_e - (C[k] - C[k_e])`` (net
    inventory, with backorders) or that value floored at zero (lost sales).
    """

    __slots__ = ("T", "C", "n", "k_next", "k_e", "L_e", "epochs", "lost", "wake_gen",
                 "wake_k", "sector", "arrays", "priority", "predicts", "on_wake")

    def setup_demand(self, times: np.ndarray, sizes: np.ndarray, lost: bool, sector: str) -> None:
        self.is_demand = True
        cum = np.concatenate(([0.0], np.cumsum(sizes)))
        self.arrays = (times, sizes, cum)      # numpy copies for the results
        self.T = times.tolist()                # lists for the hot loop (fast indexing)
        self.C = cum.tolist()
        self.n = len(self.T)
        self.k_next = 0
        self.k_e = 0
        self.L_e = self.on_hand
        self.epochs = [0.0, 0, self.on_hand]     # flat (time, first order index, level at start)
        self.lost = lost
        self.wake_gen = 0
        self.wake_k = -1
        self.on_wake = self._wake      # made once, not per wake (Model.release() drops it)
        self.sector = sector
        self.on_hand = 0.0   # the level lives in (k_e, L_e); on_hand is not used here
        # continuous review in bulk mode: the stock predicts its next reorder (schedule_wake)
        self.predicts = (self.model.demand_mode == "bulk" and not self.review_days
                         and self.ptype != "none")

    def level_before(self, k: int) -> float:
        lev = self.L_e - (self.C[k] - self.C[self.k_e])
        if self.lost and lev < 0.0:
            return 0.0
        return lev

    def position(self) -> float:
        return self.level_before(self.k_next) + self.on_order

    def advance(self, now: float, inclusive: bool) -> None:
        """Serve the customer orders up to *now* (``inclusive`` includes orders at *now*)."""
        T = self.T
        k = self.k_next
        if k < self.n and T[k] <= now:
            if inclusive:
                while k < self.n and T[k] <= now:
                    k += 1
            else:
                k = bisect_left(T, now, k)
            self.k_next = k

    def schedule_wake(self, now: float) -> None:
        """(Re)schedule the single decision event of this stock: serve the orders before
        *now*, then find the first future order after which the position is at or below the
        reorder level (by bisection on the demand's prefix sums) and schedule the wake there.
        (``advance`` and the prediction are written out here: this runs at every wake and
        every arrival at a lost-sales stock.)"""
        if not self.predicts:
            return
        T = self.T
        n = self.n
        kn = self.k_next
        if kn < n and T[kn] < now:                  # advance(now, inclusive=False)
            kn = self.k_next = bisect_left(T, now, kn)
        k = -1
        if self.active and kn < n:
            need = self.L_e + self.on_order - self.level   # demand (sales) that reaches the level
            if not self.lost or need <= self.L_e:   # lost sales: at most this epoch's stock
                C = self.C
                j = bisect_left(C, C[self.k_e] + need, kn + 1)
                if j <= n:
                    k = j - 1
        if k < 0:
            self.wake_k = -1
            self.wake_gen += 1
            return
        if k == self.wake_k:
            return
        self.wake_gen += 1
        self.wake_k = k
        # at the order's own time T[k] (>= now: k is at or after k_next), as the one-event-per-
        # order mode schedules it, not at now + (T[k] - now), which can differ in the last bit
        # and would depend on when the wake was predicted
        model = self.model
        call = (self.on_wake, (self.wake_gen, k))
        model.push(T[k], self.priority, next(model.eid), call)

    def _wake(self, value) -> None:
        gen, k = value
        if gen != self.wake_gen:
            return                          # superseded by a later prediction
        now = self.model.now
        self.k_next = k + 1
        self.wake_k = -1
        lev = self.L_e - (self.C[k + 1] - self.C[self.k_e])      # level_before(k + 1), inlined
        if lev < 0.0 and self.lost:
            lev = 0.0
        ip = lev + self.on_order
        if ip <= self.level:
            self.order(self.order_quantity(ip), now)
        self.schedule_wake(now)

    def review(self, now: float) -> None:
        if self.review_days or self.ptype == "none":
            return
        self.schedule_wake(now)

    def receive(self, qty: float, prov, now: float, lane: Lane | None) -> None:
        T = self.T
        kn = self.k_next
        if kn < self.n and T[kn] < now:              # advance(now, inclusive=False), inlined
            kn = self.k_next = bisect_left(T, now, kn)
        lev = self.L_e - (self.C[kn] - self.C[self.k_e])   # level_before(kn), inlined
        if lev < 0.0 and self.lost:
            lev = 0.0
        if self.track_prov and prov is not self.prov:
            self.prov = self.model.mix(self.prov, max(lev, 0.0), prov, qty)
        self.k_e = kn
        self.L_e = lev + qty
        self.epochs.extend((now, kn, self.L_e))
        self.on_order -= qty
        record3(self.log, now, REC_RECEIVED, qty)
        if self.lost or self.waiting:
            self.schedule_wake(now)

    def settle_deferred(self, until: float) -> None:
        """Put away the deferred arrivals due before *until*, in time order (ties in the order
        they were dispatched, as their events would have run), exactly as :meth:`receive`
        would have done at each arrival.

        The level recurrence ``L = L - (C[k] - C[k_prev]) + qty`` and the running sums run
        with ``np.add.accumulate`` over the interleaved terms: it adds strictly left to right,
        so every value is bit for bit what the arrival-by-arrival loop gives."""
        deferred = self.deferred
        due = [a for a in deferred if a[0] < until]
        if not due:
            return
        self.deferred = [a for a in deferred if a[0] >= until] if len(due) < len(deferred) else []
        due.sort(key=_first)                  # stable: ties stay in dispatch order
        n = len(due)
        times, _, cum = self.arrays
        t = np.fromiter([a[0] for a in due], dtype=float, count=n)
        q = np.fromiter([a[1] for a in due], dtype=float, count=n)
        # orders at t come after the arrival (priority): the first order index at or after t
        k = np.searchsorted(times, t, side="left")
        np.maximum(k, self.k_e, out=k)
        c = cum[k]
        terms = np.empty(2 * n + 1)
        terms[0] = self.L_e
        terms[1] = self.C[self.k_e] - c[0]          # -(c - c_prev), exactly
        terms[3::2] = c[:-1] - c[1:]
        terms[2::2] = q
        levels = np.add.accumulate(terms)[2::2]
        terms = np.empty(n + 1)
        terms[0] = self.on_order
        np.negative(q, out=terms[1:])
        self.on_order = float(np.add.accumulate(terms)[-1])
        for a in due:
            a[2].in_transit -= a[1]
        self.k_e, self.L_e = int(k[-1]), float(levels[-1])
        self.epochs = np.concatenate((np.asarray(self.epochs, dtype=float),
                                      np.column_stack((t, k, levels)).ravel()))
        records = np.empty((n, 3))
        records[:, 0] = t
        records[:, 1] = REC_RECEIVED
        records[:, 2] = q
        log = records_array(self.log, 3)
        if self.log_array is not None:          # settled before: those records come first
            log = np.concatenate((self.log_array, log))
        log = np.concatenate((log, records))
        # the run is over: an array, in time order (the arrivals after the records at a tie);
        # the change log starts again empty (a later settlement's records come after these)
        self.log_array = log[np.argsort(log[:, 0], kind="stable")]
        self.log = new_log(3)


class Production:
    """A production line making one output material from its recipe inputs."""

    __slots__ = ("model", "node", "out", "inputs", "rate", "batch_days", "target", "busy", "wip",
                 "down", "confers", "origin", "value_weights", "log", "schedule", "base_rate",
                 "factors", "lazy", "pend_end", "pend_event", "blends", "blocked", "on_done",
                 "cap_log")

    def __init__(self, model, node: NodeSpec, out: Stock, inputs, spec, origin) -> None:
        self.model = model
        self.node = node
        self.out = out
        self.inputs: list[tuple[Stock, float]] = inputs
        self.schedule = spec.capacity      # ((date | None, t/yr), ...)
        self.rate = 0.0                    # t/day in force: base rate x policy factors
        self.base_rate = 0.0               # t/day from the capacity schedule
        self.factors: list[float] = []     # capacity multipliers of policies in force
        self.batch_days = spec.batch_days
        self.target = spec.target_stock
        self.busy = False
        self.wip = 0.0
        self.down = 0                      # number of outages in force
        self.confers = node.confers_origin
        self.origin = origin
        self.blends = False     # passes its inputs' origin on to a stock whose origin is read
        self.blocked = False    # idle for want of inputs: arrivals of inputs are decisions
        total = _fsum_plain([a * inp.price for inp, a in inputs])
        self.value_weights = [(a * inp.price / total) if total > 0 else 1.0 / len(inputs)
                              for inp, a in inputs] if inputs else []
        self.log = new_log(3)             # records: start, quantity, end
        # A line with no inputs whose output nobody at the node consumes can run "lazily": a
        # batch whose completion ships nothing (the output has no queued orders) is not an
        # event; it is completed by sync() when something next looks at the output stock.
        self.lazy = False
        self.pend_end = 0.0               # completion time of the batch in progress
        self.pend_event = None            # its event, when it has one
        self.on_done = self._done         # made once, not per batch (release() drops it)
        # capacity in force over time (rare: schedule steps, policy factors, outages):
        # (time, rate in force t/day, outages in force), for the utilisation tables
        self.cap_log: list = []

    def sync(self, now: float) -> None:
        """Complete the lazy batches that ended before *now* (or at *now*, when the current
        event's priority comes after production), starting each next batch at its due time."""
        if not self.busy or self.pend_event is not None:
            return
        out = self.out
        late = self.model.prio >= PRIORITY_PRODUCTION
        while self.busy and self.pend_event is None and (
                self.pend_end < now or (late and self.pend_end == now)):
            t = self.pend_end
            q = self.wip
            self.busy = False
            self.wip = 0.0
            out.on_hand += q
            record3(out.log, t, REC_PRODUCED, q)
            rate = self.rate
            if not self.down and rate > 0.0:
                # full batches back to back: the same arithmetic as try_start, without calls
                full = rate * self.batch_days
                duration = full / rate
                target = self.target
                log = self.log
                out_log = out.log
                on_hand, backlog = out.on_hand, out.backlog_qty   # locals in the loop
                while target - (on_hand - backlog) >= full:
                    end = t + duration
                    if end > now or (end == now and not late):
                        break
                    record3(log, t, full, end)
                    on_hand += full
                    record3(out_log, end, REC_PRODUCED, full)
                    t = end
                out.on_hand = on_hand
            self.try_start(t)

    def materialize(self, now: float) -> None:
        """Give the batch in progress a real completion event (its output must be shipped)."""
        if self.busy and self.pend_event is None:
            self.pend_event = self.model.at(self.pend_end - now, PRIORITY_PRODUCTION, self.on_done,
                                            (self.wip, self.origin))

    def set_rate(self, t_per_year: float, now: float) -> None:
        """A capacity-schedule step: the nominal capacity becomes *t_per_year*."""
        self.base_rate = t_per_year / 365.0
        self.apply_rate(now)

    def apply_rate(self, now: float) -> None:
        """Recompute the rate in force (schedule x policy factors) and try to start."""
        if self.lazy:
            self.sync(now)
        rate = self.base_rate
        for f in self.factors:
            rate *= f
        self.rate = rate
        self.note_capacity(now)
        self.try_start(now)

    def add_factor(self, factor: float, now: float) -> None:
        """A policy multiplies the line's capacity by *factor* from *now* on (e.g. a control
        that cuts foreign plants' capacity)."""
        self.factors.append(factor)
        self.apply_rate(now)

    def remove_factor(self, factor: float, now: float) -> None:
        """The policy factor *factor* added by :meth:`add_factor` ends at *now*."""
        self.factors.remove(factor)
        self.apply_rate(now)

    def set_down(self, delta: int, now: float) -> None:
        """An outage of the line starts (*delta* = +1) or ends (-1) at *now*; overlapping
        outages count, and the line restarts when none is left."""
        if self.lazy:
            self.sync(now)
        self.down += delta
        self.note_capacity(now)
        if not self.down:
            self.try_start(now)

    def note_capacity(self, now: float) -> None:
        """Record the capacity in force from *now* on (after a schedule step, a policy factor
        or an outage starting or ending; never in the hot loop)."""
        self.cap_log.append((now, self.rate, float(self.down)))

    def try_start(self, now: float) -> None:
        """Start a batch if the line is idle, up, below target and has inputs."""
        if self.busy or self.down:
            return
        rate = self.rate
        if rate <= 0.0:
            return
        out = self.out
        want = self.target - (out.on_hand - out.backlog_qty)
        if want <= EPS:
            self.blocked = False
            return
        q = rate * self.batch_days
        if want < q:
            q = want
        inputs = self.inputs
        if inputs:
            for inp, a in inputs:
                if inp.pending and inp.pending[0][0] <= now:
                    inp.settle_arrivals(now)
                avail = inp.on_hand / a
                if avail < q:
                    q = avail
            if q <= EPS:
                self.blocked = True
                for inp, _ in inputs:
                    if inp.pending:
                        inp.materialize_arrivals()
                return
            self.blocked = False
            for inp, a in inputs:
                use = q * a
                inp.on_hand -= use
                record3(inp.log, now, REC_CONSUMED, use)
            if self.blends:
                prov = self.model.blend([inp.prov for inp, _ in inputs], self.value_weights)
            else:
                prov = self.origin
        else:
            prov = self.origin
        self.busy = True
        self.wip = q
        duration = q / rate
        record3(self.log, now, q, now + duration)
        if self.lazy and not out.backlog and not out.rush:
            self.pend_end = now + duration
            self.pend_event = None
        else:       # Model.at, inlined (every batch start; duration > 0 here)
            model = self.model
            call = self.pend_event = (self.on_done, (q, prov))
            model.push(model.now + duration, PRIORITY_PRODUCTION, next(model.eid), call)
        for inp, _ in inputs:
            if inp.ptype != "none":
                inp.review(now)

    def _done(self, value) -> None:
        q, prov = value
        now = self.model.now
        self.busy = False
        self.wip = 0.0
        self.pend_event = None
        out = self.out
        record3(out.log, now, REC_PRODUCED, q)
        out.receive(q, prov, now, None)
        self.try_start(now)
        if out.ptype != "none":
            out.review(now)


# reserve record codes (the ``log`` of a Reserve holds (time, code, quantity, buyer) records;
# buyer is the index of the release lane in ``Reserve.buyers``, -1 for purchases)
RES_PURCHASE = 0.0      # purchase order placed on the holder's inbound lanes (build-up)
RES_RELEASE = 1.0       # released on a release lane to a buyer


class Reserve:
    """A strategic reserve at run time: a :class:`~sim.network.ReserveSpec` on a stockpile
    node's stock, with its build-up and replenishment purchases, its release rule and their
    records. The holder's stock is an ordinary :class:`Stock` without an ordering policy; its
    release lanes are not in their buyers' share split (see :meth:`Model._build_reserves`).

    Nothing polls while nothing happens. Each watched buyer (a demand stock) has one pending
    check, at the customer order after which its level would first fall below the threshold
    (``release_cover_days`` times its daily demand) if nothing arrived, found by bisection on
    the demand's prefix sums as the stock's own reorder prediction is. Arrivals only raise the
    level, so a check is never late; one that finds the buyer above the threshold predicts
    again. A release episode then runs one step a day (at review priority, after the day's
    demand at that instant) while some buyer is below the threshold and the reserve has stock
    or stock on order, and ends by re-arming the checks; steps are at least a day apart, so
    no calendar day sees more than ``release_rate_t_per_day`` released. Purchases run one
    order every ``order_every_days`` while the holding plus what is on order is below the
    target (from ``build_start``), stop there, and start again after releases with
    ``replenish``. A released tonne is shipped on the release lane (the holder's ``shipped``,
    the lane's records) and counted on order at the buyer until it arrives, so the material
    balance holds as for any shipment."""

    def __init__(self, model: "Model", stock: Stock, spec, buyers: list) -> None:
        self.model = model
        self.stock = stock
        self.spec = spec
        self.buyers = buyers        # [(release lane, buyer DemandStock, threshold t)], in order
        self.gen = [0] * len(buyers)    # per buyer: the generation of its pending check
        self.rate = spec.release_rate_t_per_day
        self.period = spec.order_every_days
        self.lot = spec.build_rate_t_per_year * spec.order_every_days / 365.0
        self.price = (stock.price if spec.funded_price_usd_per_t is None
                      else spec.funded_price_usd_per_t)
        self.build_day = 0.0
        self.building = False       # a purchase step is scheduled
        self.built = False          # the position reached the target once
        self.releasing = False      # a release episode runs
        self.dry = False            # an episode ended empty with nothing on order
        self.next_release = -math.inf   # the earliest time of the next release step
        self.log: list = []         # flat (time, code, quantity, buyer) records

    # -- watching ------------------------------------------------------------------------
    @staticmethod
    def level(buyer: "DemandStock", now: float) -> float:
        """The buyer's level (net inventory; floored at 0 with lost sales) after its customer
        orders up to and including *now*."""
        k = bisect_right(buyer.T, now, max(buyer.k_next, buyer.k_e))
        lev = buyer.L_e - (buyer.C[k] - buyer.C[buyer.k_e])
        if lev < 0.0 and buyer.lost:
            return 0.0
        return lev

    def start(self) -> None:
        """Before time starts: schedule the first purchase and arm every buyer's check."""
        model = self.model
        spec = self.spec
        if spec.build_start is not None:
            self.build_day = max(0.0, model.day_of(spec.build_start))
        if self.lot > 0.0 and self.build_day < model.horizon:
            self.building = True
            model.at(self.build_day, PRIORITY_REVIEW, self._build_step)
        for i in range(len(self.buyers)):
            self.arm(i, 0.0)

    def arm(self, i: int, now: float) -> None:
        """Schedule buyer *i*'s check at the customer order after which its level would first
        fall below the threshold (none when no order does), or start releasing if it is below
        the threshold already."""
        _, buyer, x = self.buyers[i]
        self.gen[i] += 1
        k_e = buyer.k_e
        k = bisect_right(buyer.T, now, max(buyer.k_next, k_e))
        C = buyer.C
        lev = buyer.L_e - (C[k] - C[k_e])
        if lev < x:
            self.start_release(now)
            return
        # the first order index j > k with L_e - (C[j] - C[k_e]) < x: the order before it
        j = bisect_right(C, C[k_e] + buyer.L_e - x, k + 1)
        if j <= buyer.n:
            model = self.model
            model.push(buyer.T[j - 1], PRIORITY_REVIEW, next(model.eid),
                       (self._check, (i, self.gen[i])))

    def _check(self, value) -> None:
        i, gen = value
        if gen == self.gen[i] and not self.releasing:
            self.arm(i, self.model.now)

    # -- releasing -----------------------------------------------------------------------
    def start_release(self, now: float) -> None:
        """Start a release episode (its first step now, or a day after the last step)."""
        if self.releasing:
            return
        self.releasing = True
        for i in range(len(self.gen)):
            self.gen[i] += 1            # the pending checks are void while releasing
        model = self.model
        t = now if now >= self.next_release else self.next_release
        model.push(t, PRIORITY_REVIEW, next(model.eid), (self._release_step, None))

    def _release_step(self, _value) -> None:
        model = self.model
        now = model.now
        st = self.stock
        st.bring_up_to_date(now)
        self.next_release = now + 1.0
        budget = self.rate
        below = False
        released = False
        for i, (lane, buyer, x) in enumerate(self.buyers):
            lev = self.level(buyer, now)
            if lev >= x:
                continue
            below = True
            if budget <= EPS or st.on_hand <= EPS:
                continue
            if not lane.usable or lane.closed or lane.banned:
                continue
            # restore the buyer's stock to the threshold, less what is on its way already
            need = x - lev - lane.in_transit
            if need <= EPS:
                continue
            q = need
            if budget < q:
                q = budget
            if st.on_hand < q:
                q = st.on_hand
            buyer.on_order += q         # the buyer's receive() takes it off on arrival
            buyer.log.extend((now, REC_ORDERED, q))
            model.ship(lane, q, now)
            budget -= q
            released = True
            self.log.extend((now, RES_RELEASE, q, float(i)))
        if released and self.spec.replenish and self.built and not self.building:
            self.building = True
            model.at(0.0, PRIORITY_REVIEW, self._build_step)
        if below and (st.on_hand > EPS or st.on_order > EPS):
            model.at(1.0, PRIORITY_REVIEW, self._release_step)
            return
        self.releasing = False
        if below:
            self.dry = True             # empty, nothing coming: a purchase starts it again
            return
        for i in range(len(self.buyers)):
            self.arm(i, now)

    # -- purchasing ----------------------------------------------------------------------
    def _build_step(self, _value) -> None:
        model = self.model
        now = model.now
        st = self.stock
        st.bring_up_to_date(now)
        gap = self.spec.target_t - (st.on_hand + st.on_order)
        if gap <= EPS:
            self.built = True
            self.building = False
            return
        q = self.lot if self.lot < gap else gap
        before = st.on_order
        st.order(q, now)
        placed = st.on_order - before
        if placed > 0.0:
            self.log.extend((now, RES_PURCHASE, placed, -1.0))
            if self.dry:
                self.dry = False
                self.start_release(now)
        model.at(self.period, PRIORITY_REVIEW, self._build_step)

    # -- results -------------------------------------------------------------------------
    def record(self) -> dict:
        """What the run keeps of this reserve, as plain values and arrays: purchases
        ``(n, 2)`` (time, tonnes ordered) and releases ``(n, 3)`` (time, tonnes, index of the
        buyer in ``buyers`` and ``lanes``), in time order (see
        :meth:`sim.results.Run.reserve_flows`)."""
        log = np.array(self.log, dtype=float).reshape(-1, 4)
        release = log[:, 1] == RES_RELEASE
        return {"node": self.stock.node.id, "material": self.stock.material,
                "price_usd_per_t": self.price, "target_t": self.spec.target_t,
                "buyers": [buyer.node.id for _, buyer, _ in self.buyers],
                "lanes": [lane.id for lane, _, _ in self.buyers],
                "purchases": log[~release][:, [0, 2]], "releases": log[release][:, [0, 2, 3]]}

    def release(self) -> None:
        """Drop the references to the model (see :meth:`Model.release`)."""
        self.model = self.stock = None
        self.buyers = []


class Model:
    """One replication's SimPy model, built from a network, a scenario and a seed.

    Most users call :func:`sim.simulate`; the class is public for tests and for tracing. The
    model is single-use: build, :meth:`run`, then read the :class:`~sim.records.Recording`.
    """

    def __init__(self, network: Network, scenario=None, *, seed: int = 0, replication: int = 0,
                 start: _dt.date | str | None = None, horizon_days: float | None = None,
                 demand_mode: str = "bulk", production_mode: str = "bulk",
                 shortage_after: _dt.date | str | None = None) -> None:
        from .scenario import Scenario, resolve_scenario

        self.network = network
        self.scenario: Scenario = resolve_scenario(scenario)
        self.scenario.check_network(network)   # the checks of `scenario validate`, once more
        if shortage_after is not None:
            self.scenario = self.scenario.with_changes(
                shortage_after=_as_date(shortage_after, "shortage_after"))
        if demand_mode not in ("bulk", "events"):
            raise ModelError(f"must be 'bulk' or 'events', got {demand_mode!r}", field="demand_mode")
        self.demand_mode = demand_mode
        if production_mode not in ("bulk", "events"):
            raise ModelError(f"must be 'bulk' or 'events', got {production_mode!r}",
                             field="production_mode")
        self.production_mode = production_mode
        self.prio = PRIORITY_POLICY       # priority of the event being processed
        self.cur_eid = -1                 # and its SimPy event id
        self.events = 0                   # events processed by run()
        self.start, self.horizon = run_window(self.scenario, start, horizon_days)
        self.streams = Streams(seed, replication)
        self.seed = seed
        self.replication = replication
        # SimPy's clock is self.now (the loop advances it; env.now reads it), its queue and id
        # counter are used directly by the hot paths (the environment's own objects)
        self.now = 0.0
        self.env = Environment(self)
        self.queue: list = event_queue(self.env)
        self.eid = event_ids(self.env)
        # the compiled build keeps the engine's own entries on a heap of C numbers (SimPy's
        # queue then holds only what SimPy itself schedules: processes starting, and so on)
        self.heap = EventHeap() if _COMPILED else None
        self.on_arrival = self._arrival   # made once, not per shipment (release() drops it)
        # Provenance is read only by extraterritorial controls, and only as their exporter's
        # share: vectors carry just those origins (none at all without such controls).
        self.origins = sorted({c.exporter for c in self.scenario.controls if c.extraterritorial})
        self._cidx = {c: i for i, c in enumerate(self.origins)}
        self._onehot: dict[str, tuple] = {}
        self.stocks: dict[tuple[str, str], Stock] = {}
        self.lanes: list[Lane] = []
        self.productions: list[Production] = []
        self.demand_stocks: list[DemandStock] = []
        self.reserves: list[Reserve] = []     # strategic reserves (see Reserve), usually none
        self.policy = None
        self.build_seconds = 0.0
        self.run_seconds = 0.0
        t0 = _time.perf_counter()
        with gc_paused():
            self._build()
        self.build_seconds = _time.perf_counter() - t0

    # -- helpers ----------------------------------------------------------------------------
    def day_of(self, date: _dt.date) -> float:
        """Simulation day number of a calendar *date*."""
        return float((date - self.start).days)

    def date_of(self, day: float) -> _dt.date:
        """Calendar date of simulation *day*."""
        return self.start + _dt.timedelta(days=math.floor(day))

    def at(self, delay: float, priority: int, callback, value: Any = None) -> tuple:
        """Schedule *callback(value)* after *delay* days with *priority* (no process involved).

        The entry goes on the event queue (:meth:`push`) with SimPy's key ``(time, priority,
        id)``, so it is ordered with every SimPy event exactly as ``Environment.schedule`` would
        order it; in
        place of an :class:`simpy.Event` it carries the pair ``(callback, value)``, which
        :meth:`_loop` calls directly (an Event object costs seven times as much to make, and
        these are the engine's most frequent events). Returns the pair.
        """
        if delay < 0.0:
            raise RuntimeError(f"internal error: event scheduled {delay} days in the past")
        call = (callback, value)
        self.push(self.now + delay, priority, next(self.eid), call)
        return call

    def push(self, t: float, priority: float, eid: int, item) -> None:
        """Put *item* (a ``(callback, value)`` pair or a triggered :class:`simpy.Event`) on the
        event queue with SimPy's key ``(t, priority, eid)``: the compiled build's
        :class:`EventHeap`, or SimPy's own queue, as ``Environment.schedule`` would."""
        if _COMPILED:
            self.heap.push(t, priority, eid, item)
        else:
            _heappush(self.queue, (t, priority, eid, item))

    def sleep(self, delay: float, priority: int = PRIORITY_POLICY) -> simpy.Event:
        """A real, already-triggered :class:`simpy.Event` *delay* days ahead with *priority*,
        for generator processes to ``yield`` (rare events: policy dates, capacity steps)."""
        if delay < 0.0:
            raise RuntimeError(f"internal error: event scheduled {delay} days in the past")
        ev = triggered_event(self.env)
        self.push(self.now + delay, priority, next(self.eid), ev)
        return ev

    def onehot(self, country: str) -> tuple:
        """Provenance vector of material wholly from *country*."""
        v = self._onehot.get(country)
        if v is None:
            v = self._onehot[country] = tuple(float(c == country) for c in self.origins)
        return v

    @staticmethod
    def mix(p1: tuple, q1: float, p2: tuple, q2: float) -> tuple:
        """Quantity-weighted mix of two provenance vectors."""
        tot = q1 + q2
        if tot <= 0.0:
            return p2
        a = q1 / tot
        b = q2 / tot
        return tuple([a * x + b * y for x, y in zip(p1, p2)])

    @staticmethod
    def blend(provs: list, weights: list) -> tuple:
        """Weighted mix of several provenance vectors (weights sum to one)."""
        first = provs[0]
        if len(provs) == 1 or all(p is first for p in provs):
            return first
        if len(provs) == 2:
            w0, w1 = weights
            return tuple([w0 * a + w1 * b for a, b in zip(first, provs[1])])
        out = [0.0] * len(first)
        for p, w in zip(provs, weights):
            for i, x in enumerate(p):
                out[i] += w * x
        return tuple(out)

    # -- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        net = self.network
        mats = net.materials
        inbound: dict[tuple[str, str], list] = {}
        for l in net.lanes:
            inbound.setdefault((l.dst, l.material), []).append(l)
        # which stocks exist at each node
        keys: list[tuple[str, str]] = []
        lane_materials: dict[str, set] = {}
        for l in net.lanes:
            lane_materials.setdefault(l.src, set()).add(l.material)
            lane_materials.setdefault(l.dst, set()).add(l.material)
        for n in net.nodes.values():
            ms = set(n.stocks) | set(n.production) | set(n.demand)
            for p in n.production.values():
                ms |= set(p.recipe)
            ms |= lane_materials.get(n.id, set())
            keys += [(n.id, m) for m in sorted(ms)]
        init_prov = self._initial_provenance(keys, inbound)
        from .network import StockSpec
        for nid, m in keys:
            n = net.nodes[nid]
            spec = n.stocks.get(m, StockSpec())
            cls = DemandStock if m in n.demand else Stock
            st = cls(self, n, m, spec.initial, spec.policy, init_prov[(nid, m)],
                     mats[m].price_usd_per_t)
            self.stocks[(nid, m)] = st
        # the seeds of the streams every replication opens (lead times of lanes that ship,
        # customer demand), in one pass rather than a SeedSequence each (see Streams.prepare)
        self.streams.prepare([_lead_time_stream(l.id) for l in net.lanes]
                             + [name for n in net.nodes.values() for m in n.demand
                                for name in _demand_streams(n.id, m)])
        for i, l in enumerate(net.lanes):
            src = self.stocks[(l.src, l.material)]
            dst = self.stocks[(l.dst, l.material)]
            sampler = BlockSampler(l.lead_time, self.streams, _lead_time_stream(l.id))
            lane = Lane(l, i, src, dst, sampler, mats[l.material].price_usd_per_t)
            self.lanes.append(lane)
            src.lanes_out.append(lane)
            dst.lanes_in.append(lane)
        for n in net.nodes.values():
            for m, p in n.production.items():
                out = self.stocks[(n.id, m)]
                inputs = [(self.stocks[(n.id, i)], a) for i, a in p.recipe.items()]
                prod = Production(self, n, out, inputs, p, self.onehot(n.country))
                out.producer = prod
                for inp, a in inputs:
                    inp.consumers.append(prod)
                    spec = n.stocks.get(inp.material)
                    if spec is not None and spec.policy.echelon:
                        inp.echelon = (prod, a)
                        out.echelon_inputs.append(inp)
                self.productions.append(prod)
        if self.production_mode == "bulk":
            for prod in self.productions:
                out = prod.out
                prod.lazy = (not prod.inputs and not out.consumers and out.ptype == "none"
                             and not out.echelon_inputs and not out.is_demand)
        for st in self.stocks.values():
            self.refresh_lanes(st)
        # policy layer (scenario): it may adjust lanes, capacities and demand before time starts
        from .policy import PolicyEngine
        self.policy = PolicyEngine(self, self.scenario)
        self._mark_provenance_readers()
        for n in net.nodes.values():
            for m, d in n.demand.items():
                st = self.stocks[(n.id, m)]
                times, sizes = self._draw_demand(n, m, d)
                st.setup_demand(times, sizes, n.unmet == "lost", n.sector)
                self.demand_stocks.append(st)
                # With backorders an arrival leaves the inventory position (and so every
                # decision) unchanged; it only moves net inventory, which is read after the
                # run. Such arrivals are not events: they are settled after the run.
                if (self.demand_mode == "bulk" and not st.lost and not st.lanes_out
                        and not st.consumers and st.producer is None):
                    st.deferred = []
        for i, st in enumerate(self.demand_stocks):
            st.priority = PRIORITY_DEMAND + i / (len(self.demand_stocks) + 1)
        if self.production_mode == "bulk":
            # An arrival that finds no queued order and no consumer waiting for inputs only
            # adds stock (the position is unchanged, so no review orders): it is held back
            # and put away when something next reads the stock, or gets its event if the
            # stock stops being quiet first. Demand, produced and periodically reviewed
            # stocks take arrivals as events (or settle them after the run, see above).
            for st in self.stocks.values():
                st.defers = (not st.is_demand and st.producer is None and not st.review_days
                             and st.echelon is None)
        if any(n.reserve for n in net.nodes.values()):
            self._build_reserves()
        # capacity schedules (rare events): a process per line whose capacity changes
        for prod in self.productions:
            future = self._initial_capacity(prod)
            if future:          # lines whose capacity never changes need no process
                self.env.process(self._capacity_process(prod, future))
        for lane in self.lanes:
            if not lane.usable and lane.qualified_at < self.horizon:
                self.at(lane.qualified_at, PRIORITY_POLICY, self._qualify, lane)
        for st in self.stocks.values():
            if st.review_days and st.ptype != "none":
                self.at(st.review_days, PRIORITY_REVIEW, self._periodic_review, st)
        self.policy.start()
        # kick off: production lines fill their targets, demand stocks predict their first
        # reorder, and buyers below their reorder level order at time zero
        for st in self.demand_stocks:
            if self.demand_mode == "events":
                for k, t in enumerate(st.T):
                    self.at(t, st.priority, self._customer_order, (st, k))
        self.at(0.0, PRIORITY_PRODUCTION, self._kickoff)

    def _build_reserves(self) -> None:
        """Set up the network's strategic reserves (:class:`Reserve`): each release lane leaves
        its buyer's share split (the buyer's other lanes take its orders), the buyers' arrivals
        become events (their level is read during the run, so none is settled afterwards), and
        the reserves' purchases and watches start."""
        for n in self.network.nodes.values():
            for m, spec in n.reserve.items():
                st = self.stocks[(n.id, m)]
                order: list[Lane] = []      # release lanes, buyers in priority order
                for name in spec.serve:
                    for lane in st.lanes_out:
                        node = lane.dst.node
                        if name in (node.id, node.sector) and lane not in order:
                            order.append(lane)
                if spec.civil:
                    order += [lane for lane in st.lanes_out if lane not in order]
                buyers = []
                for lane in order:
                    buyer = lane.dst
                    buyer.lanes_in.remove(lane)
                    self.refresh_lanes(buyer)
                    buyer.deferred = None
                    daily = buyer.node.demand[m].rate_t_per_year / 365.0
                    buyers.append((lane, buyer, spec.release_cover_days * daily))
                self.reserves.append(Reserve(self, st, spec, buyers))
        for reserve in self.reserves:
            reserve.start()

    def _initial_provenance(self, keys, inbound) -> dict:
        """Origin of initial stocks: own country at origin-conferring producers, else the mix of
        recipe inputs (by value) or of inbound lanes (by share), else the node's country."""
        net = self.network
        memo: dict[tuple[str, str], tuple] = {}

        def prov(key, depth=0):
            if key in memo:
                return memo[key]
            nid, m = key
            n = net.nodes[nid]
            if depth > 50:
                return self.onehot(n.country)
            memo[key] = self.onehot(n.country)     # cycle guard
            if m in n.production:
                p = n.production[m]
                if n.confers_origin or not p.recipe:
                    v = self.onehot(n.country)
                else:
                    items = list(p.recipe.items())
                    vals = [a * net.materials[i].price_usd_per_t for i, a in items]
                    tot = _fsum_plain(vals) or 1.0
                    v = self.blend([prov((nid, i), depth + 1) for i, _ in items],
                                   [x / tot for x in vals])
            elif key in inbound:
                ls = inbound[key]
                v = self.blend([prov((l.src, m), depth + 1) for l in ls],
                               [l.share for l in ls])
            else:
                v = self.onehot(n.country)
            memo[key] = v
            return v

        result = {k: prov(k) for k in keys}
        prov = None     # the recursive closure refers to itself: break that cycle
        return result

    def _mark_provenance_readers(self) -> None:
        """Track provenance only where it can reach a lane that an extraterritorial control
        inspects: the sources of such lanes and, upstream of them, the suppliers and the inputs
        of producers that pass their inputs' origin on (origin-conferring producers stamp
        their own). Everywhere else mixing it would be wasted work."""
        readers: set[int] = set()
        frontier = [lane.src for cs in self.policy.controls.values() for lane in cs.extra_lanes]
        while frontier:
            st = frontier.pop()
            if id(st) in readers:
                continue
            readers.add(id(st))
            frontier.extend(lane.src for lane in st.lanes_in)
            prod = st.producer
            if prod is not None and not prod.confers:
                prod.blends = True
                frontier.extend(inp for inp, _ in prod.inputs)
        for st in self.stocks.values():
            st.track_prov = id(st) in readers

    def refresh_lanes(self, st: Stock) -> None:
        """Recompute the usable inbound lanes of *st* and their renormalised shares."""
        usable = []
        tot = 0.0           # added left to right, as _fsum_plain does
        for lane in st.lanes_in:
            if lane.usable and not lane.closed and not lane.banned and not lane.avoid:
                usable.append(lane)
                tot += lane.share
        active = []
        for lane in usable:
            active.append((lane, 1.0 / len(usable) if tot <= 0 else lane.share / tot))
        st.active = active

    def lanes_changed(self, stocks, now: float) -> None:
        """After a policy or qualification change: refresh shares and let waiting buyers order."""
        for st in stocks:
            self.refresh_lanes(st)
            if st.review_days:
                continue
            if st.is_demand:
                st.advance(now, inclusive=False)
                st.schedule_wake(now)
                if st.active:
                    ip = st.position()
                    if ip <= st.level:
                        st.order(st.order_quantity(ip), now)
                        st.schedule_wake(now)
            else:
                st.review(now)

    def _qualify(self, lane) -> None:
        lane.usable = True
        self.lanes_changed([lane.dst], self.now)

    def _kickoff(self, _value) -> None:
        now = self.now
        for prod in self.productions:
            prod.try_start(now)
        for st in self.stocks.values():
            if st.review_days or st.ptype == "none":
                continue
            if st.is_demand:
                ip = st.position()
                if ip <= st.level:
                    st.order(st.order_quantity(ip), now)
                if self.demand_mode == "bulk":
                    st.schedule_wake(now)
            else:
                st.review(now)

    def _customer_order(self, value) -> None:
        # straightforward path: one event per customer order (for tests and comparisons)
        st, k = value
        now = self.now
        st.k_next = k + 1
        if st.review_days or st.ptype == "none":
            return
        ip = st.position()
        if ip <= st.level and st.active:
            st.order(st.order_quantity(ip), now)

    def _periodic_review(self, st) -> None:
        now = self.now
        if st.is_demand:
            st.advance(now, inclusive=True)
        ip = st.position()
        if ip <= st.level:
            st.order(st.order_quantity(ip), now)
        if now + st.review_days < self.horizon:
            self.at(st.review_days, PRIORITY_REVIEW, self._periodic_review, st)

    def _initial_capacity(self, prod: Production) -> list[tuple[float, float]]:
        """Set the line's capacity in force at time 0; return its later steps in the run."""
        steps = []
        for date, cap in prod.schedule:
            day = 0.0 if date is None else max(0.0, self.day_of(date))
            steps.append((day, cap))
        steps.sort(key=lambda s: s[0])
        # capacity in force at time 0 is the last step at or before day 0
        current = 0.0
        future = []
        for day, cap in steps:
            if day <= 0.0:
                current = cap
            else:
                future.append((day, cap))
        prod.base_rate = current / 365.0
        prod.rate = prod.base_rate
        for f in prod.factors:
            prod.rate *= f
        prod.note_capacity(0.0)
        return [(day, cap) for day, cap in future if day < self.horizon]

    def _capacity_process(self, prod: Production, future: list[tuple[float, float]]):
        for day, cap in future:
            yield self.sleep(day - self.env.now)
            prod.set_rate(cap, self.env.now)

    def _draw_demand(self, node: NodeSpec, material: str, spec) -> tuple[list, list]:
        times_name, sizes_name = _demand_streams(node.id, material)
        rng = self.streams.generator(times_name)
        size_rng = self.streams.generator(sizes_name)
        H = self.horizon
        mult = self.policy.demand_multiplier(node, material) if self.policy else None
        if spec.process == "periodic":
            times = np.arange(spec.period_days, H, spec.period_days)
            sizes = spec.size.sample(size_rng, len(times))
            if mult is not None:
                sizes = sizes * mult(times)
        else:
            if spec.process == "poisson":
                mean_gap = 365.0 * spec.order_size.mean / spec.rate_t_per_year \
                    if spec.rate_t_per_year > 0 else math.inf
                gap_dist = None
            else:
                gap_dist = spec.interarrival
                mean_gap = gap_dist.mean
            if not math.isfinite(mean_gap):
                return np.zeros(0), np.zeros(0)
            # operational time: a demand surge speeds up the arrival clock (time change), so the
            # same random numbers give more orders while it lasts (common random numbers hold)
            op_h = H if mult is None else mult.cumulative(H)
            n_guess = int(op_h / mean_gap * 1.1) + 16
            chunks = []
            total = 0.0
            while total < op_h:
                g = rng.exponential(mean_gap, n_guess) if gap_dist is None \
                    else gap_dist.sample(rng, n_guess)
                chunks.append(g)
                total += float(g.sum())
            op_times = np.cumsum(np.concatenate(chunks))
            op_times = op_times[op_times < op_h]
            times = op_times if mult is None else mult.inverse_cumulative(op_times)
            sizes = spec.order_size.sample(size_rng, len(times))
        keep = sizes > 0
        if not keep.all():
            times, sizes = times[keep], sizes[keep]
        if (sizes < 0).any() or not np.isfinite(sizes).all():
            raise ValueError(f"demand at node '{node.id}' drew invalid sizes")
        return np.asarray(times, dtype=float), np.asarray(sizes, dtype=float)

    # -- the hot path -----------------------------------------------------------------------
    def ship(self, lane: Lane, qty: float, now: float) -> None:
        """Take *qty* from the lane's supplier and send it (through any policy gate)."""
        src = lane.src
        src.on_hand -= qty
        record3(src.log, now, REC_SHIPPED, qty)
        lane.in_transit += qty
        gate = lane.gate
        if gate is not None:
            gate(lane, qty, src.prov, now)
            return
        self.dispatch(lane, qty, src.prov, now, now)

    def dispatch(self, lane: Lane, qty: float, prov, now: float, shipped_at: float) -> None:
        """Load (respecting lane capacity) and start the lead time of a shipment."""
        depart = now
        if lane.rate is not None:
            if lane.dock_free > depart:
                depart = lane.dock_free
            depart += qty / lane.rate
            lane.dock_free = depart
        sampler = lane.sample
        i = sampler._i
        if i < len(sampler._buf):      # the sampler's fast path, inlined (every shipment)
            sampler._i = i + 1
            arrive = depart + sampler._buf[i]
        else:
            arrive = depart + sampler()
        record5(lane.log, shipped_at, qty, arrive, lane.tariff, now)
        dst = lane.dst
        if dst.deferred is not None:
            dst.deferred.append((arrive, qty, lane))
            return
        t = self.now + (arrive - now)
        if dst.defers and not dst.backlog and not dst.rush:
            for prod in dst.consumers:
                if prod.blocked:
                    break
            else:       # quiet: held back (its event id reserved) until something reads it
                _heappush(dst.pending, (t, next(self.eid), qty, prov, lane))
                return
        call = (self.on_arrival, (lane, qty, prov))
        self.push(t, PRIORITY_ARRIVAL, next(self.eid), call)

    def _arrival(self, value) -> None:
        lane, qty, prov = value
        lane.in_transit -= qty
        lane.dst.receive(qty, prov, self.now, lane)

    # -- for the policy layer ---------------------------------------------------------------
    def drop_queued(self, lane: Lane, now: float) -> float:
        """Cancel the orders queued at *lane*'s supplier for that lane (the buyer re-routes
        them, e.g. when the lane is banned or closed): the supplier records them dropped
        (``REC_BACKLOG_DROP``), the buyer cancelled (``REC_CANCELLED``, off its on-order
        quantity). Returns the tonnes dropped."""
        src = lane.src
        src.bring_up_to_date(now)
        lane.dst.bring_up_to_date(now)
        dropped = 0.0
        for name in ("backlog", "rush"):
            queue = getattr(src, name)
            kept = type(queue)()
            for entry in queue:
                if entry[0] is lane:
                    dropped += entry[1]
                else:
                    kept.append(entry)
            setattr(src, name, kept)
        if dropped > 0:
            src.backlog_qty -= dropped
            record3(src.log, now, REC_BACKLOG_DROP, dropped)
            buyer = lane.dst
            buyer.on_order -= dropped
            record3(buyer.log, now, REC_CANCELLED, dropped)
        return dropped

    def return_shipment(self, lane: Lane, qty: float, now: float) -> None:
        """A shipment of *qty* that left *lane*'s supplier but never crossed the border (a
        licence denied) goes back: the supplier takes it back into stock (``REC_RETURNED``,
        serving its queue with it), the buyer cancels it (``REC_CANCELLED``). The buyer's
        lanes are the caller's to refresh (:meth:`lanes_changed`)."""
        src = lane.src
        buyer = lane.dst
        buyer.bring_up_to_date(now)
        src.bring_up_to_date(now)      # what it finished before now is booked first
        lane.in_transit -= qty
        record3(src.log, now, REC_RETURNED, qty)
        src.receive(qty, src.prov, now, None)
        buyer.on_order -= qty
        record3(buyer.log, now, REC_CANCELLED, qty)

    # -- running ----------------------------------------------------------------------------
    def run(self) -> Recording:
        """Run to the horizon and hand over what was recorded: a
        :class:`~sim.records.Recording` of numpy arrays and plain values, of which
        :meth:`sim.results.Run.from_recording` makes the :class:`~sim.results.Run`
        (:func:`sim.simulate` does both)."""
        with gc_paused():
            t0 = _time.perf_counter()
            self._loop(self.horizon)
            self.prio = PRIORITY_POLICY   # the end: batches ending exactly at the horizon wait
            for prod in self.productions:
                if prod.lazy:
                    prod.sync(self.horizon)
            for st in self.stocks.values():
                if st.pending:
                    st.settle_arrivals(self.horizon)
            for st in self.demand_stocks:
                if st.deferred:
                    st.settle_deferred(self.horizon)
                st.advance(self.horizon, inclusive=False)
            self.run_seconds = _time.perf_counter() - t0
            return self.recording()

    def recording(self) -> Recording:
        """The records of the finished model (after :meth:`run`) as arrays and plain values,
        with the final state of each stock, lane and line."""
        sc = self.scenario
        stocks = []
        for st in self.stocks.values():
            if st.is_demand:
                level = st.level_before(st.k_next)
                final = max(level, 0.0)
                backlog = max(-level, 0.0) if not st.lost else 0.0
            else:
                final = st.on_hand
                backlog = st.backlog_qty
            log = st.log_array if st.log_array is not None else records_array(st.log, 3)
            node = st.node
            stocks.append(StockLog(node.id, st.material, node.kind, node.country, node.sector,
                                   st.initial, final, st.on_order, backlog, log, st.price,
                                   node.holding_cost_rate, st.is_demand))
        demand = []
        for st in self.demand_stocks:
            times, sizes, cum = st.arrays
            epochs = st.epochs
            epochs = epochs.reshape(-1, 3) if isinstance(epochs, np.ndarray) \
                else records_array(epochs, 3)
            node = st.node
            demand.append(DemandLog(node.id, st.material, node.sector, node.country, st.lost,
                                    times, sizes, cum, epochs))
        lanes = [LaneLog(l.id, l.spec.src, l.spec.dst, l.material, l.price,
                         records_array(l.log, 5), l.in_transit)
                 for l in self.lanes]
        lines = [LineLog(p.node.id, p.out.material, records_array(p.log, 3), p.wip,
                         np.array(p.cap_log, dtype=float).reshape(-1, 3))
                 for p in self.productions]
        pol = self.policy
        net = self.network
        return Recording(
            network_name=net.name, network_digest=net.digest(), scenario_name=sc.name,
            scenario_digest=sc.digest(), seed=self.seed, replication=self.replication,
            start=self.start, horizon=self.horizon,
            shortage_from=self.day_of(sc.shortage_after) if sc.shortage_after else 0.0,
            stocks=stocks, demand=demand, lanes=lanes, lines=lines,
            policy_events=[(e.day, e.kind, e.label) for e in pol.events],
            truce_outcomes=list(pol.truce_outcomes), licence_log=pol.licence_log,
            policy_tables=pol.tables(),
            fleets={n.id: (n.fleet, {m: d.rate_t_per_year / 365.0 for m, d in n.demand.items()})
                    for n in net.nodes.values() if n.fleet is not None},
            stats={"build_seconds": self.build_seconds, "run_seconds": self.run_seconds,
                   "events": self.events},
            reserves=[reserve.record() for reserve in self.reserves])

    def _loop(self, until: float, limit: int = -1) -> None:
        """Process SimPy's event queue up to (not including) *until*.

        This is ``Environment.step`` in a loop, inlined, that also records the priority of the
        event being processed (lazy production lines need it to order simultaneous events) and
        calls the engine's own ``(callback, value)`` entries (see :meth:`at`) directly. SimPy
        events (processes, timeouts) are processed as SimPy does, and failed events that
        nobody handled are raised. With *limit* >= 0, stop after that many events."""
        env = self.env
        queue = event_queue(env)
        heap = self.heap
        pop = _heappop
        n = 0
        if limit >= 0:
            until = math.inf
        try:
            while n != limit:
                # the next entry: the engine heap's first or SimPy queue's, whichever key
                # (time, priority, id) is smaller (the Python build has only SimPy's queue)
                if heap is not None and heap.n and (not queue or heap.first_before(queue[0])):
                    now = heap.tv[0]
                    if now >= until:
                        break
                    self.prio = heap.pv[0]
                    self.cur_eid = heap.ev[0]
                    event = heap.pop()
                elif queue and queue[0][0] < until:
                    now, self.prio, self.cur_eid, event = pop(queue)
                else:
                    break
                self.now = now          # SimPy's clock too (env.now reads it)
                n += 1
                if event.__class__ is tuple:
                    event[0](event[1])
                    continue
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                raise_if_failed(event)
        finally:
            self.events += n
        if limit < 0:
            self.now = until

    def peek(self) -> float:
        """Time of the next scheduled event, or infinity, as ``Environment.peek`` (which sees
        only SimPy's queue, not the compiled build's :class:`EventHeap`)."""
        queue = event_queue(self.env)
        first = queue[0][0] if queue else math.inf
        if self.heap is not None and self.heap.n and self.heap.tv[0] < first:
            first = self.heap.tv[0]
        return first

    def step(self) -> None:
        """Process the next event on the queue, as ``Environment.step`` does (for tracing and
        tests; :meth:`run` is the fast path). The engine's own ``(callback, value)`` entries
        are not SimPy events, so step the model with this, not ``env.step()``."""
        env = self.env
        if not event_queue(env) and not (self.heap is not None and self.heap.n):
            raise simpy.core.EmptySchedule()
        self._loop(math.inf, limit=1)

    def release(self) -> None:
        """Take the finished model apart after :meth:`run`, so that reference counting frees
        it at once (the :class:`~sim.records.Recording` that :meth:`run` returned holds
        everything it recorded, as arrays). The model is a web of reference cycles (stocks,
        lanes, lines, scheduled callbacks and the model point at each other); left whole, it
        would wait for Python's cyclic garbage collector, and each collection until then would
        walk all of it, change logs item by item, in rare long pauses (see
        benchmarks/README.md). The model cannot be used afterwards; :func:`sim.simulate`
        calls this."""
        for st in self.stocks.values():
            st.model = st.producer = st.echelon = st.deferred = None
            st.lanes_in = st.lanes_out = st.active = st.consumers = st.echelon_inputs = []
            st.backlog, st.rush, st.pending = deque(), deque(), []
        for lane in self.lanes:
            lane.src = lane.dst = lane.gate = None
        for st in self.demand_stocks:
            st.on_wake = None
        for prod in self.productions:
            prod.model = prod.out = prod.pend_event = prod.on_done = None
            prod.inputs = []
        queue = event_queue(self.env)
        pending = [entry[3] for entry in queue]
        if self.heap is not None:
            pending += self.heap.entries()
            self.heap.clear()
        for event in pending:
            if event.__class__ is not tuple:     # a process waits on it: end the process
                close_process_waiting_on(event)
        queue.clear()
        self.env.detach()
        if self.policy is not None:
            self.policy.model = None
        self.policy = None
        self.on_arrival = None
        for reserve in self.reserves:
            reserve.release()
        self.reserves = []
        self.stocks, self.lanes, self.productions, self.demand_stocks = {}, [], [], []

    @property
    def events_processed(self) -> int:
        """SimPy events processed by :meth:`run`."""
        return self.events


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a model is built and run. The event loop
    creates no reference cycles (its garbage goes by reference counting), but its many small
    allocations set off collections that walk every live object, at a cost that grows with
    the model (see benchmarks/README.md). The model's own cycles are broken after the run by
    :meth:`Model.release` (in :func:`sim.simulate`), or collected later."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_window(scenario, start: _dt.date | str | None = None,
               horizon_days: float | None = None) -> tuple[_dt.date, float]:
    """The first day (a date) and the length in days of a run of *scenario*, as
    :class:`Model` sets them: *start* (default: the scenario's start, else 2025-01-01) and
    *horizon_days* (default: to the scenario's end, else to 2029-01-01), checked
    (:class:`~sim.errors.ModelError` naming the field)."""
    first = _as_date(start) if start is not None else scenario.start or DEFAULT_START
    if horizon_days is None:
        end = scenario.end or DEFAULT_HORIZON_END
        horizon_days = (end - first).days
    check_horizon_days(horizon_days, since=first)
    return first, float(horizon_days)


def _as_date(value, field: str = "start") -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise ModelError(f"must be a date YYYY-MM-DD, got {value!r}", field=field) from None


# -- the compiled engine ----------------------------------------------------------------------
# setup.py compiles a copy of this file with Cython, typed by engine.pxd, into
# sim._engine_compiled (optional: without Cython or a C compiler the install goes on without
# it). It is the same code, so it gives the same results, bit for bit (the tests run both
# builds on the same configurations and compare every recorded array); it runs the engine
# faster (benchmarks/README.md has the figures), since the hot classes' attributes and calls
# become C, and so do the event heap and the change logs (EventHeap, RecordLog; the Python
# build keeps SimPy's queue and lists). The compiled
# module records the SHA-256 of the engine.py and engine.pxd it was built from, and it is
# used only when they match the files here: an edited engine.py runs as Python (with a
# warning) until it is rebuilt, never silently as the old compiled code.

ENGINE_VARIABLE = "RARE_EARTH_SIM_ENGINE"
ENGINE_CHOICES = ("auto", "compiled", "python")
_COMPILED_NAMES = ("Lane", "Stock", "DemandStock", "Production", "Model", "records_array")


def source_digest() -> str:
    """SHA-256 of ``engine.py`` and ``engine.pxd`` as setup.py computes it for the compiled
    build (the two files' bytes joined by a NUL byte); "" when ``engine.pxd`` is missing."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).with_name("engine.py")
    pxd = here.with_suffix(".pxd")
    if not pxd.is_file():
        return ""
    return hashlib.sha256(here.read_bytes() + b"\0" + pxd.read_bytes()).hexdigest()


def _compiled_module(mode: str):
    """The compiled engine module to use under *mode* (see ``RARE_EARTH_SIM_ENGINE``), or None
    for this pure-Python module; and why it is not used, when *mode* asked for it (or None).

    ``auto`` uses the compiled build when it is installed and current; ``compiled`` asks for
    it and ``python`` declines it."""
    if mode not in ENGINE_CHOICES:
        return None, (f"{ENGINE_VARIABLE} must be one of {', '.join(ENGINE_CHOICES)}, got "
                      f"{mode!r}")
    if mode == "python":
        return None, None
    try:
        from . import _engine_compiled as compiled
    except ImportError as exc:
        return None, (None if mode == "auto" else
                      f"{ENGINE_VARIABLE}=compiled, but the compiled engine is not installed "
                      f"({exc}); install with Cython and a C compiler available "
                      "(python -m pip install -e .)")
    if getattr(compiled, "SOURCE_DIGEST", None) != source_digest():
        return None, ("the compiled engine was built from another version of sim/engine.py or "
                      "sim/engine.pxd; rebuild it with python -m pip install -e .")
    return compiled, None


_IS_COMPILED_COPY = __name__.rpartition(".")[2] != "engine"
ENGINE = "compiled" if _IS_COMPILED_COPY else "python"   # which build runs (in every manifest)
if not _IS_COMPILED_COPY:
    # Never an error at import: both builds give the same results, so a problem here costs
    # speed only, and a warning that names it is enough.
    import os as _os

    _compiled, _problem = _compiled_module(
        _os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto")
    if _problem is not None:
        import warnings as _warnings

        _warnings.warn(_problem + "; the pure-Python engine runs (same results, slower)",
                       RuntimeWarning, stacklevel=2)
    if _compiled is not None:
        ENGINE = "compiled"
        for _name in _COMPILED_NAMES:
            globals()[_name] = getattr(_compiled, _name)
        del _name
