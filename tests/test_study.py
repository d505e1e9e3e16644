"""Monte Carlo bands for any scope, plans x scenarios on common random numbers (sim.study),
regret and robustness tables, and the compare/robustness commands."""

from __future__ import annotations

import datetime as _dt
import json
import math
import sys

import numpy as np
import pytest

import sim
import sim.cli
import sim.plans
from sim.experiment import MonteCarloResults
from sim.study import (compare_plans, delayed_plan, load_study, ratio_interval, regret_table,
                       robustness)

SCOPES = ["country:US", "node:auto_us", "sector:defense", "network"]


@pytest.fixture(scope="module")
def scoped():
    """Teaching-network replications that keep bands for a country, a node and the network."""
    return sim.monte_carlo("teaching", "baseline", reps=4, seed=3, workers=1, horizon_days=300,
                           scopes=SCOPES)


def test_scope_bands_add_up_the_sectors(scoped):
    s = scoped.series
    for kind in ("fill_rate", "backorders_t", "net_inventory_t"):
        assert f"{kind}|country:US" in s and f"{kind}|node:auto_us" in s
    # the teaching network's only car maker is the automotive sector
    np.testing.assert_array_equal(s["fill_rate|node:auto_us"], s["fill_rate|sector:automotive"])
    # end-of-week backorders of all users are the sums of the sectors' (float32 rounding)
    np.testing.assert_allclose(s["backorders_t|network"],
                               s["backorders_t|sector:automotive"]
                               + s["backorders_t|sector:defense"], rtol=1e-5, atol=1e-3)
    # every demand node of the teaching network is in the US
    np.testing.assert_allclose(s["net_inventory_t|country:US"], s["net_inventory_t|network"],
                               rtol=1e-6)
    assert np.all((s["fill_rate|country:US"] >= 0) & (s["fill_rate|country:US"] <= 1))


def test_scope_bands_are_saved_and_loaded(scoped, tmp_path):
    scoped.save(tmp_path / "mc", plots=False)
    back = MonteCarloResults.load(tmp_path / "mc")
    assert back.meta["scopes"] == SCOPES
    a, b = scoped.bands("fill_rate|country:US"), back.bands("fill_rate|country:US")
    np.testing.assert_array_equal(a["q50"].to_numpy(), b["q50"].to_numpy())
    assert len(a) == scoped.series["fill_rate|country:US"].shape[1]


def test_kpi_only_replications_keep_the_kpis():
    lean = sim.monte_carlo("teaching", "baseline", reps=3, seed=3, workers=1, horizon_days=200,
                           series=False)
    full = sim.monte_carlo("teaching", "baseline", reps=3, seed=3, workers=1, horizon_days=200)
    assert lean.series == {} and full.series
    assert lean.per_rep.equals(full.per_rep)


@pytest.mark.parametrize("scopes, text", [
    (["country:XX"], "'country:XX': no demand in network 'teaching'"),
    (["node:mine_au"], "'node:mine_au': no demand"),
    (["everything"], "'everything': not a scope"),
    ("country:US", "must be a list of scopes"),
])
def test_bad_scopes_are_model_errors(scopes, text):
    with pytest.raises(sim.ModelError, match="scopes") as err:
        sim.monte_carlo("teaching", reps=1, horizon_days=10, scopes=scopes)
    assert text in str(err.value)


# ---------------------------------------------------------------------------------------------
# Plans x scenarios (a local test double stands in for sim.plans: a plan that adds defense
# stock at a known cost, so every figure below can be recomputed by hand)
# ---------------------------------------------------------------------------------------------

class _Plan:
    """A test plan: *stock* more tonnes of magnets at the US defense user, for a capital and a
    yearly cost."""

    def __init__(self, name, stock=0.0, capital=0.0, yearly=0.0):
        self.name, self.stock, self.capital, self.yearly = name, stock, capital, yearly
        self.description, self.levers = f"test plan {name}", ()

    def cost(self, start, end):
        years = (end - start).days / 365.25
        return {"capital_usd": self.capital, "yearly_usd": self.yearly,
                "total_usd": self.capital + self.yearly * years}


_PLANS = {"status-quo": _Plan("status-quo"), "more-stock": _Plan("more-stock", 300.0, 2e6, 1e5),
          "some-stock": _Plan("some-stock", 100.0, 5e5, 0.0)}


def _resolve(p):
    if isinstance(p, _Plan):
        return p
    if p not in _PLANS:
        raise sim.ModelError(f"no plan {p!r}", field="plan")
    return _PLANS[p]


def _apply(plan, network, scenario):
    if not plan.stock:
        return network, scenario
    d = network.to_dict()
    st = d["nodes"]["defense_us"]["stock"]["ndfeb_magnet"]
    st["initial"] = st.get("initial", 0) + plan.stock
    return sim.Network.from_dict(d), scenario


@pytest.fixture(scope="module")
def plans_double():
    """``sim.plans`` replaced by the test double for the tests of this module that use it."""
    import types

    fake = types.ModuleType("sim.plans")
    fake.resolve_plan, fake.load_plan, fake.apply_plan = _resolve, _resolve, _apply
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "sim.plans", fake)
        yield fake


@pytest.fixture(scope="module")
def stress():
    from conftest import stress_scenario_dict

    return sim.Scenario.from_dict(stress_scenario_dict())


@pytest.fixture(scope="module")
def study(plans_double, stress):
    return compare_plans("teaching", ["status-quo", "more-stock"], [stress, "baseline"],
                         reps=30, seed=1, workers=1, horizon_days=500)


def test_every_cell_runs_on_the_same_replications(study):
    assert set(study.cells) == {(p, s) for p in ("status-quo", "more-stock")
                                for s in ("stress", "baseline")}
    for res in study.cells.values():
        assert list(res.per_rep.index) == list(range(30))
        assert res.series == {}             # KPIs only unless series are asked for
    # a plan that only adds stock at the defense user leaves the baseline's other users alone
    a = study.result("status-quo", "baseline").kpi("fill_rate", "sector:automotive")
    b = study.result("more-stock", "baseline").kpi("fill_rate", "sector:automotive")
    assert a.equals(b)


def test_paired_intervals_are_narrower_than_unpaired(study):
    d = study.differences(["fill_rate|network", "backordered_t|network"])
    d = d[d["scenario"] == "stress"]
    s = study.summary()
    for col in ("fill_rate|network", "backordered_t|network"):
        kpi, scope = col.split("|")
        row = d[(d["kpi"] == kpi) & (d["scope"] == scope)].set_index("statistic")["value"]
        paired = row["ci95_high"] - row["ci95_low"]
        sd = {p: float(s[(s["plan"] == p) & (s["scenario"] == "stress") & (s["kpi"] == kpi)
                         & (s["scope"] == scope) & (s["statistic"] == "sd")]["value"].iloc[0])
              for p in ("status-quo", "more-stock")}
        unpaired = 2 * 1.959963984540054 * np.sqrt((sd["status-quo"] ** 2 + sd["more-stock"] ** 2)
                                                   / 30)
        assert 0 < paired < unpaired
        assert row["variance_ratio_paired_vs_unpaired"] < 1


def test_labels_name_plan_and_scenario(study):
    d = study.differences(["fill_rate"])
    assert set(d["comparison"]) == {"more-stock vs status-quo under stress",
                                    "more-stock vs status-quo under baseline"}
    assert set(d["plan"]) == {"more-stock"} and set(d["reference"]) == {"status-quo"}
    assert study.title("more-stock", "stress") == "more-stock vs status-quo under stress"
    assert not any(" vs stress" in t or " vs baseline" in t for t in d["comparison"])


def test_cost_effectiveness_by_hand(study):
    ce = study.cost_effectiveness()
    ce = ce[ce["scenario"] == "stress"]
    get = {(k, st): (v, lab) for k, st, v, lab in
           zip(ce["kpi"], ce["statistic"], ce["value"], ce["label"])}
    ref = study.result("status-quo", "stress").per_rep
    plan = study.result("more-stock", "stress").per_rep
    start, end = _dt.date(2025, 1, 1), _dt.date(2025, 1, 1) + _dt.timedelta(days=500)
    cost = 2e6 + 1e5 * (end - start).days / 365.25
    assert get[("cost_usd", "mean")][0] == pytest.approx(cost)
    # defense fill points gained, paired by replication
    gain = 100 * (plan["fill_rate|sector:defense"] - ref["fill_rate|sector:defense"]).to_numpy()
    half = 1.959963984540054 * gain.std(ddof=1) / np.sqrt(len(gain))
    assert get[("defense_fill_gain_points", "mean")][0] == pytest.approx(gain.mean())
    assert get[("defense_fill_gain_points", "ci95_low")][0] == pytest.approx(gain.mean() - half)
    assert gain.mean() - half > 0                     # the stock clearly helps defense here
    assert get[("cost_per_defense_fill_point_usd", "mean")][0] == pytest.approx(cost / gain.mean())
    assert get[("cost_per_defense_fill_point_usd", "ci95_low")][0] == \
        pytest.approx(cost / (gain.mean() + half))
    assert get[("cost_per_defense_fill_point_usd", "ci95_high")][0] == \
        pytest.approx(cost / (gain.mean() - half))
    # unmet tonnes avoided: (demand - filled) of the reference minus the plan's
    unmet = lambda df: (df["demand_t|network"] - df["filled_t|network"]).to_numpy()  # noqa: E731
    avoided = unmet(ref) - unmet(plan)
    assert get[("unmet_avoided_t", "mean")][0] == pytest.approx(avoided.mean())
    # no shortage in the baseline: nothing to buy there
    base = study.cost_effectiveness()
    base = base[(base["scenario"] == "baseline")
                & (base["kpi"] == "cost_per_defense_fill_point_usd")]
    assert set(base["label"]) == {"no benefit"} and base["value"].isna().all()


@pytest.mark.parametrize("args, expected", [
    ((100.0, 4.0, 2.0, 5.0), (25.0, 20.0, 50.0, "")),
    ((100.0, 4.0, -1.0, 9.0), (25.0, 100 / 9, math.inf, "benefit not significant")),
    ((-100.0, 4.0, -1.0, 9.0), (-25.0, -math.inf, -100 / 9, "benefit not significant")),
    ((100.0, -2.0, -5.0, 0.0), (math.nan, math.nan, math.nan, "no benefit")),
    ((-50.0, 5.0, 2.0, 10.0), (-10.0, -25.0, -5.0, "")),
])
def test_ratio_interval_by_hand(args, expected):
    got = ratio_interval(*args)
    for g, e in zip(got[:3], expected[:3]):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e)
    assert got[3] == expected[3]


def test_same_numbers_with_one_or_two_workers(plans_double, stress):
    kw = dict(reps=6, seed=5, horizon_days=200, chunk_size=2)
    one = compare_plans("teaching", ["status-quo", "some-stock"], [stress], workers=1, **kw)
    two = compare_plans("teaching", ["status-quo", "some-stock"], [stress], workers=2, **kw)
    for key in one.cells:
        assert one.cells[key].per_rep.equals(two.cells[key].per_rep)
    a, b = one.differences(), two.differences()
    np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())


def test_save_writes_tables_then_manifest(study, tmp_path):
    out = study.save(tmp_path / "study", replications=False)
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "plan_study" and man["reference"] == "status-quo"
    assert man["plans"] == ["status-quo", "more-stock"]
    for name in ("summary", "paired_differences", "cost_effectiveness", "plan_costs"):
        assert f"{name}.csv" in man["files"] and (out / f"{name}.csv").exists()
    assert not list(out.glob("*.png"))                   # saving draws nothing
    back = load_study(out)
    d = back["paired_differences"]
    assert set(d["plan"]) == {"more-stock"}
    assert list(d.columns[:11]) == list(sim.tables.SCHEMA)
    mine = study.differences()
    np.testing.assert_allclose(d["value"].to_numpy(), mine["value"].to_numpy(), equal_nan=True)


def test_study_errors_name_the_field(plans_double):
    with pytest.raises(sim.ModelError, match="reference plan 'nope'"):
        compare_plans("teaching", ["status-quo"], ["baseline"], reps=1, reference="nope")
    with pytest.raises(sim.ModelError, match="'status-quo' is given twice"):
        compare_plans("teaching", ["status-quo", "status-quo"], ["baseline"], reps=1)
    with pytest.raises(sim.ModelError, match="reps"):
        compare_plans("teaching", ["status-quo"], ["baseline"], reps=0)


# ---------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------

def test_regret_table_by_hand():
    import pandas as pd

    values = pd.DataFrame({"A": [0.99, 0.90, 0.80], "B": [0.95, 0.97, 0.85],
                           "C": [1.00, 0.80, 0.70]}, index=["s1", "s2", "s3"])
    regret, table = regret_table(values, target=0.95)
    # best per scenario: 1.00 (C), 0.97 (B), 0.85 (B)
    expected = {"A": [0.01, 0.07, 0.05], "B": [0.05, 0.0, 0.0], "C": [0.0, 0.17, 0.15]}
    for p, r in expected.items():
        np.testing.assert_allclose(regret[p].to_numpy(), r, atol=1e-12)
    t = table.set_index("plan")
    assert list(table["plan"]) == ["B", "A", "C"]        # minimax regret first
    assert t.loc["A", "max_regret"] == pytest.approx(0.07)
    assert t.loc["C", "mean_regret"] == pytest.approx(0.32 / 3)
    assert t.loc["B", "best_share"] == pytest.approx(2 / 3)
    assert t.loc["A", "target_share"] == pytest.approx(1 / 3)   # 0.99 only
    assert t.loc["B", "target_share"] == pytest.approx(2 / 3)   # 0.95 and 0.97
    assert t.loc["C", "q50"] == pytest.approx(0.80)
    # lower is better: regret from the lowest value
    regret, table = regret_table(values, higher_is_better=False, target=0.85)
    np.testing.assert_allclose(regret["A"].to_numpy(), [0.04, 0.10, 0.10], atol=1e-12)
    assert table.set_index("plan").loc["C", "target_share"] == pytest.approx(2 / 3)


def test_regret_table_refuses_missing_outcomes():
    import pandas as pd

    with pytest.raises(sim.ModelError, match="plan 'B' has a missing outcome"):
        regret_table(pd.DataFrame({"A": [1.0, 0.5], "B": [np.nan, 0.4]}))


def test_robustness_over_a_latin_hypercube(plans_double, stress, tmp_path):
    res = robustness("teaching", ["status-quo", "some-stock", "more-stock"], base=stress,
                     uncertainties={"controls.heavy.approval_probability": (0.1, 0.9),
                                    "demand.factor": (0.8, 1.2)},
                     samples=4, reps=4, seed=2, horizon_days=300, workers=1, target=0.99)
    assert res.values.shape == (4, 3)
    assert [m["member"] for m in res.members] == [f"stress #{j}" for j in range(4)]
    factors = [m["demand.factor"] for m in res.members]
    assert all(0.8 <= f <= 1.2 for f in factors) and len(set(factors)) == 4
    # more stock at the defense user never lowers its fill rate on common random numbers
    assert (res.values["more-stock"] >= res.values["status-quo"] - 1e-12).all()
    assert (res.regret.to_numpy() >= 0).all()
    assert (res.regret.min(axis=1) == 0).all()
    again = regret_table(res.values, target=0.99)[1]
    assert again.equals(res.table)
    out = res.save(tmp_path / "rob")
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "robustness" and len(man["members"]) == 4
    back = load_study(out)
    assert set(back["robustness"]["plan"]) == {"status-quo", "some-stock", "more-stock"}
    ens = back["ensemble_values"]
    assert set(ens["statistic"]) == {"mean", "regret"}


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def test_cli_compare_plans_end_to_end(plans_double, write_toml, tmp_path, capsys):
    from conftest import stress_scenario_dict

    scen = write_toml(stress_scenario_dict(), "stress.toml")
    out = tmp_path / "cmp"
    rc = sim.cli.main(["compare", "--network", "teaching", "--plans", "status-quo", "more-stock",
                       "--scenarios", str(scen), "baseline", "--reps", "4", "--days", "500",
                       "--workers", "1", "--seed", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "more-stock vs status-quo under stress" in text
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "plan_study" and man["reps"] == 4
    for name in ("replications.csv", "summary.csv", "paired_differences.csv",
                 "cost_effectiveness.csv", "plan_costs.csv", "plan_forest.png",
                 "cost_effectiveness.png"):
        assert name in man["files"] and (out / name).exists()
    reps = sim.tables.read_table(out / "replications")
    assert set(reps["plan"]) == {"status-quo", "more-stock"}
    assert set(reps["scenario"]) == {"stress", "baseline"}
    assert set(reps["replication"]) == {0, 1, 2, 3}


def test_cli_robustness_end_to_end(plans_double, write_toml, tmp_path, capsys):
    from conftest import stress_scenario_dict

    scen = write_toml(stress_scenario_dict(), "stress.toml")
    out = tmp_path / "rob"
    rc = sim.cli.main(["robustness", "--network", "teaching", "--plans", "status-quo",
                       "some-stock", "--base", str(scen),
                       "--param", "controls.heavy.approval_probability=0.1:0.9",
                       "--samples", "3", "--reps", "2", "--days", "200", "--workers", "1",
                       "--out", str(out), "--quiet"])
    assert rc == 0
    assert "robustness of 2 plans over 3 scenarios" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    assert {"robustness.csv", "ensemble_values.csv", "ensemble_points.csv",
            "regret.png"} <= set(man["files"])


@pytest.mark.parametrize("argv, text", [
    (["robustness", "--network", "teaching", "--plans", "status-quo", "--param", "x=1"],
     "--param: expected PATH=LOW:HIGH"),
    (["compare", "--network", "teaching", "--plans", "status-quo", "nope", "--scenarios",
      "baseline", "--reps", "1"], "no plan 'nope'"),
])
def test_cli_bad_input_exits_2(plans_double, argv, text, capsys):
    assert sim.cli.main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err


def test_ratio_interval_treats_rounding_noise_as_no_benefit():
    assert ratio_interval(1e6, 1e-14, -1e-14, 4e-14, tol=1e-9)[3] == "no benefit"
    est, lo, hi, label = ratio_interval(1e6, 2.0, 1.0, 3.0, tol=1e-9)
    assert (est, label) == (5e5, "")


REAL_PLANS = sim.plans       # (the double replaces it in sys.modules for the tests above)


def test_shipped_plan_api_end_to_end(stress, monkeypatch):
    """sim.plans itself: a plan given as a dict (more cover at the defense user) against the
    shipped status-quo; its cost is Plan.cost over the run."""
    monkeypatch.setitem(sys.modules, "sim.plans", REAL_PLANS)
    load_plan = REAL_PLANS.load_plan

    plan = load_plan({
        "plan": {"name": "defense-cover", "description": "120 more days of cover at defense users",
                 "source": "assumption: a test plan"},
        "levers": [{"id": "cover", "type": "safety_stock", "extra_days": 120,
                    "kinds": ["defense_user"], "start": _dt.date(2025, 1, 1),
                    "source": "assumption: a test plan",
                    "cost": {"capital_usd": 1e6, "capital_source": "assumption: test",
                             "yearly_usd": 2e5, "yearly_source": "assumption: test"}}]})
    res = compare_plans("teaching", ["status-quo", plan], [stress], reps=12, seed=4, workers=1,
                        horizon_days=500)
    d = res.differences(["fill_rate|sector:defense"]).set_index("statistic")["value"]
    assert d["ci95_low"] > 0                     # more cover raises defense fill in a shortage
    start, end = _dt.date(2025, 1, 1), _dt.date(2025, 1, 1) + _dt.timedelta(days=500)
    ce = res.cost_effectiveness()
    cost = ce[(ce["kpi"] == "cost_usd")]["value"].iloc[0]
    assert cost == pytest.approx(plan.cost(start, end)["total_usd"])
    assert set(ce["comparison"]) == {"defense-cover vs status-quo under stress"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_replications_are_written_cell_by_cell_as_one_table(study, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = study.save(tmp_path / fmt, table_format=fmt)
    back = sim.tables.read_table(out / "replications")
    whole = study.replications()
    n_kpis = len(study.cells[("status-quo", "stress")].per_rep.columns)
    assert len(back) == len(whole) == 4 * 30 * n_kpis
    np.testing.assert_array_equal(back["value"].to_numpy(), whole["value"].to_numpy())
    assert list(back["plan"]) == list(whole["plan"])
    assert not list(out.glob(".*tmp*"))


def test_delayed_plan_moves_every_lever(monkeypatch):
    """A sampled project delay: the plan's running costs start later (so fewer fall inside a
    fixed window), its capital is unchanged, and the empty plan stays itself."""
    monkeypatch.setitem(sys.modules, "sim.plans", REAL_PLANS)
    plan = REAL_PLANS.load_plan("allied-capacity")
    later = delayed_plan(plan, 365)
    assert later.name == plan.name
    a, b = _dt.date(2025, 1, 1), _dt.date(2029, 1, 1)
    assert later.cost(a, b)["capital_usd"] == pytest.approx(plan.cost(a, b)["capital_usd"])
    assert later.cost(a, b)["yearly_usd"] < plan.cost(a, b)["yearly_usd"]
    # the same delay twice is the delay of twice the days
    twice = delayed_plan(later, 365)
    assert twice.cost(a, b) == pytest.approx(delayed_plan(plan, 730).cost(a, b))
    quo = REAL_PLANS.load_plan("status-quo")
    assert delayed_plan(quo, 100) is quo
    with pytest.raises(sim.ModelError, match="plan.delay_days"):
        delayed_plan(plan, -1)


def test_cli_plot_redraws_a_study_folder(study, tmp_path, capsys):
    out = study.save(tmp_path / "st", replications=False)
    assert sim.cli.main(["plot", str(out)]) == 0
    assert (out / "plan_forest.png").exists() and (out / "cost_effectiveness.png").exists()
    (out / "paired_differences.csv").unlink()
    assert sim.cli.main(["plot", str(out)]) == 2
    assert "missing table" in capsys.readouterr().err


def test_plan_study_benchmark_runs_and_projects(capsys):
    """benchmarks/plan_study.py on the teaching network: plans that cannot be applied there are
    named and left out, and the projection scales the replications run to those asked."""
    import importlib
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        mod = importlib.import_module("plan_study")
    finally:
        sys.path.remove(str(bench))
    assert mod.main(["--network", "teaching", "--plans", "status-quo", "allied-capacity",
                     "--scenarios", "baseline", "--reps", "40", "--fraction", "0.1",
                     "--workers", "1", "--profile-reps", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(l.startswith("note: plan allied-capacity left out") for l in lines)
    fig = json.loads(lines[-1])
    assert fig["plans"] == ["status-quo"] and fig["reps_run"] == 4
    assert fig["replications_run"] == 4 and fig["cells_asked"] == 2
    assert fig["projected_full_s"] > fig["per_rep_wall_ms"] / 1e3 * 80 * 0.99
    assert set(fig["phases_ms"]) >= {"simulate", "kpis", "series", "pickle"}


def test_default_ensemble_applies_to_the_shipped_scenario(monkeypatch):
    """Every default uncertainty path exists in truce-uncertain on the default network (a
    change of the scenario file that moves one fails here, not in a user's study), and the
    sampled values land in each member."""
    from sim.study import DEFAULT_PLAN_UNCERTAINTIES, DEFAULT_UNCERTAINTIES

    monkeypatch.setitem(sys.modules, "sim.plans", REAL_PLANS)
    res = robustness("rare_earth_2025", ["status-quo", "allied-capacity"], samples=2, reps=1,
                     workers=1, horizon_days=30)
    space = {**DEFAULT_UNCERTAINTIES, **DEFAULT_PLAN_UNCERTAINTIES}
    for m in res.members:
        assert set(space) <= set(m)
        assert all(space[k][0] <= m[k] <= space[k][1] for k in space)


def test_a_study_keeps_scope_bands_when_asked(plans_double, tmp_path):
    res = compare_plans("teaching", ["status-quo", "some-stock"], ["baseline"], reps=3, seed=1,
                        workers=1, horizon_days=120, scopes=["country:US"])
    cell = res.result("some-stock", "baseline")
    assert "fill_rate|country:US" in cell.series and "fill_rate|sector:defense" in cell.series
    out = res.save(tmp_path / "s", replications=False)
    bands = sim.tables.read_table(out / "bands", sim.tables.BANDS_SCHEMA)
    assert set(bands["plan"]) == {"status-quo", "some-stock"}
    assert "country:US" in set(bands["scope"])
    assert "bands.csv" in json.loads((out / "manifest.json").read_text())["files"]
    lean = compare_plans("teaching", ["status-quo"], ["baseline"], reps=2, workers=1,
                         horizon_days=60)
    assert lean.bands() is None
