"""Cost-aware sourcing (sim/sourcing.py): shares follow the logit formula on landed costs,
sum to one, move orders when tariffs change, and change nothing when the rule is off."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.engine import Model
from sim.results import Run
from sim.records import REC_ORDER_IN
from sim.scenario import with_sourcing
from sim.sourcing import cost_aware_shares


def two_supplier_dict(price: float = 1000.0) -> dict:
    """A US buyer with base-stock replenishment and Poisson demand, supplied half and half
    (network shares) by ample mines in China and Australia."""
    mine = lambda c: {"kind": "mine", "country": c,  # noqa: E731
                      "production": {"m": {"capacity_t_per_year": 1e12, "target_stock": 0}},
                      "stock": {"m": {"initial": 1e12}}}
    return {
        "network": {"name": "two_suppliers"},
        "materials": {"m": {"elements": ["Nd"], "price_usd_per_t": price}},
        "nodes": {
            "mine_cn": mine("CN"), "mine_au": mine("AU"),
            "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                      "stock": {"m": {"initial": 20, "policy": {"type": "base_stock", "S": 20}}},
                      "demand": {"m": {"process": "poisson", "rate_t_per_year": 365.0}}},
        },
        "lanes": [{"from": "mine_cn", "to": "buyer", "material": "m", "lead_time": 5,
                   "share": 0.5},
                  {"from": "mine_au", "to": "buyer", "material": "m", "lead_time": 5,
                   "share": 0.5}],
    }


def tariff_scenario(rate: float, beta: float | None, *, rule: str = "cost-aware",
                    premiums: dict | None = None) -> dict:
    d = {"scenario": {"name": "tariff", "start": "2025-01-01"},
         "tariffs": [{"origin": "CN", "destination": "US", "rate": rate,
                      "start": "2025-04-11", "end": "2025-08-09"}]}     # days 100 to 220
    if beta is not None or rule != "cost-aware":
        d["sourcing"] = {"rule": rule}
        if beta is not None:
            d["sourcing"]["elasticity"] = beta
        if premiums:
            d["sourcing"]["premiums_usd_per_t"] = premiums
    return d


def order_share(model, run, lane_src: str, t0: float, t1: float) -> float:
    """Share of the buyer's orders placed on *lane_src*'s lane in [t0, t1)."""
    got = {}
    for s in run.stocks:
        if s.node.startswith("mine"):
            log = s.log[(s.log[:, 1] == REC_ORDER_IN) & (s.log[:, 0] >= t0) & (s.log[:, 0] < t1)]
            got[s.node] = float(log[:, 2].sum())
    return got[lane_src] / sum(got.values())


def test_shares_follow_the_logit_formula_while_the_tariff_lasts():
    """Two suppliers at the same price, a 100% tariff on one: its share is
    e^-beta / (1 + e^-beta) while the tariff lasts, the network's 1/2 before and after; every
    order is split so."""
    beta = 1.3
    net = sim.Network.from_dict(two_supplier_dict())
    model = Model(net, sim.Scenario.from_dict(tariff_scenario(1.0, beta)), seed=1,
                  horizon_days=300)
    run = Run.from_recording(model.run())
    expected = math.exp(-beta) / (1 + math.exp(-beta))
    assert order_share(model, run, "mine_cn", 0, 100) == pytest.approx(0.5, rel=1e-12)
    assert order_share(model, run, "mine_cn", 100, 220) == pytest.approx(expected, rel=1e-9)
    assert order_share(model, run, "mine_cn", 220, 300) == pytest.approx(0.5, rel=1e-12)
    shares = [lane.share for lane in model.lanes]
    assert shares == [0.5, 0.5]          # after the tariff ended: the network's shares again


def test_premiums_and_tariffs_enter_the_landed_cost():
    """Landed cost = price x (1 + tariff) + premium: a 500 USD/t premium on Australian supply
    at a price of 1000 USD/t, and a 25% tariff on Chinese supply."""
    beta = 2.0
    net = sim.Network.from_dict(two_supplier_dict(price=1000.0))
    sc = sim.Scenario.from_dict(tariff_scenario(0.25, beta, premiums={"AU": 500.0}))
    model = Model(net, sc, seed=2, horizon_days=300)
    run = Run.from_recording(model.run())
    au_first = math.exp(-beta * 0.5)          # before: CN 1000, AU 1500
    assert order_share(model, run, "mine_au", 0, 100) == pytest.approx(
        au_first / (1 + au_first), rel=1e-9)
    au = math.exp(-beta * (1500 / 1250 - 1))  # during: CN 1250 (cheapest), AU 1500
    assert order_share(model, run, "mine_au", 100, 220) == pytest.approx(au / (1 + au), rel=1e-9)


@pytest.mark.parametrize("beta", [0.0, 0.5, 3.0])
def test_shares_sum_to_one_and_fall_with_cost(beta):
    base = [0.5, 0.3, 0.2]
    landed = [2.0, 1.0, 1.5]
    s = cost_aware_shares(base, landed, beta)
    assert math.fsum(s) == pytest.approx(1.0, abs=1e-15)
    expect = [b * math.exp(-beta * (c / 1.0 - 1)) for b, c in zip(base, landed)]
    np.testing.assert_allclose(s, np.array(expect) / sum(expect), rtol=1e-14)
    if beta > 0:     # a dearer lane loses share against its base share
        assert s[0] / s[1] < base[0] / base[1]
    assert cost_aware_shares([1.0, 3.0], [0.0, 0.0], 1.0) == [0.25, 0.75]


def test_the_default_networks_buyers_shares_sum_to_one_under_tariffs():
    sc = with_sourcing("truce-holds")
    model = Model(sim.load_network("rare_earth_2025"), sc, seed=0, horizon_days=120)
    model._loop(110.0)            # inside the April-May escalation (days 99-133)
    rule = model.policy.sourcing
    assert rule is not None and rule.buyers
    moved = 0
    for st in rule.buyers:
        total = math.fsum(lane.share for lane in st.lanes_in)
        assert total == pytest.approx(1.0, abs=1e-12)
        moved += any(abs(lane.share - lane.spec.share) > 0.01 for lane in st.lanes_in)
    assert moved >= 3


def digest_arrays(run) -> list:
    return ([l.log.tobytes() for l in run.lanes] + [s.log.tobytes() for s in run.stocks]
            + [repr(run.kpi_rows())])


def test_no_effect_when_the_rule_is_off():
    """A [sourcing] section with the fixed rule gives the same bits as no section."""
    plain = sim.load_scenario("controls-apr-2025")
    fixed = with_sourcing(plain, {"rule": "fixed"})
    assert fixed.digest() != plain.digest()
    a = sim.simulate("rare_earth_2025", plain, seed=4, horizon_days=400)
    b = sim.simulate("rare_earth_2025", fixed, seed=4, horizon_days=400)
    assert digest_arrays(a) == digest_arrays(b)


def test_the_april_2025_escalation_moves_us_flows():
    """Under the shipped truce-holds scenario, with the layer switched on, China's exports to
    the US shipped on orders of the escalation (the 125% reciprocal tariff on top of the 20%
    fentanyl tariff, until Geneva; counted April-July 2025) fall and Japan's rise, against the
    same replications without it."""
    on = with_sourcing("truce-holds")
    # orders moved while the tariff is in force (10 Apr - 14 May) cross the border after their
    # licence review (30-90 days) and consignment testing (7-30 days): count them to July
    months = ["2025-04", "2025-05", "2025-06", "2025-07"]
    totals = {"off": {}, "on": {}}
    for rep in range(3):
        for tag, sc in (("off", "truce-holds"), ("on", on)):
            run = sim.simulate("rare_earth_2025", sc, seed=7, replication=rep,
                               horizon_days=240)
            tf = run.trade_flows()
            us = tf[(tf["importer"] == "US") & tf["period"].isin(months)]
            for exp, t in us.groupby("exporter")["tonnes"].sum().items():
                totals[tag][exp] = totals[tag].get(exp, 0.0) + t
    assert totals["on"]["CN"] < 0.9 * totals["off"]["CN"]
    assert totals["on"]["JP"] > 1.2 * totals["off"]["JP"]


@pytest.mark.parametrize("section, field", [
    ({"rule": "cheapest"}, "rule"),
    ({"rule": "cost-aware"}, "elasticity"),
    ({"rule": "cost-aware", "elasticity": -1}, "elasticity"),
    ({"rule": "cost-aware", "elasticity": 1, "importers": ["USA"]}, "importers"),
    ({"rule": "cost-aware", "elasticity": 1, "premiums_usd_per_t": {"JP": -5}},
     "premiums_usd_per_t"),
    ({"rule": "cost-aware", "elasticity": 1, "beta": 2}, None),
])
def test_bad_sourcing_sections_name_the_field(section, field):
    with pytest.raises(sim.ModelError) as exc:
        sim.Scenario.from_dict({"scenario": {"name": "x"}, "sourcing": section})
    msg = str(exc.value)
    assert "sourcing" in msg
    if field:
        assert field in msg
    assert "\n" not in msg


def test_the_shipped_layer_carries_its_source():
    sc = with_sourcing("baseline")
    assert sc.name == "baseline+cost-aware-sourcing"
    assert sc.sourcing.active and sc.sourcing.elasticity > 0
    assert "assumption" in sc.sourcing.source
    with pytest.raises(sim.ModelError, match="unknown layer"):
        with_sourcing("baseline", "no-such-layer")


def test_a_sweep_can_vary_the_elasticity():
    """``sourcing.elasticity`` is a sweep parameter (for sensitivity studies); a value out of
    range fails naming the path."""
    from sim.sweep import apply_params
    net = sim.load_network("rare_earth_2025")
    base = with_sourcing("truce-holds")
    _, sc = apply_params(net, base, {"sourcing.elasticity": 2.25})
    assert sc.sourcing.elasticity == 2.25 and sc.sourcing.rule == "cost-aware"
    with pytest.raises(sim.ModelError, match="sourcing.elasticity"):
        apply_params(net, base, {"sourcing.elasticity": -1.0})


def test_the_experiment_script_runs(tmp_path, repo_root):
    """experiments/tariff_sourcing.py --quick writes its table: a row per exporter and month
    of 2025, China's April imports lower with the layer."""
    import pandas as pd
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(repo_root / "experiments" / "tariff_sourcing.py"),
                           "--quick", "--workers", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(tmp_path / "us_magnet_imports.csv")
    assert len(table) == 2 * 12
    april = table[(table["exporter"] == "CN") & (table["month"] == "2025-04")]
    assert float(april["difference_t"].iloc[0]) < 0
