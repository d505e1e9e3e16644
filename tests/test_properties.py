"""Property tests (hypothesis): invariants that hold for every small network and scenario.

Networks are generated as TOML-shaped dicts: one or two mines feeding a processor (a recipe of
ore into oxide, limited capacity) that supplies one to three buyers under base-stock, (s, S)
or (r, Q) policies with continuous or periodic review, Poisson or periodic demand, backorders
or lost sales; scenarios add a processor outage, a lane closure into a buyer (cancelling or
keeping the orders queued on it) and a demand surge. For each:

* material is conserved (initial + produced = consumed + delivered + final + in transit, per
  material) and no stock, pipeline or flow goes negative, on any day;
* the bulk paths (customer orders served in bulk between decisions, batches completed
  without events) give the results of one event per customer order and per batch;
* a network written with :func:`sim.save_network` reads back as the same network.

Examples are derandomized, so a run of the suite is reproducible; hypothesis prints the
failing example's dict when a property fails.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import sim  # noqa: E402

#: few, fast examples, the same on every run (no example database written in the tree)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

START = _dt.date(2025, 1, 1)
REL = 1e-9      # rounding allowed, relative to a material's flows


def _policy(draw, level: float) -> dict:
    """A valid stock policy around *level* tonnes (continuous or periodic review)."""
    kind = draw(st.sampled_from(["base_stock", "sS", "rQ"]))
    review = draw(st.sampled_from([0, 0, 7]))
    if kind == "base_stock":
        policy = {"type": "base_stock", "S": level}
    elif kind == "sS":
        policy = {"type": "sS", "s": round(level * draw(st.floats(0.2, 0.8)), 3), "S": level}
    else:
        policy = {"type": "rQ", "r": round(level * draw(st.floats(0.2, 0.8)), 3),
                  "Q": round(level * draw(st.floats(0.3, 1.0)), 3)}
    if review:
        policy["review_days"] = review
    return policy


def _lead_time(draw):
    """A fixed or uniform lead time of 1-20 days."""
    low = draw(st.integers(1, 12))
    if draw(st.booleans()):
        return low
    return {"dist": "uniform", "min": low, "max": low + draw(st.integers(1, 8))}


@st.composite
def networks(draw) -> dict:
    """A small valid network as a TOML-shaped dict (see the module docstring)."""
    recipe = draw(st.sampled_from([1.0, 1.5, 2.0, 3.0]))
    n_mines = draw(st.integers(1, 2))
    n_buyers = draw(st.integers(1, 3))
    nodes: dict = {}
    lanes: list = []
    for i in range(n_mines):
        nodes[f"mine{i}"] = {
            "kind": "mine", "country": ["AU", "CN"][i],
            "production": {"ore": {"capacity_t_per_year": draw(st.sampled_from([200, 800, 3000])),
                                   "target_stock": draw(st.sampled_from([0, 10, 40])),
                                   "batch_days": draw(st.sampled_from([1, 3]))}},
            "stock": {"ore": {"initial": draw(st.sampled_from([0, 5, 30]))}}}
        lanes.append({"from": f"mine{i}", "to": "proc", "material": "ore",
                      "lead_time": _lead_time(draw), "share": 1.0 / n_mines})
    ore_level = float(draw(st.sampled_from([10, 30, 80])))
    ore_policy = _policy(draw, ore_level)
    if n_mines > 1 and ore_policy["type"] == "base_stock":
        # A continuous-review base-stock order split over two lanes, feeding a line that
        # starts a batch at every arrival, halves the flow into ever smaller shipments each
        # lead time (their number doubles per cycle, without end): review it periodically,
        # as a real buyer would, so that the orders of a week go together.
        ore_policy["review_days"] = 7
    nodes["proc"] = {
        "kind": "processor", "country": "MY",
        "production": {"oxide": {"capacity_t_per_year": draw(st.sampled_from([100, 400, 1500])),
                                 "recipe": {"ore": recipe},
                                 "target_stock": draw(st.sampled_from([0, 5, 20])),
                                 "batch_days": draw(st.sampled_from([1, 2, 5]))}},
        "stock": {"ore": {"initial": ore_level, "policy": ore_policy},
                  "oxide": {"initial": draw(st.sampled_from([0, 5, 15]))}}}
    for j in range(n_buyers):
        level = float(draw(st.sampled_from([2, 6, 15])))
        if draw(st.booleans()):
            demand = {"process": "poisson",
                      "rate_t_per_year": draw(st.sampled_from([20, 60, 150, 400])),
                      "order_size": draw(st.sampled_from(
                          [1, 2.5, {"dist": "uniform", "min": 0.5, "max": 3}]))}
        else:
            demand = {"process": "periodic", "rate_t_per_year": draw(st.sampled_from([24, 120])),
                      "period_days": draw(st.sampled_from([7, 30])),
                      "cv": draw(st.sampled_from([0.0, 0.3]))}
        sector = draw(st.sampled_from(["automotive", "defense"]))
        nodes[f"buyer{j}"] = {
            "kind": "defense_user" if sector == "defense" else "manufacturer",
            "country": "US", "sector": sector,
            "unmet": draw(st.sampled_from(["backorder", "lost"])),
            "stock": {"oxide": {"initial": level, "policy": _policy(draw, level)}},
            "demand": {"oxide": demand}}
        lanes.append({"from": "proc", "to": f"buyer{j}", "material": "oxide",
                      "lead_time": _lead_time(draw)})
    return {"network": {"name": "generated"},
            "materials": {"ore": {"elements": ["Nd"], "price_usd_per_t": 1.0},
                          "oxide": {"elements": ["Nd"], "price_usd_per_t": 5.0}},
            "nodes": nodes, "lanes": lanes}


@st.composite
def scenarios(draw, network: dict) -> dict | None:
    """No scenario, or one with a processor outage, a closure of a lane into a buyer and a
    demand surge (each present or not), all within the first year."""
    if draw(st.integers(0, 3)) == 0:
        return None

    def day() -> str:
        return (START + _dt.timedelta(days=draw(st.integers(0, 300)))).isoformat()

    spec: dict = {"scenario": {"name": "generated"}}
    if draw(st.integers(0, 2)):
        spec["outages"] = [{"node": "proc", "start": day(),
                            "duration_days": draw(st.integers(5, 60))}]
    if draw(st.integers(0, 2)):
        buyer = draw(st.sampled_from([n for n in network["nodes"] if n.startswith("buyer")]))
        spec["lane_closures"] = [{"lane": f"proc->{buyer}:oxide", "start": day(),
                                  "duration_days": draw(st.integers(5, 60)),
                                  "queued_orders": draw(st.sampled_from(["reroute", "keep"]))}]
    if draw(st.booleans()):
        sector = network["nodes"]["buyer0"]["sector"]
        start = draw(st.integers(0, 250))
        spec["demand_surges"] = [{
            "sector": sector, "factor": draw(st.sampled_from([0.5, 2.0, 3.0])),
            "start": (START + _dt.timedelta(days=start)).isoformat(),
            "end": (START + _dt.timedelta(days=start + draw(st.integers(10, 90)))).isoformat()}]
    return spec


@st.composite
def cases(draw):
    """A network, a scenario for it (or None), a seed and a horizon."""
    network = draw(networks())
    return (network, draw(scenarios(network)), draw(st.integers(0, 2**16)),
            float(draw(st.sampled_from([200, 365, 500]))))


def _run(network: dict, scenario: dict | None, seed: int, horizon: float, **modes) -> sim.Run:
    return sim.simulate(sim.Network.from_dict(network), scenario, seed=seed, start=START,
                        horizon_days=horizon, **modes)


@PROPERTY
@given(cases())
def test_material_is_conserved_and_no_stock_goes_negative(case):
    """Per material, initial + produced = consumed + delivered + final stock + in transit (to
    rounding); every flow and the final stocks and pipelines are non-negative; and every
    stock's end-of-day inventory is non-negative on every day of the run."""
    run = _run(*case)
    balance = run.material_balance()
    assert set(balance["material"]) == {"ore", "oxide"}
    for row in balance.itertuples():
        scale = max(1.0, row.initial + row.produced + row.consumed + row.delivered)
        assert abs(row.residual) <= REL * scale, f"{row.material}: residual {row.residual}"
        for term in ("produced", "consumed", "delivered", "final_stock", "in_transit"):
            assert getattr(row, term) >= -REL * scale, f"{row.material}: {term} < 0"
    series = run.series()
    for column in ("inventory", "on_order", "received", "shipped", "produced", "consumed",
                   "demand", "filled"):
        worst = series[column].min()
        assert worst >= -1e-9 * max(1.0, series[column].abs().max()), (
            f"{column} goes negative: {worst}")
    assert (series["filled"] <= series["demand"] + 1e-9).all()


@PROPERTY
@given(cases())
def test_bulk_paths_match_one_event_per_order_and_batch(case):
    """Serving customer orders in bulk between decisions and completing quiet batches without
    events gives the KPIs, daily series, shipments and policy events of one SimPy event per
    customer order and per batch."""
    bulk = _run(*case)
    events = _run(*case, demand_mode="events", production_mode="events")
    ka = {(k, s): v for k, s, v in bulk.kpi_rows()}
    kb = {(k, s): v for k, s, v in events.kpi_rows()}
    assert ka.keys() == kb.keys()
    differ = {k: (ka[k], kb[k]) for k in ka
              if ka[k] != pytest.approx(kb[k], rel=1e-12, abs=1e-12)}
    assert not differ, f"{len(differ)} KPIs differ, e.g. {list(differ.items())[:4]}"
    pd.testing.assert_frame_equal(bulk.series(), events.series(), rtol=1e-12, atol=1e-9)
    for la, lb in zip(bulk.lanes, events.lanes, strict=True):
        np.testing.assert_allclose(la.log, lb.log, rtol=1e-12, atol=1e-9, err_msg=la.id)
    assert bulk.policy_events == events.policy_events


@PROPERTY
@given(networks())
def test_toml_round_trip_keeps_the_network(tmp_path_factory, network):
    """``save_network`` then ``load_network`` gives the same network: the same content digest
    and the same dict."""
    net = sim.Network.from_dict(network)
    path = tmp_path_factory.mktemp("roundtrip") / "network.toml"
    again = sim.load_network(sim.save_network(net, path))
    assert again.digest() == net.digest()
    assert again.to_dict() == net.to_dict()
