"""The post-processing of a run (records, KPIs, sector and weekly series) computes all demand
streams, lanes and stocks together; these tests hold it to the one-at-a-time definitions,
bit for bit (reference implementations below), and check the numpy behaviour it relies on."""

from __future__ import annotations

import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import stress_scenario_dict, stressed_teaching

import kpi_reference
import sim
from sim import metrics
from sim.experiment import GRID_DAYS, reduce_series
from sim.records import REC_CONSUMED, REC_PRODUCED, REC_RECEIVED, REC_RETURNED, REC_SHIPPED
from sim.results import Run

_BENCH = str(Path(__file__).resolve().parent.parent / "benchmarks")
sys.path.insert(0, _BENCH)          # (the benchmark scripts import each other by plain name)
try:
    import peer_network
finally:
    sys.path.remove(_BENCH)


def _bits(value) -> bytes:
    """The exact bits of a value or array (numpy scalars and floats alike)."""
    return np.asarray(value, dtype=float).tobytes()


# -- reference implementations: one stream, lane or stock at a time ---------------------------

# the sign of each record code on the stock on hand: +1 into it, -1 out of it, 0 bookkeeping
_SIGN = np.zeros(9)
_SIGN[[int(REC_RECEIVED), int(REC_PRODUCED), int(REC_RETURNED)]] = 1.0
_SIGN[[int(REC_SHIPPED), int(REC_CONSUMED)]] = -1.0


def _daily(t: np.ndarray, q: np.ndarray, ndays: int) -> np.ndarray:
    """The quantities *q* at times *t* added up by day (the last day takes what lies after)."""
    if len(t) == 0:
        return np.zeros(ndays)
    idx = np.minimum(np.floor(t).astype(np.int64), ndays - 1)
    return np.bincount(idx, weights=q, minlength=ndays)[:ndays]


def _reference_demand(recording, ndays: int) -> list[tuple]:
    """(level_before, filled, daily_level) of each recorded demand stream, stream by stream."""
    out = []
    for st in recording.demand:
        T, D, C = st.times, st.sizes, st.cum
        n = len(T)
        ep = st.epochs
        ep_t, ep_k, ep_L = ep[:, 0], ep[:, 1].astype(np.int64), ep[:, 2]
        in_epoch = np.diff(ep_k, append=n)
        lev = np.repeat(ep_L, in_epoch) - (C[:n] - np.repeat(C[ep_k], in_epoch))
        if st.lost:
            lev = np.maximum(lev, 0.0)
        filled = np.clip(lev, 0.0, D)
        kb = np.cumsum(np.bincount(T.astype(np.int64), minlength=ndays)[:ndays])
        eb = np.cumsum(np.bincount(ep_t.astype(np.int64), minlength=ndays)[:ndays]) - 1
        daily = ep_L[eb] - (C[kb] - C[ep_k[eb]])
        if st.lost:
            daily = np.maximum(daily, 0.0)
        out.append((lev, filled, daily))
    return out


def _reference_kpi_rows(run: Run) -> list[tuple]:
    streams = run._kpi_streams          # the demand streams, a fleet's plants for its node's
    per = [kpi_reference.stream_kpis(d, run.shortage_from, run.horizon) for d in streams]
    groups = {"network": list(range(len(streams)))}
    civil = [i for i, d in enumerate(streams) if d.sector != "defense"]
    if civil and len(civil) < len(streams):
        groups["civil"] = civil
    for i, d in enumerate(streams):
        groups.setdefault(f"sector:{d.sector}", []).append(i)
        groups.setdefault(f"country:{d.country}", []).append(i)
        groups.setdefault(f"node:{d.node}", []).append(i)
        if d.plant_class:
            groups.setdefault(f"plants:{d.node}/{d.plant_class}", []).append(i)
    rows = []
    for scope, idx in groups.items():
        k = per[idx[0]] if len(idx) == 1 else kpi_reference.group_kpis(
            [streams[i] for i in idx], [per[i] for i in idx], run.horizon)
        rows += [(name, scope, float(k[name])) for name in metrics.KPI_NAMES if name in k]
    node_info = {s.node: (s.country, s.sector) for s in run.stocks}
    per_node: dict[str, list[float]] = {}
    for lane in run.lanes:
        acc = per_node.setdefault(lane.dst, [0.0, 0.0, 0.0])
        if len(lane.log):
            qty, rate = lane.log[:, 1], lane.log[:, 3]
            acc[0] += float(qty.sum()) * lane.price
            acc[1] += float(qty @ rate) * lane.price
    demand: dict[tuple[str, str], list] = {}
    for d in run._kpi_streams:              # a fleet node's plants hold its stock
        demand.setdefault((d.node, d.material), []).append(d)
    for s in run.stocks:
        acc = per_node.setdefault(s.node, [0.0, 0.0, 0.0])
        if s.is_demand:
            days = 0.0
            for j, d in enumerate(demand[(s.node, s.material)]):
                value = float(d.daily_on_hand.sum())
                days = value if j == 0 else days + value
        else:
            t, c, q = s.log[:, 0], s.log[:, 1], s.log[:, 2]
            days = float(s.initial * run.horizon
                         + (_SIGN[c.astype(np.int64)] * q * (run.horizon - t)).sum())
        acc[2] += days * s.price * s.holding_rate / 365.0
    out: dict[tuple[str, str], float] = {}
    buyers = {lane.dst for lane in run.lanes}
    for node, values in per_node.items():
        country, sector = node_info[node]
        scopes = ("network", f"country:{country}", f"node:{node}") + \
            ((f"sector:{sector}",) if sector else ())
        for kpi, value in zip(("purchase_cost_usd", "tariff_cost_usd", "holding_cost_usd"),
                              values):
            if kpi != "holding_cost_usd" and node not in buyers:
                continue
            for scope in scopes:
                out[(kpi, scope)] = out.get((kpi, scope), 0.0) + value
    return rows + [(k, scope, v) for (k, scope), v in sorted(out.items())]


def _reference_sector_series(run: Run) -> dict:
    nd = run.ndays
    out: dict = {}
    for d in run._kpi_streams:
        s = out.setdefault(d.sector, {k: np.zeros(nd) for k in
                                      ("demand", "filled", "backorders", "inventory")})
        s["demand"] += _daily(d.T, d.D, nd)
        s["filled"] += _daily(d.T, d.filled, nd)
        s["backorders"] += d.daily_backorders
        s["inventory"] += d.daily_on_hand
    return out


def _reference_levels(run: Run) -> tuple:
    """(on hand, on order, backlog, flows by code) of each stock, a code at a time."""
    from sim.records import (
        REC_BACKLOG_DROP,
        REC_CANCELLED,
        REC_CONSUMED,
        REC_ORDER_IN,
        REC_ORDERED,
        REC_PRODUCED,
        REC_RECEIVED,
        REC_RETURNED,
        REC_SHIPPED,
    )

    nd = run.ndays
    demand = {(d.node, d.material): d for d in run.demand}
    on_hand, on_order, backlog, flows = [], [], [], []
    for s in run.stocks:
        t, c, q = s.log[:, 0], s.log[:, 1], s.log[:, 2]
        f = {code: _daily(t[c == code], q[c == code], nd) for code in range(9)}
        flows.append(f)
        on_order.append(np.cumsum(f[REC_ORDERED] - f[REC_RECEIVED] - f[REC_CANCELLED]))
        if s.is_demand:
            d = demand[(s.node, s.material)]
            on_hand.append(d.daily_on_hand)
            backlog.append(d.daily_backorders)
        else:
            inflow = f[REC_RECEIVED] + f[REC_PRODUCED] + f[REC_RETURNED]
            outflow = f[REC_SHIPPED] + f[REC_CONSUMED]
            on_hand.append(s.initial + np.cumsum(inflow - outflow))
            backlog.append(np.cumsum(f[REC_ORDER_IN] - f[REC_SHIPPED] - f[REC_BACKLOG_DROP]))
    return on_hand, on_order, backlog, flows


def _reference_week_grid(daily: np.ndarray, how: str) -> np.ndarray:
    n = len(daily)
    w = -(-n // GRID_DAYS)
    pad = np.full(w * GRID_DAYS, np.nan)
    pad[:n] = daily
    if how == "sum":
        return np.nansum(pad.reshape(w, GRID_DAYS), axis=1)
    return daily[np.minimum(np.arange(1, w + 1) * GRID_DAYS, n) - 1]


def _reference_reduce_series(run: Run, track) -> dict:
    out = {}
    sectors = _reference_sector_series(run)
    groups = {f"sector:{name}": [name] for name in sorted(sectors)}
    civil = [name for name in sorted(sectors) if name != "defense"]
    if civil and len(civil) < len(sectors):
        groups["civil"] = civil
    for scope, names in groups.items():
        dem = sum(_reference_week_grid(sectors[n]["demand"], "sum") for n in names)
        fil = sum(_reference_week_grid(sectors[n]["filled"], "sum") for n in names)
        bo = sum(sectors[n]["backorders"] for n in names)
        inv = sum(sectors[n]["inventory"] for n in names)
        out[f"fill_rate|{scope}"] = np.where(dem > 0, fil / np.where(dem > 0, dem, 1), 1.0)
        out[f"backorders_t|{scope}"] = _reference_week_grid(bo, "end")
        out[f"net_inventory_t|{scope}"] = _reference_week_grid(inv - bo, "end")
    keys = [(s.node, s.material) for s in run.stocks]
    on_hand = _reference_levels(run)[0]
    for node, mat in track:
        out[f"inventory_t|stock:{node}/{mat}"] = _reference_week_grid(
            on_hand[keys.index((node, mat))], "end")
    return {k: v.astype(np.float32) for k, v in out.items()}


# -- the cases --------------------------------------------------------------------------------

def _with_fleets(network: str) -> sim.Network:
    """*network* with fleets of plants at two automotive nodes (two materials each)."""
    d = sim.load_network(network).to_dict()
    d["nodes"]["eu_auto"]["fleet"] = {"plants": [
        {"name": "jit", "share": 0.3, "count": 3, "cover_days": [10, 21, 28]},
        {"name": "buffered", "share": 0.7, "count": 5,
         "cover_days": {"dist": "triangular", "min": 40, "mode": 60, "max": 90}}]}
    d["nodes"]["us_auto"]["fleet"] = {"plants": [
        {"name": "all", "share": 1.0, "count": 3, "cover_days": 30}]}
    return sim.Network.from_dict(d)


def _cases():
    teaching = sim.load_network("teaching")
    stressed = sim.Network.from_dict(stressed_teaching(teaching.to_dict()))
    peer = peer_network.peer_network("small")
    return [
        ("teaching", teaching, None, {}),
        ("stressed", stressed, sim.Scenario.from_dict(stress_scenario_dict()), {}),
        ("default", "rare_earth_2025", "truce-uncertain", {"horizon_days": 400.5}),
        ("fleets", _with_fleets("rare_earth_2025"), "truce-uncertain", {"horizon_days": 400.5}),
        ("peer-disrupt", peer, peer_network.peer_scenario("small", "disrupt", seed=2, days=200),
         {"horizon_days": 200}),
    ]


@pytest.fixture(scope="module", params=_cases(), ids=lambda case: case[0])
def finished(request):
    """(recording, run) of each case: what a model run to the end recorded, and its Run."""
    _label, network, scenario, kw = request.param
    model = sim.engine.Model(sim.load_network(network), scenario, seed=11, replication=1, **kw)
    recording = model.run()
    return recording, Run.from_recording(recording)


def test_demand_records_match_stream_by_stream(finished):
    recording, run = finished
    for d, (lev, filled, daily) in zip(run.demand, _reference_demand(recording, run.ndays)):
        assert _bits(d.level_before) == _bits(lev)
        assert _bits(d.filled) == _bits(filled)
        assert _bits(d.daily_level) == _bits(daily)


def test_kpi_rows_match_one_stream_lane_and_stock_at_a_time(finished):
    _recording, run = finished
    got, want = run.kpi_rows(), _reference_kpi_rows(run)
    assert [(k, s) for k, s, _ in got[:len(want)]] == [(k, s) for k, s, _ in want]
    assert [_bits(v) for _, _, v in got[:len(want)]] == [_bits(v) for _, _, v in want]


def test_sector_and_weekly_series_match_the_definitions(finished):
    _recording, run = finished
    want = _reference_sector_series(run)
    got = run.sector_series()
    assert list(got) == list(want)
    for sector in want:
        assert list(got[sector]) == list(want[sector])
        for name in want[sector]:
            assert _bits(got[sector][name]) == _bits(want[sector][name])
    track = tuple((s.node, s.material) for s in run.stocks[:2])
    got, want = reduce_series(run, track), _reference_reduce_series(run, track)
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == np.float32
        assert got[key].tobytes() == want[key].tobytes()


def test_daily_levels_and_flows_of_stocks_match_a_code_at_a_time(finished):
    _recording, run = finished
    want = _reference_levels(run)
    got = run._levels
    for series_got, series_want in zip(got[:3], want[:3]):
        assert [_bits(a) for a in series_got] == [_bits(a) for a in series_want]
    assert [list(f) for f in got[3]] == [list(f) for f in want[3]]
    assert [[_bits(a) for a in f.values()] for f in got[3]] == \
        [[_bits(a) for a in f.values()] for f in want[3]]


def test_stock_days_of_all_stocks_match_stock_days(finished):
    _recording, run = finished
    assert [_bits(v) for v in run._stock_days_all()] == \
        [_bits(run.stock_days(s)) for s in run.stocks]


def test_demand_arrays_of_a_run_match_those_made_from_its_records(finished):
    """from_recording hands the KPIs the streams side by side; made again from the records (as
    after unpickling), they are the same; a pickled run leaves them out."""
    _recording, run = finished
    made = metrics.DemandArrays.from_records(run.demand, run.ndays)
    for name in ("T", "D", "level_before", "filled", "daily_level", "daily_backorders",
                 "daily_on_hand"):
        assert _bits(getattr(run._demand_arrays, name)) == _bits(getattr(made, name))
    assert (run._demand_arrays.start, run._demand_arrays.backordered) == \
        (made.start, made.backordered)
    # the KPIs' streams (a fleet's plants for its node's), made as blocks, are those streams
    made = metrics.DemandArrays.from_records(run._kpi_streams, run.ndays)
    for name in ("T", "D", "level_before", "filled", "daily_level", "daily_backorders",
                 "daily_on_hand"):
        assert _bits(getattr(run._kpi_arrays, name)) == _bits(getattr(made, name))
    assert (run._kpi_arrays.start, run._kpi_arrays.lost) == (made.start, made.lost)
    blob = pickle.dumps(run)
    copy = pickle.loads(blob)
    assert "_demand_arrays" not in copy.__dict__
    assert copy.kpi_rows() == run.kpi_rows()


def test_numpy_behaviour_the_batched_code_relies_on():
    rng = np.random.default_rng(0)
    # np.maximum(-0.0, 0.0) is 0.0, wherever the element sits: backorder rows hold no -0.0
    for n in (1, 7, 8, 33, 1461):
        assert not np.signbit(np.maximum(np.full(n, -0.0), 0.0)).any()
    for days in (2, 3, 7, 100, 1461):
        m = rng.standard_normal((12, days)) * 10.0 ** rng.integers(-3, 6, size=(12, 1))
        # a matrix reduced along its rows: each row summed as that array alone (pairwise)
        assert all(_bits(np.add.reduce(m, axis=1)[i]) == _bits(np.add.reduce(m[i].copy()))
                   for i in range(len(m)))
        assert _bits(m.mean(axis=1)) == _bits([m[i].copy().mean() for i in range(len(m))])
        # down the rows (more than one column): row after row, as np.sum(rows, axis=0)
        total = m[0].copy()
        for row in m[1:]:
            total += row
        assert _bits(np.sum(list(m), axis=0)) == _bits(total)


def test_week_grid_of_rows_matches_each_row_alone():
    from sim.experiment import week_grid

    rng = np.random.default_rng(1)
    for n in (1, 6, 7, 8, 365, 1461):
        m = rng.standard_normal((3, 2, n)) * 1e4
        m[0, 0, 0] = math.nan
        for how in ("sum", "end"):
            got = week_grid(m, how)
            for i in range(3):
                for j in range(2):
                    assert _bits(got[i, j]) == _bits(_reference_week_grid(m[i, j], how))


def test_group_kpis_add_their_streams_left_to_right():
    """Group totals add the streams' floats one after the other, as ``group_kpis`` did with
    numpy floats; ``sum()`` of Python floats compensates the rounding from Python 3.12 on, so
    the KPIs would differ in their last bits between Python versions."""
    values = [1e16, 1.0, -1e16]               # left to right: 0.0; compensated: 1.0
    plain = (values[0] + values[1]) + values[2]
    streams = metrics.DemandArrays(np.zeros(3), np.ones(3), np.ones(3), np.ones(3),
                                   np.zeros((3, 2)), [1, 1, 1], [False] * 3)
    per_stream = {name: list(values) for name in
                  ("orders", "demand_t", "filled_t", "backordered_t", "lost_t")}
    per_stream.update(order_fill_rate=[1.0, 1.0, 1.0], short_days=[0, 0, 0], out_days=[0, 0, 0],
                      first_shortage_day=[5.0, 5.0, 5.0], shortage_occurred=[0.0, 0.0, 0.0],
                      first_shortage_after_day=[5.0, 5.0, 5.0],
                      shortage_after_occurred=[0.0, 0.0, 0.0])
    (group,) = metrics.group_kpi_table(streams, per_stream, [[0, 1, 2]])
    for name in ("orders", "demand_t", "filled_t", "backordered_t", "lost_t"):
        assert _bits(group[name]) == _bits(plain), name
