"""The result of one replication: recorded data, KPIs, daily series, balances, and saving.

:class:`Run` holds only numpy arrays and plain values (it pickles cheaply, so Monte Carlo
workers can return it), built by :meth:`Run.from_recording` from what the engine recorded
(:class:`~sim.records.Recording`). Daily series and
KPIs are computed on request, with numpy, from the change records of the engine.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate, chain, repeat
from operator import itemgetter
from pathlib import Path

import numpy as np

from . import metrics
from .records import (
    REC_BACKLOG_DROP,
    REC_CANCELLED,
    REC_CONSUMED,
    REC_ORDER_IN,
    REC_ORDERED,
    REC_PRODUCED,
    REC_RECEIVED,
    REC_RETURNED,
    REC_SHIPPED,
    LaneLog,
    Recording,
    StockLog,
)
from .kpis import KPI_TABLE, kpi_names
from .persist import package_versions, write_atomic  # noqa: F401  (public here too, as before)

__all__ = ["Run", "DemandRecord", "StockRecord", "LaneRecord", "write_atomic", "package_versions"]


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass
class DemandRecord:
    """Customer demand of one (node, material) and how it was served."""

    node: str
    material: str
    sector: str
    country: str
    lost: bool
    T: np.ndarray                # order times (days)
    D: np.ndarray                # order sizes (t)
    level_before: np.ndarray     # stock level (net inventory if backorders) before each order
    filled: np.ndarray           # filled from stock on arrival of each order
    daily_level: np.ndarray      # end-of-day level (net inventory; floored at 0 for lost sales)
    plant: str = ""              # the plant of a fleet node (sim.fleet) this stream is, if any
    plant_class: str = ""        # and its class

    @cached_property
    def daily_backorders(self) -> np.ndarray:
        """End-of-day backorder level (computed once: every KPI scope holding this stream
        reads it; read-only, so no caller can change the cached copy)."""
        return _read_only(np.maximum(-self.daily_level, 0.0))

    @cached_property
    def daily_on_hand(self) -> np.ndarray:
        """End-of-day stock on hand (read-only)."""
        return _read_only(np.maximum(self.daily_level, 0.0))


# one stock's and one lane's records are the engine's logs as handed over (sim.records)
StockRecord = StockLog
LaneRecord = LaneLog


_COST_KPIS = ("purchase_cost_usd", "tariff_cost_usd", "holding_cost_usd")
_RESERVE_KPIS = kpi_names("reserve")     # released, purchased, purchase cost, holding at end
_SECTOR_SERIES = ("demand", "filled", "backorders", "inventory")
# +1 for flows into on-hand stock, -1 for flows out, 0 for order bookkeeping (by record code)
_SIGN = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


# Rows of change logs concatenated at a time. Larger arrays save few calls more, and cost more
# than those calls when they are allocated on fresh pages of memory.
_BATCH_ROWS = 4096


def _batches(lengths: list[int], limit: int):
    """Split consecutive pieces of the given lengths into runs of at most *limit* rows in all
    (a longer piece is a run alone): yields ``(first, stop)`` index ranges."""
    first, rows = 0, 0
    for i, n in enumerate(lengths):
        if rows and rows + n > limit:
            yield first, i
            first, rows = i, 0
        rows += n
    if first < len(lengths):
        yield first, len(lengths)


def _demand_records(streams: list, ndays: int) -> tuple[list[DemandRecord],
                                                          metrics.DemandArrays | None]:
    """The :class:`DemandRecord` of each recorded demand stream
    (:class:`~sim.records.DemandLog`), and the streams side by side for the KPIs
    (:class:`~sim.metrics.DemandArrays`; None without streams).

    The streams are computed together (a default replication has 22; one by one, their few
    numpy calls each on small arrays were most of the time): their arrays are concatenated,
    the level arithmetic runs once over all of them, and each record gets its slices. Every
    operation is elementwise, a count or a copy, so each value is the one a stream alone
    would get.
    """
    if not streams:
        return [], None
    S = len(streams)
    arrays = [(st.times, st.sizes, st.cum) for st in streams]   # (order times, sizes, sums)
    epochs = [st.epochs for st in streams]              # (time, first order, level) rows
    n_orders = [len(a[0]) for a in arrays]
    order_start = [0, *accumulate(n_orders)]
    n_epochs = [len(e) for e in epochs]
    last_epoch = np.array(list(accumulate(n_epochs))) - 1
    # a stream's prefix sums C are one longer than its orders: stream i's start at
    # order_start[i] + i in the concatenation
    cum_start = np.array([start + i for i, start in enumerate(order_start[:-1])])
    T = np.concatenate([a[0] for a in arrays])
    D = np.concatenate([a[1] for a in arrays])
    C = np.concatenate([a[2] for a in arrays])
    ep = np.concatenate(epochs)
    ep_t, ep_L = ep[:, 0], ep[:, 2]
    ep_k = ep[:, 1].astype(np.int64)
    ep_stream = np.repeat(np.arange(S), n_epochs)
    ep_C = C[cum_start[ep_stream] + ep_k]               # C[k_j] of each epoch
    order_stream = np.repeat(np.arange(S), n_orders)
    order_cum = np.arange(len(T)) + order_stream        # where C[k] of each order is in C
    # Epoch j (a level L_j set before order k_j) covers orders k_j .. k_{j+1} - 1 of its
    # stream, the last epoch of a stream up to the stream's end: the k_j start at 0 and never
    # decrease, so repeating each epoch's values over its orders is the lookup "last epoch
    # with k_j <= k" without a search
    ep_next = np.empty_like(ep_k)
    ep_next[:-1] = ep_k[1:]
    ep_next[last_epoch] = n_orders
    in_epoch = ep_next - ep_k
    level = np.repeat(ep_L, in_epoch) - (C[order_cum] - np.repeat(ep_C, in_epoch))
    lost = [st.lost for st in streams]
    lost_streams = [i for i, is_lost in enumerate(lost) if is_lost]
    if len(lost_streams) == S:            # lost sales: the level never goes below 0
        np.maximum(level, 0.0, out=level)
    elif lost_streams:
        lost_orders = np.repeat(lost, n_orders)
        level[lost_orders] = np.maximum(level[lost_orders], 0.0)
    filled = np.clip(level, 0.0, D)
    # At the end of day d (time min(d + 1, H)) the level is L_j - (C[k] - C[k_j]), with k the
    # orders before it and j the last epoch begun before it; for times t >= 0, t < d + 1
    # exactly when floor(t) <= d. So epoch j holds on the days from floor(t_j) to the day
    # before the next epoch of its stream begins (or to the end), and C[k] from the day of
    # order k - 1 to the day before order k's: repeating each value over its days gives all
    # streams' day ends at once, in order (the first epoch of a stream begins at 0). A time
    # at or after ndays counts for no day.
    order_day = np.minimum(T.astype(np.int64), ndays)
    ep_day = np.minimum(ep_t.astype(np.int64), ndays)
    ep_until = np.empty_like(ep_day)
    ep_until[:-1] = ep_day[1:]
    ep_until[last_epoch] = ndays
    ep_days = ep_until - ep_day
    cum_until = np.full(len(C), ndays, dtype=np.int64)
    cum_until[order_cum] = order_day
    cum_from = np.zeros(len(C), dtype=np.int64)
    cum_from[order_cum + 1] = order_day
    # L_j - (C[k] - C[k_j]), computed in place (the same operations on the same values)
    daily = np.repeat(C, cum_until - cum_from)
    daily -= np.repeat(ep_C, ep_days)
    np.subtract(np.repeat(ep_L, ep_days), daily, out=daily)
    daily = daily.reshape(S, ndays)                     # row i: stream i, end of each day
    if len(lost_streams) == S:
        np.maximum(daily, 0.0, out=daily)
    elif lost_streams:
        daily[lost_streams] = np.maximum(daily[lost_streams], 0.0)
    records = []
    for i, st in enumerate(streams):
        a, b = order_start[i], order_start[i + 1]
        records.append(DemandRecord(st.node, st.material, st.sector, st.country, st.lost,
                                    arrays[i][0], arrays[i][1], level[a:b], filled[a:b],
                                    daily[i]))
    return records, metrics.DemandArrays(T, D, level, filled, daily, n_orders, lost)


def _licence_array(log: list) -> np.ndarray:
    """The licence reviews ``(time, control, lane, qty, review days, approved)`` as an
    ``(n, 3)`` array of time, review days and approved (1.0 or 0.0), converting each number
    as ``float()`` does; read straight from the log's tuples, which is several times faster
    than converting a list of new row tuples."""
    values = chain.from_iterable(map(itemgetter(0, 4, 5), log))
    return np.fromiter(values, dtype=float, count=3 * len(log)).reshape(-1, 3)


def _daily(t: np.ndarray, q: np.ndarray, ndays: int) -> np.ndarray:
    if len(t) == 0:
        return np.zeros(ndays)
    idx = np.minimum(np.floor(t).astype(np.int64), ndays - 1)
    return np.bincount(idx, weights=q, minlength=ndays)[:ndays]


def _daily_by_code(log: np.ndarray, ndays: int) -> np.ndarray:
    """A stock's daily flows by record code, as the rows of a ``(9, ndays)`` array: row *c* is
    :func:`_daily` of the records with code *c*, all from one ``bincount`` over (code, day)
    (it adds each code's records of a day in order, from 0.0, as one code at a time did)."""
    if not len(log):
        return np.zeros((9, ndays))
    day = np.minimum(np.floor(log[:, 0]).astype(np.int64), ndays - 1)
    return np.bincount(log[:, 1].astype(np.int64) * ndays + day, weights=log[:, 2],
                       minlength=9 * ndays).reshape(9, ndays)


class _LayoutCache:
    """Structures that depend only on the layout of a network (its demand streams, lanes and
    stocks), which every replication of it repeats: built once, kept for a few layouts (the
    oldest dropped first)."""

    def __init__(self, keep: int = 16) -> None:
        self._items: dict = {}
        self._keep = keep
        self._lock = threading.Lock()

    def get(self, key, build):
        """The structure kept for *key*, made by ``build()`` the first time."""
        hit = self._items.get(key)
        if hit is None:
            hit = build()
            with self._lock:
                if len(self._items) >= self._keep:
                    del self._items[next(iter(self._items))]
                self._items[key] = hit
        return hit


_KPI_SCOPES = _LayoutCache()
_COST_PLANS = _LayoutCache()


def _kpi_scopes(demand: list[DemandRecord]) -> tuple[list[tuple[str, int]], list[list[int]]]:
    """The KPI scopes of a run's demand streams: ``(scope, group)`` pairs in the order of the
    KPI rows, and the groups (lists of stream indices; scopes with the same streams share one).

    Scopes: ``network``, ``civil`` (every sector but defense, when both exist), and per stream
    its ``sector:``, ``country:`` and ``node:``."""
    def build():
        scope_streams: dict[str, list[int]] = {"network": list(range(len(demand)))}
        civil = [i for i, d in enumerate(demand) if d.sector != "defense"]
        if civil and len(civil) < len(demand):
            scope_streams["civil"] = civil
        for i, d in enumerate(demand):
            scope_streams.setdefault(f"sector:{d.sector}", []).append(i)
            scope_streams.setdefault(f"country:{d.country}", []).append(i)
            scope_streams.setdefault(f"node:{d.node}", []).append(i)
            if d.plant_class:
                scope_streams.setdefault(f"plants:{d.node}/{d.plant_class}", []).append(i)
        group_of: dict[tuple[int, ...], int] = {}
        groups: list[list[int]] = []
        scopes = []
        for scope, idx in scope_streams.items():
            g = group_of.setdefault(tuple(idx), len(groups))
            if g == len(groups):
                groups.append(idx)
            scopes.append((scope, g))
        return scopes, groups

    return _KPI_SCOPES.get(tuple((d.node, d.sector, d.country, d.plant_class) for d in demand),
                           build)


def _cost_plan(lanes: list[LaneRecord], stocks: list[StockRecord]) -> tuple:
    """How the cost KPIs of a run add up (it depends only on the network's layout).

    Costs are added per node first: node *n*'s purchase, tariff and holding costs are slots
    3n, 3n + 1 and 3n + 2 of a list, the nodes numbered as they first appear (the lanes'
    buyers, then the stocks' nodes). Returns the slot of each lane's buyer and of each stock's
    node (3n), the number of slots, and ``(kpi, scope, slots)`` for each row, in the order of
    the rows (sorted): the scope's total is the sum of those slots, in the order of the nodes.
    Purchase and tariff costs are reported for buyers only."""
    def build():
        node_info = {s.node: (s.country, s.sector) for s in stocks}
        number: dict[str, int] = {}
        lane_slot = [3 * number.setdefault(l.dst, len(number)) for l in lanes]
        stock_slot = [3 * number.setdefault(s.node, len(number)) for s in stocks]
        buyers = {l.dst for l in lanes}
        slots: dict[tuple[str, str], list[int]] = {}
        for node, n in number.items():
            country, sector = node_info[node]
            scopes = ("network", f"country:{country}", f"node:{node}") + \
                ((f"sector:{sector}",) if sector else ())
            for j, kpi in enumerate(_COST_KPIS):
                if kpi != "holding_cost_usd" and node not in buyers:
                    continue
                for scope in scopes:
                    slots.setdefault((kpi, scope), []).append(3 * n + j)
        totals = [(kpi, scope, slots[(kpi, scope)]) for kpi, scope in sorted(slots)]
        return lane_slot, stock_slot, 3 * len(number), totals

    key = (tuple(l.dst for l in lanes), tuple((s.node, s.country, s.sector) for s in stocks))
    return _COST_PLANS.get(key, build)


def _daily_by_sector(streams: metrics.DemandArrays, sector: list[int], sectors: int,
                     ndays: int) -> np.ndarray:
    """Daily demand and daily filled summed by sector (*sector*: the sector number of each
    stream), as a ``(sectors, 2, ndays)`` array: the sums of each stream's :func:`_daily`,
    added to zeros stream after stream, as before. One ``bincount`` makes every stream's
    daily demand and filled (it adds each day's orders in order, from 0.0, as it did stream
    by stream)."""
    day = np.minimum(np.floor(streams.T).astype(np.int64), ndays - 1)
    slot = streams.stream * (2 * ndays) + day            # (stream, demand or filled, day)
    daily = np.bincount(np.concatenate((slot, slot + ndays)),
                        weights=np.concatenate((streams.D, streams.filled)),
                        minlength=2 * streams.count * ndays).reshape(-1, 2, ndays)
    out = np.zeros((sectors, 2, ndays))
    for i, g in enumerate(sector):
        out[g] += daily[i]
    return out


@dataclass
class Run:
    """One replication's result. See :mod:`sim.metrics` for the KPI definitions."""

    network_name: str
    network_digest: str
    scenario_name: str
    scenario_digest: str
    seed: int
    replication: int
    start: _dt.date
    horizon: float
    shortage_from: float
    demand: list[DemandRecord]
    stocks: list[StockRecord]
    lanes: list[LaneRecord]
    production: list[tuple[str, str, np.ndarray, float]]    # node, material, log, final wip
    policy_events: list[tuple[float, str, str]]
    truce_outcomes: list[str]
    licences: np.ndarray          # (n, 3): time, review days, approved
    stats: dict = field(default_factory=dict)
    # the policy engine's decision logs as recorded (PolicyEngine.tables)
    policy_tables: dict = field(default_factory=dict)
    # node id -> (sim.fleet.FleetSpec, {material: mean daily demand in the network, t})
    fleets: dict = field(default_factory=dict)
    # per production line (the order of ``production``): (n, 3) time, capacity in force
    # (t/day), outages in force, one row per change (see sim.flows.capacity_utilisation)
    capacity: list = field(default_factory=list)
    # strategic reserves (sim.engine.Reserve.record): node, material, funded price, buyers,
    # release lanes, purchases (n, 2: time, t) and releases (n, 3: time, t, buyer index)
    reserves: list = field(default_factory=list)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_recording(cls, rec: Recording) -> "Run":
        """The Run of what one replication recorded (:meth:`sim.engine.Model.run` returns
        it as a :class:`~sim.records.Recording` of arrays and plain values)."""
        ndays = int(math.ceil(rec.horizon))
        demand, demand_arrays = _demand_records(rec.demand, ndays)
        stocks = list(rec.stocks)
        lanes = list(rec.lanes)
        run = cls(
            network_name=rec.network_name, network_digest=rec.network_digest,
            scenario_name=rec.scenario_name, scenario_digest=rec.scenario_digest,
            seed=rec.seed, replication=rec.replication, start=rec.start, horizon=rec.horizon,
            shortage_from=rec.shortage_from, demand=demand, stocks=stocks, lanes=lanes,
            production=[(p.node, p.material, p.log, p.wip) for p in rec.lines],
            policy_events=rec.policy_events, truce_outcomes=rec.truce_outcomes,
            licences=_licence_array(rec.licence_log), stats=dict(rec.stats),
            fleets=rec.fleets, capacity=[p.capacity for p in rec.lines])
        run.policy_tables = rec.policy_tables
        run.reserves = rec.reserves
        if demand_arrays is not None:
            run.__dict__["_demand_arrays"] = demand_arrays      # computed already
        return run

    @classmethod
    def from_model(cls, model) -> "Run":
        """The Run of a finished :class:`~sim.engine.Model` (after its ``run()``): the Run of
        its :meth:`~sim.engine.Model.recording`."""
        return cls.from_recording(model.recording())

    def __getstate__(self) -> dict:
        # the demand streams side by side repeat the records' arrays: not worth their bytes
        state = self.__dict__.copy()
        for cached in ("_demand_arrays", "_kpi_pair", "_kpi_streams", "_kpi_arrays"):
            state.pop(cached, None)     # (the KPIs' streams: made again from the records)
        return state

    # -- KPIs -------------------------------------------------------------------------------
    @property
    def ndays(self) -> int:
        """Number of (possibly partial) days in the run."""
        return int(math.ceil(self.horizon))

    def date_of(self, day: float) -> _dt.date:
        """Calendar date of a simulation day."""
        return self.start + _dt.timedelta(days=math.floor(day))

    @cached_property
    def _demand_arrays(self) -> metrics.DemandArrays:
        """The demand streams side by side, for computing KPIs and series of all at once
        (:meth:`from_recording` sets it; it is not pickled, but made again from the records)."""
        return metrics.DemandArrays.from_records(self.demand, self.ndays)

    @cached_property
    def _kpi_streams(self) -> list[DemandRecord]:
        """The demand streams the KPIs count: ``demand``, with each stream of a fleet node
        replaced by its plants' streams (as :func:`sim.fleet.plant_records` makes them), in
        plant order."""
        return self._kpi_pair[0]

    @cached_property
    def _kpi_arrays(self) -> metrics.DemandArrays:
        """:attr:`_kpi_streams` side by side (the demand arrays themselves without fleets)."""
        return self._kpi_pair[1]

    @cached_property
    def _kpi_pair(self) -> tuple[list[DemandRecord], metrics.DemandArrays]:
        """``(_kpi_streams, _kpi_arrays)``: a fleet's plants are made as the rows of matrices
        (:func:`sim.fleet.plant_block`), and the arrays concatenated from those blocks (the
        values of :meth:`~sim.metrics.DemandArrays.from_records` of the streams)."""
        if not self.fleets:
            return self.demand, self._demand_arrays
        from .fleet import plant_block

        records: list[DemandRecord] = []
        T, D, level, filled, daily = [], [], [], [], []
        orders: list[int] = []
        lost: list[bool] = []
        for d in self.demand:
            n = len(d.T)
            if d.node not in self.fleets:
                records.append(d)
                T.append(d.T)
                D.append(d.D)
                level.append(d.level_before)
                filled.append(d.filled)
                daily.append(d.daily_level[None])
                orders.append(n)
                lost.append(d.lost)
                continue
            fleet, rate = self.fleets[d.node]
            bD, blev, bfil, bday = plant_block(d, fleet, rate[d.material])
            plants = fleet.plants()
            records += [DemandRecord(d.node, d.material, d.sector, d.country, d.lost, d.T,
                                     bD[i], blev[i], bfil[i], bday[i], name, cls)
                        for i, (name, cls, _, _) in enumerate(plants)]
            T.append(np.tile(d.T, len(plants)))
            D.append(bD.ravel())
            level.append(blev.ravel())
            filled.append(bfil.ravel())
            daily.append(bday)
            orders += [n] * len(plants)
            lost += [d.lost] * len(plants)
        arrays = metrics.DemandArrays(np.concatenate(T), np.concatenate(D),
                                      np.concatenate(level), np.concatenate(filled),
                                      np.concatenate(daily).reshape(len(records), self.ndays),
                                      orders, lost)
        return records, arrays

    def kpi_rows(self) -> list[tuple[str, str, float]]:
        """All KPIs as ``(kpi, scope, value)`` tuples (fast; no pandas)."""
        if self.reserves:       # the strategic reserves' KPIs follow (see _reserve_rows)
            return self._kpi_rows + self._reserve_rows()
        return self._kpi_rows

    @cached_property
    def _kpi_rows(self) -> list[tuple[str, str, float]]:
        streams = self._kpi_arrays
        per = metrics.stream_kpi_table(streams, self.shortage_from, self.horizon)
        scopes, groups = _kpi_scopes(self._kpi_streams)  # scopes with the same streams share KPIs
        shared = [g for g, idx in enumerate(groups) if len(idx) > 1]
        of_group = dict(zip(shared, metrics.group_kpi_table(
            streams, per, [groups[g] for g in shared], self.horizon)))
        names = kpi_names("demand")
        values = []          # the demand KPIs of each group (none: a group of no streams)
        for g, idx in enumerate(groups):
            if len(idx) == 1:
                values.append([float(per[name][idx[0]]) for name in names])
            else:
                k = of_group.get(g, {})
                values.append([float(k[name]) for name in names if name in k])
        rows: list[tuple[str, str, float]] = []
        for scope, g in scopes:
            rows.extend(zip(names, repeat(scope), values[g]))
        rows += self._cost_rows()
        # the run's policy KPIs: their implementations are the registry's (sim.kpis)
        rows += [(name, "policy", KPI_TABLE[name].run(self)) for name in kpi_names("policy")]
        return rows

    def _reserve_rows(self) -> list[tuple[str, str, float]]:
        """The strategic reserves' KPIs, scope ``node:<holder>`` (a holder's reserves of
        several materials add up): tonnes released and purchased (ordered) in the run, the
        purchases at the funded price, and the holding at the end."""
        final = {(s.node, s.material): s.final_on_hand for s in self.stocks}
        per: dict[str, list[float]] = {}
        for r in self.reserves:
            purchased = float(r["purchases"][:, 1].sum())
            acc = per.setdefault(r["node"], [0.0, 0.0, 0.0, 0.0])
            acc[0] += float(r["releases"][:, 1].sum())
            acc[1] += purchased
            acc[2] += purchased * r["price_usd_per_t"]
            acc[3] += final[(r["node"], r["material"])]
        return [(kpi, f"node:{node}", value) for node, values in per.items()
                for kpi, value in zip(_RESERVE_KPIS, values)]

    def _cost_rows(self) -> list[tuple[str, str, float]]:
        lane_slot, stock_slot, n_slots, totals = _cost_plan(self.lanes, self.stocks)
        # per node first (one update per lane or stock), then per scope (once per node)
        per_node = [0.0] * n_slots
        for slot, (value, tariff) in zip(lane_slot, self._lane_costs()):
            if value is not None:
                per_node[slot] += value
                per_node[slot + 1] += tariff
        for slot, s, stock_days in zip(stock_slot, self.stocks, self._stock_days_all()):
            per_node[slot + 2] += stock_days * s.price * s.holding_rate / 365.0
        rows = []
        for kpi, scope, slots in totals:
            total = 0.0
            for slot in slots:
                total += per_node[slot]
            rows.append((kpi, scope, total))
        return rows

    def _lane_costs(self) -> list[tuple[float | None, float | None]]:
        """Purchase value and tariff of each lane's shipments, ``(None, None)`` for a lane that
        shipped nothing. (A lane at a time: a sum or a dot product over all the lanes at once
        would add in another order; numpy sums each lane pairwise, BLAS in its own way.)"""
        add = np.add.reduce
        out = []
        for l in self.lanes:
            if len(l.log):
                qty = l.log[:, 1]
                out.append((float(add(qty)) * l.price, float(qty @ l.log[:, 3]) * l.price))
            else:
                out.append((None, None))
        return out

    def _stock_days_all(self) -> list[float]:
        """:meth:`stock_days` of every stock, in the order of ``stocks``.

        The stocks' changes are weighed a batch of stocks at a time, on their logs
        concatenated (elementwise: each product is the same), and summed a stock at a time,
        as ``stock_days`` sums them; the demand stocks' daily on-hand levels are summed as the
        rows of one matrix (each row as that array alone)."""
        H = self.horizon
        stocks = self.stocks
        out = [0.0] * len(stocks)
        plain = [i for i, s in enumerate(stocks) if not s.is_demand]
        logs = [stocks[i].log for i in plain]
        lengths = [len(log) for log in logs]
        add = np.add.reduce
        for first, stop in _batches(lengths, _BATCH_ROWS):
            log = np.concatenate(logs[first:stop])
            weighed = _SIGN[log[:, 1].astype(np.int64)]        # sign * q * (H - t)
            weighed *= log[:, 2]
            weighed *= H - log[:, 0]
            a = 0
            for j in range(first, stop):
                b = a + lengths[j]
                initial = stocks[plain[j]].initial
                out[plain[j]] = float(initial * H + add(weighed[a:b]))
                a = b
        if len(plain) < len(stocks):
            stream_of = {(d.node, d.material): i for i, d in enumerate(self.demand)}
            on_hand_days = self._demand_on_hand_days()
            for i, s in enumerate(stocks):
                if s.is_demand:
                    out[i] = on_hand_days[stream_of[(s.node, s.material)]]
        return out

    def _demand_on_hand_days(self) -> list[float]:
        """The end-of-day stock on hand summed over the days, of each stream of ``demand``;
        for a fleet node's stream, the sum of its plants' (stock sits at the plants: a plant's
        surplus does not cover another's backlog), added plant after plant."""
        days = np.add.reduce(self._kpi_arrays.daily_on_hand, axis=1).tolist()
        if not self.fleets:
            return days
        out = []
        i = 0
        for d in self.demand:
            n = len(self.fleets[d.node][0].plants()) if d.node in self.fleets else 1
            total = days[i]
            for value in days[i + 1:i + n]:
                total += value
            out.append(total)
            i += n
        return out

    def stock_days(self, s: StockRecord, demand: dict | None = None) -> float:
        """Integral of the stock on hand over the run (tonne-days), exact between changes
        (*demand*: the demand records by (node, material), when the caller has them). A fleet
        node's demand stock counts its plants' stock on hand (:mod:`sim.fleet`)."""
        if s.is_demand:
            if s.node in self.fleets:
                plants = [p for p in self._kpi_streams
                          if p.node == s.node and p.material == s.material]
                total = float(plants[0].daily_on_hand.sum())
                for p in plants[1:]:
                    total += float(p.daily_on_hand.sum())
                return total
            if demand is not None:
                d = demand[(s.node, s.material)]
            else:
                d = next(d for d in self.demand if d.node == s.node and d.material == s.material)
            return float(d.daily_on_hand.sum())
        t, c, q = s.log[:, 0], s.log[:, 1], s.log[:, 2]
        sign = _SIGN[c.astype(np.int64)]
        return float(s.initial * self.horizon + (sign * q * (self.horizon - t)).sum())

    def kpis(self):
        """All KPIs as a tidy :class:`pandas.DataFrame` with columns kpi, scope, value, date,
        scenario, seed, replication."""
        import pandas as pd

        rows = self.kpi_rows()
        df = pd.DataFrame(rows, columns=["kpi", "scope", "value"])
        # the calendar date of a day KPI, where the shortage it dates occurred; and the event's
        occurred = {(k, scope): v for k, scope, v in rows
                    if k in ("shortage_occurred", "shortage_after_occurred")}
        flag = {"first_shortage_day": "shortage_occurred",
                "first_shortage_after_day": "shortage_after_occurred",
                "shortage_after_event_day": None}
        df["date"] = [self.date_of(v).isoformat()
                      if k in flag and (flag[k] is None or occurred.get((flag[k], s), 0)) else ""
                      for k, v, s in zip(df["kpi"], df["value"], df["scope"])]
        df["scenario"] = self.scenario_name
        df["seed"] = self.seed
        df["replication"] = self.replication
        return df

    def plant_kpis(self):
        """The KPIs of each plant of the run's fleets (:mod:`sim.fleet`) as a tidy
        :class:`pandas.DataFrame` with columns node, plant, plant_class, share, cover_days,
        kpi, value (a plant's KPIs are over all its materials, as for a node; empty without
        fleets)."""
        import pandas as pd

        streams = self._kpi_streams
        members: dict[tuple[str, str], list[int]] = {}
        for i, d in enumerate(streams):
            if d.plant:
                members.setdefault((d.node, d.plant), []).append(i)
        rows: list[tuple] = []
        if members:
            arrays = self._kpi_arrays
            per = metrics.stream_kpi_table(arrays, self.shortage_from, self.horizon)
            groups = list(members.values())
            shared = [g for g in groups if len(g) > 1]
            of_group = dict(zip(map(tuple, shared), metrics.group_kpi_table(
                arrays, per, shared, self.horizon)))
            info = {(node, name): (cls, f, cover) for node, (fleet, _) in self.fleets.items()
                    for name, cls, f, cover in fleet.plants()}
            for (node, plant), idx in members.items():
                cls, f, cover = info[(node, plant)]
                k = of_group.get(tuple(idx))
                for name in kpi_names("demand"):
                    value = float(per[name][idx[0]]) if k is None else float(k[name])
                    rows.append((node, plant, cls, f, cover, name, value))
        return pd.DataFrame(rows, columns=["node", "plant", "plant_class", "share", "cover_days",
                                           "kpi", "value"])

    def kpi(self, name: str, scope: str = "network") -> float:
        """One KPI value, e.g. ``run.kpi("fill_rate", "sector:defense")``."""
        for k, s, v in self.kpi_rows():
            if k == name and s == scope:
                return v
        scopes = sorted({s for k, s, _ in self.kpi_rows() if k == name})
        raise KeyError(f"no KPI {name!r} for scope {scope!r}; scopes with it: {scopes}")

    # -- series -----------------------------------------------------------------------------
    def daily_on_hand_by_stock(self) -> list[np.ndarray]:
        """End-of-day on-hand quantity of every stock, in the order of ``stocks``."""
        return self._levels[0]

    @cached_property
    def _levels(self):
        nd = self.ndays
        demand_by_key = {(d.node, d.material): d for d in self.demand}
        on_hand, on_order, backlog, flows = [], [], [], []
        for s in self.stocks:
            f = dict(enumerate(_daily_by_code(s.log, nd)))
            flows.append(f)
            oo = np.cumsum(f[REC_ORDERED] - f[REC_RECEIVED] - f[REC_CANCELLED])
            on_order.append(oo)
            if s.is_demand:
                d = demand_by_key[(s.node, s.material)]
                on_hand.append(d.daily_on_hand)
                backlog.append(d.daily_backorders)
            else:
                inflow = f[REC_RECEIVED] + f[REC_PRODUCED] + f[REC_RETURNED]
                outflow = f[REC_SHIPPED] + f[REC_CONSUMED]
                on_hand.append(s.initial + np.cumsum(inflow - outflow))
                backlog.append(np.cumsum(f[REC_ORDER_IN] - f[REC_SHIPPED] - f[REC_BACKLOG_DROP]))
        return on_hand, on_order, backlog, flows

    def series(self):
        """Daily series per node and material as a tidy :class:`pandas.DataFrame`.

        Columns: ``day``, ``date``, ``node``, ``material``, ``kind``, ``sector``, ``inventory``
        (end-of-day on hand), ``on_order``, ``backorders`` (customer backorders at demand
        nodes; queued downstream orders at suppliers), ``received``, ``shipped``, ``produced``,
        ``consumed``, ``demand``, ``filled`` (customer demand filled from stock on arrival).
        """
        import pandas as pd

        nd = self.ndays
        on_hand, on_order, backlog, flows = self._levels
        demand_by_key = {(d.node, d.material): d for d in self.demand}
        days = np.arange(nd)
        dates = np.array([np.datetime64(self.start) + np.timedelta64(int(i), "D") for i in days])
        frames = []
        for s, oh, oo, bl, f in zip(self.stocks, on_hand, on_order, backlog, flows):
            d = demand_by_key.get((s.node, s.material))
            frames.append(pd.DataFrame({
                "day": days, "date": dates, "node": s.node, "material": s.material,
                "kind": s.kind, "sector": s.sector, "inventory": oh, "on_order": oo,
                "backorders": bl, "received": f[REC_RECEIVED], "shipped": f[REC_SHIPPED],
                "produced": f[REC_PRODUCED], "consumed": f[REC_CONSUMED],
                "demand": _daily(d.T, d.D, nd) if d else np.zeros(nd),
                "filled": _daily(d.T, d.filled, nd) if d else np.zeros(nd),
            }))
        return pd.concat(frames, ignore_index=True)

    def sector_series(self) -> dict[str, dict[str, np.ndarray]]:
        """Daily demand, filled, backorders and inventory summed by sector (numpy arrays; a
        fleet node counts as its plants: its backorders are the sum of the plants')."""
        names, sums = self._sector_sums()
        return {name: dict(zip(_SECTOR_SERIES, sums[g])) for g, name in enumerate(names)}

    def _sector_sums(self) -> tuple[list[str], np.ndarray]:
        """The sectors (in the order of their first stream) and their daily sums as a
        ``(sectors, 4, ndays)`` array: demand, filled, backorders, inventory
        (:meth:`sector_series`). Each sum adds its streams in order, from zero."""
        nd = self.ndays
        streams = self._kpi_arrays      # a fleet node's plants (sums of plant backlogs)
        number: dict[str, int] = {}
        for d in self._kpi_streams:
            number.setdefault(d.sector, len(number))
        sector = [number[d.sector] for d in self._kpi_streams]
        sums = np.zeros((len(number), 4, nd))
        sums[:, :2] = _daily_by_sector(streams, sector, len(number), nd)
        for i, g in enumerate(sector):
            if streams.backordered[i]:        # (adding a row of 0.0 changes nothing)
                sums[g, 2] += streams.daily_backorders[i]
            sums[g, 3] += streams.daily_on_hand[i]
        return list(number), sums

    def scope_sums(self, scopes) -> np.ndarray:
        """Daily demand, filled, backorders and inventory summed over the demand streams of
        each KPI scope in *scopes* (``network``, ``civil``, ``sector:<s>``, ``country:<c>``,
        ``node:<id>``), as a ``(scopes, 4, ndays)`` array in the order of
        :meth:`sector_series`; a fleet node counts as its plants. A scope that holds no
        stream sums to zeros (check scopes against the network before a long run)."""
        nd = self.ndays
        streams = self._kpi_arrays
        records = self._kpi_streams
        members = []
        for scope in scopes:
            kind, _, name = str(scope).partition(":")
            members.append([i for i, d in enumerate(records)
                            if scope == "network" or (scope == "civil" and d.sector != "defense")
                            or (kind == "sector" and d.sector == name)
                            or (kind == "country" and d.country == name)
                            or (kind == "node" and d.node == name)])
        # every stream's daily demand and filled once (one group per stream), then per scope
        daily = _daily_by_sector(streams, list(range(len(records))), len(records), nd)
        sums = np.zeros((len(members), 4, nd))
        for g, idx in enumerate(members):
            for i in idx:           # streams in order, from zero (as the sector sums add them)
                sums[g, :2] += daily[i]
                if streams.backordered[i]:
                    sums[g, 2] += streams.daily_backorders[i]
                sums[g, 3] += streams.daily_on_hand[i]
        return sums

    # -- customs-style flows (computed in sim.flows) ------------------------------------------
    def trade_flows(self, period: str = "month"):
        """Tonnes, value and duty across each border by exporter country, importer country,
        material and period, counted when goods are dispatched past licensing and clearance
        (customs statistics); a tidy DataFrame, columns in :func:`sim.flows.trade_flows`."""
        from . import flows
        return flows.trade_flows(self, period)

    def lane_flows(self, period: str = "month"):
        """Tonnes dispatched and arrived per lane and period (:func:`sim.flows.lane_flows`)."""
        from . import flows
        return flows.lane_flows(self, period)

    def capacity_utilisation(self, period: str = "month"):
        """Output, capacity in force and utilisation per production line and period
        (:func:`sim.flows.capacity_utilisation`)."""
        from . import flows
        return flows.capacity_utilisation(self, period)

    # -- strategic reserves -----------------------------------------------------------------
    def reserve_flows(self):
        """Purchases and releases of the strategic reserves (``[nodes.<id>.reserve.<m>]``), one
        row per purchase order and per release, in time order, as a :class:`pandas.DataFrame`.

        Columns: ``time`` (day of the run), ``date``, ``node`` (the holder), ``material``,
        ``event`` (``purchase``: ordered on the holder's inbound lanes; ``release``: shipped on
        a release lane), ``buyer`` and ``lane`` (releases; empty for purchases),
        ``quantity_t`` and ``cost_usd`` (purchases at the funded price; 0 for releases). The
        holdings are the holder's ``inventory`` in :meth:`series`; releases also appear in
        the lane and stock records, so :meth:`material_balance` counts them."""
        import pandas as pd

        columns = ["time", "date", "node", "material", "event", "buyer", "lane", "quantity_t",
                   "cost_usd"]
        frames = []
        for r in self.reserves:
            buys, rel = r["purchases"], r["releases"]
            buyer = rel[:, 2].astype(int)
            for event, times, qty, buyers, lanes, cost in (
                    ("purchase", buys[:, 0], buys[:, 1], "", "",
                     buys[:, 1] * r["price_usd_per_t"]),
                    ("release", rel[:, 0], rel[:, 1],
                     np.array(r["buyers"], dtype=object)[buyer],
                     np.array(r["lanes"], dtype=object)[buyer], 0.0)):
                if len(times):
                    frames.append(pd.DataFrame({
                        "time": times, "date": [self.date_of(t) for t in times],
                        "node": r["node"], "material": r["material"], "event": event,
                        "buyer": buyers, "lane": lanes, "quantity_t": qty, "cost_usd": cost}))
        if not frames:
            return pd.DataFrame({c: [] for c in columns})
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values("time", kind="stable", ignore_index=True)[columns]

    # -- conservation -----------------------------------------------------------------------
    def material_balance(self):
        """Per material: initial + produced = consumed + delivered + final + in transit + lost.

        Returns a :class:`pandas.DataFrame` with one row per material, every term and the
        ``residual`` (left side minus right side). Flows come from the change logs, stocks and
        in-transit from the model's final state, so the identity is a real check of the books.
        """
        import pandas as pd

        mats = sorted({s.material for s in self.stocks})
        rows = []
        for m in mats:
            initial = sum(s.initial for s in self.stocks if s.material == m)
            produced = sum(float(s.log[s.log[:, 1] == REC_PRODUCED, 2].sum())
                           for s in self.stocks if s.material == m)
            consumed = sum(float(s.log[s.log[:, 1] == REC_CONSUMED, 2].sum())
                           for s in self.stocks if s.material == m)
            delivered = 0.0
            for d in self.demand:
                if d.material != m:
                    continue
                if d.lost:
                    delivered += float(d.filled.sum())
                else:
                    final_bo = max(-float(d.daily_level[-1]), 0.0) if len(d.daily_level) else 0.0
                    delivered += float(d.D.sum()) - final_bo
            final = sum(s.final_on_hand for s in self.stocks if s.material == m)
            transit = sum(l.in_transit_final for l in self.lanes if l.material == m)
            rows.append({"material": m, "initial": initial, "produced": produced,
                         "consumed": consumed, "delivered": delivered, "final_stock": final,
                         "in_transit": transit, "lost": 0.0,
                         "residual": initial + produced - consumed - delivered - final - transit})
        return pd.DataFrame(rows)

    # -- printing and saving ------------------------------------------------------------------
    def _lane_columns(self, index: np.ndarray) -> dict:
        """Lane id, end nodes, material and the end nodes' countries of lane indices."""
        country = {s.node: s.country for s in self.stocks}
        lanes = self.lanes
        cols = {"lane": [lanes[i].id for i in index], "from": [lanes[i].src for i in index],
                "to": [lanes[i].dst for i in index], "material": [lanes[i].material for i in index]}
        cols["exporter_country"] = [country.get(n, "") for n in cols["from"]]
        cols["importer_country"] = [country.get(n, "") for n in cols["to"]]
        return cols

    def licence_decisions(self):
        """The licence decision log as a DataFrame, one row per decision on a gated lane, in
        time order: ``date``, ``day`` (simulation day), ``control``, ``lane``, ``from``,
        ``to``, ``material``, ``exporter_country``, ``importer_country``, ``event``,
        ``tonnes`` and ``review_days``.

        Events: ``applied`` (an application filed; its review time, the tonnes waiting on
        it), ``granted`` / ``denied`` (the review's outcome, when it ends), ``used`` (a
        shipment passes under a licence of a scope other than ``"shipment"``; a per-shipment
        licence's ``granted`` row is its use), ``expired`` (a scoped licence reaches the end of
        its validity; ``tonnes`` is what shipped under it, 0 when it expired unused),
        ``renewal_applied`` (under ``renew_before_days``, the renewal of a used licence filed
        before it expires, with 0 tonnes waiting; its ``granted`` / ``denied`` row follows
        as for an application, a granted renewal's validity running on from the old
        licence's end). A
        per-shipment review is one application for its shipment's tonnes; a scoped
        application is filed by the first shipment that finds no valid licence, and later
        shipments in the scope wait on it. Decisions from the horizon on are left out.
        ``Run.licences`` holds the applications alone, as before."""
        import pandas as pd

        from .policy import LICENCE_EVENTS, licence_table

        cols = ["date", "day", "control", "lane", "from", "to", "material", "exporter_country",
                "importer_country", "event", "tonnes", "review_days"]
        t = licence_table(self.policy_tables.get("licence", []), self.horizon)
        if len(t["time"]) == 0:
            return pd.DataFrame({c: [] for c in cols})
        df = pd.DataFrame({
            "date": [self.date_of(d) for d in t["time"]], "day": t["time"],
            "control": t["control"], **self._lane_columns(t["lane"]),
            "event": pd.Categorical.from_codes(t["event"], categories=list(LICENCE_EVENTS)),
            "tonnes": t["tonnes"], "review_days": t["review_days"]})
        return df[cols]

    def clearance_holds(self):
        """Consignments held for testing by the scenario's ``[[clearance]]`` holds, one row
        per consignment whose testing started before the horizon, in that order: ``hold``,
        ``lane``, ``tonnes``, ``arrived`` (day it reached testing), ``started``, ``ended``
        (days; ``ended`` may lie beyond the horizon), ``wait_days`` (queueing for a free
        server) and ``test_days``."""
        import pandas as pd

        cols = ["hold", "lane", "tonnes", "arrived", "started", "ended", "wait_days",
                "test_days"]
        rows = [r for r in self.policy_tables.get("clearance", []) if r[1] < self.horizon]
        if not rows:
            return pd.DataFrame({k: [] for k in cols})
        df = pd.DataFrame(rows, columns=["arrived", "started", "ended", "hold", "lane_index",
                                         "tonnes"])
        df["lane"] = [self.lanes[i].id for i in df["lane_index"]]
        df["wait_days"] = df["started"] - df["arrived"]
        df["test_days"] = df["ended"] - df["started"]
        return df[cols]

    def summary(self) -> str:
        """A short readable summary: fill rate and first shortage by sector."""
        lines = [f"network {self.network_name} | scenario {self.scenario_name} | seed {self.seed}"
                 f" | {self.start} + {self.horizon:g} days"]
        sectors = sorted({d.sector for d in self.demand})
        after = self.shortage_from > 0
        event = self.date_of(self.shortage_from).isoformat()
        lines.append(f"{'scope':22s} {'fill rate':>9s} {'orders full':>11s} {'backordered t':>13s} "
                     f"{'stockout d':>10s}  {'first shortage':14s}"
                     + (f"  first shortage after {event}" if after else ""))
        if not self.demand:         # a network may have no customers: nothing to fill
            lines.append("(no customer demand in this network: no fill-rate KPIs)")
        for scope in (["network"] if self.demand else []) + [f"sector:{s}" for s in sectors]:
            fr = self.kpi("fill_rate", scope)
            full = self.kpi("order_fill_rate", scope)
            bo = self.kpi("backordered_t", scope) + self.kpi("lost_t", scope)
            so = self.kpi("stockout_days", scope)
            when = [self.date_of(self.kpi(day, scope)).isoformat()
                    if self.kpi(flag, scope) else "none"
                    for day, flag in (("first_shortage_day", "shortage_occurred"),
                                      ("first_shortage_after_day", "shortage_after_occurred"))]
            lines.append(f"{scope:22s} {fr:9.1%} {full:11.1%} {bo:13.1f} {so:10.0f}  {when[0]:14s}"
                         + (f"  {when[1]}" if after else ""))
        lines.append("fill rate: tonnes filled on arrival / demanded; orders full: share of orders "
                     "filled completely; stockout d: days with unmet backlog or lost demand")
        def first(scope: str) -> str:
            if not self.kpi("shortage_occurred", scope):
                return "none"
            return self.date_of(self.kpi("first_shortage_day", scope)).isoformat()

        for node, (fleet, _) in self.fleets.items():
            classes = ", ".join(f"{c.name} {first(f'plants:{node}/{c.name}')}"
                                for c in fleet.classes)
            lines.append(f"fleet {node} ({len(fleet.plants())} plants): first plant short "
                         f"{first(f'node:{node}')}; by class: {classes}")
        if self.truce_outcomes:
            lines.append(f"truce outcomes: {', '.join(self.truce_outcomes)}")
        return "\n".join(lines)

    def manifest(self, extra: dict | None = None) -> dict:
        """What produced this result: inputs' names and hashes, seed, versions, timing."""
        m = {
            "kind": "run",
            "network": self.network_name, "network_sha256": self.network_digest,
            "scenario": self.scenario_name, "scenario_sha256": self.scenario_digest,
            "seed": self.seed, "replication": self.replication, "start": self.start.isoformat(),
            "horizon_days": self.horizon, "versions": package_versions(),
            "stats": self.stats, "created": _dt.datetime.now(_dt.UTC).isoformat(),
            "policy_events": [list(e) for e in self.policy_events],
            "truce_outcomes": self.truce_outcomes,
        }
        m.update(extra or {})
        return m

    def save(self, out_dir: str | Path, *, plots: bool = False, extra_manifest: dict | None = None,
             series_format: str = "csv", extra_files: tuple[str, ...] = (),
             series_step: str = "weekly") -> Path:
        """Write ``summary`` and ``series`` (CSV or Parquet: *series_format*; the tables of
        :mod:`sim.tables`, series *series_step* ``weekly`` or ``daily``), the monthly
        customs-style tables ``trade_flows``, ``lane_flows`` and ``capacity_utilisation``
        (:mod:`sim.flows`, in the same format), ``reserve_flows`` when the network has
        strategic reserves, and ``manifest.json``.

        Each file is written under a temporary name and renamed into place, ``manifest.json``
        last (an old one is removed first), so an interrupted save never leaves a
        complete-looking result (:mod:`sim.persist`). *extra_files* (already written by the
        caller, e.g. a network map) are listed in the manifest. Saving draws nothing: figures
        come from :func:`sim.plots.plot_run` afterwards, listed in the manifest with
        :func:`sim.persist.record_files` (the ``run`` command does both); *plots* is kept for
        old callers and must be False.
        """
        from .errors import MAX_SEED, ModelError
        if plots:
            raise ModelError("saving draws no figures: call sim.plots.plot_run(run, out_dir) "
                             "after save() (and sim.persist.record_files to list them)",
                             field="plots")
        if self.seed > MAX_SEED:        # the tables store seeds as 64-bit integers
            raise ModelError(f"must be at most 2**63 - 1 to be saved, got {self.seed!r}",
                             field="seed")
        from . import persist, tables

        out = persist.begin_save(out_dir, field="out_dir")
        persist.write_table(tables.tidy_run(self.kpis()), out / "summary", series_format)
        persist.write_table(tables.compact_series(self.series(), series_step), out / "series",
                            series_format)
        files = [f"summary.{series_format}", f"series.{series_format}", *extra_files]
        for name, table in (("trade_flows", self.trade_flows), ("lane_flows", self.lane_flows),
                            ("capacity_utilisation", self.capacity_utilisation)):
            persist.write_table(table(), out / name, series_format)
            files.append(f"{name}.{series_format}")
        if self.reserves:       # strategic reserves' purchases and releases (reserve_flows)
            persist.write_table(self.reserve_flows(), out / "reserve_flows", series_format)
            files.append(f"reserve_flows.{series_format}")
        man = self.manifest(extra_manifest)
        man["series_step_days"] = tables.SERIES_STEPS[series_step]
        man["files"] = files
        persist.finish_save(out, man)
        return out
