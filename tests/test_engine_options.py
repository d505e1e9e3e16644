"""Node and lane options: whole-order shipping, overlapping lane closures, rated orders."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import sim


def _two_stage(partial: bool, *, closures=()):
    """A supplier (mine) trickling 10 t/day into a stock, one buyer ordering 35 t lots."""
    net = sim.Network.from_dict({
        "network": {"name": "two-stage"},
        "materials": {"ore": {"elements": ["Nd"], "price_usd_per_t": 1.0}},
        "nodes": {
            "mine": {"kind": "mine", "country": "AU", "partial_shipments": partial,
                     "production": {"ore": {"capacity_t_per_year": 3650, "batch_days": 1,
                                            "target_stock": 40}},
                     "stock": {"ore": {"initial": 0}}},
            "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                      "stock": {"ore": {"initial": 50, "policy": {"type": "rQ", "r": 40,
                                                                  "Q": 35}}},
                      "demand": {"ore": {"process": "periodic", "rate_t_per_year": 3000,
                                         "period_days": 1}}},
        },
        "lanes": [{"from": "mine", "to": "buyer", "material": "ore", "lead_time": 2}],
    })
    sc = None
    if closures:
        sc = sim.Scenario.from_dict({"lane_closures": [
            {"lane": "mine->buyer:ore", "start": f"2025-01-{d0:02d}", "duration_days": dur}
            for d0, dur in closures]})
    return net, sc


def test_whole_order_shipping_ships_only_complete_orders():
    """With partial_shipments = false every shipment equals an order quantity (35 t lots);
    with the default, shipments are split as stock trickles in."""
    net, _ = _two_stage(False)
    run = sim.simulate(net, seed=1, horizon_days=200)
    sizes = run.lanes[0].log[:, 1]
    assert len(sizes) > 10
    np.testing.assert_allclose(sizes, 35.0)
    net, _ = _two_stage(True)
    run = sim.simulate(net, seed=1, horizon_days=200)
    assert (run.lanes[0].log[:, 1] < 35.0 - 1e-9).any()
    assert abs(run.material_balance()["residual"]).max() < 1e-6


def test_overlapping_lane_closures_keep_the_lane_closed_until_the_last_ends():
    """Closures on days 10-30 and 15-45 of the same lane: nothing ships in [10, 45)."""
    net, sc = _two_stage(True, closures=((11, 20), (16, 30)))
    run = sim.simulate(net, sc, seed=1, horizon_days=120)
    shipped = run.lanes[0].log[:, 0]
    assert not ((shipped >= 10) & (shipped < 45)).any()
    assert (shipped >= 45).any()
    assert abs(run.material_balance()["residual"]).max() < 1e-6


def test_echelon_policy_counts_the_output_position():
    """An echelon raw-material policy orders on raw position + recipe x output position: with
    (s, S) = (30, 80) in output units and 60 t of output on hand, nothing is ordered at the
    start; once the output position falls to 30 the plant orders exactly S - position."""
    net = sim.Network.from_dict({
        "network": {"name": "echelon"},
        "materials": {"ore": {"elements": ["Nd"], "price_usd_per_t": 1.0},
                      "oxide": {"elements": ["Nd"], "price_usd_per_t": 2.0}},
        "nodes": {
            "mine": {"kind": "mine", "country": "AU",
                     "production": {"ore": {"capacity_t_per_year": 365_000, "batch_days": 1,
                                            "target_stock": 1000}},
                     "stock": {"ore": {"initial": 1000}}},
            "sep": {"kind": "processor", "country": "MY",
                    "production": {"oxide": {"capacity_t_per_year": 36_500, "batch_days": 1,
                                             "target_stock": 80, "recipe": {"ore": 2.0}}},
                    "stock": {"oxide": {"initial": 60},
                              "ore": {"initial": 0, "policy": {"type": "sS", "s": 60, "S": 160,
                                                               "echelon": True}}}},
            "user": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                     "stock": {"oxide": {"initial": 0, "policy": {"type": "rQ", "r": 0,
                                                                  "Q": 10}}},
                     "demand": {"oxide": {"process": "periodic", "rate_t_per_year": 3650,
                                          "period_days": 1}}},
        },
        "lanes": [{"from": "mine", "to": "sep", "material": "ore", "lead_time": 5},
                  {"from": "sep", "to": "user", "material": "oxide", "lead_time": 1}],
    })
    run = sim.simulate(net, seed=0, horizon_days=60)
    ore = next(s for s in run.stocks if s.node == "sep" and s.material == "ore")
    ordered = ore.log[ore.log[:, 1] == sim.records.REC_ORDERED]
    assert len(ordered) >= 2
    # orders fire when the echelon position (ore + 2 x oxide position) is at or below 60 ore
    # units and lift it to S = 160; the position falls in steps of 2 x 10 t (one rQ order of
    # the user), so each order is between 100 and 120 ore units
    assert ((ordered[:, 2] >= 100 - 1e-9) & (ordered[:, 2] <= 120 + 1e-9)).all()
    assert ordered[0, 0] > 0
    assert abs(run.material_balance()["residual"]).max() < 1e-6


def test_echelon_policy_needs_a_single_consuming_line():
    """An echelon policy on a stock no production line consumes is a validation error."""
    import pytest

    with pytest.raises(sim.ModelError, match="echelon"):
        sim.Network.from_dict({
            "network": {"name": "bad"},
            "materials": {"ore": {"elements": ["Nd"]}},
            "nodes": {"mine": {"kind": "mine", "country": "AU",
                               "production": {"ore": {"capacity_t_per_year": 10}}},
                      "pile": {"kind": "stockpile", "country": "US",
                               "stock": {"ore": {"initial": 1, "policy": {
                                   "type": "sS", "s": 1, "S": 2, "echelon": True}}}}},
            "lanes": [{"from": "mine", "to": "pile", "material": "ore", "lead_time": 1}],
        })


def _kpis_and_levels(run):
    rows = {(k, s): v for k, s, v in run.kpi_rows()}
    levels = [a.copy() for a in run.daily_on_hand_by_stock()]
    return rows, levels


def _assert_same(a, b):
    ka, la = _kpis_and_levels(a)
    kb, lb = _kpis_and_levels(b)
    assert ka.keys() == kb.keys()
    for key in ka:
        assert abs(ka[key] - kb[key]) <= 1e-9 * max(1.0, abs(ka[key])), key
    for x, y in zip(la, lb):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)


def test_lazy_production_gives_the_same_results_as_one_event_per_batch():
    """production_mode="bulk" (batches of input-free lines that ship nothing are not events,
    nor are arrivals at quiet stocks) reproduces production_mode="events" exactly, with fewer
    events: on the teaching network,
    on the default network under a scenario with licensing, denials, a truce and outages, and
    on a network whose mine ships whole orders."""
    outage = {"outages": [{"node": "mine_au", "start": "2025-03-01", "duration_days": 60},
                          {"node": "mine_cn", "mtbf_days": 200, "mttr_days": 20}]}
    cases = [("teaching", None), ("teaching", sim.Scenario.from_dict(outage)),
             ("rare_earth_2025", "truce-uncertain"), ("rare_earth_2025", "controls-oct-2025")]
    for net, sc in cases:
        for seed in (0, 1):
            bulk = sim.simulate(net, sc, seed=seed)
            events = sim.simulate(net, sc, seed=seed, production_mode="events")
            _assert_same(bulk, events)
            assert bulk.stats["events"] < events.stats["events"]
    net, _ = _two_stage(False)
    _assert_same(sim.simulate(net, seed=3, horizon_days=300),
                 sim.simulate(net, seed=3, horizon_days=300, production_mode="events"))


def test_held_back_arrivals_match_one_event_per_arrival_under_every_policy_path(
        stressed_teaching_dict, stress_scenario):
    """Arrivals held back at quiet stocks give exactly the results of one event per arrival
    while licences are denied (shipments return, orders are cancelled), bans and closures
    drop backlogs, quotas queue shipments and outages stop lines."""
    net = sim.Network.from_dict(stressed_teaching_dict)
    for seed in range(3):
        bulk = sim.simulate(net, stress_scenario, seed=seed)
        events = sim.simulate(net, stress_scenario, seed=seed, production_mode="events")
        _assert_same(bulk, events)
        assert bulk.kpi("licence_denials", "policy") > 0
        assert bulk.stats["events"] < events.stats["events"]
        for s in bulk.stocks:
            assert np.all(np.diff(s.log[:, 0]) >= 0), s.node


def _two_supplier_net(max_wait):
    """A buyer with two suppliers (shares 0.5/0.5): a slow one (capacity 1 t/day, no stock)
    and a fast one with plenty of stock."""
    buyer = {"kind": "manufacturer", "country": "US", "sector": "automotive",
             "stock": {"ore": {"initial": 20, "policy": {"type": "sS", "s": 10, "S": 30}}},
             "demand": {"ore": {"process": "periodic", "rate_t_per_year": 1825,
                                "period_days": 1}}}
    if max_wait is not None:
        buyer["max_supplier_wait_days"] = max_wait
    return sim.Network.from_dict({
        "network": {"name": "responsive"},
        "materials": {"ore": {"elements": ["Nd"], "price_usd_per_t": 1.0}},
        "nodes": {
            "slow": {"kind": "mine", "country": "CN",
                     "production": {"ore": {"capacity_t_per_year": 365, "batch_days": 1,
                                            "target_stock": 5}}},
            "fast": {"kind": "mine", "country": "AU",
                     "production": {"ore": {"capacity_t_per_year": 36_500, "batch_days": 1,
                                            "target_stock": 500}},
                     "stock": {"ore": {"initial": 500}}},
            "buyer": buyer,
        },
        "lanes": [{"from": "slow", "to": "buyer", "material": "ore", "lead_time": 3,
                   "share": 0.5},
                  {"from": "fast", "to": "buyer", "material": "ore", "lead_time": 3,
                   "share": 0.5}],
    })


def test_responsive_sourcing_avoids_a_congested_supplier():
    """With fixed shares half of every order queues at a supplier that makes 1 t/day against
    2.5 t/day ordered, so the buyer runs short; with max_supplier_wait_days the buyer sends
    orders the slow supplier could not ship in time to the other one, and fills better. The
    books balance either way."""
    fixed = sim.simulate(_two_supplier_net(None), seed=0, horizon_days=365)
    responsive = sim.simulate(_two_supplier_net(10), seed=0, horizon_days=365)
    assert fixed.kpi("fill_rate") < 0.9
    assert responsive.kpi("fill_rate") > fixed.kpi("fill_rate") + 0.05
    fast = lambda run: next(l for l in run.lanes if l.src == "fast").log[:, 1].sum()  # noqa: E731
    assert fast(responsive) > fast(fixed)
    for run in (fixed, responsive):
        assert abs(run.material_balance()["residual"]).max() < 1e-6


def test_responsive_sourcing_reads_a_lazy_supplier_up_to_date():
    """A buyer with max_supplier_wait_days judges a mine whose batches complete without events
    (lazy production) by its stock brought up to date: the same shipments as with one event
    per batch. (Before the fix the mine's stock was read as of its last event, and the buyer
    dropped the lane when it should not have.)"""
    def net():
        buyer = {"kind": "manufacturer", "country": "US", "sector": "automotive",
                 "max_supplier_wait_days": 3,
                 "stock": {"ore": {"initial": 20, "policy": {"type": "sS", "s": 10, "S": 30}}},
                 "demand": {"ore": {"process": "poisson", "rate_t_per_year": 365,
                                    "order_size": 1.0}}}
        d = _two_supplier_net(None).to_dict()
        d["nodes"]["buyer"] = buyer
        d["nodes"]["slow"]["production"]["ore"].update(batch_days=10, target_stock=20)
        return sim.Network.from_dict(d)
    for seed in range(2):
        bulk = sim.simulate(net(), seed=seed, horizon_days=365)
        events = sim.simulate(net(), seed=seed, horizon_days=365, production_mode="events")
        _assert_same(bulk, events)
        for a, b in zip(bulk.lanes, events.lanes, strict=True):
            np.testing.assert_allclose(a.log, b.log, rtol=1e-12, atol=1e-9, err_msg=a.id)


def test_first_shortage_after_is_counted_from_shortage_after():
    """first_shortage_after_day is the first order not filled completely at or after the given
    date; it moves later (or is censored at the horizon) when the date moves later, while
    first_shortage_day stays the first from the start."""
    net = _two_supplier_net(None)          # a buyer that runs short early and stays short
    early = sim.simulate(net, seed=1, horizon_days=300)
    assert early.kpi("shortage_occurred") == 1.0
    first = early.kpi("first_shortage_day")
    assert first < 212.0
    assert early.kpi("first_shortage_after_day") == first
    later = sim.simulate(net, seed=1, horizon_days=300, shortage_after="2025-08-01")
    assert later.shortage_from == 212.0
    assert later.kpi("first_shortage_day") == first
    assert later.kpi("first_shortage_after_day") >= max(first, 212.0)
    row = later.kpis().query("kpi == 'first_shortage_after_day' and scope == 'network'").iloc[0]
    assert row["date"] == "" or row["date"] >= "2025-08-01"


def test_bad_simulate_arguments_are_model_errors():
    """Out-of-range arguments of sim.simulate raise ModelError naming the argument."""
    import pytest

    cases = [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"replication": -2}, "replication"),
             ({"demand_mode": "x"}, "demand_mode"), ({"production_mode": "x"}, "production_mode"),
             ({"horizon_days": 0}, "horizon_days"), ({"horizon_days": float("nan")}, "horizon_days"),
             ({"start": "2025-13-01"}, "start")]
    for kwargs, name in cases:
        with pytest.raises(sim.ModelError, match=f"^{name}: "):
            sim.simulate("teaching", **kwargs)


def test_civil_scope_aggregates_every_sector_but_defense():
    """The `civil` scope is the tonnage-weighted aggregate of all non-defense demand."""
    run = sim.simulate("rare_earth_2025", "controls-oct-2025", seed=2)
    # the KPIs' streams: a fleet node's plants (their fills differ from the pooled node's)
    civil = [d for d in run._kpi_streams if d.sector != "defense"]
    demand = sum(d.D.sum() for d in civil)
    filled = sum(d.filled.sum() for d in civil)
    assert abs(run.kpi("fill_rate", "civil") - filled / demand) < 1e-12
    assert abs(run.kpi("demand_t", "civil") + run.kpi("demand_t", "sector:defense")
               - run.kpi("demand_t", "network")) < 1e-6


def test_garbage_collector_state_is_restored():
    """The engine pauses Python's cyclic garbage collector while it builds and runs a model and
    leaves it as it found it, also when a run fails."""
    import gc
    assert gc.isenabled()
    sim.simulate("teaching", seed=0, horizon_days=60)
    assert gc.isenabled()
    gc.disable()
    try:
        sim.simulate("teaching", seed=0, horizon_days=60)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(sim.ModelError):
        sim.simulate("teaching", seed=0, horizon_days=-1)
    assert gc.isenabled()


def test_simulate_frees_its_model_by_reference_counting(stressed_teaching_dict,
                                                        stress_scenario):
    """``simulate`` takes the finished model apart (its cycles: stocks, lanes, lines, pending
    policy processes), so reference counting frees it at once and no garbage collection has
    to walk it (that was ~10% of a replication's time); the Run is unaffected."""
    import gc

    model_modules = {"sim.engine", "sim._engine_compiled", "sim.policy"}

    def live_models() -> int:
        # every object the collector tracks, garbage not yet collected included: a model, or
        # a part of one (its policy engine, stocks, lanes), that reference counting did not
        # free is still among them (gc is disabled below)
        return sum(1 for obj in gc.get_objects() if type(obj).__module__ in model_modules)

    cases = [("rare_earth_2025", name) for name in sim.list_scenarios()]
    cases.append((sim.Network.from_dict(stressed_teaching_dict), stress_scenario))
    gc.collect()
    gc.disable()
    try:
        before = live_models()
        for net, sc in cases:
            result = sim.simulate(net, sc, seed=2, horizon_days=400)
            assert live_models() == before, f"model not freed under {sc}"
            assert result.kpi("fill_rate", "network") >= 0.0
        # the count sees a model that is not taken apart: its cycles outlive the last name
        unreleased = sim.engine.Model(cases[-1][0], cases[-1][1], seed=2, horizon_days=30)
        unreleased.run()
        del unreleased
        assert live_models() > before
    finally:
        gc.enable()
        gc.collect()
    # the Run of a released model equals the Run of one left intact
    net = sim.Network.from_dict(stressed_teaching_dict)
    released = sim.simulate(net, stress_scenario, seed=5)
    intact = sim.Run.from_recording(sim.engine.Model(net, stress_scenario, seed=5).run())
    assert released.kpi_rows() == intact.kpi_rows()


def test_denied_shipment_returning_to_a_lazy_mine_is_booked_in_time_order():
    """A licence denial returns a shipment to a mine whose batches complete without events:
    the batches it finished before the return are booked first, so its change log stays in
    time order (before the fix the return came first), with the same results as one event
    per batch."""
    net = sim.Network.from_dict({
        "network": {"name": "denials"},
        "materials": {"ore": {"elements": ["Dy"], "price_usd_per_t": 1.0}},
        "nodes": {
            "mine": {"kind": "mine", "country": "CN",
                     "production": {"ore": {"capacity_t_per_year": 3650, "batch_days": 2,
                                            "target_stock": 60}},
                     "stock": {"ore": {"initial": 60}}},
            "buyer": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                      "stock": {"ore": {"initial": 50, "policy": {"type": "sS", "s": 30,
                                                                  "S": 70}}},
                      "demand": {"ore": {"process": "poisson", "rate_t_per_year": 1500,
                                         "order_size": 1.0}}},
        },
        "lanes": [{"from": "mine", "to": "buyer", "material": "ore", "lead_time": 3}],
    })
    sc = sim.Scenario.from_dict({"scenario": {"name": "deny"}, "controls": {"dy": {
        "exporter": "CN", "elements": ["Dy"], "start": "2025-01-10", "regime": "licensing",
        "review_days": {"dist": "uniform", "min": 3, "max": 15}, "approval_probability": 0.4,
        "on_denial": "cancel", "avoid_days": 0}}})
    for seed in range(2):
        bulk = sim.simulate(net, sc, seed=seed, horizon_days=365)
        events = sim.simulate(net, sc, seed=seed, horizon_days=365, production_mode="events")
        assert bulk.kpi("licence_denials", "policy") > 10
        _assert_same(bulk, events)
        for s in bulk.stocks:
            assert np.all(np.diff(s.log[:, 0]) >= 0), s.node
