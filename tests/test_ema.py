"""The EMA Workbench adapter (sim.ema): a small experiment on the teaching network gives the
simulator's own numbers, PRIM (the library's) recovers a planted failure region, robust
optimisation searches a lever, and bad specifications are errors naming the parameter."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import sim

ema_workbench = pytest.importorskip(
    "ema_workbench", reason="EMA Workbench is the optional extra 'ema' (pip install -e '.[ema]')")

import sim.ema as se  # noqa: E402
from sim.sweep import apply_params  # noqa: E402

# a licensing control on Dy from China for the teaching network (its only Dy/Tb source is the
# Chinese separator, so an approval probability of 0 starves the magnet maker of Dy/Tb oxide)
SCENARIO = {"scenario": {"name": "dy-licensing", "start": "2025-01-01", "end": "2026-01-01"},
            "controls": {"c1": {"exporter": "CN", "elements": ["Dy"], "start": "2025-02-01",
                                "regime": "licensing", "review_days": 30,
                                "approval_probability": 0.5}}}
UNCERTAINTIES = {"approval": ("controls.c1.approval_probability", 0.0, 1.0),
                 "review": ("controls.c1.review_days", 1, 180)}


def _scenario() -> sim.Scenario:
    return sim.Scenario.from_dict(SCENARIO)


def planted_runner(network, scenario, **_):
    """A stand-in for the simulation that fails (defense fill 0.9) exactly when the control's
    approval probability is below 0.3 and its review takes more than 60 days; it reads both
    from the scenario the adapter built, so the test covers the path from EMA's names to it."""
    c = scenario.to_dict()["controls"]["c1"]
    bad = c["approval_probability"] < 0.3 and c["review_days"] > 60
    return {"fill_rate|sector:defense": 0.9 if bad else 1.0}


def peaked_runner(network, scenario, **_):
    """A stand-in whose defense fill peaks when the defense user starts with 70 t of magnets."""
    s = network.to_dict()["nodes"]["defense_us"]["stock"]["ndfeb_magnet"]["initial"]
    a = scenario.to_dict()["controls"]["c1"]["approval_probability"]
    return {"fill_rate|sector:defense": 1 - ((s - 70) / 100) ** 2 - 0.1 * a}


@pytest.fixture(scope="module")
def small_model():
    return se.ema_model("teaching", _scenario(), uncertainties=UNCERTAINTIES, reps=2, seed=3,
                        horizon_days=365)


@pytest.fixture(scope="module")
def small_experiment(small_model):
    return ema_workbench.perform_experiments(small_model,
                                             scenarios=se.sample_scenarios(small_model, 6, seed=1))


def test_small_experiment_gives_the_simulators_numbers(small_model, small_experiment):
    """Each experiment's outcomes are the KPI means of sim.monte_carlo run on the scenario with
    the experiment's values set at the paths (same seed, same replications), within the
    sampled ranges; fill rates are shares and backorders non-negative."""
    experiments, outcomes = small_experiment
    assert len(experiments) == 6
    assert set(outcomes) == {"fill_rate", "backordered_t", "fill_rate_automotive",
                             "fill_rate_defense"}
    assert experiments["approval"].between(0, 1).all()
    assert experiments["review"].between(1, 180).all()
    for name in ("fill_rate", "fill_rate_automotive", "fill_rate_defense"):
        assert ((outcomes[name] >= 0) & (outcomes[name] <= 1)).all()
    assert (outcomes["backordered_t"] >= 0).all()
    net = sim.load_network("teaching")
    for i in (0, 5):
        a, r = float(experiments["approval"][i]), int(experiments["review"][i])
        n2, s2 = apply_params(net, _scenario(), {"controls.c1.approval_probability": a,
                                                 "controls.c1.review_days": r})
        mc = sim.monte_carlo(n2, s2, reps=2, seed=3, workers=1, horizon_days=365)
        assert outcomes["fill_rate_defense"][i] == mc.kpi("fill_rate", "sector:defense").mean()
        assert outcomes["backordered_t"][i] == mc.kpi("backordered_t", "network").mean()


def test_experiments_are_reproducible(small_model, small_experiment):
    """The same design gives the same numbers (every experiment shares the root seed)."""
    _, outcomes = small_experiment
    again = ema_workbench.perform_experiments(
        small_model, scenarios=se.sample_scenarios(small_model, 6, seed=1))[1]
    for k in outcomes:
        np.testing.assert_array_equal(outcomes[k], again[k])


def test_uncertainties_act_through_the_engine(small_model):
    """Through the real engine: with no licence ever approved and slow reviews, the magnet
    maker runs out of Dy/Tb and defense fill falls well below the fill with prompt approval
    (same replications in both)."""
    starved = small_model.function(approval=0.0, review=180)
    prompt = small_model.function(approval=1.0, review=1)
    assert prompt["fill_rate_defense"] > starved["fill_rate_defense"] + 0.05
    assert prompt["backordered_t"] < starved["backordered_t"]


def test_prim_recovers_a_planted_failure_region(tmp_path):
    """PRIM (ema_workbench.analysis.prim) on 400 experiments finds the box approval < 0.3 and
    review > 60 days, and leaves the irrelevant third uncertainty unrestricted; the figure of
    the box is drawn from the same tables."""
    model = se.ema_model("teaching", _scenario(),
                         uncertainties={**UNCERTAINTIES,
                                        "reapply": ("controls.c1.reapply_days", 1, 30)},
                         outcomes={"fill_defense": "fill_rate|sector:defense"},
                         runner=planted_runner, reps=1)
    experiments, outcomes = ema_workbench.perform_experiments(
        model, scenarios=se.sample_scenarios(model, 400, seed=7))
    fails = outcomes["fill_defense"] < 0.95
    assert 0.1 < fails.mean() < 0.3                 # the region holds ~0.3 x 2/3 of the space
    box, limits = se.prim_box(experiments, outcomes, lambda o: o["fill_defense"] < 0.95)
    assert set(limits.index) == {"approval", "review"}
    assert limits.loc["approval", "min"] < 0.02
    assert limits.loc["approval", "max"] == pytest.approx(0.3, abs=0.03)
    assert limits.loc["review", "min"] == pytest.approx(60, abs=10)
    assert limits.loc["review", "max"] > 170
    assert limits.attrs["density"] >= 0.9 and limits.attrs["coverage"] >= 0.9
    from sim.plots_ema import prim_box_plot

    written = prim_box_plot(experiments[["approval", "review", "reapply"]], fails, limits,
                            tmp_path / "box.png", trajectory=box.peeling_trajectory)
    assert written == tmp_path / "box.png" and written.stat().st_size > 10_000


def test_prim_needs_cases_and_non_cases(small_experiment):
    """PRIM needs both kinds of experiments: all or none is an error saying so."""
    experiments, outcomes = small_experiment
    for fails, word in ((np.zeros(6, bool), "no"), (np.ones(6, bool), "every")):
        with pytest.raises(sim.ModelError, match=f"fails: {word} experiment is a case"):
            se.prim_box(experiments, outcomes, fails)


def test_default_uncertainties_fit_the_truce_scenarios():
    """The default uncertainties are valid paths of truce-uncertain on the default network at
    both ends of their ranges (ema_model applies each before returning)."""
    model = se.ema_model("rare_earth_2025", "truce-uncertain", reps=1, horizon_days=30)
    assert [u.name for u in model.uncertainties] == list(se.DEFAULT_UNCERTAINTIES)
    assert {"fill_rate_defense", "fill_rate_automotive", "backordered_t"} <= \
        {o.name for o in model.outcomes}


def test_robust_optimisation_searches_a_lever():
    """ema_workbench's robust_optimize over a numeric lever (the defense user's initial magnet
    stock, a network path) finds the stock that maximises mean defense fill across scenarios."""
    model = se.ema_model("teaching", _scenario(),
                         uncertainties={"approval": UNCERTAINTIES["approval"]},
                         levers={"defense_stock": ("nodes.defense_us.initial.ndfeb_magnet",
                                                   0.0, 100.0)},
                         outcomes={"fill_defense": "fill_rate|sector:defense"},
                         runner=peaked_runner, reps=1)
    robust = [ema_workbench.ScalarOutcome("mean_fill", kind=ema_workbench.ScalarOutcome.MAXIMIZE,
                                          variable_name="fill_defense", function=np.mean)]
    with ema_workbench.SequentialEvaluator(model) as ev:
        found = ev.robust_optimize(robust, se.sample_scenarios(model, 4, seed=1), nfe=300,
                                   epsilons=[0.01], population_size=20)
    assert found["defense_stock"].to_numpy() == pytest.approx(70, abs=5)


@pytest.mark.skipif(sys.platform == "win32", reason="fork-based pool")
def test_parallel_evaluator_gives_the_same_numbers(small_model, small_experiment):
    """EMA's multiprocessing evaluator ships the model to worker processes and gets the same
    outcomes as the sequential run (the adapter is picklable; numbers do not depend on workers)."""
    _, outcomes = small_experiment
    with ema_workbench.MultiprocessingEvaluator(small_model, n_processes=2) as ev:
        _, par = ev.perform_experiments(scenarios=se.sample_scenarios(small_model, 6, seed=1))
    for k in outcomes:
        np.testing.assert_array_equal(outcomes[k], par[k])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"uncertainties": {"approval": ("controls.c9.approval_probability", 0.0, 1.0)}},
     r"uncertainties\.approval = 0\.0: .*controls\.c9\.approval_probability.*no key 'c9'"),
    ({"uncertainties": {"approval": ("controls.c1.approval_probability", 0.0, 1.5)}},
     r"uncertainties\.approval = 1\.5: .*approval_probability: must be in \[0, 1\], got 1\.5"),
    ({"levers": {"stock": ("nodes.x.initial.ndfeb_magnet", 0, 10)}},
     r"levers\.stock = 0: .*no node 'x' in network 'teaching'"),
    ({"uncertainties": {"approval-p": ("controls.c1.approval_probability", 0.0, 1.0)}},
     r"uncertainties: must be a Python identifier.*'approval-p'"),
    ({"uncertainties": {"approval": ("controls.c1.approval_probability", 0.5, 0.5)}},
     r"uncertainties\.approval: low must be below high"),
    ({"uncertainties": {"approval": ("controls.c1.approval_probability",)}},
     r"uncertainties\.approval: give \(path, low, high\)"),
    ({"levers": {"approval": ("controls.c1.review_days", 1, 9)}},
     r"names used twice.*approval"),
    ({"outcomes": {"fill": "fill_rate"}}, r"outcomes\.fill: must be a KPI column"),
    ({"reps": 0}, r"reps"),
    ({"name": "rare_earth"}, r"name: must be letters and digits"),
])
def test_bad_specifications_name_the_parameter(kwargs, message):
    """Paths are checked at both ends of their ranges before any experiment runs."""
    args = {"uncertainties": UNCERTAINTIES, **kwargs}
    with pytest.raises(sim.ModelError, match=message):
        se.ema_model("teaching", _scenario(), horizon_days=30, **args)


def test_unknown_outcome_column_is_an_error(small_model):
    """An outcome naming a KPI the run does not have fails with its name, not a silent NaN."""
    model = se.ema_model("teaching", _scenario(), uncertainties=UNCERTAINTIES, reps=1,
                         horizon_days=30, outcomes={"x": "fill_rate|sector:space"})
    with pytest.raises(sim.ModelError, match=r"outcomes\.x: the run has no KPI column"):
        model.function(approval=0.5, review=10)


def test_missing_extra_is_a_model_error(monkeypatch):
    """Without the optional extra the adapter says how to install it."""
    monkeypatch.setitem(sys.modules, "ema_workbench", None)
    with pytest.raises(sim.ModelError, match=r"rare-earth-sim\[ema\]"):
        se.require_ema()


def test_sample_scenarios_is_a_latin_hypercube(small_model):
    """Each of n equal strata of every range holds exactly one sample, integers stay integers
    in range, and the same seed gives the same design."""
    design = se.sample_scenarios(small_model, 20, seed=5)
    a = np.array([s["approval"] for s in design])
    r = [s["review"] for s in design]
    assert sorted(np.floor(a * 20).astype(int)) == list(range(20))
    assert all(isinstance(v, int) and 1 <= v <= 180 for v in r)
    assert [dict(s) for s in se.sample_scenarios(small_model, 20, seed=5)] == \
        [dict(s) for s in design]


# a plan for the teaching network: 30 more days of cover at the defense user, for a yearly cost
COVER_PLAN = {
    "plan": {"name": "defense-cover", "description": "more magnet cover at the defense user",
             "source": "test"},
    "levers": [{"id": "cover", "type": "safety_stock", "start": "2025-01-01", "extra_days": 30,
                "kinds": ["defense_user"], "source": "test",
                "cost": {"yearly_usd": 1.0e6, "yearly_source": "assumption: test figure"}}],
}


@pytest.fixture(scope="module")
def plan_model():
    return se.ema_model("teaching", _scenario(), uncertainties=UNCERTAINTIES,
                        plans=["status-quo", COVER_PLAN],
                        levers={"extra_days": ("plan.levers.cover.extra_days", 1, 60)},
                        reps=2, seed=3, horizon_days=365)


def test_plan_lever_and_plan_parameters_reach_the_run(plan_model):
    """The plan lever applies the chosen plan (sim.plans.apply_plan) and a numeric plan
    parameter sets the lever's field: outcomes equal sim.monte_carlo on the plan applied by
    hand, the plan's cost over the run is an outcome, and the status quo costs nothing."""
    from sim.plans import apply_plan, load_plan

    assert [p.name for p in plan_model.levers] == ["plan", "extra_days"]
    out = plan_model.function(plan="defense-cover", extra_days=45, approval=0.2, review=90)
    doc = load_plan(COVER_PLAN).to_dict()
    doc["levers"][0]["extra_days"] = 45
    n2, s2 = apply_plan(load_plan(doc), sim.load_network("teaching"), _scenario())
    n2, s2 = apply_params(n2, s2, {"controls.c1.approval_probability": 0.2,
                                   "controls.c1.review_days": 90})
    mc = sim.monte_carlo(n2, s2, reps=2, seed=3, workers=1, horizon_days=365)
    assert out["fill_rate_defense"] == mc.kpi("fill_rate", "sector:defense").mean()
    assert out["plan_cost_usd"] == pytest.approx(1.0e6 * 365 / 365.25)
    sq = plan_model.function(plan="status-quo", extra_days=45, approval=0.2, review=90)
    assert sq["plan_cost_usd"] == 0.0
    base = plan_model.function(plan="status-quo", extra_days=1, approval=0.2, review=90)
    assert sq == base                   # the cover plan's parameter means nothing without it


def test_plan_experiments_run_factorially(plan_model):
    """perform_experiments crosses sampled scenarios with the plan policies."""
    policies = [ema_workbench.Policy(p, plan=p, extra_days=30)
                for p in ("status-quo", "defense-cover")]
    experiments, outcomes = ema_workbench.perform_experiments(
        plan_model, scenarios=se.sample_scenarios(plan_model, 3, seed=2), policies=policies)
    assert len(experiments) == 6
    assert set(experiments["plan"]) == {"status-quo", "defense-cover"}
    cost = outcomes["plan_cost_usd"]
    assert (cost[experiments["plan"] == "status-quo"] == 0).all()
    assert (cost[experiments["plan"] == "defense-cover"] > 0).all()


def test_plan_parameter_of_no_plan_is_an_error():
    """A parameter naming a lever that no plan has fails before any run, naming it."""
    with pytest.raises(sim.ModelError, match=r"levers\.size: no plan has a lever 'reserve'"):
        se.ema_model("teaching", _scenario(), uncertainties=UNCERTAINTIES,
                     plans=["status-quo", COVER_PLAN],
                     levers={"size": ("plan.levers.reserve.target_t", 0, 10)}, horizon_days=30)
    with pytest.raises(sim.ModelError,
                       match=r"levers\.x = 1 under plan 'defense-cover': .*no field 'extra_dayz'"):
        se.ema_model("teaching", _scenario(), uncertainties=UNCERTAINTIES, plans=[COVER_PLAN],
                     levers={"x": ("plan.levers.cover.extra_dayz", 1, 10)}, horizon_days=30)
