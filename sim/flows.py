"""Customs-style outputs of a run: trade flows, per-lane flows and capacity utilisation.

Every table here is computed after the run, with numpy, from what the engine records anyway:

* each lane's shipments, ``(shipped, quantity, arrival, tariff rate, dispatched)`` per row
  (:class:`~sim.results.LaneRecord`), where *dispatched* is the moment :meth:`Model.dispatch
  <sim.engine.Model.dispatch>` released the shipment past licensing and any clearance hold and
  its lead time began: the moment the goods cross the border, as customs statistics count
  an export;
* each production line's batches ``(start, quantity, end)`` and the capacity in force over
  time ``(time, rate t/day, outages in force)`` (:attr:`Run.capacity <sim.results.Run>`).

Trade flows count only lanes whose two ends are in different countries (a domestic lane is
not trade). The exporter is the country of the supplying node, the importer that of the buying
node (the country of consignment and of destination; a customs office would count the same).
Values are the quantity times the material's price in the network (USD per tonne); duties are
the value times the ad-valorem tariff in force when the shipment was dispatched.

Periods: ``"month"`` (calendar months), ``"week"`` (7-day blocks from the run's start, as the
Monte Carlo series), ``"day"``. The first and last period may be partial; ``days`` says how many
of their days the run covers.

Units: tonnes (``_t`` columns), US dollars (``_usd``), days.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

__all__ = ["trade_flows", "lane_flows", "capacity_utilisation", "border_balance",
           "PERIODS", "TRADE_KEYS", "trade_groups", "monthly_trade_array", "trade_flow_bands"]

PERIODS = ("day", "week", "month")
# columns of a lane's log (see LaneRecord)
_SHIPPED, _QTY, _ARRIVE, _TARIFF, _DISPATCHED = range(5)


def _check_period(period: str) -> None:
    from .errors import ModelError

    if period not in PERIODS:
        raise ModelError(f"must be one of {', '.join(PERIODS)}, got {period!r}", field="period")


def _periods(start: _dt.date, ndays: int, period: str) -> tuple[np.ndarray, list[str],
                                                               np.ndarray, np.ndarray]:
    """The periods of a run of *ndays* days from *start*: the period number of each day,
    the periods' labels, their first days in the run (datetime64[D]) and their day counts."""
    days = np.arange(ndays)
    d0 = np.datetime64(start, "D")
    if period == "day":
        index = days
    elif period == "week":
        index = days // 7
    else:
        months = (d0 + days.astype("timedelta64[D]")).astype("datetime64[M]")
        index = (months - months[0]).astype(np.int64)
    n = int(index[-1]) + 1 if ndays else 0
    counts = np.bincount(index, minlength=n).astype(np.int64)
    first_day = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    starts = d0 + first_day.astype("timedelta64[D]")
    if period == "month":
        labels = [str(s)[:7] for s in starts.astype("datetime64[M]")]
    else:
        labels = [str(s) for s in starts]
    return index, labels, starts, counts


def _period_of(t: np.ndarray, day_index: np.ndarray) -> np.ndarray:
    """Period numbers of times *t* (days; times at or after the end count in the last day)."""
    day = np.minimum(np.floor(t).astype(np.int64), len(day_index) - 1)
    return day_index[np.maximum(day, 0)]


def _countries(run) -> dict[str, str]:
    return {s.node: s.country for s in run.stocks}


def trade_groups(run) -> list[tuple[str, str, str]]:
    """The ``(exporter, importer, material)`` triples of the run's cross-border lanes, sorted:
    the rows of :func:`monthly_trade_array` (they depend only on the network)."""
    country = _countries(run)
    return sorted({(country[l.src], country[l.dst], l.material) for l in run.lanes
                   if country[l.src] != country[l.dst]})


def _trade_sums(run, period: str):
    """Tonnes, value, duty and shipment counts per trade group and period, as four
    ``(groups, periods)`` arrays, with the groups and the period table."""
    country = _countries(run)
    groups = trade_groups(run)
    number = {g: i for i, g in enumerate(groups)}
    day_index, labels, starts, counts = _periods(run.start, run.ndays, period)
    P = len(labels)
    slots, qty, value, duty = [], [], [], []
    for l in run.lanes:
        a, b = country[l.src], country[l.dst]
        if a == b or not len(l.log):
            continue
        g = number[(a, b, l.material)]
        q = l.log[:, _QTY]
        slots.append(g * P + _period_of(l.log[:, _DISPATCHED], day_index))
        qty.append(q)
        value.append(q * l.price)
        duty.append(q * l.price * l.log[:, _TARIFF])
    n = len(groups) * P
    if slots:
        slot = np.concatenate(slots)
        sums = [np.bincount(slot, weights=np.concatenate(w), minlength=n).reshape(-1, P)
                for w in (qty, value, duty)]
        sums.append(np.bincount(slot, minlength=n).reshape(-1, P))
    else:
        sums = [np.zeros((len(groups), P)) for _ in range(3)] + \
            [np.zeros((len(groups), P), dtype=np.int64)]
    return groups, (labels, starts, counts), sums


def trade_flows(run, period: str = "month"):
    """Customs-style trade flows of one run as a tidy :class:`pandas.DataFrame`: what crossed
    each border, by exporter country, importer country, material and period.

    A shipment counts when it is dispatched (released past licensing and clearance holds),
    on a lane whose two ends are in different countries. Every cross-border (exporter,
    importer, material) of the network has a row for every period, zero included.

    Columns (one row per exporter, importer, material and period):

    ========================  ===============  ================================================
    ``period``                str              ``YYYY-MM`` (month) or the first date (day, week)
    ``period_start``          datetime64[ns]   first day of the period inside the run
    ``days``                  int64            days of the period inside the run
    ``exporter``              str              ISO country of the supplying nodes
    ``importer``              str              ISO country of the buying nodes
    ``material``              str              material id
    ``tonnes``                float64          t dispatched across the border
    ``value_usd``             float64          tonnes x the material's price (USD)
    ``duty_usd``              float64          value x the tariff rate at dispatch (USD)
    ``shipments``             int64            number of shipments
    ========================  ===============  ================================================
    """
    import pandas as pd

    _check_period(period)
    groups, (labels, starts, counts), (qty, value, duty, n) = _trade_sums(run, period)
    G, P = len(groups), len(labels)
    return pd.DataFrame({
        "period": np.tile(np.asarray(labels, dtype=object), G),
        "period_start": np.tile(starts.astype("datetime64[ns]"), G),
        "days": np.tile(counts, G),
        "exporter": np.repeat(np.asarray([g[0] for g in groups], dtype=object), P),
        "importer": np.repeat(np.asarray([g[1] for g in groups], dtype=object), P),
        "material": np.repeat(np.asarray([g[2] for g in groups], dtype=object), P),
        "tonnes": qty.ravel(), "value_usd": value.ravel(), "duty_usd": duty.ravel(),
        "shipments": n.ravel().astype(np.int64),
    })


_MONTH_LAYOUTS: dict = {}     # (start, ndays, lanes and countries) -> what every run reuses


def monthly_trade_array(run) -> np.ndarray:
    """Tonnes across each border per month of one run, as a ``(groups, months)`` float64 array
    whose rows are :func:`trade_groups` (what a Monte Carlo worker keeps of a replication when
    asked for trade flows: see :func:`sim.experiment.monte_carlo`). The same numbers as
    :func:`trade_flows`'s ``tonnes``, computed with what depends only on the network and the
    calendar (the lanes' groups, the months of the days) worked out once per layout."""
    country = _countries(run)
    key = (run.start, run.ndays,
           tuple((l.src, l.dst, l.material, country[l.src], country[l.dst]) for l in run.lanes))
    layout = _MONTH_LAYOUTS.get(key)
    if layout is None:
        number = {g: i for i, g in enumerate(trade_groups(run))}
        day_index, labels = _periods(run.start, run.ndays, "month")[:2]
        lane_group = [number.get((country[l.src], country[l.dst], l.material), -1)
                      for l in run.lanes]
        layout = (len(number), day_index, len(labels), lane_group)
        if len(_MONTH_LAYOUTS) >= 16:
            _MONTH_LAYOUTS.clear()
        _MONTH_LAYOUTS[key] = layout
    G, day_index, P, lane_group = layout
    logs = [(g, l.log) for g, l in zip(lane_group, run.lanes) if g >= 0 and len(l.log)]
    if not logs:
        return np.zeros((G, P))
    log = np.concatenate([lg for _, lg in logs])
    group = np.repeat(np.array([g for g, _ in logs], dtype=np.int64), [len(lg) for _, lg in logs])
    slot = group * P + _period_of(log[:, _DISPATCHED], day_index)
    return np.bincount(slot, weights=log[:, _QTY], minlength=G * P).reshape(G, P)


TRADE_KEYS = ("exporter", "importer", "material")


def trade_flow_bands(tonnes: np.ndarray, groups, start, ndays: int, *,
                     by=TRADE_KEYS, exporters=None, importers=None, materials=None):
    """Bands over replications of monthly trade flows, as a tidy :class:`pandas.DataFrame`.

    *tonnes* is a (replications x groups x months) array of :func:`monthly_trade_array`
    values, *groups* its ``(exporter, importer, material)`` rows, *start* and *ndays* the
    runs' first day and length. Statistics are computed in float64 over the replications.

    *exporters*, *importers*, *materials* (lists; default all) keep only those flows, and *by*
    names the keys kept apart (a subset of ``("exporter", "importer", "material")``): the
    flows of the other keys are added within each replication before the statistics, so
    ``by=("exporter",), materials=[...magnets...]`` gives the bands of each country's total
    magnet exports (quantiles of a sum, not sums of quantiles).

    Columns (one row per kept key combination and month): ``period`` (str, ``YYYY-MM``),
    ``period_start`` (datetime64[ns]), ``days`` (int64), the keys of *by* (str), ``n``
    (int64, replications), ``mean``, ``sd``, ``se``, ``ci95_low``, ``ci95_high`` (float64,
    tonnes: the mean's normal 95% interval), ``q05``, ``q25``, ``q50``, ``q75``, ``q95``
    (float64, tonnes: quantiles over replications, the experiment's QUANTILES).
    """
    import pandas as pd

    from .errors import ModelError
    from .stats import QUANTILES, Z95

    by = (by,) if isinstance(by, str) else tuple(by)
    bad = [k for k in by if k not in TRADE_KEYS]
    if bad or len(set(by)) != len(by):
        raise ModelError(f"must name distinct keys among {', '.join(TRADE_KEYS)}, got {by!r}",
                         field="by")
    start = start if isinstance(start, _dt.date) else _dt.date.fromisoformat(str(start)[:10])
    _, labels, starts, counts = _periods(start, ndays, "month")
    x = np.asarray(tonnes, dtype=np.float64)
    keep = [i for i, g in enumerate(groups)
            if all(f is None or v in f for v, f in zip(g, (exporters, importers, materials)))]
    cols = [TRADE_KEYS.index(k) for k in by]
    combos: dict[tuple, list[int]] = {}
    for i in keep:
        combos.setdefault(tuple(groups[i][c] for c in cols), []).append(i)
    groups = sorted(combos)
    if x.ndim == 3:     # the kept flows of each combination added per replication and month
        x = np.stack([x[:, combos[g], :].sum(axis=1) for g in groups], axis=1) if groups \
            else np.zeros((x.shape[0], 0, x.shape[2]))
    R, G, M = x.shape
    if M != len(labels):
        raise ModelError(f"{M} months of trade flows for a run of {len(labels)} months",
                         field="trade_flows")
    mean = x.mean(axis=0) if R else np.full((G, M), np.nan)
    sd = x.std(axis=0, ddof=1) if R > 1 else np.zeros((G, M))
    se = sd / np.sqrt(max(R, 1))
    q = np.quantile(x, QUANTILES, axis=0) if R else np.full((len(QUANTILES), G, M), np.nan)
    table = {
        "period": np.tile(np.asarray(labels, dtype=object), G),
        "period_start": np.tile(starts.astype("datetime64[ns]"), G),
        "days": np.tile(counts, G),
        **{k: np.repeat(np.asarray([g[j] for g in groups], dtype=object), M)
           for j, k in enumerate(by)},
        "n": np.full(G * M, R, dtype=np.int64),
        "mean": mean.ravel(), "sd": sd.ravel(), "se": se.ravel(),
        "ci95_low": (mean - Z95 * se).ravel(), "ci95_high": (mean + Z95 * se).ravel(),
    }
    for p, qp in zip(QUANTILES, q):
        table[f"q{int(round(p * 100)):02d}"] = qp.ravel()
    return pd.DataFrame(table)


def lane_flows(run, period: str = "month"):
    """Flows of every lane per period as a tidy :class:`pandas.DataFrame` (domestic lanes
    included; ``cross_border`` tells them apart). Summed over the cross-border lanes of an
    (exporter, importer, material), ``dispatched_t`` is :func:`trade_flows`'s ``tonnes``.

    Columns (one row per lane and period):

    ========================  ===============  ================================================
    ``lane``                  str              lane id ``src->dst:material``
    ``src``, ``dst``          str              supplying and buying node
    ``material``              str              material id
    ``exporter``, ``importer`` str             ISO countries of ``src`` and ``dst``
    ``cross_border``          bool             the two countries differ
    ``period``                str              as in :func:`trade_flows`
    ``period_start``          datetime64[ns]   first day of the period inside the run
    ``days``                  int64            days of the period inside the run
    ``dispatched_t``          float64          t dispatched in the period (past licensing and
                                               clearance: across the border, if it has one)
    ``arrived_t``             float64          t that arrived at ``dst`` in the period
    ``value_usd``             float64          ``dispatched_t`` x the material's price (USD)
    ``duty_usd``              float64          value x the tariff rate at dispatch (USD)
    ========================  ===============  ================================================
    """
    import pandas as pd

    _check_period(period)
    country = _countries(run)
    day_index, labels, starts, counts = _periods(run.start, run.ndays, period)
    P, L = len(labels), len(run.lanes)
    dispatched = np.zeros((L, P))
    arrived = np.zeros((L, P))
    value = np.zeros((L, P))
    duty = np.zeros((L, P))
    H = run.horizon
    for i, l in enumerate(run.lanes):
        if not len(l.log):
            continue
        q = l.log[:, _QTY]
        p = _period_of(l.log[:, _DISPATCHED], day_index)
        dispatched[i] = np.bincount(p, weights=q, minlength=P)
        value[i] = np.bincount(p, weights=q * l.price, minlength=P)
        duty[i] = np.bincount(p, weights=q * l.price * l.log[:, _TARIFF], minlength=P)
        came = l.log[:, _ARRIVE] < H
        if came.any():
            arrived[i] = np.bincount(_period_of(l.log[came, _ARRIVE], day_index),
                                     weights=q[came], minlength=P)
    exp = [country[l.src] for l in run.lanes]
    imp = [country[l.dst] for l in run.lanes]
    rep = lambda values: np.repeat(np.asarray(values, dtype=object), P)  # noqa: E731
    return pd.DataFrame({
        "lane": rep([l.id for l in run.lanes]), "src": rep([l.src for l in run.lanes]),
        "dst": rep([l.dst for l in run.lanes]), "material": rep([l.material for l in run.lanes]),
        "exporter": rep(exp), "importer": rep(imp),
        "cross_border": np.repeat(np.array([a != b for a, b in zip(exp, imp)], dtype=bool), P),
        "period": np.tile(np.asarray(labels, dtype=object), L),
        "period_start": np.tile(starts.astype("datetime64[ns]"), L),
        "days": np.tile(counts, L),
        "dispatched_t": dispatched.ravel(), "arrived_t": arrived.ravel(),
        "value_usd": value.ravel(), "duty_usd": duty.ravel(),
    })


def border_balance(run):
    """Where everything that left each supplier stock went, as a :class:`pandas.DataFrame`
    (one row per supplier stock with outbound lanes): the check that customs-style counts
    lose no material.

    ``shipped_t`` (left the supplier, from its change log) = ``dispatched_t`` (released onto
    its lanes: across the border, for cross-border lanes) + ``before_border_t`` (at the end of
    the run still under licence review, in a clearance hold or a quota queue) +
    ``returned_t`` (sent back to the supplier, e.g. a licence denied); ``residual`` is the
    left side minus the right. ``before_border_t`` is the lanes' final in-transit quantity
    less what was dispatched and had not arrived by the end, so the identity is a real check
    of the books (every term comes from a different record). Columns: ``node``, ``material``
    (str), ``shipped_t``, ``dispatched_t``, ``before_border_t``, ``returned_t``,
    ``residual`` (float64, tonnes).
    """
    import pandas as pd

    from .records import REC_RETURNED, REC_SHIPPED

    H = run.horizon
    out_lanes: dict[tuple[str, str], list] = {}
    for l in run.lanes:
        out_lanes.setdefault((l.src, l.material), []).append(l)
    rows = []
    for s in run.stocks:
        lanes = out_lanes.get((s.node, s.material))
        if not lanes:
            continue
        code = s.log[:, 1]
        shipped = float(s.log[code == REC_SHIPPED, 2].sum())
        returned = float(s.log[code == REC_RETURNED, 2].sum())
        dispatched = before = 0.0
        for l in lanes:
            q = l.log[:, _QTY]
            sent = float(q.sum())
            after = float(q[l.log[:, _ARRIVE] >= H].sum())
            dispatched += sent
            before += l.in_transit_final - after
        rows.append({"node": s.node, "material": s.material, "shipped_t": shipped,
                     "dispatched_t": dispatched, "before_border_t": before,
                     "returned_t": returned,
                     "residual": shipped - dispatched - before - returned})
    return pd.DataFrame(rows, columns=["node", "material", "shipped_t", "dispatched_t",
                                       "before_border_t", "returned_t", "residual"])


def _integrate_by_period(cuts: np.ndarray, rate: np.ndarray, day_index: np.ndarray,
                         P: int) -> np.ndarray:
    """Integral per period of a piecewise-constant *rate* on ``[cuts[k], cuts[k + 1])`` (the
    cuts include every day boundary at which a period changes)."""
    length = np.diff(cuts)
    return np.bincount(_period_of(cuts[:-1], day_index), weights=rate * length, minlength=P)


def capacity_utilisation(run, period: str = "month"):
    """Capacity utilisation of every production line per period as a tidy
    :class:`pandas.DataFrame`.

    ``produced_t`` counts output as the line works on it (each batch's quantity spread evenly
    over its duration, so a batch under way at the end counts for its part done).
    ``capacity_t`` is the capacity in force (the capacity schedule times any policy factor,
    zero while an outage is in force), integrated over the period. The engine applies capacity
    at batch starts: a batch under way when capacity falls or an outage begins finishes at the
    rate it began with. ``effective_capacity_t`` counts that rate instead while such a batch
    runs (the larger of the two at each moment), and ``utilisation`` =
    ``produced_t / effective_capacity_t``, so it lies in [0, 1]; it is NaN only in a period
    with no capacity at all. ``down_days`` are the days with an outage in force.

    Columns (one row per line and period): ``node``, ``material`` (str: the line's output),
    ``period`` (str), ``period_start`` (datetime64[ns]), ``days`` (int64), ``produced_t``,
    ``capacity_t``, ``effective_capacity_t`` (float64, tonnes), ``down_days`` (float64, days),
    ``utilisation`` (float64, share).
    """
    import pandas as pd

    _check_period(period)
    H = run.horizon
    day_index, labels, starts, counts = _periods(run.start, run.ndays, period)
    P = len(labels)
    # period boundaries as times (a boundary after the horizon does not exist)
    bounds = np.flatnonzero(np.diff(day_index)) + 1.0
    frames = []
    for (node, material, plog, _), cap in zip(run.production, _capacity_logs(run)):
        t_cap, r_cap, down = cap[:, 0], cap[:, 1], cap[:, 2]
        s, q, e = plog[:, 0], plog[:, 1], plog[:, 2]
        cuts = np.unique(np.concatenate(([0.0, H], bounds, np.minimum(t_cap, H),
                                         np.minimum(s, H), np.minimum(e, H))))
        mid = 0.5 * (cuts[:-1] + cuts[1:])
        k = np.searchsorted(t_cap, mid, side="right") - 1     # last record at or before
        in_force = np.where(k >= 0, r_cap[np.maximum(k, 0)], 0.0)
        is_down = np.where(k >= 0, down[np.maximum(k, 0)], 0.0) > 0
        capacity = np.where(is_down, 0.0, in_force)
        if len(s):
            b = np.searchsorted(s, mid, side="right") - 1     # the batch begun last
            bb = np.maximum(b, 0)
            running = (b >= 0) & (mid < e[bb])
            batch_rate = np.where(running, q[bb] / np.where(running, e[bb] - s[bb], 1.0), 0.0)
        else:                                                  # a line that never ran
            batch_rate = np.zeros(len(mid))
        produced = _integrate_by_period(cuts, batch_rate, day_index, P)
        cap_t = _integrate_by_period(cuts, capacity, day_index, P)
        eff = _integrate_by_period(cuts, np.maximum(capacity, batch_rate), day_index, P)
        down_days = _integrate_by_period(cuts, is_down.astype(float), day_index, P)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(eff > 0, produced / np.where(eff > 0, eff, 1.0), np.nan)
        frames.append(pd.DataFrame({
            "node": node, "material": material, "period": labels,
            "period_start": starts.astype("datetime64[ns]"), "days": counts,
            "produced_t": produced, "capacity_t": cap_t, "effective_capacity_t": eff,
            # (produced <= effective capacity on every piece: the minimum removes rounding)
            "down_days": down_days, "utilisation": np.minimum(util, 1.0),
        }))
    if not frames:
        return pd.DataFrame(columns=["node", "material", "period", "period_start", "days",
                                     "produced_t", "capacity_t", "effective_capacity_t",
                                     "down_days", "utilisation"])
    return pd.concat(frames, ignore_index=True)


def _capacity_logs(run) -> list[np.ndarray]:
    """The capacity records ``(time, rate t/day, outages in force)`` of each line, in time
    order, one per time (the last change at a time is the one in force after it)."""
    out = []
    for cap in run.capacity:
        cap = np.asarray(cap, dtype=float).reshape(-1, 3)
        order = np.argsort(cap[:, 0], kind="stable")
        cap = cap[order]
        if len(cap):
            last = np.append(cap[1:, 0] != cap[:-1, 0], True)
            cap = cap[last]
        out.append(cap)
    return out


def month_labels(start: _dt.date, ndays: int) -> list[str]:
    """``YYYY-MM`` of each calendar month of a run of *ndays* days from *start*."""
    return _periods(start, ndays, "month")[1] if ndays > 0 else []

