"""Resilience metrics (sim.resilience): the triangle metrics against hand computations, TTS and
TTR on a network whose answer is known in closed form, the stability of the ranking, the
results' tables, the ``stress`` command end to end, and its figures."""

from __future__ import annotations

import datetime as dt
import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import sim
from sim.resilience import (STRESS_KPIS, StressResults, default_disruptions,
                            disrupted_scenario, longest_run_below, parse_targets, prob_below,
                            stress_test, triangle, triangles, wilson)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PRICE = 1000.0       # USD per tonne of the hand network's material


# ---------------------------------------------------------------------------------------------
# Resilience triangle
# ---------------------------------------------------------------------------------------------

def test_triangle_by_hand_daily():
    """Q = 1, 1, .5, .2, .6, 1, 1, 1, 1 with the disruption on day 2, threshold .95, dwell 3
    days: trough .2 one day after the disruption; back at full from day 5 for 3 days, so
    recovery 3 days after; loss = .5 + .8 + .4 = 1.7 days; resilience = mean of days 2..8."""
    q = [1, 1, .5, .2, .6, 1, 1, 1, 1]
    t = triangle(q, start=2, threshold=0.95, dwell_days=3)
    assert t.trough == pytest.approx(0.2)
    assert t.trough_depth == pytest.approx(0.8)
    assert t.time_to_trough_days == 1
    assert t.time_to_recover_days == 3 and t.recovered
    assert t.loss_area_days == pytest.approx(1.7)
    assert t.normalised_resilience == pytest.approx(5.3 / 7)


def test_triangle_weekly_dates_and_baseline():
    """The same shape on weekly dates, in tonnes against a baseline of 50 t/week: every
    duration is seven times longer; the dwell window needs whole weeks observed."""
    dates = np.datetime64("2026-01-05") + 7 * np.arange(9).astype("timedelta64[D]")
    q = 50 * np.array([1, 1, .5, .2, .6, 1, 1, 1, 1])
    t = triangle(q, dates, start="2026-01-19", baseline=50, threshold=0.95, dwell_days=21)
    assert t.time_to_trough_days == 7
    assert t.time_to_recover_days == 21
    assert t.loss_area_days == pytest.approx(7 * 1.7)
    assert t.normalised_resilience == pytest.approx(5.3 / 7)


def test_triangle_dwell_interrupted_and_not_recovered():
    """A recovery interrupted inside the dwell window does not count; one whose window runs
    past the series is not observed (inf, loss to the end); no dip at all is 0."""
    q = [1, .2, 1, 1, .5, 1, 1, 1, 1]
    assert triangle(q, start=1, dwell_days=3).time_to_recover_days == 4   # from day 5
    short = triangle([1, .2, 1, 1], start=1, dwell_days=3)
    assert math.isinf(short.time_to_recover_days) and not short.recovered
    assert short.loss_area_days == pytest.approx(0.8)
    flat = triangle([1, .99, 1], start=0)
    assert flat.time_to_recover_days == 0 and flat.loss_area_days == 0


def test_triangle_bad_input_names_the_field():
    """NaN, an empty series, dates that go back, a threshold out of range: ModelError."""
    with pytest.raises(sim.ModelError, match="values: holds NaN"):
        triangle([1, np.nan])
    with pytest.raises(sim.ModelError, match="values"):
        triangle([])
    with pytest.raises(sim.ModelError, match="dates: must be strictly increasing"):
        triangle([1, 1], ["2026-01-02", "2026-01-01"])
    with pytest.raises(sim.ModelError, match="threshold"):
        triangle([1, 1], threshold=1.5)


def test_triangles_over_replications():
    """One row of metrics per replication, each as triangle() of its row."""
    arr = np.array([[1, 1, .5, .2, .6, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1]])
    df = triangles(arr, start=2, dwell_days=3)
    assert list(df.index) == [0, 1]
    assert df.loc[0, "loss_area_days"] == pytest.approx(1.7)
    assert df.loc[1, "time_to_recover_days"] == 0 and df.loc[1, "trough_depth"] == 0


def test_longest_run_and_prob_below_by_hand():
    """Runs below 0.9: replication 1 has 3 days in a row, replication 2 two separate days,
    replication 3 none; P(more than 2 days) = 1/3 with its Wilson interval."""
    arr = np.array([[1, .5, .5, .5, 1], [.5, 1, .5, 1, 1], [1, 1, 1, 1, 1]])
    assert [longest_run_below(r, 0.9) for r in arr] == [3, 1, 0]
    p, lo, hi = prob_below(arr, 0.9, 2)
    assert (p, lo, hi) == pytest.approx(wilson(1, 3))
    assert p == pytest.approx(1 / 3)
    # weekly samples: one week below is 7 days
    dates = np.datetime64("2026-01-05") + 7 * np.arange(5).astype("timedelta64[D]")
    assert longest_run_below(arr[0], 0.9, dates) == 21


def test_wilson_interval_known_values():
    """0 of 10: the interval is [0, z^2 / (n + z^2)]; 5 of 10 is symmetric about 1/2."""
    z2 = 1.959963984540054 ** 2
    p, lo, hi = wilson(0, 10)
    assert (p, lo) == (0, 0) and hi == pytest.approx(z2 / (10 + z2))
    p, lo, hi = wilson(5, 10)
    assert lo == pytest.approx(1 - hi)
    with pytest.raises(sim.ModelError, match="n"):
        wilson(0, 0)


# ---------------------------------------------------------------------------------------------
# TTS / TTR on a hand-computable network
# ---------------------------------------------------------------------------------------------

def hand_network(S: float, L: float) -> sim.Network:
    """One supplier with ample stock, one customer with 1 t of demand every day, order-up-to
    S (a one-for-one policy: it reorders each day's tonne), fixed lead time L < S.

    At the disruption the customer holds S - L on hand and L in transit: S days of demand.
    Demand first goes unmet S days in; the lane reopens after D days and the order placed
    then lands L days later, clearing the backlog: D + L - S tonnes are unmet (S < D + L), and
    the daily fill rate is back to 1 from day D + L on (with a trailing window of w days,
    from day D + L + w - 1)."""
    return sim.Network.from_dict({
        "network": {"name": "hand", "description": "one supplier, one customer"},
        "materials": {"w": {"elements": ["Nd"], "price_usd_per_t": PRICE}},
        "nodes": {
            "sup": {"kind": "mine", "country": "AU",
                    "production": {"w": {"capacity_t_per_year": 3650, "batch_days": 1,
                                         "target_stock": 500}},
                    "stock": {"w": {"initial": 500}}},
            "cust": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                     "stock": {"w": {"initial": S, "policy": {"type": "base_stock", "S": S}}},
                     "demand": {"w": {"rate_t_per_year": 365.0, "process": "periodic",
                                      "period_days": 1}}}},
        "lanes": [{"from": "sup", "to": "cust", "material": "w",
                   "lead_time": {"dist": "fixed", "value": L}}]})


@pytest.mark.parametrize("S,L,D,window", [(20, 5, 30, 1), (20, 5, 30, 7), (12, 3, 50, 1)])
def test_tts_ttr_match_hand_computation(S, L, D, window):
    """TTS = S, TTR = D + L + window - 1, unmet = D + L - S tonnes (value at the price), in
    every replication, for the supplier, its country and its lanes alike."""
    res = stress_test(hand_network(S, L), None, start="2025-04-11", duration_days=D, reps=2,
                      workers=1, window_days=window, dwell_days=7, after_days=100,
                      targets=["node:sup", "country:AU", "lanes:AU/w"])
    df = res.per_rep
    assert set(df["disruption"]) == {"node:sup", "country:AU", "lanes:AU/w"}
    assert set(df["scope"]) == {"network", "sector:automotive"}
    assert (df["tts_days"] == S).all()
    assert (df["ttr_days"] == D + L + window - 1).all()
    assert (df["tts_lt_ttr"] == 1).all()
    assert np.allclose(df["excess_unmet_t"], D + L - S)
    assert np.allclose(df["excess_unmet_usd"], (D + L - S) * PRICE)
    assert np.allclose(df["time_to_trough_days"], S + window - 1)
    horizon_after = D + 100
    if window == 1:     # each unmet day is a day of total loss
        assert np.allclose(df["days_below"], D + L - S)
        p = res.prob_below(D + L - S - 1, "sector:automotive")
        assert (p["p"] == 1).all() and (res.prob_below(D + L - S)["p"] == 0).all()
        assert np.allclose(df["loss_area_days"], D + L - S)
        assert np.allclose(df["normalised_resilience"], 1 - (D + L - S) / horizon_after)


def test_stock_that_bridges_the_outage_survives():
    """S >= D + L: the customer's stock and pipeline outlast the outage: demand is never
    unmet (TTS inf), nothing to recover (TTR 0), P(TTS < TTR) = 0."""
    res = stress_test(hand_network(40, 5), None, start="2025-04-11", duration_days=30, reps=2,
                      workers=1, dwell_days=7, after_days=60, targets="node:sup")
    df = res.per_rep
    assert np.isinf(df["tts_days"]).all()
    assert (df["ttr_days"] == 0).all() and (df["excess_unmet_t"] == 0).all()
    row = res.summary().query("kpi == 'tts_lt_ttr' and scope == 'network'").iloc[0]
    assert row["mean"] == 0 and row["ci95_low"] == 0 and 0 < row["ci95_high"] < 1
    tts = res.summary().query("kpi == 'tts_days' and scope == 'network'").iloc[0]
    assert tts["share_censored"] == 1 and np.isinf(tts["q50"])


# ---------------------------------------------------------------------------------------------
# Ranking, determinism, targets
# ---------------------------------------------------------------------------------------------

RATE = 730.0    # t/yr of the three-supplier network


def three_suppliers() -> sim.Network:
    """A buyer served by three suppliers with shares .6/.3/.1, each with capacity 10% above
    its share of demand: losing the big one cuts supply by about half, the small one not at
    all (the others' spare capacity covers it)."""
    def sup(share, country):
        return {"kind": "mine", "country": country,
                "production": {"m": {"capacity_t_per_year": RATE * share * 1.1, "batch_days": 7,
                                     "target_stock": 20}},
                "stock": {"m": {"initial": 20}}}
    return sim.Network.from_dict({
        "network": {"name": "three_suppliers"},
        "materials": {"m": {"elements": ["Nd"], "price_usd_per_t": 1000.0}},
        "nodes": {"big": sup(0.6, "AU"), "mid": sup(0.3, "CA"), "small": sup(0.1, "JP"),
                  "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                            "stock": {"m": {"initial": 60,
                                            "policy": {"type": "base_stock", "S": 60}}},
                            "demand": {"m": {"process": "poisson", "rate_t_per_year": RATE,
                                             "order_size": 2}}}},
        "lanes": [{"from": s, "to": "buyer", "material": "m", "share": sh,
                   "lead_time": {"dist": "triangular", "min": 5, "mode": 10, "max": 20}}
                  for s, sh in (("big", 0.6), ("mid", 0.3), ("small", 0.1))]})


def test_ranking_is_stable_under_reseeding():
    """The critical supplier ranks first (index 1) under two different seeds, the others far
    behind, in the same order."""
    net = three_suppliers()
    ranks = []
    for seed in (1, 2):
        r = stress_test(net, None, start="2025-06-01", duration_days=120, reps=6, seed=seed,
                        workers=1, targets="nodes", after_days=200).ranking()
        ranks.append(list(r["disruption"]))
        assert r["risk_exposure_index"].iloc[0] == 1
        assert r["risk_exposure_index"].iloc[1] < 0.6
        assert r["impact_usd_ci95_low"].iloc[0] > r["impact_usd_ci95_high"].iloc[1]
    assert ranks[0] == ranks[1] == ["node:big", "node:mid", "node:small"]


def test_same_numbers_whatever_the_number_of_workers():
    """One worker (in process) and two worker processes give identical tables."""
    kw = dict(start="2025-06-01", duration_days=60, reps=3, seed=7, targets=["node:big", "node:mid"],
              after_days=60)
    a = stress_test(three_suppliers(), None, workers=1, **kw).per_rep
    b = stress_test(three_suppliers(), None, workers=2, **kw).per_rep
    pd.testing.assert_frame_equal(a, b)


def test_default_targets_of_the_teaching_network(teaching):
    """Every supply node, every country with one, every cross-border (exporter, material)
    lane group; a country's disruption holds all its supply nodes' lanes."""
    keys = [d.key for d in default_disruptions(teaching)]
    assert keys[:6] == ["node:magnets_jp", "node:mine_au", "node:mine_cn", "node:nds_us",
                        "node:sep_cn", "node:sep_my"]
    assert {"country:CN", "country:JP", "country:US", "lanes:CN/dytb_oxide",
            "lanes:JP/ndfeb_magnet", "lanes:AU/concentrate"} <= set(keys)
    assert "lanes:CN/concentrate" not in keys          # mine_cn -> sep_cn stays in China
    cn = next(d for d in default_disruptions(teaching) if d.key == "country:CN")
    assert set(cn.nodes) == {"mine_cn", "sep_cn"}
    assert "mine_cn->sep_cn:concentrate" in cn.lanes
    stock = next(d for d in default_disruptions(teaching) if d.key == "node:nds_us")
    assert stock.nodes == () and stock.lanes == ("nds_us->defense_us:ndfeb_magnet",)


@pytest.mark.parametrize("target,message", [
    ("node:nowhere", "targets: node 'nowhere' is not in network 'teaching'"),
    ("node:auto_us", "supplies no one"),
    ("country:FR", "country 'FR' has no supply node"),
    ("lanes:CN/ndfeb_magnet", "no cross-border lanes 'CN/ndfeb_magnet'"),
    ("everything", "unknown target 'everything'"),
])
def test_bad_targets_are_named(teaching, target, message):
    """A target that does not exist is a ModelError naming it."""
    with pytest.raises(sim.ModelError, match=message):
        parse_targets(teaching, [target])


def test_disrupted_scenario_keeps_the_scenario_and_adds_the_disruption(teaching):
    """The scenario's own events stay; each node's outage and each lane's closure is added
    with the date and duration asked for."""
    base = sim.load_scenario("truce-holds")
    d = next(x for x in default_disruptions(teaching) if x.key == "country:CN")
    sc = disrupted_scenario(base, d, "2026-03-01", 45)
    assert sc.controls == base.controls and sc.truce == base.truce
    assert {o.node for o in sc.outages[len(base.outages):]} == {"mine_cn", "sep_cn"}
    new = sc.lane_closures[len(base.lane_closures):]
    assert {c.lane for c in new} == set(d.lanes)
    assert all(c.start == dt.date(2026, 3, 1) and c.duration_days == 45 for c in new)
    assert all(c.queued_orders == "reroute" for c in new)


def test_input_errors(teaching):
    """A disruption before the run starts, a scenario without its TOML structure, a bad
    duration: ModelError naming the field."""
    with pytest.raises(sim.ModelError, match="start: the disruption must start after"):
        stress_test(teaching, None, start="2024-06-01", duration_days=30, reps=1, workers=1)
    with pytest.raises(sim.ModelError, match="duration_days"):
        stress_test(teaching, None, start="2026-01-01", duration_days=-3, reps=1, workers=1)
    with pytest.raises(sim.ModelError, match="start: must be a date"):
        stress_test(teaching, None, start="soon", duration_days=30, reps=1, workers=1)
    bare = sim.Scenario(name="bare", outages=(sim.scenario.Outage("mine_cn", dt.date(2026, 1, 1),
                                                                   10.0),))
    with pytest.raises(sim.ModelError, match="scenario: .*without its TOML structure"):
        stress_test(teaching, bare, start="2026-02-01", duration_days=30, reps=1, workers=1)


# ---------------------------------------------------------------------------------------------
# Tables, figures, command line
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def teaching_stress():
    return stress_test("teaching", None, start="2026-01-01", duration_days=90, reps=3, seed=1,
                       workers=1, after_days=180,
                       targets=["node:magnets_jp", "node:sep_cn", "lanes:JP/ndfeb_magnet"])


def test_save_writes_long_tables_and_manifest_last(teaching_stress, tmp_path):
    """replications and summary in the long schema (plus disruption), the ranking, the
    manifest naming every file; load() reads back the same numbers."""
    out = teaching_stress.save(tmp_path / "s")
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "stress" and man["reps"] == 3
    assert sorted(man["files"]) == sorted(p.name for p in out.iterdir()
                                          if p.name != "manifest.json")
    long = sim.tables.read_table(out / "replications")
    assert list(long.columns[:11]) == list(sim.tables.SCHEMA) and "disruption" in long
    assert set(long["kpi"]) == set(STRESS_KPIS)
    back = StressResults.load(out)
    pd.testing.assert_frame_equal(back.per_rep.reset_index(drop=True),
                                  teaching_stress.per_rep.reset_index(drop=True),
                                  check_dtype=False)
    rank = pd.read_csv(out / "ranking.csv")
    assert list(rank["rank"]) == [1, 2, 3]
    assert rank["risk_exposure_index"].max() == 1


def test_figures_render(teaching_stress, tmp_path):
    """The TTS-vs-TTR scatter and the ranking are PNG files of real size."""
    from sim import plots_resilience

    for path in plots_resilience.plot_stress(teaching_stress, tmp_path):
        with open(path, "rb") as f:
            assert f.read(8) == PNG_MAGIC
        assert path.stat().st_size > 10_000


def test_stress_command_end_to_end(run_cli, tmp_path):
    """``python -m sim stress`` on the teaching network: exit 0, the ranking printed, the
    tables, manifest and both figures written."""
    out = tmp_path / "stress"
    proc = run_cli("stress", "--network", "teaching", "--start", "2026-01-01",
                   "--duration-days", "60", "--reps", "2", "--workers", "1", "--targets",
                   "node:magnets_jp", "country:CN", "--after-days", "90", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "node:magnets_jp" in proc.stdout and str(out) in proc.stdout
    for name in ("replications.csv", "summary.csv", "ranking.csv", "manifest.json",
                 "tts_ttr.png", "ranking.png"):
        assert (out / name).exists(), name


@pytest.mark.parametrize("args,message", [
    (["--targets", "node:nowhere"], "error: targets: node 'nowhere'"),
    (["--start", "2020-01-01"], "error: start: the disruption must start after"),
    (["--scope", "sector:space"], "error: --scope: no scope 'sector:space'"),
])
def test_stress_command_errors_are_one_line(run_cli, tmp_path, args, message):
    """Bad arguments exit 2 with a one-line message naming the field, no traceback."""
    base = ["stress", "--network", "teaching", "--start", "2026-01-01", "--duration-days", "30",
            "--reps", "1", "--workers", "1", "--targets", "node:magnets_jp", "--after-days",
            "30", "--no-plots", "--out", tmp_path / "x"]
    proc = run_cli(*base, *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_plan_is_applied_before_the_stress_test():
    """A safety-stock plan of 10 more days of cover raises the customer's order-up-to level
    by 10 t: TTS grows from S to S + 10 and the unmet tonnes fall by 10 (hand network)."""
    plans = pytest.importorskip("sim.plans")
    plan = plans.load_plan({"plan": {"name": "more-cover", "description": "test"},
                            "levers": [{"id": "ss", "type": "safety_stock", "extra_days": 10.0,
                                        "nodes": ["cust"], "start": dt.date(2025, 1, 1),
                                        "source": "assumption: test",
                                        "cost": {"capital_usd": 0.0,
                                                 "capital_source": "assumption: test",
                                                 "yearly_usd": 0.0,
                                                 "yearly_source": "assumption: test"}}]})
    kw = dict(start="2025-04-11", duration_days=50, reps=1, workers=1, window_days=1,
              dwell_days=7, after_days=60, targets="node:sup")
    without = stress_test(hand_network(20, 5), None, **kw).per_rep
    with_plan = stress_test(hand_network(20, 5), None, plan=plan, **kw)
    assert with_plan.meta["plan"] == "more-cover"
    df = with_plan.per_rep
    assert (without["tts_days"] == 20).all() and (df["tts_days"] == 30).all()
    assert np.allclose(without["excess_unmet_t"], 35) and np.allclose(df["excess_unmet_t"], 25)
    assert (df["ttr_days"] == 55).all()
