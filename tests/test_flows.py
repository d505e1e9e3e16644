"""Customs-style outputs (sim/flows.py): trade flows add up to the cross-border lanes' flows,
no material is lost between a supplier and the border, periods add up to totals, and capacity
utilisation is what a hand computation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim import flows

KEYS = ["exporter", "importer", "material", "period"]


@pytest.fixture(scope="module")
def licensed_run():
    """The default network under the April 2025 licensing regime with per-shipment review and
    returns on denial (reviews, denials, returns)."""
    sc = sim.load_scenario("controls-apr-2025")
    apr = sc.raw["controls"]["apr_2025"]
    raw = dict(sc.raw)
    raw["controls"] = {**sc.raw["controls"], "apr_2025": {
        **{k: v for k, v in apr.items() if k not in ("changes", "licence_scope", "licence_validity_days", "reapply_days")},
        "on_denial": "cancel"}}
    return sim.simulate("rare_earth_2025", sim.Scenario.from_dict(raw), seed=5, horizon_days=500)


def test_trade_flows_are_the_cross_border_lane_flows(licensed_run):
    run = licensed_run
    trade = run.trade_flows()
    lanes = run.lane_flows()
    cross = lanes[lanes["cross_border"]]
    by_lane = cross.groupby(KEYS)[["dispatched_t", "value_usd", "duty_usd"]].sum()
    by_trade = trade.set_index(KEYS)[["tonnes", "value_usd", "duty_usd"]]
    by_trade.columns = ["dispatched_t", "value_usd", "duty_usd"]
    by_lane.columns = [c + "_lanes" for c in by_lane.columns]
    joined = by_trade.join(by_lane, how="outer")
    assert not joined.isna().any().any()            # the same groups and periods
    for col in ("dispatched_t", "value_usd", "duty_usd"):
        np.testing.assert_allclose(joined[col], joined[col + "_lanes"], rtol=1e-12, atol=1e-9)
    # domestic lanes are not trade; cross-border ones all are
    country = {s.node: s.country for s in run.stocks}
    cross_total = sum(float(l.log[:, 1].sum()) for l in run.lanes
                      if country[l.src] != country[l.dst])
    domestic = sum(float(l.log[:, 1].sum()) for l in run.lanes
                   if country[l.src] == country[l.dst])
    assert domestic > 0
    assert trade["tonnes"].sum() == pytest.approx(cross_total, rel=1e-12)
    assert ((trade["exporter"] != trade["importer"]).all())
    assert (trade["tonnes"] >= 0).all() and (trade["shipments"] >= 0).all()
    # a group's value is its tonnes at the material's price
    price = {l.material: l.price for l in run.lanes}
    np.testing.assert_allclose(trade["value_usd"], trade["tonnes"] * trade["material"].map(price),
                               rtol=1e-12)


def test_goods_cross_when_released_not_when_they_leave(licensed_run):
    """Under licensing a shipment is dispatched (crosses the border) after its review: the
    dispatch time is never before the time it left the supplier, and later for reviewed ones."""
    logs = [l.log for l in licensed_run.lanes if len(l.log)]
    log = np.concatenate(logs)
    assert log.shape[1] == 5
    assert (log[:, 4] >= log[:, 0]).all()
    assert (log[:, 4] > log[:, 0] + 1.0).sum() > 10
    assert (log[:, 2] >= log[:, 4]).all()           # arrival after dispatch


def test_no_material_is_lost_before_the_border(licensed_run):
    """What left each supplier = what was dispatched + what is still before the border
    (under review at the end) + what was returned (denied)."""
    bal = flows.border_balance(licensed_run)
    scale = bal["shipped_t"].abs().max()
    assert np.abs(bal["residual"]).max() <= 1e-9 * scale
    assert bal["returned_t"].sum() > 0              # denials happened: the test has teeth
    assert bal["before_border_t"].sum() > 0
    assert (bal["before_border_t"] >= -1e-6).all()


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_periods_add_up_to_the_totals(licensed_run, period):
    run = licensed_run
    trade = run.trade_flows(period)
    monthly = run.trade_flows("month")
    assert trade["tonnes"].sum() == pytest.approx(monthly["tonnes"].sum(), rel=1e-12)
    per_group = trade.groupby(["exporter", "importer", "material"])["tonnes"].sum()
    per_group_m = monthly.groupby(["exporter", "importer", "material"])["tonnes"].sum()
    np.testing.assert_allclose(per_group, per_group_m.loc[per_group.index], rtol=1e-12,
                               atol=1e-9)
    # every period has a row per group; its days cover the run once
    groups = flows.trade_groups(run)
    n_periods = trade["period"].nunique()
    assert len(trade) == len(groups) * n_periods
    one = trade.drop_duplicates("period")
    assert one["days"].sum() == run.ndays
    lanes = run.lane_flows(period)
    totals = {l.id: float(l.log[:, 1].sum()) for l in run.lanes}
    got = lanes.groupby("lane")["dispatched_t"].sum()
    np.testing.assert_allclose(got.loc[list(totals)], list(totals.values()), rtol=1e-12,
                               atol=1e-9)


def test_monthly_periods_are_calendar_months():
    run = sim.simulate("teaching", seed=1, start="2025-01-15", horizon_days=60)
    trade = run.trade_flows()
    one = trade.drop_duplicates("period")
    assert list(one["period"]) == ["2025-01", "2025-02", "2025-03"]
    assert list(one["days"]) == [17, 28, 15]
    assert str(one["period_start"].iloc[0].date()) == "2025-01-15"
    with pytest.raises(sim.ModelError, match="period"):
        run.trade_flows("fortnight")


def test_arrivals_follow_dispatches(licensed_run):
    lanes = licensed_run.lane_flows()
    arrived = lanes.groupby("lane")["arrived_t"].sum()
    dispatched = lanes.groupby("lane")["dispatched_t"].sum()
    assert (arrived <= dispatched + 1e-9).all()
    # what was dispatched and has not arrived is in transit at the end
    after = {l.id: float(l.log[l.log[:, 2] >= licensed_run.horizon, 1].sum())
             for l in licensed_run.lanes}
    np.testing.assert_allclose(dispatched - arrived, pd.Series(after).loc[dispatched.index],
                               atol=1e-6)


def test_tables_are_deterministic():
    a = sim.simulate("rare_earth_2025", "controls-apr-2025", seed=11, horizon_days=200)
    b = sim.simulate("rare_earth_2025", "controls-apr-2025", seed=11, horizon_days=200)
    pd.testing.assert_frame_equal(a.trade_flows(), b.trade_flows())
    pd.testing.assert_frame_equal(a.lane_flows("week"), b.lane_flows("week"))
    pd.testing.assert_frame_equal(a.capacity_utilisation(), b.capacity_utilisation())


def one_line_dict() -> dict:
    """One mine, 365 t/yr stepping to 730 t/yr on 1 March 2025, 10-day batches, a target it
    never reaches (so it always runs when it can)."""
    return {
        "network": {"name": "one_line"},
        "materials": {"m": {"elements": ["Nd"], "price_usd_per_t": 1.0}},
        "nodes": {"mine": {"kind": "mine", "country": "AU", "production": {"m": {
            "capacity_schedule": [{"from": "2025-01-01", "t_per_year": 365},
                                  {"from": "2025-03-01", "t_per_year": 730}],
            "batch_days": 10, "target_stock": 1e9}}}},
        "lanes": [],
    }


def test_utilisation_on_one_line_matches_hand_computation():
    """Batches of 10 days from day 0 at 1 t/day; on day 59 (1 March) capacity doubles, and the
    batch under way (days 50-60) finishes at 1 t/day; an outage from day 99 (10 April) to
    day 119 stops the line after the batch of days 90-100 (which runs on at 2 t/day)."""
    net = sim.Network.from_dict(one_line_dict())
    sc = sim.Scenario.from_dict({"scenario": {"name": "outage"}, "outages": [
        {"node": "mine", "start": "2025-04-10", "duration_days": 20}]})
    run = sim.simulate(net, sc, seed=0, start="2025-01-01", horizon_days=181)
    u = run.capacity_utilisation().set_index("period")
    # Jan 31 d at 1 t/d; Feb 28 d; Mar: day 59 at 1 t/d (capacity 2), then 30 d at 2 t/d;
    # Apr: 9 d at 2 t/d, day 99 the running batch (capacity 0, effective 2), 19 d down,
    # day 119 at 2 t/d; May 31 d and June 30 d at 2 t/d
    np.testing.assert_allclose(u["produced_t"], [31, 28, 61, 22, 62, 60])
    np.testing.assert_allclose(u["capacity_t"], [31, 28, 62, 20, 62, 60])
    np.testing.assert_allclose(u["effective_capacity_t"], [31, 28, 62, 22, 62, 60])
    np.testing.assert_allclose(u["down_days"], [0, 0, 0, 20, 0, 0])
    np.testing.assert_allclose(u["utilisation"], [1, 1, 61 / 62, 1, 1, 1])


def test_utilisation_lies_in_unit_interval_on_the_default_network():
    sc = sim.Scenario.from_dict({"scenario": {"name": "random outages"}, "outages": [
        {"node": n, "mtbf_days": 120, "mttr_days": 20} for n in ("sep_cn", "mag_cn", "mag_jp")]})
    run = sim.simulate("rare_earth_2025", sc, seed=2, horizon_days=730)
    u = run.capacity_utilisation()
    assert len(u) == len(run.production) * u["period"].nunique()
    ok = u["utilisation"].dropna()
    assert ((ok >= 0) & (ok <= 1)).all()
    # (the table clips rounding only: the unclipped ratio is within rounding of 1)
    assert (u["produced_t"] <= u["effective_capacity_t"] * (1 + 1e-12) + 1e-9).all()
    assert (u["effective_capacity_t"] >= u["capacity_t"] - 1e-9).all()
    assert u["down_days"].sum() > 0
    # the lines' output over the run is what their batches made, pro rata to the end
    for (node, mat, plog, _), (_, rows) in zip(run.production,
                                               u.groupby(["node", "material"], sort=False)):
        s, q, e = plog[:, 0], plog[:, 1], plog[:, 2]
        done = q * np.clip((run.horizon - s) / (e - s), 0, 1)
        assert rows["produced_t"].sum() == pytest.approx(done.sum(), rel=1e-9, abs=1e-9)


def test_save_writes_the_tables(tmp_path):
    run = sim.simulate("teaching", seed=1, horizon_days=120)
    run.save(tmp_path, plots=False)
    for name in ("trade_flows", "lane_flows", "capacity_utilisation"):
        df = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(df) > 0
    assert "trade_flows.csv" in (tmp_path / "manifest.json").read_text()


# -- Monte Carlo ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mc_flows():
    from sim.experiment import monte_carlo
    return monte_carlo("rare_earth_2025", "controls-apr-2025", reps=5, seed=3, workers=1,
                       horizon_days=200, trade_flows=True)


def test_monte_carlo_trade_flows_are_the_runs_trade_flows(mc_flows):
    """The bands' mean is the mean over replications of each run's own trade flows, and its
    quantiles and CI bracket it."""
    bands = mc_flows.trade_flows()
    runs = [sim.simulate("rare_earth_2025", "controls-apr-2025", seed=3, replication=i,
                         horizon_days=200).trade_flows() for i in range(5)]
    expect = np.mean([r["tonnes"].to_numpy() for r in runs], axis=0)
    assert list(bands["period"]) == list(runs[0]["period"])
    assert list(bands["exporter"]) == list(runs[0]["exporter"])
    assert list(bands["material"]) == list(runs[0]["material"])
    np.testing.assert_allclose(bands["mean"], expect, rtol=1e-6, atol=1e-6)   # float32 kept
    assert (bands["n"] == 5).all()
    lo = np.min([r["tonnes"].to_numpy() for r in runs], axis=0)
    hi = np.max([r["tonnes"].to_numpy() for r in runs], axis=0)
    tol = 1e-4 * (1 + hi)
    assert (bands["mean"] >= lo - tol).all() and (bands["mean"] <= hi + tol).all()
    assert (bands["ci95_low"] <= bands["mean"] + 1e-9).all()
    assert (bands["ci95_high"] >= bands["mean"] - 1e-9).all()
    assert (bands["q05"] <= bands["q50"] + 1e-9).all()
    assert (bands["q50"] <= bands["q95"] + 1e-9).all()
    assert (bands["q05"] >= lo - tol).all() and (bands["q95"] <= hi + tol).all()
    assert bands["mean"].sum() > 0


def test_monte_carlo_trade_flows_do_not_depend_on_workers(mc_flows, tmp_path):
    from sim.experiment import MonteCarloResults, monte_carlo
    two = monte_carlo("rare_earth_2025", "controls-apr-2025", reps=5, seed=3, workers=2,
                      chunk_size=2, horizon_days=200, trade_flows=True)
    assert two.trade["groups"] == mc_flows.trade["groups"]
    assert two.trade["tonnes"].tobytes() == mc_flows.trade["tonnes"].tobytes()
    mc_flows.save(tmp_path, plots=False)
    back = MonteCarloResults.load(tmp_path)
    assert back.trade["tonnes"].tobytes() == mc_flows.trade["tonnes"].tobytes()
    pd.testing.assert_frame_equal(back.trade_flows(), mc_flows.trade_flows())


def test_monte_carlo_keeps_no_trade_flows_unless_asked():
    from sim.experiment import monte_carlo
    res = monte_carlo("teaching", reps=2, workers=1, horizon_days=60)
    assert res.trade is None
    with pytest.raises(sim.ModelError, match="trade_flows=True"):
        res.trade_flows()


def test_cli_run_writes_the_tables_of_the_run(tmp_path, run_cli):
    """``python -m sim run`` writes trade_flows.csv, lane_flows.csv and
    capacity_utilisation.csv, the same numbers as the run in process."""
    out = tmp_path / "run"
    proc = run_cli("run", "--scenario", "controls-apr-2025", "--days", "200", "--no-plots",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    run = sim.simulate("rare_earth_2025", "controls-apr-2025", seed=0, horizon_days=200)
    trade = pd.read_csv(out / "trade_flows.csv")
    np.testing.assert_allclose(trade["tonnes"], run.trade_flows()["tonnes"], rtol=1e-12)
    assert list(trade.columns) == list(run.trade_flows().columns)
    lanes = pd.read_csv(out / "lane_flows.csv")
    np.testing.assert_allclose(lanes["dispatched_t"], run.lane_flows()["dispatched_t"],
                               rtol=1e-12)
    util = pd.read_csv(out / "capacity_utilisation.csv")
    assert len(util) == len(run.capacity_utilisation())


def test_monte_carlo_bands_of_summed_flows_are_bands_of_the_sums(mc_flows):
    """Selecting and adding flows happens per replication before the statistics: China's
    total magnet exports, by exporter, have the quantiles of the per-replication sums."""
    magnets = ["ndfeb_magnet", "ndfeb_hre_magnet", "smco_magnet"]
    got = mc_flows.trade_flows(by=("exporter",), exporters=["CN"], materials=magnets)
    assert list(got.columns[:4]) == ["period", "period_start", "days", "exporter"]
    assert set(got["exporter"]) == {"CN"}
    g = mc_flows.trade["groups"]
    rows = [i for i, (e, _, m) in enumerate(g) if e == "CN" and m in magnets]
    sums = mc_flows.trade["tonnes"].astype(float)[:, rows, :].sum(axis=1)   # reps x months
    np.testing.assert_allclose(got["mean"], sums.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(got["q95"], np.quantile(sums, 0.95, axis=0), rtol=1e-9)
    assert got["mean"].sum() > 0
    full = mc_flows.trade_flows()
    one = full[(full["exporter"] == "CN") & full["material"].isin(magnets)]
    np.testing.assert_allclose(got["mean"].sum(), one["mean"].sum(), rtol=1e-9)
    with pytest.raises(sim.ModelError, match="by"):
        mc_flows.trade_flows(by=("country",))
