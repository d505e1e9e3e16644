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

import numpy as np

__all__ = ["stream_kpis", "group_kpis", "KPI_NAMES", "TRUCE_OUTCOME_CODES"]

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
