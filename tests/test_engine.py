"""Engine invariants: conservation of material, determinism, equivalence of the bulk and
event-by-event demand modes, independence of random streams, event order, and sanity of the
KPI table and daily series.
"""

from __future__ import annotations

import copy
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import sim
from sim import engine

DEFAULT_NETWORK = "rare_earth_2025"     # simulate()'s default; may still be in progress

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

NETWORKS = sorted(set(sim.list_networks()) | {DEFAULT_NETWORK})
SCENARIOS = [None, *sorted(sim.list_scenarios())]


def load_or_skip(name: str) -> sim.Network:
    """Load a shipped network; the default network may still be in progress, so a missing or
    invalid ``rare_earth_2025`` is skipped (with the reason), any other failure is an error."""
    if name == DEFAULT_NETWORK:
        if name not in sim.list_networks():
            pytest.skip(f"network {name!r} is not shipped yet (networks/{name}.toml missing)")
        try:
            return sim.load_network(name)
        except sim.ModelError as exc:
            pytest.skip(f"network {name!r} does not load yet (work in progress): {exc}")
    return sim.load_network(name)


def assert_balanced(run: sim.Run, rel: float = 1e-9) -> None:
    """Every material satisfies initial + produced = consumed + delivered + final + in transit
    (+ lost) to rounding, and no stock or pipeline term is negative."""
    mb = run.material_balance()
    assert len(mb) == len({s.material for s in run.stocks})
    for row in mb.itertuples():
        scale = max(1.0, row.initial + row.produced + row.consumed + row.delivered)
        assert abs(row.residual) <= rel * scale, (
            f"material {row.material}: residual {row.residual:.6g} (flows ~{scale:.6g})\n{mb}")
        assert row.final_stock >= -rel * scale, f"{row.material}: negative final stock"
        assert row.in_transit >= -rel * scale, f"{row.material}: negative in-transit"
        for term in ("produced", "consumed", "delivered"):
            assert getattr(row, term) >= -rel * scale, f"{row.material}: negative {term}"


def kpi_dict(run: sim.Run) -> dict:
    return {(k, s): v for k, s, v in run.kpi_rows()}


def assert_same_results(a: sim.Run, b: sim.Run, what: str) -> None:
    """Same KPIs (to 1e-12), same daily series, same shipments and policy events."""
    ka, kb = kpi_dict(a), kpi_dict(b)
    assert ka.keys() == kb.keys()
    diff = {k: (ka[k], kb[k]) for k in ka if ka[k] != pytest.approx(kb[k], rel=1e-12, abs=1e-12)}
    assert not diff, f"{what}: {len(diff)} KPIs differ, e.g. {list(diff.items())[:4]}"
    pd.testing.assert_frame_equal(a.series(), b.series(), rtol=1e-12, atol=1e-9)
    for la, lb in zip(a.lanes, b.lanes, strict=True):
        np.testing.assert_allclose(la.log, lb.log, rtol=1e-12, atol=1e-9, err_msg=la.id)
    assert a.policy_events == b.policy_events
    assert a.truce_outcomes == b.truce_outcomes


def upstream_policy_scenario(stress_spec: dict) -> sim.Scenario:
    """The stress scenario restricted to lanes that do not deliver to a demand node (a
    non-extraterritorial licensing control, a ban under a truce, a quota, tariffs, outages, an
    upstream lane closure and a demand surge)."""
    d = copy.deepcopy(stress_spec)
    d["scenario"]["name"] = "upstream-policies"
    d["controls"]["heavy"]["extraterritorial"] = False
    d["lane_closures"] = [{"lane": "mine_au->sep_my:concentrate", "start": "2025-07-01",
                           "duration_days": 30}]
    return sim.Scenario.from_dict(d)


def rq_renewal(stressed: dict) -> dict:
    """Stressed teaching network whose car maker uses an (r, Q) policy and faces renewal demand
    with random order sizes; the defense user keeps periodic demand with random sizes."""
    d = copy.deepcopy(stressed)
    auto = d["nodes"]["auto_us"]
    auto["stock"]["ndfeb_magnet"]["policy"] = {"type": "rQ", "r": 90, "Q": 60}
    auto["demand"]["ndfeb_magnet"] = {
        "process": "renewal", "interarrival": {"dist": "gamma", "mean": 1.0, "sd": 0.7},
        "order_size": {"dist": "uniform", "min": 1.0, "max": 3.0}}
    return d


# ---------------------------------------------------------------------------------------------
# conservation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s or "no-scenario")
@pytest.mark.parametrize("network", NETWORKS)
def test_material_conservation_shipped(network, scenario):
    """Material is conserved on every shipped network under no scenario and under every
    built-in scenario that fits it, over the default horizon (``run.material_balance()``
    residual ~ 0 relative to the flows)."""
    net = load_or_skip(network)
    sc = None
    if scenario is not None:
        sc = sim.load_scenario(scenario)
        if sc.network and sc.network != net.name:
            pytest.skip(f"scenario {scenario!r} is written for network {sc.network!r}")
        try:
            sc.check_network(net)
        except sim.ScenarioError as exc:
            pytest.skip(f"scenario {scenario!r} does not fit network {network!r}: {exc}")
    run = sim.simulate(net, sc, seed=0)
    assert_balanced(run)


@pytest.mark.parametrize("mode", ["bulk", "events"])
@pytest.mark.parametrize("variant", ["teaching", "stressed", "rq_renewal"])
def test_material_conservation_under_every_policy_path(variant, mode, teaching_dict,
                                                       stressed_teaching_dict, stress_scenario):
    """Conservation holds when shipments are returned (licence denials), backlogs dropped
    (bans, closures), orders cancelled, quotas queue shipments and outages stop lines, in
    both demand modes and over several seeds; the scenario really exercises those paths."""
    d = {"teaching": teaching_dict, "stressed": stressed_teaching_dict,
         "rq_renewal": rq_renewal(stressed_teaching_dict)}[variant]
    net = sim.Network.from_dict(d)
    codes: set[int] = set()
    for seed in range(3):
        run = sim.simulate(net, stress_scenario, seed=seed, demand_mode=mode)
        assert_balanced(run)
        for s in run.stocks:
            codes |= set(s.log[:, 1].astype(int).tolist())
        assert run.kpi("licence_denials", "policy") > 0
    assert {engine.REC_RETURNED, engine.REC_CANCELLED} <= codes


@pytest.mark.parametrize("mode", ["bulk", "events"])
def test_material_conservation_when_backlogs_are_dropped(mode, processor_queue):
    """An overloaded processor builds a backlog; a lane closure and later an export ban drop
    the queued orders (the buyer cancels them). Material is still conserved and the drops and
    cancellations are recorded."""
    net = processor_queue(1.5, 365.0, target_stock=0.0)
    sc = {"scenario": {"name": "drops"},
          "controls": {"ban": {"exporter": "MY", "elements": ["Nd"], "regime": "ban",
                               "start": "2025-10-01"}},
          "lane_closures": [{"lane": "proc->buyer:m", "start": "2025-04-01",
                             "duration_days": 30}]}
    run = sim.simulate(net, sc, seed=0, horizon_days=365, demand_mode=mode)
    assert_balanced(run)
    proc = next(s for s in run.stocks if (s.node, s.material) == ("proc", "m"))
    buyer = next(s for s in run.stocks if s.node == "buyer")
    drops = proc.log[proc.log[:, 1] == engine.REC_BACKLOG_DROP]
    cancels = buyer.log[buyer.log[:, 1] == engine.REC_CANCELLED]
    assert len(drops) == 2
    np.testing.assert_array_equal(drops[:, 0], cancels[:, 0])       # same instants
    np.testing.assert_allclose(drops[:, 2], cancels[:, 2])          # same quantities
    assert drops[:, 0].tolist() == [90.0, 273.0]                    # 2025-04-01, 2025-10-01
    assert proc.final_backlog == pytest.approx(0.0, abs=1e-9)   # banned lane: nothing queued


@pytest.mark.parametrize("mode", ["bulk", "events"])
def test_closure_keeping_queued_orders_ships_them(mode, processor_queue):
    """``queued_orders = "keep"``: closing a lane leaves the orders already queued for it at the
    supplier, which ships them during the closure as it makes stock; the buyer places no new
    order on the lane until it reopens. ``"reroute"`` (the default) cancels them at once, so
    nothing moves on the lane while it is closed."""
    net = processor_queue(1.5, 365.0, target_stock=0.0)     # overloaded: a standing backlog
    t0, t1 = 90.0, 120.0                                    # 2025-04-01 + 30 days

    def run(queued):
        closure = {"lane": "proc->buyer:m", "start": "2025-04-01", "duration_days": 30}
        if queued is not None:
            closure["queued_orders"] = queued
        sc = {"scenario": {"name": "closure"}, "lane_closures": [closure]}
        r = sim.simulate(net, sc, seed=3, horizon_days=200, demand_mode=mode)
        assert_balanced(r)
        proc = next(s for s in r.stocks if (s.node, s.material) == ("proc", "m"))
        buyer = next(s for s in r.stocks if s.node == "buyer")
        shipped = r.lanes[0].log[:, 0]
        ordered = proc.log[proc.log[:, 1] == engine.REC_ORDER_IN, 0]
        return {"drops": proc.log[proc.log[:, 1] == engine.REC_BACKLOG_DROP],
                "cancels": buyer.log[buyer.log[:, 1] == engine.REC_CANCELLED],
                "shipped_during": np.count_nonzero((shipped >= t0) & (shipped < t1)),
                "ordered_during": np.count_nonzero((ordered > t0) & (ordered < t1))}

    keep, reroute, default = run("keep"), run("reroute"), run(None)
    assert len(keep["drops"]) == 0 and len(keep["cancels"]) == 0
    assert keep["shipped_during"] > 10          # the standing backlog keeps flowing
    assert keep["ordered_during"] == 0          # but no new order uses the closed lane
    assert reroute["drops"][:, 0].tolist() == [t0] and len(reroute["cancels"]) == 1
    assert reroute["shipped_during"] == 0 and reroute["ordered_during"] == 0
    np.testing.assert_array_equal(default["drops"], reroute["drops"])


def test_material_balance_terms_match_records(teaching):
    """The balance terms agree with independent records: produced with the production logs
    (batches completed before the horizon), in transit with the lane logs (arrival at or after
    the horizon), delivered with the demand stocks' initial stock + receipts - final stock."""
    run = sim.simulate(teaching, seed=2, horizon_days=500)
    H = run.horizon
    mb = run.material_balance().set_index("material")
    for m in mb.index:
        produced = sum(log[log[:, 2] < H, 1].sum() for _, mat, log, _ in run.production
                       if mat == m)
        assert mb.loc[m, "produced"] == pytest.approx(produced, rel=1e-12, abs=1e-9)
        transit = sum(l.log[l.log[:, 2] >= H, 1].sum() for l in run.lanes if l.material == m)
        assert mb.loc[m, "in_transit"] == pytest.approx(transit, rel=1e-9, abs=1e-9)
    delivered = 0.0
    for st in run.stocks:
        if st.is_demand:
            received = sum(l.log[l.log[:, 2] < H, 1].sum() for l in run.lanes
                           if l.dst == st.node and l.material == st.material)
            delivered += st.initial + received - st.final_on_hand
    assert mb.loc["ndfeb_magnet", "delivered"] == pytest.approx(delivered, rel=1e-12)
    assert delivered > 0


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_scenario", [False, True], ids=["baseline", "stress"])
def test_same_seed_same_results(with_scenario, teaching, stress_scenario):
    """Two runs with the same seed (and replication) give identical series and KPI tables,
    also under a scenario with random licence reviews, truce outcomes and failures."""
    sc = stress_scenario if with_scenario else None
    a = sim.simulate(teaching, sc, seed=4, horizon_days=730)
    b = sim.simulate(teaching, sc, seed=4, horizon_days=730)
    pd.testing.assert_frame_equal(a.series(), b.series(), check_exact=True)
    pd.testing.assert_frame_equal(a.kpis(), b.kpis(), check_exact=True)
    pd.testing.assert_frame_equal(a.material_balance(), b.material_balance(), check_exact=True)
    assert a.truce_outcomes == b.truce_outcomes
    np.testing.assert_array_equal(a.licences, b.licences)


def test_different_seed_or_replication_differs(teaching):
    """A different seed, or a different replication of the same seed, gives different demand
    and different series (the streams really depend on both)."""
    a = sim.simulate(teaching, seed=4, horizon_days=730)
    for kw in ({"seed": 5}, {"seed": 4, "replication": 1}):
        b = sim.simulate(teaching, horizon_days=730, **kw)
        assert not np.array_equal(a.demand[0].T, b.demand[0].T), kw
        assert not a.series().equals(b.series()), kw
        assert a.kpi("demand_t") != b.kpi("demand_t"), kw


# ---------------------------------------------------------------------------------------------
# bulk vs events demand mode
# ---------------------------------------------------------------------------------------------

# Regressions found while writing these tests:
# * bulk mode searched for the next reorder from a stale order pointer after a demand node's
#   lanes became usable again (closure end, qualification), scheduled the wake-up in the past,
#   and the SimPy clock went backwards (fixed in 30e8490, "demand-stock advance");
# * events mode ignored ``review_days`` at demand stocks and ordered continuously (fixed in
#   7fa8d0a); the "periodic_review" case below guards it.


def _variant(name: str, base: dict, stressed: dict, stress_spec: dict):
    """(network dict, scenario) of a bulk-vs-events comparison case."""
    if name == "teaching":
        return base, None
    if name == "stressed_lost":
        return stressed, None
    if name == "rq_renewal":
        return rq_renewal(stressed), None
    if name == "upstream_policies":
        return stressed, upstream_policy_scenario(stress_spec)
    if name == "periodic_review":
        d = copy.deepcopy(base)
        d["nodes"]["auto_us"]["stock"]["ndfeb_magnet"]["policy"]["review_days"] = 7
        return d, None
    if name == "closure_into_demand_node":
        sc = {"scenario": {"name": "closure"},
              "lane_closures": [{"lane": "magnets_jp->auto_us:ndfeb_magnet",
                                 "start": "2025-03-01", "duration_days": 45}]}
        return base, sim.Scenario.from_dict(sc)
    if name == "closure_keeping_queued_orders":
        sc = {"scenario": {"name": "closure-keep"},
              "lane_closures": [{"lane": "magnets_jp->auto_us:ndfeb_magnet",
                                 "start": "2025-03-01", "duration_days": 45,
                                 "queued_orders": "keep"}]}
        return base, sim.Scenario.from_dict(sc)
    raise KeyError(name)


@pytest.mark.parametrize("variant", [
    "teaching", "stressed_lost", "rq_renewal", "upstream_policies", "periodic_review",
    "closure_into_demand_node", "closure_keeping_queued_orders",
])
def test_bulk_and_events_modes_agree(variant, teaching_dict, stressed_teaching_dict,
                                     stress_scenario_spec):
    """``demand_mode="events"`` (one SimPy event per customer order) and the default bulk mode
    give the same KPIs, series, shipments and policy events: with backorders, lost sales and
    shortages, (r, Q) and (s, S) policies, renewal and periodic demand with random sizes,
    policy events upstream of the demand nodes, and a closure of a lane into a demand node."""
    d, sc = _variant(variant, teaching_dict, stressed_teaching_dict, stress_scenario_spec)
    net = sim.Network.from_dict(d)
    for seed in (0, 1):
        a = sim.simulate(net, sc, seed=seed, horizon_days=730)
        b = sim.simulate(net, sc, seed=seed, horizon_days=730, demand_mode="events")
        assert_same_results(a, b, f"{variant} seed {seed}")
    if variant in ("stressed_lost", "rq_renewal"):          # the cases really are stressed
        assert a.kpi("lost_t", "sector:automotive") > 0
        assert a.kpi("fill_rate", "network") < 0.95


def test_deferred_arrivals_match_one_event_per_arrival():
    """On the default network under the truce-uncertain scenario (licensing, denials that
    cancel orders, re-routing, a truce, 14 backorder demand nodes), the bulk mode settles
    arrivals at backorder demand stocks after the run instead of processing them as events;
    results equal the events mode (every arrival an event), with a quarter fewer events."""
    a = sim.simulate("rare_earth_2025", "truce-uncertain", seed=2)
    b = sim.simulate("rare_earth_2025", "truce-uncertain", seed=2, demand_mode="events")
    assert_same_results(a, b, "default network")
    for sa, sb in zip(a.stocks, b.stocks, strict=True):
        assert sa.final_on_order == pytest.approx(sb.final_on_order, abs=1e-9)
        assert np.all(np.diff(sa.log[:, 0]) >= 0)
    arrivals = sum(len(l.log) for l in a.lanes if l.dst.startswith(("us_", "eu_", "jp_")))
    assert arrivals > 500


def test_lost_sales_with_two_suppliers_and_closures_match_one_event_per_order(
        stressed_teaching_dict, stress_scenario_spec):
    """Bulk and events modes agree when both demand nodes lose sales and each buys from two
    suppliers, under licensing with denials that cancel orders, a truce, quotas, outages, a
    demand surge and closures of lanes into both nodes that re-route or keep the queued
    orders. (With lost sales every arrival at a demand stock predicts the next reorder again,
    since the level it starts from decides when the position reaches the reorder level.)"""
    d = copy.deepcopy(stressed_teaching_dict)
    d["nodes"]["defense_us"]["unmet"] = "lost"
    d["lanes"].append({"from": "nds_us", "to": "auto_us", "material": "ndfeb_magnet",
                       "lead_time": 3.0, "share": 0.2})
    next(l for l in d["lanes"] if l["to"] == "auto_us" and l["from"] == "magnets_jp")["share"] = 0.8
    spec = copy.deepcopy(stress_scenario_spec)
    spec["lane_closures"] += [
        {"lane": "magnets_jp->auto_us:ndfeb_magnet", "start": "2025-05-01",
         "duration_days": 20},
        {"lane": "magnets_jp->auto_us:ndfeb_magnet", "start": "2026-02-01",
         "duration_days": 40, "queued_orders": "keep"},
        {"lane": "nds_us->auto_us:ndfeb_magnet", "start": "2025-09-15", "duration_days": 25}]
    net, sc = sim.Network.from_dict(d), sim.Scenario.from_dict(spec)
    for seed in (0, 1, 2):
        a = sim.simulate(net, sc, seed=seed, horizon_days=730)
        b = sim.simulate(net, sc, seed=seed, horizon_days=730, demand_mode="events")
        assert_same_results(a, b, f"lost sales, seed {seed}")
        assert_balanced(a)
        for sa, sb in zip(a.stocks, b.stocks, strict=True):
            assert sa.final_on_order == pytest.approx(sb.final_on_order, abs=1e-9)
            assert np.all(np.diff(sa.log[:, 0]) >= 0)
        for la, lb in zip(a.lanes, b.lanes, strict=True):
            assert la.in_transit_final == pytest.approx(lb.in_transit_final, abs=1e-9)
        assert a.kpi("lost_t", "sector:automotive") > 0 and a.kpi("lost_t", "sector:defense") > 0


@pytest.mark.parametrize("mode", ["events", "bulk"])
def test_closed_lane_carries_nothing(mode, single_stage):
    """While a lane into a demand node is closed it ships nothing; afterwards the buyer orders
    its whole shortfall at once (so the order placed at reopening exceeds a normal order)."""
    net = single_stage(1.0, 20, 5.0, policy={"type": "sS", "s": 10, "S": 20})
    sc = {"scenario": {"name": "closure"},
          "lane_closures": [{"lane": "mine->buyer:m", "start": "2025-03-01",
                             "duration_days": 30}]}
    run = sim.simulate(net, sc, seed=1, horizon_days=200, demand_mode=mode)
    t0, t1 = 59.0, 89.0          # 2025-03-01 is day 59
    shipped = run.lanes[0].log[:, 0]
    during = shipped[(shipped >= t0) & (shipped < t1)]
    assert during.size == 0, f"{mode}: shipments at days {during} on a closed lane"
    assert run.kpi("backordered_t", "node:buyer") > 0


@pytest.mark.parametrize("mode", ["events", "bulk"])
def test_lane_unused_before_qualification(mode, single_stage_spec):
    """A lane with ``qualification_days`` into a demand node carries nothing before it
    qualifies (no scenario involved)."""
    d = single_stage_spec(1.0, 20, 5.0, policy={"type": "sS", "s": 10, "S": 20},
                          qualification_days=40)
    run = sim.simulate(sim.Network.from_dict(d), seed=1, horizon_days=120, demand_mode=mode)
    first = run.lanes[0].log[:, 0].min()
    assert first >= 40.0, f"{mode}: first shipment on day {first:.2f}, lane qualifies on day 40"


@pytest.mark.parametrize("mode", ["bulk", "events"])
def test_simulation_clock_never_goes_back(mode, stressed_teaching_dict, stress_scenario):
    """Stepping the SimPy environment of a :class:`sim.Model` through a run full of policy
    events (closures into demand nodes, denials, cancellations, a lane that qualifies late)
    never moves the clock backwards: no event is ever scheduled in the past."""
    d = copy.deepcopy(stressed_teaching_dict)
    d["lanes"][-1]["qualification_days"] = 45        # nds_us -> defense_us qualifies late
    model = sim.Model(sim.Network.from_dict(d), stress_scenario, seed=1, demand_mode=mode)
    env = model.env
    last, steps = 0.0, 0
    while model.peek() < model.horizon:
        model.step()
        assert env.now >= last, f"clock went back from {last} to {env.now}"
        last = env.now
        steps += 1
    assert steps > 300


# ---------------------------------------------------------------------------------------------
# random streams
# ---------------------------------------------------------------------------------------------

def test_unrelated_node_leaves_other_draws_unchanged(teaching_dict, teaching):
    """Adding unrelated nodes and a lane (placed first in the tables, so every index and the
    country list shift) changes none of the existing demand draws, and, since they do not
    interact, none of the existing stocks' daily series."""
    d = copy.deepcopy(teaching_dict)
    d["materials"] = {"smco_magnet": {"elements": ["Sm"], "price_usd_per_t": 80000},
                      **d["materials"]}
    extra = {
        "mine_br": {"kind": "mine", "country": "BR",
                    "production": {"smco_magnet": {"capacity_t_per_year": 500,
                                                   "target_stock": 20}},
                    "stock": {"smco_magnet": {"initial": 20}}},
        "wind_de": {"kind": "manufacturer", "country": "DE", "sector": "wind",
                    "stock": {"smco_magnet": {"initial": 10,
                                              "policy": {"type": "sS", "s": 5, "S": 15}}},
                    "demand": {"smco_magnet": {"process": "poisson", "rate_t_per_year": 100,
                                               "order_size": 1}}},
    }
    d["nodes"] = {**extra, **d["nodes"]}
    d["lanes"] = [{"from": "mine_br", "to": "wind_de", "material": "smco_magnet",
                   "lead_time": {"dist": "uniform", "min": 10, "max": 20}}, *d["lanes"]]
    bigger = sim.Network.from_dict(d)
    a = sim.simulate(teaching, seed=8, horizon_days=730)
    b = sim.simulate(bigger, seed=8, horizon_days=730)
    for rec in a.demand:
        other = next(r for r in b.demand if (r.node, r.material) == (rec.node, rec.material))
        np.testing.assert_array_equal(rec.T, other.T, err_msg=rec.node)
        np.testing.assert_array_equal(rec.D, other.D, err_msg=rec.node)
    sa = a.series()
    sb = b.series()
    sb = sb[sb["node"].isin(set(sa["node"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(sa, sb)
    assert len(b.demand) == len(a.demand) + 1


@pytest.mark.parametrize("seed", [0, 1])
def test_switching_sampler_gives_the_values_of_single_draws(seed):
    """Licence review times are drawn in blocks from a distribution that policy steps change
    mid-run; the values are exactly those of one ``sample(rng, 1)`` per call, whatever the
    switches (mid-block, back and forth, to a distribution numpy draws with a buffer, to a
    constant)."""
    from sim.distributions import from_spec
    from sim.streams import Streams, SwitchingSampler

    dists = [from_spec({"dist": "triangular", "min": 1, "mode": 2, "max": 5}, "x"),
             from_spec({"dist": "lognormal", "mean": 3, "sd": 1}, "x"),
             from_spec({"dist": "uniform_int", "min": 1, "max": 9}, "x"),
             from_spec(4.0, "x"),
             from_spec({"dist": "gamma", "mean": 3, "sd": 2}, "x").scaled(2.0),
             from_spec({"dist": "uniform_int", "min": 1, "max": 9}, "x").scaled(0.5)]
    pick = np.random.default_rng(seed)
    runs = zip(pick.integers(0, len(dists), 60), pick.integers(1, 150, 60))
    sequence = [dists[int(j)] for j, n in runs for _ in range(n)]
    streams = Streams(seed, 3)
    rng = streams.generator(("licence_review", "c", "lane"))
    expected = [float(d.sample(rng, 1)[0]) for d in sequence]
    sampler = SwitchingSampler(streams, ("licence_review", "c", "lane"))
    assert [sampler(d) for d in sequence] == expected


@pytest.mark.parametrize(("seed", "replication"),
                         [(0, 0), (1, 7), (2**32 - 1, 2**32 - 1), (2**32, 2**32 + 1),
                          (2**100 + 3, 2**70), (12345, 0)])
def test_prepared_streams_are_numpys_seed_sequence_streams(seed, replication):
    """Streams.prepare computes the SeedSequence hash itself, for many names at once; every
    generator it gives has exactly the state of numpy's own ``PCG64(SeedSequence(...))``
    (seeds and replications of one word, of several words and at the word boundaries), a
    name asked for twice or never prepared too, and numpy raises no overflow warning."""
    from sim.streams import Streams

    names = [("lead_time", f"lane{i}") for i in range(40)] + \
        [("demand", "buyer", "ndfeb"), ("demand_size", "buyer", "ndfeb"), ("truce",), "plain"]
    streams = Streams(seed, replication)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        streams.prepare(names + names[:3])
    for name in names + names[:2] + [("outage", "mine", 0)]:
        ours = streams.generator(name)
        ref = np.random.Generator(np.random.PCG64(
            np.random.SeedSequence(seed, spawn_key=(replication, *sim.streams.name_key(name)))))
        assert ours.bit_generator.state == ref.bit_generator.state, name
        np.testing.assert_array_equal(ours.random(5), ref.random(5))


def test_demand_surge_keeps_common_random_numbers(single_stage_spec):
    """Common random numbers: under a demand surge that starts late in the run, the orders
    before the surge are the same (times and sizes) as in the baseline run, and so are the
    first orders of a run with a longer horizon. (Regression: sizes used to be drawn after
    the gaps from the same stream, fixed in 30e8490 "size streams".)"""
    d = single_stage_spec(1.0, 10, 3.0, order_size={"dist": "uniform", "min": 0.5, "max": 1.5})
    net = sim.Network.from_dict(d)
    surge = {"scenario": {"name": "surge"},
             "demand_surges": [{"node": "buyer", "factor": 2.0, "start": "2025-10-01",
                                "end": "2025-12-01"}]}
    a = sim.simulate(net, None, seed=1, horizon_days=365).demand[0]
    b = sim.simulate(net, surge, seed=1, horizon_days=365).demand[0]
    longer = sim.simulate(net, None, seed=1, horizon_days=500).demand[0]
    np.testing.assert_array_equal(a.T, longer.T[:len(a.T)])
    np.testing.assert_array_equal(a.D, longer.D[:len(a.D)])
    k = int((a.T < 273).sum())         # 2025-10-01 is day 273
    assert 200 < k < len(b.T)
    np.testing.assert_array_equal(a.T[:k], b.T[:k])     # the clock is only time-changed
    np.testing.assert_array_equal(a.D[:k], b.D[:k])     # sizes have their own stream


# ---------------------------------------------------------------------------------------------
# event order
# ---------------------------------------------------------------------------------------------

def test_event_order_is_documented():
    """The engine docstring documents the tie-break order of simultaneous events, listing the
    five priorities in increasing order with the values the engine uses."""
    doc = engine.__doc__
    assert "Order of events within one instant" in doc
    listed = re.findall(r"``(PRIORITY_[A-Z]+)`` \((\d+)\)", doc)
    names = ["PRIORITY_POLICY", "PRIORITY_ARRIVAL", "PRIORITY_PRODUCTION", "PRIORITY_DEMAND",
             "PRIORITY_REVIEW"]
    assert [n for n, _ in listed] == names
    for n, v in listed:
        assert getattr(engine, n) == int(v)
    assert [getattr(engine, n) for n in names] == sorted(getattr(engine, n) for n in names)
    assert "days" in doc
    assert "Time" in doc
    assert "Flow rules" in doc


@pytest.mark.parametrize("mode", ["bulk", "events"])
def test_arrival_before_simultaneous_customer_order(mode, single_stage_spec):
    """A replenishment arriving at the same instant as a customer order is put away first:
    daily unit orders, a 3-day fixed lead time and S = 3 give a fill rate of exactly 1."""
    d = single_stage_spec(1.0, 3, 3.0)
    d["nodes"]["buyer"]["demand"]["m"] = {"process": "periodic", "rate_t_per_year": 365,
                                          "period_days": 1}
    run = sim.simulate(sim.Network.from_dict(d), seed=0, horizon_days=200, demand_mode=mode)
    rec = run.demand[0]
    arrivals = run.lanes[0].log[:, 2]
    assert np.isin(arrivals[arrivals < 199], rec.T).all()     # every arrival ties with an order
    assert run.kpi("fill_rate", "node:buyer") == 1.0
    assert run.kpi("stockout_days", "node:buyer") == 0.0


# ---------------------------------------------------------------------------------------------
# KPI table and series
# ---------------------------------------------------------------------------------------------

SERIES_COLUMNS = ["day", "date", "node", "material", "kind", "sector", "inventory", "on_order",
                  "backorders", "received", "shipped", "produced", "consumed", "demand",
                  "filled"]


@pytest.fixture(params=["teaching", "stressed", "stress_scenario"])
def sanity_run(request, teaching_dict, stressed_teaching_dict, stress_scenario):
    """A two-year run of the teaching network, its stressed variant, or the stress scenario."""
    if request.param == "teaching":
        return sim.simulate(sim.Network.from_dict(teaching_dict), seed=3, horizon_days=730)
    if request.param == "stressed":
        return sim.simulate(sim.Network.from_dict(stressed_teaching_dict), seed=3,
                            horizon_days=730)
    return sim.simulate(sim.Network.from_dict(teaching_dict), stress_scenario, seed=3)


def test_kpis_are_sane(sanity_run):
    """KPI table: tidy columns, no NaN, fill rates in [0, 1], demand = filled + backordered +
    lost, 0/1 shortage flags, first shortage within the horizon, every expected scope."""
    run = sanity_run
    df = run.kpis()
    assert list(df.columns) == ["kpi", "scope", "value", "date", "scenario", "seed",
                                "replication"]
    assert not df.isna().any().any()
    assert np.isfinite(df["value"]).all()
    assert not df.duplicated(["kpi", "scope"]).any()
    scopes = set(df["scope"])
    assert {"network", "sector:defense", "sector:automotive", "country:US", "node:auto_us",
            "node:defense_us", "policy"} <= scopes
    for scope in sorted(scopes - {"policy"}):
        k = {r.kpi: r.value for r in df[df["scope"] == scope].itertuples()}
        if "fill_rate" not in k:
            continue           # cost-only scope (a node without customers)
        assert 0.0 <= k["fill_rate"] <= 1.0
        assert 0.0 <= k["order_fill_rate"] <= 1.0
        assert 0.0 <= k["period_service_level"] <= 1.0
        assert k["demand_t"] == pytest.approx(k["filled_t"] + k["backordered_t"] + k["lost_t"],
                                              rel=1e-9, abs=1e-9)
        assert k["shortage_occurred"] in (0.0, 1.0)
        assert k["shortage_after_occurred"] <= k["shortage_occurred"]
        assert 0.0 <= k["first_shortage_day"] <= k["first_shortage_after_day"] <= run.horizon
        assert 0.0 <= k["short_order_days"] <= k["stockout_days"] <= run.ndays
        assert k["peak_backorders_t"] >= k["mean_backorders_t"] - 1e-9 >= -1e-9
    for name in ("purchase_cost_usd", "tariff_cost_usd", "holding_cost_usd"):
        assert run.kpi(name, "network") >= 0.0


def test_series_columns_and_shape(sanity_run):
    """Daily series: documented columns, one row per stock and day, no NaN, no negative
    stock, flows non-negative, and the date column starts at the run's start date."""
    run = sanity_run
    s = run.series()
    assert list(s.columns) == SERIES_COLUMNS
    assert len(s) == run.ndays * len(run.stocks)
    assert not s.drop(columns=["sector"]).isna().any().any()
    num = ["inventory", "on_order", "backorders", "received", "shipped", "produced", "consumed",
           "demand", "filled"]
    assert (s[num] >= -1e-6).all().all(), s[num].min()
    assert s["day"].min() == 0
    assert s["day"].max() == run.ndays - 1
    assert pd.Timestamp(s["date"].min()).date() == run.start
    assert (s["filled"] <= s["demand"] + 1e-9).all()
    # per-stock daily flows add up to the change logs
    for rec in run.stocks[:4]:
        sub = s[(s["node"] == rec.node) & (s["material"] == rec.material)]
        shipped = rec.log[rec.log[:, 1] == engine.REC_SHIPPED, 2].sum()
        assert sub["shipped"].sum() == pytest.approx(shipped, rel=1e-9, abs=1e-9)


def test_kpi_lookup_and_errors(teaching):
    """``run.kpi`` returns the table's value and raises KeyError naming the scopes for an
    unknown scope."""
    run = sim.simulate(teaching, seed=1, horizon_days=365)
    df = run.kpis()
    row = df[(df["kpi"] == "fill_rate") & (df["scope"] == "sector:defense")]
    assert run.kpi("fill_rate", "sector:defense") == row["value"].item()
    with pytest.raises(KeyError, match="sector:defense"):
        run.kpi("fill_rate", "sector:nowhere")
    assert math.isclose(run.kpi("orders", "network"),
                        sum(len(d.T) for d in run.demand))


@pytest.mark.parametrize("case", ["teaching", "stressed", "stress_scenario"])
def test_series_last_day_matches_final_state(case, teaching_dict, stressed_teaching_dict,
                                             stress_scenario):
    """The last row of the daily series (end of the last day) equals each stock's final state
    (``StockRecord.final_on_hand``, ``final_on_order``, ``final_backlog``): the series built
    from change logs and the model's final state tell the same story. (Regression: returned,
    denied shipments used to be added back to the supplier's backlog series; fixed in
    7fa8d0a.)"""
    d = stressed_teaching_dict if case == "stressed" else teaching_dict
    sc = stress_scenario if case == "stress_scenario" else None
    run = sim.simulate(sim.Network.from_dict(d), sc, seed=0, horizon_days=730)
    last = run.series().query("day == @run.ndays - 1").set_index(["node", "material"])
    bad = []
    for st in run.stocks:
        row = last.loc[(st.node, st.material)]
        for col, final in (("inventory", st.final_on_hand), ("on_order", st.final_on_order),
                           ("backorders", st.final_backlog)):
            if abs(row[col] - final) > 1e-6 * max(1.0, abs(final)):
                bad.append(f"{st.node}/{st.material} {col}: series {row[col]:.6g}, "
                           f"final {final:.6g}")
    assert not bad, "\n".join(bad)


def test_rated_orders_are_served_first(processor_queue_spec):
    """Flow rule: orders from a node with ``priority > 0`` (rated orders) are served before
    unrated ones. A processor of capacity 1 t/day faces 0.8 t/day of unrated and 0.4 t/day of
    rated unit orders (overloaded): the rated buyer waits about one non-preemptive M/D/1
    priority delay (well under 3 days) and gets all it orders, while the unrated backlog grows
    and receives only the remaining capacity (about 0.6 t/day)."""
    d = processor_queue_spec(0.8, 365.0, target_stock=0.0)
    d["nodes"]["mil"] = {"kind": "defense_user", "country": "US", "sector": "defense",
                         "priority": 1,
                         "stock": {"m": {"initial": 3, "policy": {"type": "base_stock", "S": 3}}},
                         "demand": {"m": {"process": "poisson", "rate_t_per_year": 0.4 * 365,
                                          "order_size": 1}}}
    d["lanes"].append({"from": "proc", "to": "mil", "material": "m", "lead_time": 2.0})
    H, t0 = 3000.0, 500.0
    run = sim.simulate(sim.Network.from_dict(d), seed=4, horizon_days=H)
    lanes = {l.dst: l.log for l in run.lanes}
    orders = {s.node: s.log[s.log[:, 1] == engine.REC_ORDERED, 0] for s in run.stocks
              if s.node in ("buyer", "mil")}
    ships = lanes["mil"]
    assert np.all(ships[:, 1] == 1.0)
    wait = ships[:, 0] - orders["mil"][:len(ships)]
    late = orders["mil"][:len(ships)] >= t0
    assert wait[late].mean() < 3.0
    assert len(orders["mil"]) - len(ships) <= 10          # nothing piles up for the rated buyer
    rate = lambda log: log[log[:, 0] >= t0, 1].sum() / (H - t0)    # noqa: E731
    assert rate(lanes["mil"]) == pytest.approx(0.4, rel=0.05)
    assert rate(lanes["buyer"]) == pytest.approx(0.6, rel=0.05)
    assert run.kpi("fill_rate", "node:mil") > run.kpi("fill_rate", "node:buyer") + 0.3
