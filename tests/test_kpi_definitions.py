"""Each demand KPI computed by hand on small streams (sim/metrics.py defines them), and the
batched tables give the one-stream-at-a-time values of the reference implementation
(tests/kpi_reference.py) bit for bit on the same streams."""

from __future__ import annotations

import numpy as np
import pytest

import kpi_reference
import sim
from sim import metrics
from sim.results import DemandRecord

HORIZON = 5.0


def _record(lost: bool) -> DemandRecord:
    """Four orders of 2 t (days 0.5, 1.2, 1.7, 3.5), 3 t on hand at the start, 5 t arriving
    at 3.25. With backorders the level goes 3 -> 1 -> -1 -> -3, +5 -> 2 -> 0 (end of days 0-4:
    1, -3, -3, 0, 0); with lost sales 3 -> 1 -> 0 -> 0, +5 -> 3 (1, 0, 0, 3, 3)."""
    T = np.array([0.5, 1.2, 1.7, 3.5])
    D = np.full(4, 2.0)
    if lost:
        level = np.array([3.0, 1.0, 0.0, 5.0])
        daily = np.array([1.0, 0.0, 0.0, 3.0, 3.0])
    else:
        level = np.array([3.0, 1.0, -1.0, 2.0])
        daily = np.array([1.0, -3.0, -3.0, 0.0, 0.0])
    filled = np.clip(level, 0.0, D)
    return DemandRecord("buyer", "m", "automotive", "US", lost, T, D, level, filled, daily)


# the by-hand values hold for the library and for the tests' reference implementation
STREAM = pytest.mark.parametrize("stream_kpis", [kpi_reference.library_stream_kpis,
                                                 kpi_reference.stream_kpis])


@STREAM
def test_backorder_stream_kpis_by_hand(stream_kpis):
    k = stream_kpis(_record(lost=False), 1.5, HORIZON)
    assert k["demand_t"] == 8.0 and k["filled_t"] == 5.0
    assert k["fill_rate"] == 5.0 / 8.0                    # tonnes filled on arrival
    assert k["order_fill_rate"] == 0.5                    # orders 1 and 4 filled completely
    assert k["backordered_t"] == 3.0 and k["lost_t"] == 0.0
    assert k["short_order_days"] == 1.0                   # day 1 (orders at 1.2 and 1.7)
    # day 1 (short orders), day 2 (begins and ends with 3 t owed), day 3 (begins with it, until
    # the arrival at 3.25)
    assert k["stockout_days"] == 3.0
    assert k["period_service_level"] == 1.0 - 3.0 / 5.0
    assert k["peak_backorders_t"] == 3.0
    assert k["mean_backorders_t"] == pytest.approx((3.0 + 3.0) / 5.0)
    assert (k["first_shortage_day"], k["shortage_occurred"]) == (1.2, 1.0)
    # from the event on day 1.5: the order at 1.7
    assert (k["first_shortage_after_day"], k["shortage_after_occurred"]) == (1.7, 1.0)


@STREAM
def test_lost_sales_stream_kpis_by_hand(stream_kpis):
    k = stream_kpis(_record(lost=True), 4.0, HORIZON)
    assert k["filled_t"] == 5.0 and k["lost_t"] == 3.0 and k["backordered_t"] == 0.0
    assert k["order_fill_rate"] == 0.5
    assert k["stockout_days"] == 1.0                      # lost demand on day 1 only
    assert k["short_order_days"] == 1.0
    assert k["period_service_level"] == 1.0 - 1.0 / 5.0
    assert (k["first_shortage_day"], k["shortage_occurred"]) == (1.2, 1.0)
    # nothing short on or after day 4: censored at the horizon
    assert (k["first_shortage_after_day"], k["shortage_after_occurred"]) == (HORIZON, 0.0)


@pytest.mark.parametrize("library", [True, False])
def test_group_kpis_by_hand(library):
    records = [_record(lost=False), _record(lost=True)]
    if library:
        g = kpi_reference.library_group_kpis(records, 1.5, HORIZON)
    else:
        per = [kpi_reference.stream_kpis(d, 1.5, HORIZON) for d in records]
        g = kpi_reference.group_kpis(records, per, HORIZON)
    assert g["order_fill_rate"] == 4.0 / 8.0
    assert g["stockout_days"] == 3.0                      # days 1, 2, 3 (a union, not a sum)
    assert g["short_order_days"] == 1.0
    assert g["period_service_level"] == 1.0 - 3.0 / 5.0
    assert g["first_shortage_day"] == 1.2
    assert g["first_shortage_after_day"] == 1.7


def test_batched_tables_match_the_reference_on_the_hand_cases():
    records = [_record(lost=False), _record(lost=True), _record(lost=False)]
    records[2] = DemandRecord("other", "m", "wind", "DE", False, records[2].T,
                              records[2].D * 0.5, records[2].level_before + 10.0,
                              np.clip(records[2].level_before + 10.0, 0.0, records[2].D * 0.5),
                              records[2].daily_level + 10.0)
    arrays = metrics.DemandArrays.from_records(records, int(HORIZON))
    for since in (0.0, 1.5, 4.0):
        table = metrics.stream_kpi_table(arrays, since, HORIZON)
        per = [kpi_reference.stream_kpis(d, since, HORIZON) for d in records]
        for name in metrics.KPI_NAMES:
            assert [float(x) for x in table[name]] == [float(k[name]) for k in per], name
        for idx in ([0, 1], [0, 2], [0, 1, 2]):
            (got,) = metrics.group_kpi_table(arrays, table, [idx], HORIZON)
            want = kpi_reference.group_kpis([records[i] for i in idx], [per[i] for i in idx],
                                            HORIZON)
            for name in metrics.KPI_NAMES:
                assert np.asarray(got[name]).tobytes() == np.asarray(want[name]).tobytes(), name


def test_first_shortage_counts_from_the_start_and_after_the_event(teaching):
    """On a run: ``first_shortage_day`` counts from day 0 whatever the event date;
    ``first_shortage_after_day`` from the event, whose day is ``shortage_after_event_day``."""
    d = teaching.to_dict()
    d["nodes"]["magnets_jp"]["production"]["ndfeb_magnet"]["capacity_t_per_year"] = 500
    net = sim.Network.from_dict(d)
    early = sim.simulate(net, seed=1, horizon_days=300)
    later = sim.simulate(net, seed=1, horizon_days=300, shortage_after="2025-09-15")
    assert early.kpi("shortage_occurred") == 1.0
    assert later.kpi("first_shortage_day") == early.kpi("first_shortage_day") < 257.0
    assert later.kpi("shortage_after_event_day", "policy") == 257.0
    assert later.kpi("first_shortage_after_day") >= 257.0
    assert early.kpi("first_shortage_after_day") == early.kpi("first_shortage_day")
    rows = later.kpis().set_index(["kpi", "scope"])
    assert rows.loc[("shortage_after_event_day", "policy"), "date"] == "2025-09-15"
    assert rows.loc[("first_shortage_day", "network"), "date"] == \
        later.date_of(later.kpi("first_shortage_day")).isoformat()
    for scope in ("network", "node:auto_us"):
        days = later.kpi("stockout_days", scope)
        assert later.kpi("short_order_days", scope) <= days <= later.ndays
        assert later.kpi("period_service_level", scope) == 1.0 - days / later.ndays
