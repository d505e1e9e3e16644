"""KPIs computed from a run's recorded data with numpy.

Definitions (per demand stream, then aggregated over the streams of a scope):

* ``fill_rate`` (type 2): units filled from stock on arrival of the order / units demanded.
* ``fill_rate_type1``: share of orders filled completely from stock on arrival.
* ``backordered_t`` / ``lost_t``: units not filled on arrival (backordered or lost per node).
* ``peak_backorders_t``: largest backorder level (exact per node; end-of-day sum for groups).
* ``mean_backorders_t``: time average of the end-of-day backorder level.
* ``stockout_days``: days on which at least one order was not filled completely.
* ``first_shortage_day``: day of the first order not filled completely at or after the
  scenario's ``shortage_after`` date (or day 0). When there is none the value is the horizon
  (right-censored) and ``shortage_occurred`` is 0; the ``date`` column holds the calendar date.
* Costs (USD): ``purchase_cost_usd`` (shipped tonnes x material price), ``tariff_cost_usd``
  (purchase value x tariff rate in force at shipment), ``holding_cost_usd`` (end-of-day stock
  x price x the node's holding rate / 365), by buyer.

Scopes: ``network``, ``civil`` (every sector but defense, when both exist), ``sector:<s>``,
``country:<ISO>`` (of the demand node), ``node:<id>``, ``policy`` (truce outcome and licence
counts).
"""

from __future__ import annotations

import math
from functools import cached_property, reduce
from itertools import accumulate, pairwise
from operator import add, itemgetter, mul, or_

import numpy as np

__all__ = ["stream_kpis", "group_kpis", "DemandArrays", "stream_kpi_table", "group_kpi_table",
           "KPI_NAMES", "TRUCE_OUTCOME_CODES"]

EPS = 1e-9
KPI_NAMES = ("fill_rate", "fill_rate_type1", "demand_t", "filled_t", "backordered_t", "lost_t",
             "peak_backorders_t", "mean_backorders_t", "stockout_days", "first_shortage_day",
             "shortage_occurred", "orders")
TRUCE_OUTCOME_CODES = {"none": 0, "reinstate": 1, "extend": 2, "escalate": 3}


def stream_kpis(d, shortage_from: float, horizon: float) -> dict:
    """KPIs of one demand stream (a :class:`~sim.results.DemandRecord`)."""
    D, f, T = d.D, d.filled, d.T
    n = len(D)
    tot = float(D.sum())
    filled = float(f.sum())
    short = f < D - EPS
    # T is sorted, so the days with a short order come sorted: count the distinct ones
    days = np.floor(T[short]).astype(np.int64)
    if len(days):
        days = days[np.concatenate(([True], days[1:] != days[:-1]))]
    out = {
        "orders": float(n),
        "demand_t": tot,
        "filled_t": filled,
        "fill_rate": filled / tot if tot > 0 else 1.0,
        "fill_rate_type1": float(1.0 - short.mean()) if n else 1.0,
        "backordered_t": 0.0 if d.lost else tot - filled,
        "lost_t": tot - filled if d.lost else 0.0,
        "stockout_days": float(len(days)),
        "short_days": days,          # not a KPI: lets groups count distinct days
    }
    if d.lost or n == 0:
        out["peak_backorders_t"] = 0.0
    else:
        out["peak_backorders_t"] = float(max(0.0, -(d.level_before - D).min()))
    out["mean_backorders_t"] = float(d.daily_backorders.mean()) if len(d.daily_backorders) else 0.0
    late = short & (T >= shortage_from)
    if late.any():
        out["first_shortage_day"] = float(T[np.argmax(late)])
        out["shortage_occurred"] = 1.0
    else:
        out["first_shortage_day"] = float(horizon)
        out["shortage_occurred"] = 0.0
    return out


def group_kpis(records: list, per_stream: list[dict], horizon: float) -> dict:
    """Aggregate stream KPIs over a group of demand streams."""
    if not records:
        return {}
    tot = sum(k["demand_t"] for k in per_stream)
    filled = sum(k["filled_t"] for k in per_stream)
    orders = sum(k["orders"] for k in per_stream)
    full = sum(k["fill_rate_type1"] * k["orders"] for k in per_stream)
    short_days = np.zeros(int(math.ceil(horizon)) + 1, dtype=bool)
    for k in per_stream:
        short_days[k["short_days"]] = True
    bo = np.sum([d.daily_backorders for d in records], axis=0)
    first = min(k["first_shortage_day"] for k in per_stream)
    return {
        "orders": orders,
        "demand_t": tot,
        "filled_t": filled,
        "fill_rate": filled / tot if tot > 0 else 1.0,
        "fill_rate_type1": full / orders if orders else 1.0,
        "backordered_t": sum(k["backordered_t"] for k in per_stream),
        "lost_t": sum(k["lost_t"] for k in per_stream),
        "peak_backorders_t": float(bo.max()) if bo.size else 0.0,
        "mean_backorders_t": float(bo.mean()) if bo.size else 0.0,
        "stockout_days": float(short_days.sum()),
        "first_shortage_day": first,
        "shortage_occurred": float(any(k["shortage_occurred"] for k in per_stream)),
    }


# -- all streams at once ----------------------------------------------------------------------
# A replication of the default network has 22 demand streams and 17 groups of them; computed
# one by one, their KPIs take ~500 numpy calls on small arrays, whose fixed cost is most of the
# time. The functions below compute the same values, bit for bit, with a few calls over all the
# streams together. Elementwise operations give the same result wherever an element sits; every
# sum keeps the order of additions of the one-by-one code: a sum over one stream's orders is
# still one ``np.add.reduce`` per stream (numpy's pairwise summation depends on the length of
# what it sums), the rows of a matrix reduced along the row are each summed as that row alone,
# and sums across streams add them one after the other, as ``np.sum(rows, axis=0)`` does.


class DemandArrays:
    """The demand streams of a run side by side, for computing their KPIs together.

    The per-order arrays of the streams (``T``, ``D``, ``level_before``, ``filled``) are
    concatenated: stream *i*'s orders are ``start[i]:start[i + 1]`` (``start`` a list), and
    ``stream`` holds the stream of each order. The daily series are the rows of
    ``(streams, days)`` matrices: ``daily_level``, ``daily_backorders`` and ``daily_on_hand``
    (the values of the records' fields and properties of those names). Build it with
    :meth:`from_records`, or from arrays already concatenated, as
    :meth:`sim.results.Run.from_model` does.
    """

    def __init__(self, T: np.ndarray, D: np.ndarray, level_before: np.ndarray,
                 filled: np.ndarray, daily_level: np.ndarray, orders: list[int],
                 lost: list[bool]) -> None:
        self.count, self.ndays = daily_level.shape
        self.T, self.D, self.level_before, self.filled = T, D, level_before, filled
        self.orders = orders
        self.start = [0, *accumulate(orders)]
        self.stream = np.repeat(np.arange(self.count), orders)
        self.lost = [bool(x) for x in lost]
        self.daily_level = daily_level
        backorders = np.negative(daily_level)
        self.daily_backorders = np.maximum(backorders, 0.0, out=backorders)
        # streams with a backorder at some day's end: the others' rows are all 0.0 (never
        # -0.0: np.maximum(-0.0, 0.0) is 0.0), which leave a sum across streams as it is
        self.backordered = backorders.any(axis=1).tolist()

    @classmethod
    def from_records(cls, records: list, ndays: int) -> DemandArrays:
        """The streams of :class:`~sim.results.DemandRecord` *records* (days: *ndays*)."""
        if not records:
            empty = np.zeros(0)
            return cls(empty, empty, empty, empty, np.zeros((0, ndays)), [], [])
        return cls(np.concatenate([d.T for d in records]),
                   np.concatenate([d.D for d in records]),
                   np.concatenate([d.level_before for d in records]),
                   np.concatenate([d.filled for d in records]),
                   np.array([d.daily_level for d in records], dtype=float),
                   [len(d.T) for d in records], [d.lost for d in records])

    @cached_property
    def daily_on_hand(self) -> np.ndarray:
        """End-of-day stock on hand of each stream (rows)."""
        return np.maximum(self.daily_level, 0.0)

    def segment_sums(self, values: np.ndarray) -> list[float]:
        """The sum of *values* (one per order) over each stream's orders, as ``float`` of
        ``values[start:end].sum()`` (pairwise, one call per stream: see above)."""
        add = np.add.reduce
        return [float(add(values[a:b])) for a, b in pairwise(self.start)]

    def backorders_across(self, idx: list[int]) -> np.ndarray | None:
        """The sum of the daily backorder rows of streams *idx*, bit for bit
        ``np.sum([rows], axis=0)`` (None when they are all 0.0).

        Down the rows of a ``(streams, days)`` matrix, numpy adds row after row (it sums
        pairwise only along the innermost axis, which is the days; with a single day that is
        the streams, so then it is called as it is); so the rows of the streams that had
        backorders are added in that order, without copying the others."""
        if self.ndays < 2:
            return np.add.reduce(self.daily_backorders[list(idx)], axis=0)
        rows = [i for i in idx if self.backordered[i]]
        if not rows:
            return None
        total = self.daily_backorders[rows[0]].copy()
        for i in rows[1:]:
            total += self.daily_backorders[i]
        return total


def stream_kpi_table(streams: DemandArrays, shortage_from: float, horizon: float) -> dict:
    """:func:`stream_kpis` of every stream of *streams* at once: KPI name -> list of one value
    per stream (the same floats), and ``"short_days"``: for each stream, the days on which it
    had an order not filled completely, as the bits of an ``int`` (bit *d*: day *d*)."""
    S = streams.count
    T, D, f = streams.T, streams.D, streams.filled
    orders = streams.orders
    tot = streams.segment_sums(D)
    filled = streams.segment_sums(f)
    short = f < D - EPS
    short_stream = streams.stream[short]
    n_short = np.bincount(short_stream, minlength=S).tolist()
    days = np.zeros((S, int(math.ceil(horizon)) + 1), dtype=bool)
    days[short_stream, np.floor(T[short]).astype(np.int64)] = True
    short_days = [int.from_bytes(row.tobytes(), "little")
                  for row in np.packbits(days, axis=1, bitorder="little")]
    # peak backorders: the lowest level after an order, per stream with orders (np.minimum
    # picks a value, so the order in which it compares does not matter)
    peak = [0.0] * S
    has_orders = [i for i, n in enumerate(orders) if n]
    if has_orders:
        lowest = np.minimum.reduceat(streams.level_before - D,
                                     [streams.start[i] for i in has_orders]).tolist()
        for i, low in zip(has_orders, lowest):
            if not streams.lost[i]:
                peak[i] = float(max(0.0, -low))
    if streams.ndays:
        mean_bo = streams.daily_backorders.mean(axis=1).tolist()
    else:
        mean_bo = [0.0] * S
    # the first order not filled completely at or after shortage_from, per stream: where the
    # stream changes among those orders (they come by stream, in time order)
    late = np.flatnonzero(short & (T >= shortage_from))
    late_stream = streams.stream[late]
    first = np.ones(len(late), dtype=bool)
    first[1:] = late_stream[1:] != late_stream[:-1]
    first_day = [float(horizon)] * S
    occurred = [0.0] * S
    for i, t in zip(late_stream[first].tolist(), T[late[first]].tolist()):
        first_day[i] = t
        occurred[i] = 1.0
    lost = streams.lost
    return {
        "orders": [float(n) for n in orders],
        "demand_t": tot,
        "filled_t": filled,
        "fill_rate": [fi / to if to > 0 else 1.0 for fi, to in zip(filled, tot)],
        "fill_rate_type1": [1.0 - k / n if n else 1.0 for k, n in zip(n_short, orders)],
        "backordered_t": [0.0 if ls else to - fi for ls, to, fi in zip(lost, tot, filled)],
        "lost_t": [to - fi if ls else 0.0 for ls, to, fi in zip(lost, tot, filled)],
        "peak_backorders_t": peak,
        "mean_backorders_t": mean_bo,
        "stockout_days": [float(bits.bit_count()) for bits in short_days],
        "first_shortage_day": first_day,
        "shortage_occurred": occurred,
        "short_days": short_days,
    }


def group_kpi_table(streams: DemandArrays, per_stream: dict, groups: list) -> list[dict]:
    """:func:`group_kpis` of each group of streams (a list of stream indices, not empty), from
    the :func:`stream_kpi_table` of *streams*: one dict per group (the same floats)."""
    out = []
    backorders = []      # the groups' end-of-day backorder levels (those not all 0.0)
    with_backorders = []
    for g, idx in enumerate(groups):
        pick = itemgetter(*idx) if len(idx) > 1 else lambda values, i=idx[0]: (values[i],)
        # left to right, as group_kpis adds its numpy floats; not with sum(), which from
        # Python 3.12 compensates the rounding of Python floats (the KPIs would then differ
        # in their last bits between Python versions)
        orders, tot, filled, backordered, lost = [
            reduce(add, pick(per_stream[name]), 0.0)
            for name in ("orders", "demand_t", "filled_t", "backordered_t", "lost_t")]
        full = reduce(add, map(mul, pick(per_stream["fill_rate_type1"]),
                               pick(per_stream["orders"])), 0.0)
        bo = streams.backorders_across(idx)
        if bo is not None:
            backorders.append(bo)
            with_backorders.append(g)
        out.append({
            "orders": orders,
            "demand_t": tot,
            "filled_t": filled,
            "fill_rate": filled / tot if tot > 0 else 1.0,
            "fill_rate_type1": full / orders if orders else 1.0,
            "backordered_t": backordered,
            "lost_t": lost,
            "peak_backorders_t": 0.0,       # a level of 0.0 every day (or no days)
            "mean_backorders_t": 0.0,
            # days with a short order in any of the streams
            "stockout_days": float(reduce(or_, pick(per_stream["short_days"])).bit_count()),
            "first_shortage_day": min(pick(per_stream["first_shortage_day"])),
            "shortage_occurred": float(any(pick(per_stream["shortage_occurred"]))),
        })
    if backorders and streams.ndays:
        # the groups' levels as the rows of a matrix: each row's max and mean as of the row
        matrix = np.array(backorders)
        peak = np.maximum.reduce(matrix, axis=1).tolist()
        mean = matrix.mean(axis=1).tolist()
        for g, p, m in zip(with_backorders, peak, mean):
            out[g]["peak_backorders_t"] = p
            out[g]["mean_backorders_t"] = m
    return out
