"""The calibration scripts: experiments/backtest_2025.py (exports counted once and only across
China's border, first-shortage weeks by hand, end to end) and experiments/calibration_tornado.py
(each assumption changes what it says and nothing else)."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import sim
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def bt():
    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    try:
        yield importlib.import_module("backtest_2025")
    finally:
        sys.path.remove(str(REPO_ROOT / "experiments"))


@pytest.fixture(scope="module")
def tornado(bt):
    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    try:
        yield importlib.import_module("calibration_tornado")
    finally:
        sys.path.remove(str(REPO_ROOT / "experiments"))


def _record(country, sector, T, D, filled):
    return SimpleNamespace(node=f"n_{country}", country=country, sector=sector,
                           T=np.asarray(T, float), D=np.asarray(D, float),
                           filled=np.asarray(filled, float))


def test_first_shortage_weeks_by_hand(bt):
    """Weeks from 4 April 2025 (day 93) to the first order not filled completely, per
    non-Chinese country, the earliest over its automotive streams; orders before the shock,
    Chinese plants and other sectors do not count; none gives NaN."""
    run = SimpleNamespace(demand=[
        _record("DE", "automotive", [50, 100, 114, 121], [1, 1, 1, 1], [0.5, 1, 0.2, 0]),
        _record("DE", "automotive", [107], [2], [1.0]),
        _record("US", "automotive", [100, 200], [1, 1], [1, 1]),
        _record("CN", "automotive", [95], [1], [0]),
        _record("JP", "electronics", [95], [1], [0]),
    ])
    weeks = bt.first_shortage_weeks(run)
    assert weeks["DE"] == pytest.approx((107 - 93) / 7)
    assert np.isnan(weeks["US"])
    assert set(weeks) == {"DE", "US"}


def test_monthly_exports_are_chinas_cross_border_magnet_flows(bt):
    """The monthly totals add up to the magnet tonnes shipped from Chinese nodes to
    non-Chinese nodes over the reported months, and the US part to those into US nodes."""
    net = sim.load_network("rare_earth_2025")
    run = sim.simulate(net, "truce-holds", seed=5, start=bt.START,
                       horizon_days=(bt.END - bt.START).days)
    total, us = bt.monthly_exports(run, net)
    assert len(total) == len(bt.months()) == 15
    country = {n.id: n.country for n in net.nodes.values()}
    want_total = want_us = 0.0
    for lane in run.lanes:
        if lane.material in bt.MAGNETS and country[lane.src] == "CN" \
                and country[lane.dst] != "CN":
            q = float(lane.log[:, 1].sum())
            want_total += q
            want_us += q if country[lane.dst] == "US" else 0.0
    assert total.sum() == pytest.approx(want_total, rel=1e-9)
    assert us.sum() == pytest.approx(want_us, rel=1e-9)
    assert 0 < us.sum() < total.sum()


def test_backtest_end_to_end(bt, tmp_path, capsys):
    """Two replications write the tables and the plot and print the figures and assumptions."""
    assert bt.main(["--reps", "2", "--out", str(tmp_path)]) == 0
    for name in ("monthly_exports.csv", "first_shortage.csv", "summary.csv",
                 "backtest_2025.png"):
        assert (tmp_path / name).stat().st_size > 0
    out = capsys.readouterr().out
    assert "Assumptions these figures depend on" in out and "2026-03" in out


def test_cover_setter_moves_the_band_by_the_usage_of_the_extra_days(tornado):
    """set_cover_days(30) raises s, S and the initial stock of a non-Chinese manufacturer by
    30 days of its usage and leaves Chinese manufacturers alone."""
    net0 = sim.load_network("rare_earth_2025").to_dict()
    net = sim.load_network("rare_earth_2025").to_dict()
    tornado.set_cover_days(net, None, 30)
    before = net0["nodes"]["us_auto"]["stock"]["ndfeb_hre_magnet"]
    after = net["nodes"]["us_auto"]["stock"]["ndfeb_hre_magnet"]
    shift = 2600 * 30 / 365
    assert after["policy"]["s"] == pytest.approx(before["policy"]["s"] + shift)
    assert after["policy"]["S"] == pytest.approx(before["policy"]["S"] + shift)
    assert after["initial"] == pytest.approx(before["initial"] + shift)
    assert net["nodes"]["cn_auto"] == net0["nodes"]["cn_auto"]
    sim.Network.from_dict(net)                  # still a valid network


def test_export_scale_keeps_cover_in_days_and_is_valid(tornado):
    """set_export_scale scales rates, order sizes and (s, S) together, so the network stays
    valid and the cover in days is unchanged."""
    net = sim.load_network("rare_earth_2025").to_dict()
    base = net["nodes"]["eu_auto"]["stock"]["ndfeb_magnet"]["policy"]["s"] / \
        net["nodes"]["eu_auto"]["demand"]["ndfeb_magnet"]["rate_t_per_year"]
    tornado.set_export_scale(net, None, 0.85)
    n = sim.Network.from_dict(net).nodes["eu_auto"]
    assert n.demand["ndfeb_magnet"].rate_t_per_year == pytest.approx(4000 * 0.85)
    assert net["nodes"]["eu_auto"]["stock"]["ndfeb_magnet"]["policy"]["s"] / \
        net["nodes"]["eu_auto"]["demand"]["ndfeb_magnet"]["rate_t_per_year"] == \
        pytest.approx(base)


def test_standard_dy_zero_takes_the_grade_out_of_the_controls(tornado):
    """With 0% Dy the standard grade contains only Nd and Pr again."""
    net = sim.load_network("rare_earth_2025").to_dict()
    tornado.set_standard_dy(net, None, 0.0)
    m = sim.Network.from_dict(net).materials["ndfeb_magnet"]
    assert m.elements == {"Nd", "Pr"}


def test_reapply_switch_sets_the_after_denial_rule_of_every_licensing_control(tornado):
    """set_reapply(0) turns every licensing control to cancel-and-avoid (30 days) and the
    scenario still loads; set_reapply(1) back to re-application."""
    sc = sim.load_scenario("truce-expires").to_dict()
    tornado.set_reapply(None, sc, 0.0)
    licensing = [c for c in sc["controls"].values() if c.get("regime") == "licensing"]
    assert licensing and all(c["on_denial"] == "cancel" and c["avoid_days"] == 30
                             for c in licensing)
    sim.Scenario.from_dict(sc)
    tornado.set_reapply(None, sc, 1.0)
    assert all(c["on_denial"] == "reapply" and "avoid_days" not in c for c in licensing)
    sim.Scenario.from_dict(sc)
