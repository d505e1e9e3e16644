"""The reference implementation of the demand KPIs (the definitions of sim/metrics.py): one
stream at a time, then a group from its streams' values, in plain numpy. The library computes
them all streams at once from the registry (sim.kpis, sim.metrics.stream_kpi_table and
group_kpi_table); the tests check that both give the same floats, bit for bit."""

from __future__ import annotations

import math

import numpy as np

from sim.kpis import service_level as _service_level
from sim.metrics import EPS

__all__ = ["stream_kpis", "group_kpis"]


def stream_kpis(d, shortage_from: float, horizon: float) -> dict:
    """KPIs of one demand stream (a :class:`~sim.results.DemandRecord`); *shortage_from*: the
    event day from which ``first_shortage_after_day`` counts."""
    D, f, T = d.D, d.filled, d.T
    n = len(D)
    tot = float(D.sum())
    filled = float(f.sum())
    short = f < D - EPS
    # T is sorted, so the days with a short order come sorted: count the distinct ones
    days = np.floor(T[short]).astype(np.int64)
    if len(days):
        days = days[np.concatenate(([True], days[1:] != days[:-1]))]
    out_days = days
    if not d.lost and len(d.daily_level):
        # a day that ends with a backlog, and the day after it (which begins with it)
        neg = d.daily_level < -EPS
        neg[1:] |= neg[:-1].copy()
        out_days = np.union1d(days, np.flatnonzero(neg))
    out = {
        "orders": float(n),
        "demand_t": tot,
        "filled_t": filled,
        "fill_rate": filled / tot if tot > 0 else 1.0,
        "order_fill_rate": float(1.0 - short.mean()) if n else 1.0,
        "backordered_t": 0.0 if d.lost else tot - filled,
        "lost_t": tot - filled if d.lost else 0.0,
        "stockout_days": float(len(out_days)),
        "short_order_days": float(len(days)),
        "period_service_level": _service_level(float(len(out_days)), horizon),
        "short_days": days,          # not KPIs: let groups count distinct days
        "out_days": out_days,
    }
    if d.lost or n == 0:
        out["peak_backorders_t"] = 0.0
    else:
        out["peak_backorders_t"] = float(max(0.0, -(d.level_before - D).min()))
    out["mean_backorders_t"] = float(d.daily_backorders.mean()) if len(d.daily_backorders) else 0.0
    for day, occurred, since in (("first_shortage_day", "shortage_occurred", 0.0),
                                 ("first_shortage_after_day", "shortage_after_occurred",
                                  shortage_from)):
        late = short & (T >= since)
        if late.any():
            out[day] = float(T[np.argmax(late)])
            out[occurred] = 1.0
        else:
            out[day] = float(horizon)
            out[occurred] = 0.0
    return out


def group_kpis(records: list, per_stream: list[dict], horizon: float) -> dict:
    """Aggregate stream KPIs over a group of demand streams."""
    if not records:
        return {}
    tot = sum(k["demand_t"] for k in per_stream)
    filled = sum(k["filled_t"] for k in per_stream)
    orders = sum(k["orders"] for k in per_stream)
    full = sum(k["order_fill_rate"] * k["orders"] for k in per_stream)
    short_days = np.zeros(int(math.ceil(horizon)) + 1, dtype=bool)
    out_days = np.zeros(int(math.ceil(horizon)) + 1, dtype=bool)
    for k in per_stream:
        short_days[k["short_days"]] = True
        out_days[k["out_days"]] = True
    bo = np.sum([d.daily_backorders for d in records], axis=0)
    stockout = float(out_days.sum())
    return {
        "orders": orders,
        "demand_t": tot,
        "filled_t": filled,
        "fill_rate": filled / tot if tot > 0 else 1.0,
        "order_fill_rate": full / orders if orders else 1.0,
        "backordered_t": sum(k["backordered_t"] for k in per_stream),
        "lost_t": sum(k["lost_t"] for k in per_stream),
        "peak_backorders_t": float(bo.max()) if bo.size else 0.0,
        "mean_backorders_t": float(bo.mean()) if bo.size else 0.0,
        "stockout_days": stockout,
        "short_order_days": float(short_days.sum()),
        "period_service_level": _service_level(stockout, horizon),
        "first_shortage_day": min(k["first_shortage_day"] for k in per_stream),
        "shortage_occurred": float(any(k["shortage_occurred"] for k in per_stream)),
        "first_shortage_after_day": min(k["first_shortage_after_day"] for k in per_stream),
        "shortage_after_occurred": float(any(k["shortage_after_occurred"] for k in per_stream)),
    }




# -- the library's KPIs of the same records, for tests written against one stream -------------

def library_stream_kpis(d, shortage_from: float, horizon: float) -> dict:
    """The library's KPIs of one demand record (``sim.metrics.stream_kpi_table`` of it
    alone), as :func:`stream_kpis` returns them."""
    from sim import metrics

    arrays = metrics.DemandArrays.from_records([d], len(d.daily_level))
    return {name: values[0] for name, values in
            metrics.stream_kpi_table(arrays, shortage_from, horizon).items()}


def library_group_kpis(records: list, shortage_from: float, horizon: float) -> dict:
    """The library's KPIs of a group of demand records (``sim.metrics.group_kpi_table``)."""
    from sim import metrics

    arrays = metrics.DemandArrays.from_records(records, len(records[0].daily_level))
    table = metrics.stream_kpi_table(arrays, shortage_from, horizon)
    (group,) = metrics.group_kpi_table(arrays, table, [list(range(len(records)))], horizon)
    return group
