"""experiments/diversification.py: the five shipped plans under the truce scenarios end to end
with --quick (comparison, robustness, PRIM box and figures), its scenario-discovery space, and
its error exit."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pandas as pd
import pytest

import sim
from conftest import REPO_ROOT

pytest.importorskip("ema_workbench",
                    reason="the scenario discovery needs the optional extra 'ema'")


@pytest.fixture(scope="module")
def div():
    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    try:
        yield importlib.import_module("diversification")
    finally:
        sys.path.remove(str(REPO_ROOT / "experiments"))


@pytest.mark.slow                   # about 20 s of CPU: the whole study, a few replications
def test_quick_run_end_to_end(div, tmp_path, capsys):
    """--quick writes the comparison, robustness and PRIM tables and every figure; the status
    quo is the reference (no difference, no cost); regrets are never negative and some plan
    has none in each member; a fifth of the experiments are cases of interest and the box lies
    inside the sampled ranges."""
    assert div.main(["--quick", "--workers", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "comparison_table.csv")
    assert set(table["plan"]) == set(div.PLANS) and set(table["scenario"]) == set(div.SCENARIOS)
    assert len(table) == len(div.PLANS) * len(div.SCENARIOS)
    sq = table[table["plan"] == "status-quo"]
    assert (sq["cost_usd"] == 0).all() and (sq["civil_fill_diff_points"] == 0).all()
    assert ((table["civil_fill"] > 0) & (table["civil_fill"] <= 1)).all()
    assert (table.loc[table["plan"] != "status-quo", "cost_usd"] > 0).all()
    civil = pd.read_csv(tmp_path / "robustness_civil.csv")
    defense = pd.read_csv(tmp_path / "robustness_defense.csv")
    assert set(civil["plan"]) == set(defense["plan"]) == set(div.PLANS)
    assert (civil["max_regret"] >= 0).all() and defense["target_share"].between(0, 1).all()
    leading = civil["plan"].iloc[0]
    assert f"leading plan (least maximum regret in civil fill): {leading}" in out
    prim = pd.read_csv(tmp_path / "prim" / "experiments.csv")
    assert len(prim) == div.QUICK["experiments"]
    assert prim["case_of_interest"].mean() == pytest.approx(div.FAIL_QUANTILE, abs=0.05)
    box = pd.read_csv(tmp_path / "prim" / "prim_box.csv", index_col="uncertainty")
    for name, row in box.iterrows():
        assert prim[name].min() <= row["min"] <= row["max"] <= prim[name].max()
    meta = json.loads((tmp_path / "prim" / "manifest.json").read_text())
    assert meta["plan"] == leading and meta["seed"] == div.RANDOM_SEED
    for fig in ("comparison/plan_forest.png", "comparison/cost_effectiveness.png",
                "robustness/regret.png", "prim/prim_box.png"):
        assert (tmp_path / fig).stat().st_size > 0
    assert (tmp_path / "comparison" / "manifest.json").exists()


def test_demand_factor_sets_every_sectors_surge(div):
    """The discovery space's demand factor is one value on a surge per demand sector over the
    whole run, added at factor 1 (so the base scenario's demand is unchanged until sampled)."""
    from sim.sweep import apply_params

    net = sim.load_network(div.NETWORK)
    base = sim.load_scenario(div.ENSEMBLE_BASE)
    scenario, space = div.discovery_space(net, base)
    paths, low, high = space["demand_factor"]
    sectors = sorted({n.sector for n in net.nodes.values() if n.demand and n.sector})
    surges = scenario.to_dict()["demand_surges"]
    assert len(paths) == len(sectors) and sorted(s["sector"] for s in surges[-len(sectors):]) \
        == sectors
    assert all(s["factor"] == 1.0 for s in surges[-len(sectors):])
    _, sc2 = apply_params(net, scenario, dict.fromkeys(paths, 1.25))
    assert [s.factor for s in sc2.demand_surges][-len(sectors):] == [1.25] * len(sectors)
    assert {"escalation_review_days", "project_delay_days"} <= set(space)
    assert all(np.isfinite([low, high]))


def test_unknown_plan_is_an_error_exit(div, tmp_path, capsys):
    """A plan that does not exist ends with exit status 2 and a one-line error naming it."""
    assert div.main(["--quick", "--workers", "1", "--out", str(tmp_path),
                     "--plans", "status-quo", "no-such-plan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no-such-plan" in err[0]
