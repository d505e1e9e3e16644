"""Plant fleets (sim/fleet.py): schema and validation, plant levels by hand, a fleet of one plant
is the node bit for bit, fleet totals are sums over plants and its first stoppage the
earliest plant's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpi_reference import library_stream_kpis

import sim
from sim.fleet import parse_fleet, plant_records
from sim.results import DemandRecord

FLEET = {"source": "test", "plants": [
    {"name": "jit", "share": 0.4, "count": 2, "cover_days": 10},
    {"name": "buffered", "share": 0.6, "count": 2, "cover_days": [60, 90]}]}


def _short_teaching(teaching, fleet: dict | None = None) -> sim.Network:
    """The teaching network with the magnet maker's capacity cut below demand (backorders
    stay), and *fleet* at the US car maker."""
    d = teaching.to_dict()
    d["nodes"]["magnets_jp"]["production"]["ndfeb_magnet"]["capacity_t_per_year"] = 500
    if fleet is not None:
        d["nodes"]["auto_us"]["fleet"] = fleet
    return sim.Network.from_dict(d)


# -- schema -----------------------------------------------------------------------------------

def test_cover_quantiles_and_names():
    fleet = parse_fleet("n", {"plants": [
        {"name": "u", "share": 0.5, "count": 4, "cover_days": {"dist": "uniform", "min": 60,
                                                               "max": 100}},
        {"name": "t", "share": 0.25, "count": 2,
         "cover_days": {"dist": "triangular", "min": 0, "mode": 0, "max": 40}},
        {"name": "one", "share": 0.25, "cover_days": 7}]})
    plants = fleet.plants()
    assert [p[0] for p in plants] == ["u#1", "u#2", "u#3", "u#4", "t#1", "t#2", "one"]
    assert [p[3] for p in plants[:4]] == [65.0, 75.0, 85.0, 95.0]       # (j - 0.5) / 4
    # triangular(0, 0, 40): F^-1(p) = 40 (1 - sqrt(1 - p)) at p = 0.25, 0.75
    assert plants[4][3] == pytest.approx(40 * (1 - math.sqrt(0.75)))
    assert plants[5][3] == pytest.approx(40 * (1 - math.sqrt(0.25)))
    assert [p[2] for p in plants] == [0.125] * 4 + [0.125] * 2 + [0.25]
    assert fleet.mean_cover == pytest.approx(
        0.5 * 80 + 0.125 * 40 * (2 - math.sqrt(0.75) - math.sqrt(0.25)) + 0.25 * 7)


def test_fleet_round_trips_through_the_network_dict(teaching):
    net = _short_teaching(teaching, FLEET)
    again = sim.Network.from_dict(net.to_dict())
    assert again.nodes["auto_us"].fleet == net.nodes["auto_us"].fleet
    assert again.digest() == net.digest()


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda d: d["nodes"]["auto_us"].update(unmet="lost"), "fleet", "unmet = 'backorder'"),
    (lambda d: d["nodes"]["auto_us"]["fleet"]["plants"][0].update(share=0.5), "fleet.plants",
     "sum to 1.1"),
    (lambda d: d["nodes"]["auto_us"]["fleet"]["plants"][1].update(cover_days=[60]),
     "fleet.plants[1].cover_days", "one per plant (2)"),
    (lambda d: d["nodes"]["auto_us"]["fleet"]["plants"][1].update(count=0),
     "fleet.plants[1].count", "integer >= 1"),
    (lambda d: d["nodes"]["auto_us"]["fleet"]["plants"][0].update(
        cover_days={"dist": "lognormal", "mean": 10, "sd": 2}),
     "fleet.plants[0].cover_days", "fixed, uniform or triangular"),
    (lambda d: d["nodes"]["auto_us"]["fleet"]["plants"][0].update(cover_days=-1),
     "fleet.plants[0].cover_days", ">= 0"),
    (lambda d: d["nodes"]["auto_us"]["fleet"]["plants"][1].update(name="jit"),
     "fleet.plants[1].name", "duplicate"),
    (lambda d: d["nodes"]["auto_us"]["fleet"].update(size=3), "fleet", "unknown field"),
    # mean cover 0.4 x 10 + 0.3 x (60 + 90) = 49 days; the jit plants need 39 days at the node
    (lambda d: d["nodes"]["auto_us"]["stock"]["ndfeb_magnet"].update(initial=70),
     "stock.ndfeb_magnet.initial", "would start short"),
    (lambda d: d["nodes"]["mine_cn"].update(fleet=FLEET), "fleet", "customer demand"),
])
def test_validation_names_file_node_and_field(teaching, tmp_path, change, field, message):
    import copy

    import tomli_w

    d = teaching.to_dict()
    d["nodes"]["auto_us"]["fleet"] = copy.deepcopy(FLEET)
    change(d)
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps(sim.network._toml_ready(d)))
    with pytest.raises(sim.ModelError) as info:
        sim.load_network(path)
    text = str(info.value)
    assert text.startswith(f"{path}: node '")
    assert f": {field}: " in text
    assert message in text


# -- plant levels by hand ---------------------------------------------------------------------

def test_plant_levels_by_hand():
    """Node: 10 t at the start, orders of 4 t on days 0.5, 1.5, 2.5, 3.5, 8 t arriving on day
    2.2: levels before the orders 10, 6, 10, 6; at the ends of days 0-3: 6, 2, 6, 2. Two
    plants of share 0.5 with covers 10 and 30 days (mean 20), demand 0.5 t/day: offsets
    (20 - 10) x 0.5 = 5 t and -5 t, so the plants' levels are 0.5 (L - 5) and 0.5 (L + 5)."""
    T = np.array([0.5, 1.5, 2.5, 3.5])
    D = np.full(4, 4.0)
    L = np.array([10.0, 6.0, 10.0, 6.0])
    node = DemandRecord("n", "m", "automotive", "US", False, T, D, L, np.clip(L, 0.0, D),
                        np.array([6.0, 2.0, 6.0, 2.0]))
    fleet = parse_fleet("n", {"plants": [{"name": "lean", "share": 0.5, "cover_days": 10},
                                         {"name": "fat", "share": 0.5, "cover_days": 30}]})
    assert fleet.initial_split(10.0, 0.5) == [2.5, 7.5]
    lean, fat = plant_records(node, fleet, 0.5)
    assert (lean.plant, lean.plant_class, fat.plant) == ("lean", "lean", "fat")
    assert list(lean.D) == [2.0] * 4
    assert list(lean.level_before) == [2.5, 0.5, 2.5, 0.5]
    assert list(lean.filled) == [2.0, 0.5, 2.0, 0.5]
    assert list(lean.daily_level) == [0.5, -1.5, 0.5, -1.5]
    assert list(fat.level_before) == [7.5, 5.5, 7.5, 5.5]
    assert list(fat.filled) == [2.0] * 4
    assert list(fat.daily_level) == [5.5, 3.5, 5.5, 3.5]
    assert list(lean.level_before + fat.level_before) == list(L)      # the plants sum to L
    k = library_stream_kpis(lean, 0.0, 4.0)
    # the pooled node is never short; the lean plant is on days 1 and 3 (and day 2 begins
    # with its backlog of day 1)
    assert library_stream_kpis(node, 0.0, 4.0)["shortage_occurred"] == 0.0
    assert (k["first_shortage_day"], k["stockout_days"], k["filled_t"]) == (1.5, 3.0, 5.0)


# -- runs -------------------------------------------------------------------------------------

def test_a_fleet_of_one_plant_is_the_node_bit_for_bit(teaching):
    one = {"plants": [{"name": "all", "share": 1.0, "cover_days": 45}]}
    plain = sim.simulate(_short_teaching(teaching), seed=4, horizon_days=500)
    fleet = sim.simulate(_short_teaching(teaching, one), seed=4, horizon_days=500)
    assert plain.kpi("shortage_occurred", "node:auto_us") == 1.0
    got = {(k, s): v for k, s, v in fleet.kpi_rows()}
    for k, s, v in plain.kpi_rows():
        assert np.float64(got[(k, s)]).tobytes() == np.float64(v).tobytes(), (k, s)
    for k, s, v in fleet.kpi_rows():
        if s == "plants:auto_us/all":
            assert np.float64(v).tobytes() == np.float64(got[(k, "node:auto_us")]).tobytes()
    plants = fleet.plant_kpis()
    assert set(plants["plant"]) == {"all"}


def test_fleet_totals_are_sums_over_plants_and_its_stoppage_the_earliest(teaching):
    plain = sim.simulate(_short_teaching(teaching), seed=5, horizon_days=700)
    run = sim.simulate(_short_teaching(teaching, FLEET), seed=5, horizon_days=700)
    # the engine runs the node as before: the same pooled records
    for a, b in zip(plain.demand, run.demand):
        assert a.level_before.tobytes() == b.level_before.tobytes()
    # the plants' orders and levels add up to the node's, order by order and day by day
    (node,) = [d for d in run.demand if d.node == "auto_us"]
    plants = [d for d in run._kpi_streams if d.node == "auto_us"]
    assert len(plants) == 4
    for name in ("D", "level_before", "daily_level"):
        np.testing.assert_allclose(sum(getattr(q, name) for q in plants), getattr(node, name),
                                   rtol=1e-12, atol=1e-9)
    for q in plants:
        assert (q.filled <= q.D).all() and (q.filled >= 0).all()
    p = run.plant_kpis().pivot(index="plant", columns="kpi", values="value")
    assert list(p.index) == sorted(["jit#1", "jit#2", "buffered#1", "buffered#2"])
    for scope, plants in (("node:auto_us", list(p.index)),
                          ("plants:auto_us/jit", ["jit#1", "jit#2"]),
                          ("plants:auto_us/buffered", ["buffered#1", "buffered#2"])):
        q = p.loc[plants]
        for name in ("demand_t", "filled_t", "backordered_t", "orders"):
            assert run.kpi(name, scope) == pytest.approx(q[name].sum(), rel=1e-12), (scope, name)
        assert run.kpi("first_shortage_day", scope) == q["first_shortage_day"].min()
        assert run.kpi("shortage_occurred", scope) == q["shortage_occurred"].max()
        assert q["stockout_days"].max() <= run.kpi("stockout_days", scope) \
            <= q["stockout_days"].sum()
        assert run.kpi("fill_rate", scope) == pytest.approx(
            q["filled_t"].sum() / q["demand_t"].sum(), rel=1e-12)
    # the node's demand is the plants' (up to rounding), and the lean plants stop first,
    # before the pooled node did
    assert run.kpi("demand_t", "node:auto_us") == pytest.approx(
        plain.kpi("demand_t", "node:auto_us"), rel=1e-12)
    first = p["first_shortage_day"]
    assert first["jit#1"] == first.min() < first["buffered#2"]
    assert run.kpi("first_shortage_day", "node:auto_us") < \
        plain.kpi("first_shortage_day", "node:auto_us")
    # stock sits at the plants: a plant's surplus does not cover another's backlog, so the
    # fleet holds (and owes) at least what the pooled node does
    assert run.kpi("holding_cost_usd", "node:auto_us") >= \
        plain.kpi("holding_cost_usd", "node:auto_us")
    fleet_bo = run.sector_series()["automotive"]["backorders"]
    pooled_bo = plain.sector_series()["automotive"]["backorders"]
    assert (fleet_bo >= pooled_bo - 1e-9).all() and fleet_bo.sum() > pooled_bo.sum()
    assert run.kpi("first_shortage_day", "network") == min(
        run.kpi("first_shortage_day", "node:auto_us"),
        run.kpi("first_shortage_day", "node:defense_us"))


def test_cli_run_prints_the_fleet_and_both_first_shortage_dates(teaching, tmp_path, run_cli):
    """``python -m sim run`` on a network with a fleet: the first shortage from the start and
    after the event (with the event date) by sector, the fleet's first plant short, and the
    plant-class scopes in summary.csv."""
    import pandas as pd

    path = tmp_path / "fleet.toml"
    sim.save_network(_short_teaching(teaching, FLEET), path)
    scenario = tmp_path / "event.toml"
    scenario.write_text('[scenario]\nname = "event"\nstart = 2025-01-01\n'
                        'shortage_after = 2025-06-01\n')
    out = tmp_path / "run"
    proc = run_cli("run", "--network", path, "--scenario", scenario, "--days", "500",
                   "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "first shortage after 2025-06-01" in proc.stdout
    assert "fleet auto_us (4 plants): first plant short 2025-" in proc.stdout
    kpis = pd.read_csv(out / "summary.csv")
    assert {"plants:auto_us/jit", "plants:auto_us/buffered"} <= set(kpis["scope"])
    event = kpis[(kpis["kpi"] == "shortage_after_event_day") & (kpis["scope"] == "policy")]
    assert list(event["label"]) == ["2025-06-01"]
