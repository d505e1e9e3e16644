"""Strategic reserves (``[nodes.<id>.reserve.<material>]`` on a stockpile node): a policy, not
a supplier. Releases follow the cover rule (and nothing else), never exceed the daily rate or
the holding, go to the served buyers in priority order; purchases follow the build rate to
the target and replenish after releases; the books balance; bad input names node and field;
and on a deterministic network the released tonnes match a hand computation."""

from __future__ import annotations

import copy
import datetime
import json
import math

import numpy as np
import pandas as pd
import pytest

import sim
from conftest import HUGE

DEMAND_PER_DAY = 10.0      # each defense buyer: a 10 t order every day (periodic, fixed)


def reserve_network(*, holding: float = 1000.0, rate: float = 1.0, cover: float = 5.0,
                    target: float | None = None, build: float = 0.0, supply: bool = False,
                    buyers: tuple[str, ...] = ("def_a",), serve=("defense",), civil: bool = False,
                    lead_time=2.0, replenish: bool = True, extra: dict | None = None) -> dict:
    """A stockpile ``res`` holding a reserve of ``m`` for defense buyers, each with 100 t on
    hand, a base-stock policy S = 100 and a fixed demand of 10 t a day.

    Without ``supply`` the buyers' only other supplier (``mine``) has nothing, ever (a
    shortage from day 0); with it the mine is ample. ``civ`` is an automotive buyer (a
    civil sector) on the reserve's lanes when listed in *buyers*."""
    mine = {"kind": "mine", "country": "AU",
            "production": {"m": {"capacity_t_per_year": 0.0, "target_stock": 0}},
            "stock": {"m": {"initial": HUGE if supply else 0.0}}}
    reserve = {"target_t": holding if target is None else target,
               "build_rate_t_per_year": build, "release_cover_days": cover,
               "release_rate_t_per_day": rate, "serve": list(serve), "civil": civil,
               "replenish": replenish}
    reserve.update(extra or {})
    nodes = {"mine": mine,
             "res": {"kind": "stockpile", "country": "US", "stock": {"m": {"initial": holding}},
                     "reserve": {"m": reserve}}}
    lanes = []
    for b in buyers:
        kind, sector = ("manufacturer", "automotive") if b == "civ" else ("defense_user", "defense")
        nodes[b] = {"kind": kind, "country": "US", "sector": sector,
                    "stock": {"m": {"initial": 100.0, "policy": {"type": "base_stock", "S": 100}}},
                    "demand": {"m": {"process": "periodic", "period_days": 1,
                                     "rate_t_per_year": DEMAND_PER_DAY * 365.0}}}
        lanes += [{"from": "mine", "to": b, "material": "m", "lead_time": lead_time, "share": 0.8},
                  {"from": "res", "to": b, "material": "m", "lead_time": lead_time, "share": 0.2}]
    if build:
        lanes.append({"from": "mine", "to": "res", "material": "m", "lead_time": lead_time})
    return {"network": {"name": "reserve"}, "materials": {"m": {"elements": ["Nd"],
                                                                "price_usd_per_t": 100.0}},
            "nodes": nodes, "lanes": lanes}


def run_of(data: dict, horizon: float = 100.0, **kw) -> sim.Run:
    return sim.simulate(sim.Network.from_dict(data), horizon_days=horizon, **kw)


def releases(run: sim.Run):
    f = run.reserve_flows()
    return f[f.event == "release"]


def purchases(run: sim.Run):
    f = run.reserve_flows()
    return f[f.event == "purchase"]


def holding_series(run: sim.Run) -> np.ndarray:
    s = run.series()
    return s[(s.node == "res") & (s.material == "m")]["inventory"].to_numpy()


def assert_balanced(run: sim.Run) -> None:
    bal = run.material_balance()
    scale = float(bal["initial"].abs().max() + 1.0)
    assert (bal["residual"].abs() <= 1e-9 * scale).all(), bal.to_string()


# ---------------------------------------------------------------------------------------------
# By hand
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("holding, expected_days", [(1000.0, range(6, 100)), (20.0, range(6, 26))])
def test_released_tonnes_match_the_hand_computation(holding, expected_days):
    """No other supply: the buyer's level after day t's order is 100 - 10 t; it first falls
    below the threshold 5 days x 10 t = 50 t on day 6 (40 t). From then on the need (50 t less
    the level and what is in transit) always exceeds the rate of 1 t a day, so the reserve
    releases exactly 1 t on each day 6, 7, ... until the horizon (day 100: 94 t) or until its
    holding is gone (20 t: days 6 to 25)."""
    run = run_of(reserve_network(holding=holding, rate=1.0, cover=5.0))
    rel = releases(run)
    assert rel["time"].tolist() == [float(d) for d in expected_days]
    assert np.allclose(rel["quantity_t"], 1.0)
    assert (rel["buyer"] == "def_a").all() and (rel["lane"] == "res->def_a:m").all()
    assert holding_series(run)[-1] == pytest.approx(holding - len(expected_days))
    assert len(purchases(run)) == 0
    assert_balanced(run)


def test_release_restores_cover_to_the_threshold_when_the_rate_allows():
    """With a rate above the demand, the first release (day 6) is the gap to the threshold,
    50 - 40 = 10 t, and each later one replaces a day's demand (10 t) once the first has
    landed: the buyer's level after each day's order then stays at 40 t, never below."""
    run = run_of(reserve_network(rate=50.0, cover=5.0, lead_time=1.0), horizon=40.0)
    rel = releases(run)
    assert rel["time"].iloc[0] == 6.0
    assert np.allclose(rel["quantity_t"], 10.0)
    d = run.demand[0]
    assert d.daily_level[6:].min() == pytest.approx(40.0)
    assert d.filled.sum() == pytest.approx(d.D.sum())          # never short
    assert_balanced(run)


# ---------------------------------------------------------------------------------------------
# What a release does, and when
# ---------------------------------------------------------------------------------------------

def test_a_release_raises_defense_fill_in_a_shortage():
    """The same shortage with a full and an empty reserve: the released stock is delivered,
    so defense fill is higher with it."""
    full = run_of(reserve_network(holding=1000.0, rate=20.0), horizon=200.0)
    empty = run_of(reserve_network(holding=0.0, rate=20.0), horizon=200.0)
    assert len(releases(empty)) == 0
    assert releases(full)["quantity_t"].sum() > 500.0
    assert full.kpi("fill_rate", "sector:defense") > empty.kpi("fill_rate", "sector:defense") + 0.5


def test_no_release_without_a_shortage_and_the_buyer_runs_as_without_the_reserve():
    """An ample supplier keeps the buyer's cover above the threshold (Poisson demand, random
    lead times): nothing is released, the holding stays whole, and the buyer's orders, levels
    and fills are those of the same network without the stockpile (the release lane is out of
    the share split: the mine takes every order)."""
    data = reserve_network(supply=True, cover=2.0,
                           lead_time={"dist": "uniform", "min": 1, "max": 3})
    data["nodes"]["def_a"]["demand"]["m"] = {"process": "poisson", "order_size": 1,
                                             "rate_t_per_year": DEMAND_PER_DAY * 365.0}
    bare = copy.deepcopy(data)
    del bare["nodes"]["res"]
    bare["lanes"] = [dict(lane, share=1.0) for lane in bare["lanes"] if lane["from"] != "res"]
    with_reserve, without = run_of(data, 365.0, seed=4), run_of(bare, 365.0, seed=4)
    assert len(with_reserve.reserve_flows()) == 0
    assert (holding_series(with_reserve) == 1000.0).all()
    a, b = with_reserve.demand[0], without.demand[0]
    assert np.array_equal(a.T, b.T) and np.array_equal(a.D, b.D)
    assert np.array_equal(a.level_before, b.level_before)
    assert np.array_equal(a.filled, b.filled)
    assert a.daily_level.min() >= 2.0 * DEMAND_PER_DAY        # cover stayed above 2 days


def test_releases_never_exceed_the_daily_rate_or_the_holding():
    """Three buyers (two defense, one civil with civil = true), a rate below their needs and a
    holding that runs out: no calendar day sees more than the rate released, the holding never
    goes negative and the total released is the holding."""
    rate = 7.0
    run = run_of(reserve_network(holding=300.0, rate=rate, civil=True,
                                 buyers=("def_a", "def_b", "civ"),
                                 lead_time={"dist": "uniform", "min": 1, "max": 4}),
                 horizon=120.0, seed=2)
    rel = releases(run)
    per_day = rel.groupby(np.floor(rel["time"]))["quantity_t"].sum()
    assert per_day.max() <= rate + 1e-9
    assert rel["quantity_t"].sum() == pytest.approx(300.0)
    assert holding_series(run).min() >= -1e-9
    assert_balanced(run)


def test_a_buyer_the_reserve_does_not_serve_is_an_error_unless_civil():
    data = reserve_network(buyers=("def_a", "civ"))
    with pytest.raises(sim.NetworkError, match=r"node 'res'.*reserve\.m\.serve.*'civ'"):
        sim.Network.from_dict(data)
    data["nodes"]["res"]["reserve"]["m"]["civil"] = True
    sim.Network.from_dict(data)


@pytest.mark.parametrize("serve, first", [(["def_b", "def_a"], "def_b"),
                                          (["def_a", "def_b"], "def_a"),
                                          (["def_b", "defense"], "def_b")])
def test_releases_go_to_the_served_buyers_in_priority_order(serve, first):
    """Both buyers run short at once and each needs more than the rate: every tonne goes to
    the first in the serve list (by id, or the rest by sector after it)."""
    run = run_of(reserve_network(rate=2.0, buyers=("def_a", "def_b"), serve=serve))
    rel = releases(run)
    assert len(rel) == 94 and set(rel["buyer"]) == {first}


def test_served_buyers_come_before_civil_ones():
    """A civil buyer (civil = true) gets what is left after the served ones: with a rate that
    covers the defense buyer's need and more, the civil buyer receives the rest."""
    run = run_of(reserve_network(rate=15.0, cover=5.0, buyers=("civ", "def_a"), civil=True,
                                 lead_time=1.0), horizon=60.0)
    rel = releases(run)
    by_day = rel.groupby([rel["time"], rel["buyer"]])["quantity_t"].sum().unstack(fill_value=0)
    assert (by_day["def_a"] >= by_day["civ"]).all()
    assert by_day["def_a"].iloc[1:].eq(10.0).all()          # a day's demand, after the first
    assert by_day["civ"].iloc[1:].eq(5.0).all()             # the rest of the 15 t


# ---------------------------------------------------------------------------------------------
# Purchases
# ---------------------------------------------------------------------------------------------

def test_build_up_follows_the_rate_to_the_target():
    """From build_start (day 31) one order every 10 days of 365 t/yr x 10 / 365 = 10 t, until
    holding plus orders reach the 100 t target (10 orders); with a 5-day lead time the holding
    at the end of day t is 10 t per order placed on or before day t - 5."""
    data = reserve_network(holding=0.0, target=100.0, build=365.0, supply=True, lead_time=5.0,
                           extra={"build_start": "2025-02-01", "order_every_days": 10,
                                  "funded_price_usd_per_t": 1000.0})
    run = run_of(data, horizon=200.0)
    buys = purchases(run)
    days = [31.0 + 10 * k for k in range(10)]
    assert buys["time"].tolist() == days
    assert np.allclose(buys["quantity_t"], 10.0)
    assert np.allclose(buys["cost_usd"], 10.0 * 1000.0)
    expected = np.array([10.0 * sum(d <= t - 5 for d in days) for t in range(200)])
    assert np.allclose(holding_series(run), expected)
    assert len(releases(run)) == 0


def _interrupted_supply(replenish: bool) -> dict:
    """Ample supply except from day 20 to day 80, when the mine has nothing to ship (its
    stock is used up and its capacity is zero); the reserve starts full (target 300 t)."""
    data = reserve_network(holding=300.0, target=300.0, build=3650.0, rate=20.0, supply=True,
                           replenish=replenish, extra={"order_every_days": 5})
    mine = data["nodes"]["mine"]
    mine["stock"]["m"]["initial"] = 0.0
    mine["production"]["m"] = {"capacity_schedule": [
        {"from": "2025-01-01", "t_per_year": 100000.0},
        {"from": "2025-01-21", "t_per_year": 0.0},
        {"from": "2025-03-22", "t_per_year": 100000.0}], "target_stock": 20.0, "batch_days": 1}
    return data


def test_replenishment_rebuilds_to_the_target_after_releases():
    run = run_of(_interrupted_supply(replenish=True), horizon=365.0)
    rel, buys = releases(run), purchases(run)
    assert rel["quantity_t"].sum() > 50.0
    assert buys["time"].min() >= rel["time"].min()          # nothing bought while full
    assert buys["quantity_t"].sum() == pytest.approx(rel["quantity_t"].sum())
    assert holding_series(run)[-1] == pytest.approx(300.0)
    assert_balanced(run)


def test_without_replenishment_a_full_reserve_buys_nothing():
    run = run_of(_interrupted_supply(replenish=False), horizon=365.0)
    released = releases(run)["quantity_t"].sum()
    assert released > 50.0 and len(purchases(run)) == 0
    assert holding_series(run)[-1] == pytest.approx(300.0 - released)


# ---------------------------------------------------------------------------------------------
# Books, builds and modes
# ---------------------------------------------------------------------------------------------

def test_the_books_balance_on_the_default_network_with_a_reserve():
    """The shipped network with the US stockpile's magnets as a reserve (also for US
    automotive, which runs short), built up from 2026 and replenished, under an escalation:
    every material's balance closes and releases are recorded as shipments."""
    net = sim.with_reserve("rare_earth_2025", "nds_us", "ndfeb_hre_magnet", target_t=300.0,
                           build_rate_t_per_year=200.0, build_start="2026-01-01",
                           release_cover_days=30.0, release_rate_t_per_day=2.0, civil=True,
                           release_to=["us_auto"])
    run = sim.simulate(net, "truce-expires", seed=1)
    assert_balanced(run)
    rel = releases(run)
    assert rel["quantity_t"].sum() > 100.0 and len(purchases(run)) > 0
    assert purchases(run)["date"].min() == datetime.date(2026, 1, 1)
    shipped = sum(float(lane.log[:, 1].sum()) for lane in run.lanes
                  if lane.src == "nds_us" and lane.material == "ndfeb_hre_magnet")
    assert shipped == pytest.approx(rel["quantity_t"].sum())


def test_bulk_and_event_modes_agree_with_a_reserve():
    data = reserve_network(holding=200.0, rate=4.0, buyers=("def_a", "def_b"),
                           lead_time={"dist": "uniform", "min": 1, "max": 4})
    data["nodes"]["def_b"]["demand"]["m"] = {"process": "poisson", "order_size": 2,
                                             "rate_t_per_year": 1500.0}
    bulk = run_of(data, 150.0, seed=3)
    events = run_of(data, 150.0, seed=3, demand_mode="events", production_mode="events")
    assert np.array_equal(bulk.reserves[0]["releases"], events.reserves[0]["releases"])
    for a, b in zip(bulk.demand, events.demand):
        assert np.array_equal(a.filled, b.filled)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def _broken(change) -> dict:
    data = reserve_network()
    change(data)
    return data


@pytest.mark.parametrize("change, where", [
    (lambda d: d["nodes"]["res"].update(kind="processor"),
     r"node 'res': reserve\.m: only a stockpile node holds a reserve"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(target_t=-1),
     r"node 'res': reserve\.m\.target_t: must be >= 0"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(release_rate_t_per_day=0),
     r"node 'res': reserve\.m\.release_rate_t_per_day: must be > 0"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].pop("release_cover_days"),
     r"node 'res': reserve\.m\.release_cover_days: missing"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(build_start="soon"),
     r"node 'res': reserve\.m\.build_start: must be a date"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(civil="yes"),
     r"node 'res': reserve\.m\.civil: must be true or false"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(serve=[]),
     r"node 'res': reserve\.m\.serve: must be a non-empty list"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(serve=["defense", "navy"]),
     r"node 'res': reserve\.m\.serve: 'navy' is neither the sector nor the id"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(release_days=3),
     r"node 'res': reserve\.m: unknown field\(s\) \['release_days'\]"),
    (lambda d: d["nodes"]["res"]["stock"]["m"].update(policy={"type": "sS", "s": 1, "S": 2}),
     r"node 'res': stock\.m\.policy: a reserve buys by its build rule"),
    (lambda d: d["nodes"]["res"]["reserve"]["m"].update(target_t=2000, build_rate_t_per_year=5),
     r"node 'res': reserve\.m\.build_rate_t_per_year: .*no inbound lane"),
    (lambda d: d["nodes"]["res"]["reserve"].update(x={"target_t": 1, "release_cover_days": 1,
                                                      "release_rate_t_per_day": 1}),
     r"node 'res': reserve\.x: unknown material 'x'"),
])
def test_bad_reserves_are_errors_naming_node_and_field(change, where):
    with pytest.raises(sim.ModelError, match=where):
        sim.Network.from_dict(_broken(change))


def test_a_release_lane_to_a_node_without_demand_is_an_error():
    data = reserve_network()
    data["nodes"]["depot"] = {"kind": "stockpile", "country": "US",
                              "stock": {"m": {"initial": 0, "policy": {"type": "base_stock",
                                                                       "S": 1}}}}
    data["lanes"].append({"from": "res", "to": "depot", "material": "m", "lead_time": 1})
    with pytest.raises(sim.NetworkError, match=r"node 'res': reserve\.m: release lane "
                                               r"res->depot:m goes to 'depot', which has no "
                                               r"customer demand"):
        sim.Network.from_dict(data)


def test_a_reserve_round_trips_through_toml(tmp_path):
    net = sim.Network.from_dict(reserve_network(build=100.0, extra={
        "build_start": "2026-01-01", "funded_price_usd_per_t": 150000.0, "source": "test"}))
    path = sim.save_network(net, tmp_path / "reserve.toml")
    again = sim.load_network(path)
    assert again.nodes["res"].reserve == net.nodes["res"].reserve
    assert again.digest() == net.digest()


def test_with_reserve_turns_a_rotating_stock_into_a_reserve():
    base = sim.load_network("rare_earth_2025")
    net = sim.with_reserve(base, "nds_us", "ndfeb_hre_magnet", target_t=1300.0,
                           build_rate_t_per_year=400.0, build_start="2026-01-01",
                           release_cover_days=30.0, release_rate_t_per_day=2.0)
    spec = net.nodes["nds_us"]
    assert spec.reserve["ndfeb_hre_magnet"].target_t == 1300.0
    assert spec.stocks["ndfeb_hre_magnet"].policy.type == "none"
    assert spec.stocks["smco_magnet"] == base.nodes["nds_us"].stocks["smco_magnet"]
    assert base.nodes["nds_us"].reserve == {}                 # the base is unchanged
    with pytest.raises(sim.NetworkError, match=r"node 'mag_jp': reserve\.ndfeb_hre_magnet"):
        sim.with_reserve(base, "mag_jp", "ndfeb_hre_magnet", target_t=1.0,
                         release_cover_days=1.0, release_rate_t_per_day=1.0)
    with pytest.raises(sim.NetworkError, match="no node 'nowhere'"):
        sim.with_reserve(base, "nowhere", "ndfeb_hre_magnet", target_t=1.0,
                         release_cover_days=1.0, release_rate_t_per_day=1.0)


def test_reserve_flows_is_empty_without_a_reserve():
    run = sim.simulate("teaching", seed=1, horizon_days=60)
    flows = run.reserve_flows()
    assert len(flows) == 0 and "quantity_t" in flows.columns
    assert math.isfinite(run.kpi("fill_rate", "network"))


def test_the_readme_stockpile_sweep_varies_what_a_reserve_releases():
    """The README's sweep over the US stockpile's initial holding, on the shipped network with
    that stock as a reserve serving US automotive after defense: US automotive gets more of
    its demand filled with more held (paired replications)."""
    net = sim.with_reserve("rare_earth_2025", "nds_us", "ndfeb_hre_magnet", target_t=1300,
                           release_cover_days=30, release_rate_t_per_day=5.0, civil=True,
                           release_to=["us_auto"])
    grid = sim.sweep(net, "truce-expires", {"nodes.nds_us.initial.ndfeb_hre_magnet": [0, 1000]},
                     reps=2, workers=1, plots=False, progress=False)
    table = grid.table.sort_values(["replication", "point"])
    filled = table["filled_t|node:us_auto"].to_numpy().reshape(2, 2)
    assert (filled[:, 1] > filled[:, 0]).all(), filled


def test_a_saved_run_keeps_the_reserve_flows(tmp_path):
    run = run_of(reserve_network(holding=20.0))
    out = run.save(tmp_path / "run", plots=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "reserve_flows.csv" in manifest["files"]
    saved = pd.read_csv(out / "reserve_flows.csv")
    assert saved["quantity_t"].sum() == pytest.approx(20.0)
    assert set(saved["event"]) == {"release"}


def test_reserve_kpis_add_up_the_flows():
    """The reserve KPIs are the sums of reserve_flows and the holder's final stock, and they
    appear only for networks with a reserve."""
    data = reserve_network(holding=0.0, target=100.0, build=365.0, supply=True, lead_time=5.0,
                           extra={"order_every_days": 10, "funded_price_usd_per_t": 1000.0})
    run = run_of(data, horizon=60.0)
    flows = run.reserve_flows()
    kpis = {kpi: value for kpi, scope, value in run.kpi_rows() if scope == "node:res"}
    bought = flows.loc[flows.event == "purchase", "quantity_t"].sum()
    assert kpis["reserve_purchased_t"] == pytest.approx(bought) and bought == 60.0
    assert kpis["reserve_purchase_cost_usd"] == pytest.approx(bought * 1000.0)
    assert kpis["reserve_released_t"] == 0.0
    assert kpis["reserve_holding_end_t"] == pytest.approx(holding_series(run)[-1])
    plain = sim.simulate("teaching", seed=1, horizon_days=60)
    assert not any(kpi.startswith("reserve_") for kpi, _, _ in plain.kpi_rows())


def test_a_sweep_varies_reserve_fields_by_their_path():
    """``nodes.<id>.reserve.<material>.<field>`` addresses a reserve in a sweep; on the
    hand-computed network each point releases its rate on each of days 6 to 99 (94 steps),
    and an out-of-range value is an error naming the field."""
    net = sim.Network.from_dict(reserve_network(holding=1000.0, rate=1.0, cover=5.0))
    path = "nodes.res.reserve.m.release_rate_t_per_day"
    grid = sim.sweep(net, None, {path: [1.0, 3.0]}, reps=1, workers=1, horizon_days=100,
                     plots=False, progress=False)
    table = grid.table.sort_values("point")
    assert table["reserve_released_t|node:res"].tolist() == pytest.approx([94.0, 282.0])
    with pytest.raises(sim.ModelError, match=r"reserve\.m\.release_rate_t_per_day: must be > 0"):
        sim.sweep(net, None, {path: [0.0]}, reps=1, workers=1, horizon_days=100, plots=False,
                  progress=False)


def test_cli_shows_validates_and_runs_a_network_with_a_reserve(tmp_path, run_cli):
    """End to end: ``network show`` lists the reserve, ``run`` writes its flows (the 20 t
    released a tonne a day), and a bad field is a one-line error naming file, node and field."""
    path = sim.save_network(sim.Network.from_dict(reserve_network(holding=20.0)),
                            tmp_path / "reserve.toml")
    shown = run_cli("network", "show", path)
    assert shown.returncode == 0, shown.stderr
    assert "reserve of m: target 20 t, releases below 5 d of cover, <= 1 t/d" in shown.stdout
    out = tmp_path / "out"
    done = run_cli("run", "--network", path, "--days", 100, "--no-plots", "--out", out)
    assert done.returncode == 0, done.stderr
    flows = pd.read_csv(out / "reserve_flows.csv")
    assert flows["quantity_t"].sum() == pytest.approx(20.0) and len(flows) == 20
    (tmp_path / "bad.toml").write_text(
        path.read_text().replace("release_cover_days = 5.0", "release_cover_days = -3"))
    failed = run_cli("network", "validate", tmp_path / "bad.toml")
    assert failed.returncode == 2
    assert "bad.toml: node 'res': reserve.m.release_cover_days: must be > 0, got -3" in failed.stderr
