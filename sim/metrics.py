"""KPIs computed from a run's recorded data with numpy.

Definitions, per demand stream (one material at one demand node, or at one plant of a fleet:
:mod:`sim.fleet`), then aggregated over the streams of a scope. A *day* is ``[d, d + 1)`` in
days since the start of the run; ``days`` is the number of days of the run (``ceil(horizon)``);
an order is *short* when it is not filled completely from stock on arrival (filled < size -
1e-9 t).

=============================  ==============================================================
KPI                            definition
=============================  ==============================================================
``fill_rate``                  volume fill rate (type-2, beta service level): tonnes filled
                               from stock on arrival of the order / tonnes demanded
``order_fill_rate``            share of orders filled completely from stock on arrival
                               (order-based alpha service level); groups: over all their orders
``demand_t``, ``filled_t``     tonnes demanded; tonnes filled from stock on arrival
``backordered_t`` / ``lost_t`` tonnes not filled on arrival (backordered or lost per node)
``orders``                     number of customer orders
``peak_backorders_t``          largest backorder level (exact per stream; end-of-day sum for
                               groups)
``mean_backorders_t``          time average of the end-of-day backorder level
``stockout_days``              days in stockout: days that begin or end with an unmet customer
                               backlog or on which an order is short (backorder nodes), days
                               with lost demand (lost-sales nodes); groups: days on which any
                               of their streams is in stockout
``short_order_days``           days on which at least one order is short (groups: in any
                               stream)
``period_service_level``       share of the run's days not in stockout,
                               ``1 - stockout_days / days`` (period alpha service level, the
                               period being a day; the textbook type-1 measure per period)
``first_shortage_day``         day of the run (from its start, day 0) of the first short
                               order; groups: the earliest of their streams. When there is
                               none, the horizon (right-censored) and ``shortage_occurred`` is
                               0. The ``date`` column of :meth:`sim.results.Run.kpis` holds
                               its calendar date
``shortage_occurred``          1 if some order was short during the run, else 0
``first_shortage_after_day``   day of the run of the first short order at or after the
                               scenario's ``shortage_after`` event date (or day 0 without one;
                               the event day is the KPI ``shortage_after_event_day`` of scope
                               ``policy``); censored at the horizon like ``first_shortage_day``
``shortage_after_occurred``    1 if some order at or after the event date was short, else 0
Costs (USD)                    ``purchase_cost_usd`` (shipped tonnes x material price),
                               ``tariff_cost_usd`` (purchase value x tariff rate in force at
                               shipment), ``holding_cost_usd`` (end-of-day stock x price x the
                               node's holding rate / 365), by buyer
=============================  ==============================================================

Names used before: ``fill_rate_type1`` is ``order_fill_rate``; the old ``stockout_days`` (days
with a short order) is ``short_order_days``; the old ``first_shortage_day`` (counted from the
scenario's ``shortage_after``) is ``first_shortage_after_day``.

The KPIs' names, units, directions and implementations are the registry
:data:`sim.kpis.KPI_TABLE`; the functions here compute, once for all the streams of a run, what
the demand KPIs share, and call each KPI's functions. To add a KPI: its entry in the registry
(see :mod:`sim.kpis`). The tests keep a one-stream-at-a-time reference implementation of these
definitions and check that both give the same floats.

Scopes: ``network``, ``civil`` (every sector but defense, when both exist), ``sector:<s>``,
``country:<ISO>`` (of the demand node), ``node:<id>``, ``plants:<node>/<class>`` (a class of a
fleet's plants), ``policy`` (truce outcome, licence counts, ``shortage_after_event_day``).
"""

from __future__ import annotations

import math
from functools import cached_property
from itertools import accumulate, pairwise

import numpy as np

from .kpis import KPI_TABLE, TRUCE_OUTCOMES, GroupBasis, StreamBasis, kpi_names

__all__ = ["DemandArrays", "stream_kpi_table", "group_kpi_table", "KPI_NAMES",
           "TRUCE_OUTCOME_CODES", "EPS"]

#: tonnes below which an order counts as filled completely
EPS = 1e-9
#: the demand KPIs of the registry (sim.kpis.KPI_TABLE) as the package ships it, in its order;
#: the functions below read the registry when called
KPI_NAMES = kpi_names("demand")
TRUCE_OUTCOME_CODES = {label: code for code, label in TRUCE_OUTCOMES.items()}


def _demand_kpis() -> list:
    """``(name, KPI)`` of the registry's demand KPIs, in its order."""
    return [(name, KPI_TABLE[name]) for name in kpi_names("demand")]


# -- all streams at once ----------------------------------------------------------------------
# A replication of the default network has 22 demand streams and 17 groups of them; computed
# one by one, their KPIs take ~500 numpy calls on small arrays, whose fixed cost is most of the
# time. The functions below compute the values of the definitions above (the tests check them,
# bit for bit, against a one-by-one reference implementation) with a few calls over all the
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
    :meth:`sim.results.Run.from_recording` does.
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


def _packed(days: np.ndarray) -> list[int]:
    """The rows of a ``(streams, days)`` boolean matrix as the bits of ``int`` (bit *d*: day
    *d*)."""
    return [int.from_bytes(row.tobytes(), "little")
            for row in np.packbits(days, axis=1, bitorder="little")]


def _first_short(streams: DemandArrays, short: np.ndarray, since: float,
                 horizon: float) -> tuple[list[float], list[float]]:
    """Per stream: the time of its first short order at or after *since* (else the horizon),
    and 1.0 if there is one (else 0.0). Found where the stream changes among those orders
    (they come by stream, in time order)."""
    late = np.flatnonzero(short & (streams.T >= since)) if since > 0 else np.flatnonzero(short)
    late_stream = streams.stream[late]
    first = np.ones(len(late), dtype=bool)
    first[1:] = late_stream[1:] != late_stream[:-1]
    first_day = [float(horizon)] * streams.count
    occurred = [0.0] * streams.count
    for i, t in zip(late_stream[first].tolist(), streams.T[late[first]].tolist()):
        first_day[i] = t
        occurred[i] = 1.0
    return first_day, occurred


def stream_kpi_table(streams: DemandArrays, shortage_from: float, horizon: float) -> dict:
    """The demand KPIs of every stream of *streams* at once: KPI name -> list of one value
    per stream (each KPI's ``stream`` function of the streams' :class:`~sim.kpis.StreamBasis`),
    and ``"short_days"`` / ``"out_days"``: for each stream, the
    days on which it had a short order / was in stockout, as the bits of an ``int`` (bit *d*:
    day *d*)."""
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
    short_days = _packed(days)
    # stockout: also the days that end with a backlog and the days after them (lost-sales
    # rows are floored at zero, so they never end with one)
    nd = streams.ndays
    if nd and any(streams.backordered):
        neg = streams.daily_level < -EPS
        days[:, :nd] |= neg
        days[:, 1:nd] |= neg[:, :nd - 1]
        out_days = _packed(days)
    else:
        out_days = short_days
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
    first_day, occurred = _first_short(streams, short, 0.0, horizon)
    if shortage_from > 0:
        after_day, after_occurred = _first_short(streams, short, shortage_from, horizon)
    else:
        after_day, after_occurred = list(first_day), list(occurred)
    basis = StreamBasis(
        orders=orders, n_short=n_short, lost=streams.lost, demand_t=tot, filled_t=filled,
        peak_backorders_t=peak, mean_backorders_t=mean_bo,
        stockout_days=[float(bits.bit_count()) for bits in out_days],
        short_days=short_days, out_days=out_days,
        first_shortage_day=first_day, shortage_occurred=occurred,
        first_shortage_after_day=after_day, shortage_after_occurred=after_occurred,
        horizon=horizon)
    out = {name: kpi.stream(basis) for name, kpi in _demand_kpis()}
    out["short_days"] = short_days       # not KPIs: let groups count distinct days
    out["out_days"] = out_days
    return out


def group_kpi_table(streams: DemandArrays, per_stream: dict, groups: list,
                    horizon: float | None = None) -> list[dict]:
    """The demand KPIs of each group of streams (a list of stream indices, not empty), from
    the :func:`stream_kpi_table` of *streams*: one dict per group (each KPI's ``group``
    function of the group's :class:`~sim.kpis.GroupBasis`). *horizon*:
    the run's (for ``period_service_level``; by default the streams' number of days)."""
    if horizon is None:
        horizon = float(streams.ndays)
    bases = [GroupBasis(per_stream, idx, horizon) for idx in groups]
    backorders = []      # the groups' end-of-day backorder levels (those not all 0.0)
    with_backorders = []
    for g, idx in enumerate(groups):
        bo = streams.backorders_across(idx)
        if bo is not None:
            backorders.append(bo)
            with_backorders.append(g)
    if backorders and streams.ndays:
        # the groups' levels as the rows of a matrix: each row's max and mean as of the row
        matrix = np.array(backorders)
        peak = np.maximum.reduce(matrix, axis=1).tolist()
        mean = matrix.mean(axis=1).tolist()
        for g, p, m in zip(with_backorders, peak, mean):
            bases[g].peak_backorders_t = p
            bases[g].mean_backorders_t = m
    demand = _demand_kpis()
    return [{name: kpi.group(basis) for name, kpi in demand} for basis in bases]
