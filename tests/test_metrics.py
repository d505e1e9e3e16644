"""The metrics stage (sim/metrics.py) called directly: :class:`sim.metrics.DemandArrays`
built from hand-made arrays, and the KPIs of :func:`sim.metrics.stream_kpi_table` and
:func:`sim.metrics.group_kpi_table` against values worked out by hand below (fill rate,
backorders, stockout days, first shortage, period service level), per stream and for groups
(a group's fill rate weights its streams by demand; its stockout days are a union).

tests/test_kpi_definitions.py checks one backorder and one lost-sales record through the
reference implementation; the streams here are other cases: several streams side by side, a
stream without orders, an order exactly at a day boundary, a backlog open at the end of the
run, demand-weighted groups."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kpis import service_level
from sim.metrics import EPS, KPI_NAMES, DemandArrays, group_kpi_table, stream_kpi_table
from sim.results import DemandRecord

HORIZON = 4.0
SINCE = 2.6          # the shortage_after event day

# Stream A (backorders): orders of 10 t at 0.2, 2.5, 2.7 with 15 t on hand; 20 t arrive at
# 3.5. Level 15 -> 5 -> -5 -> -15, +20 -> 5; end of days 0-3: 5, 5, -15, 5.
A = dict(T=[0.2, 2.5, 2.7], D=[10.0, 10.0, 10.0], level=[15.0, 5.0, -5.0],
         daily=[5.0, 5.0, -15.0, 5.0], lost=False)
# Stream B (backorders): one order of 2 t at exactly day 1.0 with 1.5 t on hand; the 0.5 t
# owed is still open at the end: end of days 0-3: 1.5, -0.5, -0.5, -0.5.
B = dict(T=[1.0], D=[2.0], level=[1.5], daily=[1.5, -0.5, -0.5, -0.5], lost=False)
# Stream C: no orders, 3 t on hand all along.
C = dict(T=[], D=[], level=[], daily=[3.0, 3.0, 3.0, 3.0], lost=False)
# Stream D (lost sales): orders of 2 t at 0.5 (1 t on hand) and 3.2 (none on hand).
D_ = dict(T=[0.5, 3.2], D=[2.0, 2.0], level=[1.0, 0.0], daily=[0.0, 0.0, 0.0, 0.0], lost=True)
STREAMS = [A, B, C, D_]


def _arrays(streams=STREAMS) -> DemandArrays:
    T = np.concatenate([np.array(s["T"], dtype=float) for s in streams])
    D = np.concatenate([np.array(s["D"], dtype=float) for s in streams])
    level = np.concatenate([np.array(s["level"], dtype=float) for s in streams])
    filled = np.clip(level, 0.0, D)
    return DemandArrays(T, D, level, filled, np.array([s["daily"] for s in streams], dtype=float),
                        [len(s["T"]) for s in streams], [s["lost"] for s in streams])


@pytest.fixture(scope="module")
def table() -> dict:
    return stream_kpi_table(_arrays(), SINCE, HORIZON)


def test_demand_arrays_layout():
    arr = _arrays()
    assert (arr.count, arr.ndays) == (4, 4)
    assert arr.start == [0, 3, 4, 4, 6]
    assert arr.stream.tolist() == [0, 0, 0, 1, 3, 3]
    assert arr.segment_sums(arr.D) == [30.0, 2.0, 0.0, 4.0]
    assert arr.segment_sums(arr.filled) == [15.0, 1.5, 0.0, 1.0]
    assert arr.daily_backorders[:2].tolist() == [[0, 0, 15, 0], [0, 0.5, 0.5, 0.5]]
    assert arr.daily_on_hand[0].tolist() == [5, 5, 0, 5]
    assert arr.backordered == [True, True, False, False]
    assert arr.backorders_across([0, 1]).tolist() == [0.0, 0.5, 15.5, 0.5]
    assert arr.backorders_across([2, 3]) is None          # no backlog in either


def test_from_records_equals_the_concatenated_arrays():
    records = []
    for i, s in enumerate(STREAMS):
        T, D, lvl = (np.array(s[k], dtype=float) for k in ("T", "D", "level"))
        records.append(DemandRecord(f"n{i}", "m", "wind", "US", s["lost"], T, D, lvl,
                                    np.clip(lvl, 0.0, D), np.array(s["daily"], dtype=float)))
    a, b = DemandArrays.from_records(records, 4), _arrays()
    for name in ("T", "D", "level_before", "filled", "daily_level", "daily_backorders"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.orders, a.lost, a.start) == (b.orders, b.lost, b.start)
    empty = DemandArrays.from_records([], 4)
    assert empty.count == 0 and stream_kpi_table(empty, 0.0, HORIZON)["fill_rate"] == []


def test_stream_fill_rates_and_tonnes(table):
    assert table["demand_t"] == [30.0, 2.0, 0.0, 4.0]
    assert table["filled_t"] == [15.0, 1.5, 0.0, 1.0]
    assert table["fill_rate"] == [0.5, 0.75, 1.0, 0.25]   # C: no demand counts as all filled
    assert table["order_fill_rate"] == [pytest.approx(1 / 3), 0.0, 1.0, 0.0]
    assert table["backordered_t"] == [15.0, 0.5, 0.0, 0.0]
    assert table["lost_t"] == [0.0, 0.0, 0.0, 3.0]
    assert table["orders"] == [3.0, 1.0, 0.0, 2.0]
    # conservation: every tonne demanded is filled, backordered or lost
    for i in range(4):
        assert table["filled_t"][i] + table["backordered_t"][i] + table["lost_t"][i] \
            == table["demand_t"][i]


def test_stream_backorders(table):
    # A: the level after an order reaches -15; B: -0.5; lost sales have no backorders
    assert table["peak_backorders_t"] == [15.0, 0.5, 0.0, 0.0]
    assert table["mean_backorders_t"] == [15.0 / 4, 1.5 / 4, 0.0, 0.0]


def test_stream_stockout_days_and_service_level(table):
    # A: day 2 (short orders, ends owing), day 3 (begins owing until the arrival at 3.5);
    # B: day 1 (the order at 1.0 is short and the day ends owing), days 2 and 3 (owing);
    # C: none; D: the days with lost demand, 0 and 3
    assert table["stockout_days"] == [2.0, 3.0, 0.0, 2.0]
    assert table["short_order_days"] == [1.0, 1.0, 0.0, 2.0]
    assert table["period_service_level"] == [0.5, 0.25, 1.0, 0.5]
    assert table["out_days"] == [0b1100, 0b1110, 0, 0b1001]
    assert table["short_days"] == [0b0100, 0b0010, 0, 0b1001]


def test_stream_first_shortage(table):
    assert table["first_shortage_day"] == [2.5, 1.0, HORIZON, 0.5]
    assert table["shortage_occurred"] == [1.0, 1.0, 0.0, 1.0]
    # from day 2.6 on: A's order at 2.7, D's at 3.2; B and C censored at the horizon
    assert table["first_shortage_after_day"] == [2.7, HORIZON, HORIZON, 3.2]
    assert table["shortage_after_occurred"] == [1.0, 0.0, 0.0, 1.0]


def test_group_kpis(table):
    arr = _arrays()
    ab, ac, c, abcd = group_kpi_table(arr, table, [[0, 1], [0, 2], [2], [0, 1, 2, 3]], HORIZON)
    # demand-weighted: (15 + 1.5) / (30 + 2), not the mean of 0.5 and 0.75
    assert ab["fill_rate"] == 16.5 / 32.0
    assert ab["demand_t"] == 32.0 and ab["backordered_t"] == 15.5
    assert ab["order_fill_rate"] == pytest.approx(1 / 4)   # one of four orders complete
    # stockout days are a union: {2, 3} | {1, 2, 3}
    assert ab["stockout_days"] == 3.0 and ab["period_service_level"] == 0.25
    assert ab["short_order_days"] == 2.0
    # the group's backlog at the end of each day: 0, 0.5, 15.5, 0.5
    assert ab["peak_backorders_t"] == 15.5
    assert ab["mean_backorders_t"] == 16.5 / 4
    assert (ab["first_shortage_day"], ab["shortage_occurred"]) == (1.0, 1.0)
    assert (ab["first_shortage_after_day"], ab["shortage_after_occurred"]) == (2.7, 1.0)
    # a stream without demand adds nothing to a group's fill rate
    assert ac["fill_rate"] == 0.5 and ac["stockout_days"] == 2.0
    assert c["fill_rate"] == 1.0 and c["stockout_days"] == 0.0
    assert c["period_service_level"] == 1.0 and c["peak_backorders_t"] == 0.0
    assert (c["first_shortage_day"], c["shortage_occurred"]) == (HORIZON, 0.0)
    assert abcd["fill_rate"] == 17.5 / 36.0
    assert abcd["lost_t"] == 3.0 and abcd["stockout_days"] == 4.0
    assert abcd["first_shortage_day"] == 0.5
    assert set(abcd) == set(KPI_NAMES)


def test_one_stream_group_equals_the_stream(table):
    arr = _arrays()
    groups = group_kpi_table(arr, table, [[i] for i in range(arr.count)], HORIZON)
    for i, g in enumerate(groups):
        for name in KPI_NAMES:
            assert g[name] == pytest.approx(table[name][i]), (i, name)


def test_a_nearly_complete_order_is_not_short():
    # filled to within EPS of its size: complete; short by more: short
    arr = DemandArrays(np.array([0.5, 1.5]), np.array([1.0, 1.0]), np.array([1.0 - EPS / 2, 1.0]),
                       np.array([1.0 - EPS / 2, 1.0 - 10 * EPS]), np.array([[1.0, 0.0]]), [2],
                       [False])
    t = stream_kpi_table(arr, 0.0, 2.0)
    assert t["first_shortage_day"] == [1.5] and t["short_order_days"] == [1.0]


def test_service_level_counts_started_days():
    assert service_level(1.0, 3.5) == 1.0 - 1.0 / 4      # a run of 3.5 days has 4 days
    assert service_level(0.0, 0.0) == 1.0
