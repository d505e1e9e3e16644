"""Monte Carlo bands for any scope, plans x scenarios on common random numbers (sim.study),
regret and robustness tables, and the compare/robustness commands."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.experiment import MonteCarloResults

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
