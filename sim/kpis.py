"""The registry of KPIs: each KPI's readable name, unit, direction and implementation, read by
the results (:mod:`sim.metrics`, :mod:`sim.results`), the labels (:mod:`sim.labels`) and the
figures (:mod:`sim.plots`). The definitions are in :mod:`sim.metrics`.

A :class:`KPI` belongs to a family:

* ``"demand"``: computed for every demand stream and every group of streams (a scope) by
  :func:`sim.metrics.stream_kpi_table` and :func:`sim.metrics.group_kpi_table`, which compute
  the intermediate values the KPIs share once (a :class:`StreamBasis` over all the streams,
  a :class:`GroupBasis` per group) and then call each KPI's ``stream`` and ``group``
  functions: ``stream(basis)`` returns the list of the streams' values, ``group(basis)`` the
  group's value.
* ``"policy"``: one value per run (scope ``policy``), ``run(r)`` of the
  :class:`~sim.results.Run` *r*.
* ``"cost"``: per buyer and scope, computed by :class:`~sim.results.Run` from the lanes and
  stocks (purchase, tariff and holding costs share one pass over them: a new cost KPI also
  needs its term there).
* ``"derived"``: computed by the experiments from other KPIs.
* ``"reserve"``: per strategic reserve (scope ``node:<holder>``), computed by
  :class:`~sim.results.Run` from the reserve's purchases and releases; only for networks
  with a reserve.
* ``"resilience"``: the stress test's and the resilience triangle's measures, computed by
  :mod:`sim.resilience` from a run's series.

To add a KPI: one entry in :data:`KPI_TABLE`; a demand KPI's two functions read the bases'
attributes (add an attribute to a basis, computed in :mod:`sim.metrics`, only for a quantity
no KPI computes yet). Its position in the table is its position in the results' KPI tables.

>>> KPI_TABLE["fill_rate"].unit, KPI_TABLE["fill_rate"].direction
('%', 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from operator import add, itemgetter, mul, or_
from typing import Any, Callable

__all__ = ["KPI", "KPI_TABLE", "StreamBasis", "GroupBasis", "service_level", "kpi_names"]


def service_level(stockout_days: float, horizon: float) -> float:
    """``1 - stockout_days / days`` (1.0 for a run of no days)."""
    days = int(math.ceil(horizon))
    return 1.0 - stockout_days / days if days else 1.0


class StreamBasis:
    """What the demand KPIs of a set of streams are computed from, one value per stream
    (lists), filled by :func:`sim.metrics.stream_kpi_table`: ``orders`` (number of orders,
    int), ``n_short`` (short orders, int), ``lost`` (lost-sales stream), ``demand_t``,
    ``filled_t``, ``peak_backorders_t``, ``mean_backorders_t``, ``stockout_days``,
    ``short_days`` / ``out_days`` (the days with a short order / in stockout as the bits of an
    ``int``), ``first_shortage_day`` / ``shortage_occurred`` and ``first_shortage_after_day`` /
    ``shortage_after_occurred``; and ``horizon`` (the run's, days)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class GroupBasis:
    """What the demand KPIs of one group of streams are computed from: the streams' KPI values
    (*per_stream*, KPI name -> list), the group's streams (*idx*), the horizon, and the
    group's end-of-day backorder peak and mean (``peak_backorders_t``, ``mean_backorders_t``:
    :func:`sim.metrics.group_kpi_table` computes them for all groups at once). Sums add the
    streams' values left to right (as ``functools.reduce``, not ``sum()``, which from Python
    3.12 compensates the rounding of floats: the KPIs would differ between Python versions)."""

    __slots__ = ("per_stream", "idx", "horizon", "peak_backorders_t", "mean_backorders_t",
                 "_pick", "_cache")

    def __init__(self, per_stream: dict, idx: list[int], horizon: float) -> None:
        self.per_stream = per_stream
        self.idx = idx
        self.horizon = horizon
        self.peak_backorders_t = 0.0        # a level of 0.0 every day (or no days)
        self.mean_backorders_t = 0.0
        # the group's values of a per-stream list, as a tuple (itemgetter: one C call)
        self._pick = itemgetter(*idx) if len(idx) > 1 else lambda values, i=idx[0]: (values[i],)
        self._cache: dict = {}

    def values(self, name: str) -> tuple:
        """The streams' values of *name*."""
        return self._pick(self.per_stream[name])

    def sum(self, name: str) -> float:
        """The streams' values of *name* added left to right (from 0.0)."""
        key = ("sum", name)
        if key not in self._cache:
            self._cache[key] = reduce(add, self.values(name), 0.0)
        return self._cache[key]

    def weighted(self, name: str, weight: str) -> float:
        """The sum of the products of *name* and *weight*, left to right."""
        return reduce(add, map(mul, self.values(name), self.values(weight)), 0.0)

    def days(self, name: str) -> float:
        """The number of days in any of the streams' day sets *name* (``short_days``,
        ``out_days``)."""
        key = ("days", name)
        if key not in self._cache:
            self._cache[key] = float(reduce(or_, self.values(name)).bit_count())
        return self._cache[key]


@dataclass(frozen=True)
class KPI:
    """A KPI: readable ``label`` (lower case), ``unit`` ("%": a fraction drawn x 100), its
    ``direction`` (1: higher is better, -1: lower is better, 0: neither), ``family`` (see the
    module's docstring) and implementation (``stream`` and ``group`` for demand KPIs, ``run``
    for policy KPIs); ``categories``: the labels of the codes of a categorical KPI."""

    label: str
    unit: str
    direction: int
    family: str
    stream: Callable[[StreamBasis], list] | None = None
    group: Callable[[GroupBasis], float] | None = None
    run: Callable[[Any], float] | None = None
    categories: dict[int, str] = field(default_factory=dict)


def _ratio(num: str, den: str) -> tuple[Callable, Callable]:
    """Stream and group functions of ``num / den`` (1.0 where ``den`` is 0)."""
    def stream(b: StreamBasis) -> list:
        return [n / d if d > 0 else 1.0 for n, d in zip(getattr(b, num), getattr(b, den))]

    def group(g: GroupBasis) -> float:
        d = g.sum(den)
        return g.sum(num) / d if d > 0 else 1.0
    return stream, group


def _total(name: str) -> tuple[Callable, Callable]:
    """Stream and group functions of a quantity that adds up over streams."""
    return (lambda b: getattr(b, name)), (lambda g: g.sum(name))


def _first(day: str) -> tuple[Callable, Callable]:
    """The earliest of the streams' days (they are censored at the horizon)."""
    return (lambda b: getattr(b, day)), (lambda g: min(g.values(day)))


def _any(flag: str) -> tuple[Callable, Callable]:
    """1.0 where some stream's flag is 1.0."""
    return (lambda b: getattr(b, flag)), (lambda g: float(any(g.values(flag))))


def _demand(label: str, unit: str, direction: int, fns: tuple[Callable, Callable]) -> KPI:
    return KPI(label, unit, direction, "demand", stream=fns[0], group=fns[1])


def _licence_mean_review(r) -> float:
    return float(r.licences[:, 1].mean()) if len(r.licences) else 0.0


def _licence_denials(r) -> float:
    return float((r.licences[:, 2] == 0).sum()) if len(r.licences) else 0.0


TRUCE_OUTCOMES = {0: "none", 1: "reinstate", 2: "extend", 3: "escalate"}
_TRUCE_CODE = {v: k for k, v in TRUCE_OUTCOMES.items()}

# in the order of the results' KPI tables: demand KPIs, then costs, then policy KPIs
KPI_TABLE: dict[str, KPI] = {
    "fill_rate": _demand("fill rate", "%", 1, _ratio("filled_t", "demand_t")),
    "order_fill_rate": _demand(
        "order fill rate (orders filled completely)", "%", 1,
        (lambda b: [1.0 - k / n if n else 1.0 for k, n in zip(b.n_short, b.orders)],
         lambda g: (g.weighted("order_fill_rate", "orders") / g.sum("orders")
                    if g.sum("orders") else 1.0))),
    "demand_t": _demand("demand", "t", 0, _total("demand_t")),
    "filled_t": _demand("demand filled from stock", "t", 1, _total("filled_t")),
    "backordered_t": _demand(
        "backordered", "t", -1,
        (lambda b: [0.0 if ls else to - fi
                    for ls, to, fi in zip(b.lost, b.demand_t, b.filled_t)],
         lambda g: g.sum("backordered_t"))),
    "lost_t": _demand(
        "lost sales", "t", -1,
        (lambda b: [to - fi if ls else 0.0 for ls, to, fi in zip(b.lost, b.demand_t, b.filled_t)],
         lambda g: g.sum("lost_t"))),
    "peak_backorders_t": _demand("peak backorders", "t", -1,
                                 (lambda b: b.peak_backorders_t,
                                  lambda g: g.peak_backorders_t)),
    "mean_backorders_t": _demand("mean backorders", "t", -1,
                                 (lambda b: b.mean_backorders_t,
                                  lambda g: g.mean_backorders_t)),
    "stockout_days": _demand("stockout days (unmet backlog or lost demand)", "days", -1,
                             (lambda b: b.stockout_days, lambda g: g.days("out_days"))),
    "short_order_days": _demand(
        "days with an order not filled completely", "days", -1,
        (lambda b: [float(bits.bit_count()) for bits in b.short_days],
         lambda g: g.days("short_days"))),
    "period_service_level": _demand(
        "period service level (days without stockout)", "%", 1,
        (lambda b: [service_level(x, b.horizon) for x in b.stockout_days],
         lambda g: service_level(g.days("out_days"), g.horizon))),
    "first_shortage_day": _demand("first shortage", "day of run", 1,
                                  _first("first_shortage_day")),
    "shortage_occurred": _demand("replications with a shortage", "%", -1,
                                 _any("shortage_occurred")),
    "first_shortage_after_day": _demand("first shortage after the event", "day of run", 1,
                                        _first("first_shortage_after_day")),
    "shortage_after_occurred": _demand("replications with a shortage after the event", "%", -1,
                                       _any("shortage_after_occurred")),
    "orders": _demand("orders", "count", 0,
                      (lambda b: [float(n) for n in b.orders], lambda g: g.sum("orders"))),
    "purchase_cost_usd": KPI("purchase cost", "USD", -1, "cost"),
    "tariff_cost_usd": KPI("tariff cost", "USD", -1, "cost"),
    "holding_cost_usd": KPI("holding cost", "USD", -1, "cost"),
    "truce_outcome": KPI("truce outcome", "", 0, "policy",
                         run=lambda r: float(_TRUCE_CODE[r.truce_outcomes[-1]
                                                         if r.truce_outcomes else "none"]),
                         categories=TRUCE_OUTCOMES),
    "truce_extensions": KPI("truce extensions", "count", 0, "policy",
                            run=lambda r: float(r.truce_outcomes.count("extend"))),
    "licence_reviews": KPI("licence reviews", "count", 0, "policy",
                           run=lambda r: float(len(r.licences))),
    "licence_denials": KPI("licence denials", "count", -1, "policy", run=_licence_denials),
    "licence_review_days_mean": KPI("mean licence review time", "days", -1, "policy",
                                    run=_licence_mean_review),
    "shortage_after_event_day": KPI("event date of the shortage-after KPI", "day of run", 0,
                                    "policy", run=lambda r: float(r.shortage_from)),
    "unfilled_t": KPI("demand not filled", "t", -1, "derived"),
    "days_to_first_shortage_after_expiry": KPI("days from truce expiry to first shortage",
                                               "days", 1, "derived"),
    "reserve_released_t": KPI("released from the strategic reserve", "t", 0, "reserve"),
    "reserve_purchased_t": KPI("bought for the strategic reserve", "t", 0, "reserve"),
    "reserve_purchase_cost_usd": KPI("strategic reserve purchases", "USD", -1, "reserve"),
    "reserve_holding_end_t": KPI("strategic reserve holding at the end", "t", 0, "reserve"),
    "tts_days": KPI("time to survive", "days", 1, "resilience"),
    "ttr_days": KPI("time to recover", "days", -1, "resilience"),
    "tts_lt_ttr": KPI("P(time to survive < time to recover)", "%", -1, "resilience"),
    "excess_unmet_t": KPI("demand left unmet by the disruption", "t", -1, "resilience"),
    "excess_unmet_usd": KPI("value of demand left unmet by the disruption", "USD", -1,
                            "resilience"),
    "unmet_t": KPI("demand not filled on arrival after the disruption", "t", -1, "resilience"),
    "trough_depth": KPI("trough depth (share of normal performance lost)", "%", -1,
                        "resilience"),
    "time_to_trough_days": KPI("time to trough", "days", 0, "resilience"),
    "loss_area_days": KPI("resilience loss (days of total loss)", "days", -1, "resilience"),
    "normalised_resilience": KPI("normalised resilience", "%", 1, "resilience"),
    "risk_exposure_index": KPI("risk exposure index (worst = 1)", "", -1, "resilience"),
    "days_below": KPI("longest stretch below the recovery threshold", "days", -1, "resilience"),
}


def kpi_names(family: str) -> tuple[str, ...]:
    """The KPIs of a family, in table order."""
    return tuple(name for name, k in KPI_TABLE.items() if k.family == family)
