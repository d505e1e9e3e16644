"""Plans (sim.plans): each lever changes exactly what it claims, composition, errors, CLI."""

from __future__ import annotations

import copy
import datetime as dt
import math

import pytest

import sim
from sim.cli import main
from sim.plans import (RUN_START, Plan, apply_plan, compose_plans, list_plans, load_plan,
                       resolve_plan)

D = dt.date
COST = {"capital_usd": 1.0e8, "capital_source": "assumption: test",
        "yearly_usd": 3.6525e6, "yearly_source": "assumption: test"}
US_LEAD = {"dist": "triangular", "min": 2, "mode": 4, "max": 8}


@pytest.fixture(scope="module")
def net():
    return sim.load_network("rare_earth_2025")


def _plan(name, *levers, **head):
    return {"plan": {"name": name, **head}, "levers": [copy.deepcopy(lv) for lv in levers]}


def _facility(**over):
    lv = {
        "id": "fac", "type": "new_facility", "node_id": "mag_us_new", "start": D(2025, 6, 1),
        "lag_days": 214, "ramp": {"days": 360, "steps": 4}, "source": "assumption: test",
        "cost": COST,
        "node": {"kind": "magnet_maker", "country": "US",
                 "production": {"ndfeb_hre_magnet": {
                     "capacity_t_per_year": 2000.0,
                     "recipe": {"ndpr_oxide": 0.32, "dytb_oxide": 0.035}}}},
        "lanes": [{"from": "sep_us_mp", "material": "ndpr_oxide", "share": 1.0,
                   "lead_time": {"dist": "triangular", "min": 3, "mode": 5, "max": 9}},
                  {"from": "sep_my", "material": "dytb_oxide", "share": 1.0,
                   "lead_time": {"dist": "triangular", "min": 25, "mode": 30, "max": 45}}],
        "buyers": [{"node": "us_auto", "material": "ndfeb_hre_magnet", "share": 0.2,
                    "lead_time": US_LEAD}],
    }
    lv.update(over)
    return lv


def _shares(network, buyer, material):
    return {l.src: l.share for l in network.lanes if l.dst == buyer and l.material == material}


# ---------------------------------------------------------------------------------------------
# loading, the empty plan, interface
# ---------------------------------------------------------------------------------------------

def test_shipped_plans_are_listed_and_status_quo_is_empty():
    plans = list_plans()
    for name in ("status-quo", "stockpile-release", "allied-capacity",
                 "allied-capacity-delayed", "substitution", "recycling"):
        assert name in plans and plans[name]
    sq = load_plan("status-quo")
    assert sq.levers == () and sq.cost("2025-01-01", "2029-01-01")["total_usd"] == 0
    assert resolve_plan(None).levers == ()
    assert load_plan(sq) is sq


def test_run_start_is_the_engine_default_start():
    """Qualification days are counted from the engine's default start when a scenario has
    none; sim.plans keeps its own copy (it sits below the engine), so the two must agree."""
    from sim.engine import DEFAULT_START
    assert RUN_START == DEFAULT_START


def test_status_quo_changes_no_result(net):
    """The empty plan leaves every number of a run as it was (same seed)."""
    n2, s2 = apply_plan("status-quo", net, "truce-expires")
    a = sim.simulate(net, "truce-expires", seed=5, horizon_days=400)
    b = sim.simulate(n2, s2, seed=5, horizon_days=400)
    assert a.kpis().equals(b.kpis())


def test_inputs_untouched_and_twice_is_an_error(net):
    sc = sim.load_scenario("truce-expires")
    d_net, d_sc = net.digest(), sc.digest()
    plan = load_plan(_plan("p", _facility()))
    n2, s2 = apply_plan(plan, net, sc)
    assert net.digest() == d_net and sc.digest() == d_sc
    assert "mag_us_new" not in net.nodes and "mag_us_new" in n2.nodes
    assert n2.meta["plans"] == ["p"]
    with pytest.raises(sim.ModelError, match="already applied"):
        apply_plan(plan, n2, s2)
    # a plan that shares a lever with an applied one is refused too
    with pytest.raises(sim.ModelError, match="lever 'fac' of plan 'p' is already applied"):
        apply_plan(plan + load_plan(_plan("q", _facility(id="other", node_id="x2"))), n2, s2)
    # the mark survives a round trip through the network's TOML structure
    again = sim.Network.from_dict(n2.to_dict())
    with pytest.raises(sim.ModelError, match="already applied"):
        apply_plan(plan, again, s2)


# ---------------------------------------------------------------------------------------------
# levers change exactly what they claim
# ---------------------------------------------------------------------------------------------

def test_new_facility_capacity_follows_its_ramp(net):
    plan = load_plan(_plan("p", _facility()))
    lv = plan.levers[0]
    assert lv.online == D(2026, 1, 1)
    n2, _ = apply_plan(plan, net)
    prod = n2.nodes["mag_us_new"].production["ndfeb_hre_magnet"]
    assert prod.capacity_on(D(2025, 12, 31)) == 0.0
    for k in range(4):
        day = D(2026, 1, 1) + dt.timedelta(days=120 * k)
        assert prod.capacity_on(day) == pytest.approx(2000.0 * (k + 1) / 4)
        assert prod.capacity_on(day - dt.timedelta(days=1)) == pytest.approx(2000.0 * k / 4)
    # inbound lanes are qualified 90 days before online, the buyer lane at online
    for l in n2.lanes:
        if l.dst == "mag_us_new":
            assert l.qualification_days == (D(2026, 1, 1) - RUN_START).days - 90
        if l.src == "mag_us_new":
            assert l.qualification_days == (D(2026, 1, 1) - RUN_START).days


def test_new_facility_makes_and_ships_nothing_before_online(net):
    """In a run the new plant produces and ships nothing before its online date, produces
    after it, and never more than its capacity in force allows (plus one batch)."""
    n2, s2 = apply_plan(_plan("p", _facility()), net)
    run = sim.simulate(n2, s2, seed=2, horizon_days=730)
    cap = run.capacity_utilisation("month")
    rows = cap[cap.node == "mag_us_new"]
    before = rows[rows.period_start < dt.datetime(2026, 1, 1)]
    after = rows[rows.period_start >= dt.datetime(2026, 1, 1)]
    assert len(before) == 12 and before.produced_t.sum() == 0 and before.capacity_t.sum() == 0
    assert after.produced_t.sum() > 0
    batch = 2000.0 * 7 / 365
    assert (after.produced_t.cumsum() <= after.capacity_t.cumsum() + batch + 1e-6).all()
    flows = run.lane_flows("month")
    out = flows[flows.src == "mag_us_new"]
    assert out[out.period_start < dt.datetime(2026, 1, 1)].dispatched_t.sum() == 0
    assert out.dispatched_t.sum() > 0
    inn = flows[flows.dst == "mag_us_new"]
    assert inn[inn.period_start < dt.datetime(2025, 10, 1)].dispatched_t.sum() == 0


def test_buyer_shares_rebalance_proportionally_and_sum_to_one(net):
    plan = _plan("p", _facility(buyers=[
        {"node": "us_auto", "material": "ndfeb_hre_magnet", "share": 0.2, "lead_time": US_LEAD},
        {"countries": ["US"], "kinds": ["defense_user"], "material": "ndfeb_hre_magnet",
         "share": 0.3, "lead_time": US_LEAD}]))
    n2, _ = apply_plan(plan, net)
    for buyer, x in [("us_auto", 0.2), ("us_def_aircraft", 0.3), ("us_def_naval", 0.3),
                     ("us_def_munitions", 0.3)]:
        old = _shares(net, buyer, "ndfeb_hre_magnet")
        new = _shares(n2, buyer, "ndfeb_hre_magnet")
        assert new["mag_us_new"] == pytest.approx(x)
        assert math.fsum(new.values()) == pytest.approx(1.0, abs=1e-12)
        for src, s in old.items():
            assert new[src] == pytest.approx(s * (1 - x))
    # buyers the selector does not name keep their shares
    for buyer in ("eu_auto", "jp_auto", "nds_us"):
        assert _shares(n2, buyer, "ndfeb_hre_magnet") == _shares(net, buyer, "ndfeb_hre_magnet")


def test_new_facility_changes_nothing_else(net):
    """Besides the new node, its lanes and the named buyers' shares for the material, the
    network is as it was (node tables, other lanes, materials)."""
    n2, _ = apply_plan(_plan("p", _facility()), net)
    a, b = net.to_dict(), n2.to_dict()
    assert a["materials"] == b["materials"]
    assert {k: v for k, v in b["nodes"].items() if k != "mag_us_new"} == a["nodes"]
    old = {(l["from"], l["to"], l["material"]): l for l in a["lanes"]}
    new = {(l["from"], l["to"], l["material"]): l for l in b["lanes"]}
    assert set(new) - set(old) == {("sep_us_mp", "mag_us_new", "ndpr_oxide"),
                                   ("sep_my", "mag_us_new", "dytb_oxide"),
                                   ("mag_us_new", "us_auto", "ndfeb_hre_magnet")}
    for key, lane in old.items():
        if key[1:] == ("us_auto", "ndfeb_hre_magnet"):
            assert new[key]["share"] == pytest.approx(lane["share"] * 0.8)
            assert {**new[key], "share": lane["share"]} == lane
        else:
            assert new[key] == lane


def test_selector_covers_nodes_added_earlier_in_the_plan(net):
    """A buyers selector is resolved when its lever applies: a US magnet maker that an
    earlier lever added falls under `countries = ["US"], kinds = ["magnet_maker"]`."""
    offtake = {"id": "off", "type": "offtake", "supplier": "sep_au", "start": D(2027, 7, 1),
               "source": "assumption: test", "cost": COST,
               "buyers": [{"countries": ["US"], "kinds": ["magnet_maker"],
                           "material": "ndpr_oxide", "share": 0.2, "lead_time": 30}]}
    n2, _ = apply_plan(_plan("p", _facility(), offtake), net)
    takers = {l.dst for l in n2.lanes if l.src == "sep_au" and l.material == "ndpr_oxide"}
    us_makers = {nid for nid, n in n2.nodes.items() if n.country == "US"
                 and n.kind == "magnet_maker" and "ndpr_oxide" in n.stocks
                 and n.stocks["ndpr_oxide"].policy.type != "none"}
    assert "mag_us_new" in us_makers and us_makers <= takers
    for nid in us_makers:
        assert _shares(n2, nid, "ndpr_oxide")["sep_au"] == pytest.approx(0.2)
    # applied the other way round, the new plant is not there yet when the selector resolves
    n3, _ = apply_plan(_plan("p", offtake, _facility()), net)
    assert "sep_au" not in _shares(n3, "mag_us_new", "ndpr_oxide")


def test_capacity_expansion_adds_on_its_ramp(net):
    lv = {"id": "x", "type": "capacity_expansion", "node": "sep_us_mp", "material": "ndpr_oxide",
          "add_t_per_year": 1000.0, "start": D(2026, 1, 1), "lag_days": 181,
          "ramp": {"days": 365, "steps": 2}, "source": "assumption: test", "cost": COST}
    n2, _ = apply_plan(_plan("p", lv), net)
    old = net.nodes["sep_us_mp"].production["ndpr_oxide"]
    new = n2.nodes["sep_us_mp"].production["ndpr_oxide"]
    online = D(2026, 7, 1)
    for day in [D(2025, 1, 1), D(2025, 7, 1), D(2026, 6, 30), online, D(2027, 6, 30),
                D(2027, 7, 1), D(2028, 6, 1)]:
        add = 0 if day < online else (500 if day < online + dt.timedelta(days=365) else 1000)
        assert new.capacity_on(day) == pytest.approx(old.capacity_on(day) + add), day


def test_safety_stock_raises_exactly_the_chosen_policies(net):
    lv = {"id": "ss", "type": "safety_stock", "extra_days": 30.0, "kinds": ["manufacturer"],
          "countries": ["US", "JP"], "start": D(2025, 1, 1), "source": "assumption: test",
          "cost": COST}
    n2, _ = apply_plan(_plan("p", lv), net)
    changed = set()
    for nid, node in net.nodes.items():
        for m, st in node.stocks.items():
            p0, p1 = st.policy, n2.nodes[nid].stocks[m].policy
            if (p0.s, p0.S) != (p1.s, p1.S):
                changed.add((nid, m))
                add = node.demand[m].rate_t_per_year / 365.0 * 30.0
                assert p1.s == pytest.approx(p0.s + add) and p1.S == pytest.approx(p0.S + add)
    expected = {(nid, m) for nid, n in net.nodes.items() if n.kind == "manufacturer"
                and n.country in ("US", "JP") for m in n.stocks
                if n.stocks[m].policy.type != "none"}
    assert changed == expected and expected
    # a dated raise is refused: network policies are not dated
    late = dict(lv, start=D(2026, 1, 1))
    with pytest.raises(sim.ModelError, match="lever 'ss': start: .*not dated"):
        apply_plan(_plan("p", late), net)


def test_qualification_lane_is_usable_from_its_date(net):
    lv = {"id": "q", "type": "qualification", "from": "mag_ee", "to": "us_auto",
          "material": "ndfeb_hre_magnet", "share": 0.1, "lead_time": 20,
          "start": D(2025, 3, 1), "lag_days": 306, "source": "assumption: test", "cost": COST}
    n2, _ = apply_plan(_plan("p", lv), net)
    lane = next(l for l in n2.lanes if l.id == "mag_ee->us_auto:ndfeb_hre_magnet")
    assert lane.qualification_days == (D(2026, 1, 1) - D(2025, 1, 1)).days
    assert math.fsum(_shares(n2, "us_auto", "ndfeb_hre_magnet").values()) == pytest.approx(1.0)
    # counted from the scenario's own start when it has one
    sc = sim.Scenario(start=D(2025, 7, 1), end=D(2027, 1, 1))
    n3, _ = apply_plan(_plan("p", lv), net, sc)
    lane = next(l for l in n3.lanes if l.id == "mag_ee->us_auto:ndfeb_hre_magnet")
    assert lane.qualification_days == (D(2026, 1, 1) - D(2025, 7, 1)).days
    with pytest.raises(sim.ModelError, match="already exists"):
        apply_plan(_plan("p", dict(lv, **{"from": "mag_jp"})), net)


def test_substitution_moves_demand_and_conserves_tonnes(net):
    lv = {"id": "sub", "type": "substitution", "material": "ndfeb_hre_magnet",
          "to": "ndfeb_magnet", "sectors": ["automotive"], "countries": ["US", "JP"],
          "share_per_year": 0.1, "cap_share": 0.25, "start": D(2025, 7, 1), "lag_days": 184,
          "source": "assumption: test", "cost": COST}
    sc = sim.load_scenario("truce-expires")
    n2, s2 = apply_plan(_plan("p", lv), net, sc)
    added = s2.demand_surges[len(sc.demand_surges):]
    assert {s.node for s in added} == {"us_auto", "jp_auto"}
    for nid in ("us_auto", "jp_auto"):
        r_old = net.nodes[nid].demand["ndfeb_hre_magnet"].rate_t_per_year
        r_new = net.nodes[nid].demand["ndfeb_magnet"].rate_t_per_year
        for day, share in [(D(2025, 12, 31), 0.0), (D(2026, 1, 1), 0.1), (D(2027, 1, 2), 0.2),
                           (D(2028, 1, 2), 0.25), (D(2031, 6, 1), 0.25)]:
            f = {m: math.prod(s.factor for s in added if s.node == nid and s.material == m
                              and s.start <= day < s.end)
                 for m in ("ndfeb_hre_magnet", "ndfeb_magnet")}
            assert f["ndfeb_hre_magnet"] == pytest.approx(1 - share)
            # tonnes are conserved (ratio 1): what leaves the old grade arrives in the new one
            assert r_old * f["ndfeb_hre_magnet"] + r_new * f["ndfeb_magnet"] == \
                pytest.approx(r_old + r_new)
    # the network is unchanged; a node that does not buy the new material is an error
    assert n2.nodes["us_auto"].demand == net.nodes["us_auto"].demand
    with pytest.raises(sim.ModelError, match="'in_auto' does not buy 'ndfeb_magnet'"):
        apply_plan(_plan("p", dict(lv, countries=["IN"])), net)


def test_recycling_capacity_follows_earlier_demand(net):
    """Capacity = share x yield x the modelled scrap demand delay_years earlier, including a
    scenario surge in force then."""
    surge = {"scenario": {"name": "s", "start": D(2025, 1, 1), "end": D(2029, 1, 1)},
             "demand_surges": [{"node": "us_auto", "material": "ndfeb_magnet", "factor": 2.0,
                                "start": D(2025, 1, 1), "end": D(2026, 1, 1)}]}
    lv = {"id": "rec", "type": "recycling", "node_id": "rec_us",
          "node": {"kind": "processor", "country": "US"}, "material": "ndpr_oxide",
          "scrap_materials": ["ndfeb_magnet"], "yield_t_per_t": 0.3, "delay_years": 1,
          "share": 0.2, "nodes": ["us_auto"], "start": D(2026, 1, 1),
          "source": "assumption: test", "cost": COST,
          "buyers": [{"node": "mag_us_other", "material": "ndpr_oxide", "share": 0.1,
                      "lead_time": 5}]}
    n2, _ = apply_plan(_plan("p", lv), net, surge)
    prod = n2.nodes["rec_us"].production["ndpr_oxide"]
    rate = net.nodes["us_auto"].demand["ndfeb_magnet"].rate_t_per_year
    assert prod.capacity_on(D(2025, 12, 31)) == 0
    assert prod.capacity_on(D(2026, 6, 1)) == pytest.approx(0.2 * 0.3 * rate * 2.0)
    assert prod.capacity_on(D(2027, 6, 1)) == pytest.approx(0.2 * 0.3 * rate)
    assert _shares(n2, "mag_us_other", "ndpr_oxide")["rec_us"] == pytest.approx(0.1)


def _existing_holder_reserve():
    """A reserve held by the network's rotating NDS stock itself (an existing holder)."""
    return {"id": "res", "type": "stockpile", "holder": "nds_us", "material": "ndfeb_hre_magnet",
            "start": D(2025, 10, 1), "target_t": 1300, "build_rate_t_per_year": 650,
            "release_cover_days": 30, "release_rate_t_per_day": 14.4,
            "serve": ["defense", "us_auto"], "civil": True, "replenish": True,
            "funded_price_usd_per_t": 70000, "source": "assumption: test", "cost": COST}


def test_stockpile_writes_the_reserve_section_on_an_existing_holder(net):
    plan = load_plan(_plan("p", _existing_holder_reserve()))
    n2, _ = apply_plan(plan, net, "truce-expires")
    lv = plan.levers[0]
    data = n2.to_dict()["nodes"]["nds_us"]["reserve"]["ndfeb_hre_magnet"]
    assert data["target_t"] == 1300 and data["build_start"] == lv.online
    assert data["serve"] == ["defense", "us_auto"]
    release = [l for l in n2.lanes if l.src == "nds_us" and l.id not in {x.id for x in net.lanes}]
    assert [l.dst for l in release] == ["us_auto"] and release[0].share == 0
    # the holding stays, its ordering policy gives way to the build rule
    st = n2.nodes["nds_us"].stocks["ndfeb_hre_magnet"]
    assert st.initial == net.nodes["nds_us"].stocks["ndfeb_hre_magnet"].initial
    assert st.policy.type == "none"


def test_the_shipped_reserve_is_a_new_holder_beside_the_rotating_stock(net):
    """stockpile-release adds a reserve node with its own purchase lanes and release lanes to
    every served buyer; the rotating NDS stock and its lanes stay as they are."""
    n2, _ = apply_plan("stockpile-release", net, "truce-expires")
    new = n2.nodes["nds_us_reserve"]
    assert new.kind == "stockpile" and new.country == "US"
    assert new.reserve["ndfeb_hre_magnet"].target_t == 1300
    assert n2.to_dict()["nodes"]["nds_us"] == net.to_dict()["nodes"]["nds_us"]
    old = {x.id for x in net.lanes}
    assert [l.id for l in net.lanes] == [l.id for l in n2.lanes if l.id in old]
    inbound = sorted(l.src for l in n2.lanes if l.dst == "nds_us_reserve")
    assert inbound == ["mag_jp", "mag_us_other"]
    served = {l.dst for l in n2.lanes if l.src == "nds_us_reserve"}
    defense = {n.id for n in net.nodes.values() if n.sector == "defense"
               and "ndfeb_hre_magnet" in n.demand}
    assert served == defense | {"us_auto"}
    assert all(l.share == 0 for l in n2.lanes if l.src == "nds_us_reserve")


@pytest.mark.parametrize("holder", ["nds_us_reserve", "nds_us"])
def test_stockpile_builds_from_its_start_and_releases_nothing_without_a_shortage(net, holder):
    """In the baseline (no shortage) the reserve buys from its build start up to its target
    and releases nothing."""
    plan = "stockpile-release" if holder == "nds_us_reserve" else \
        _plan("p", _existing_holder_reserve())
    n2, s2 = apply_plan(plan, net)
    flows = sim.simulate(n2, s2, seed=4).reserve_flows()
    buys = flows[flows.event == "purchase"]
    assert (flows.event != "release").all()
    assert buys.date.min() >= load_plan(plan).levers[0].online
    held = n2.nodes[holder].stocks["ndfeb_hre_magnet"].initial
    assert buys.quantity_t.sum() == pytest.approx(1300 - held)


# ---------------------------------------------------------------------------------------------
# controls that name nodes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, expected", [
    ("same-country-kind", True), ("none", False), ({"like": "mag_us_mp"}, True),
    ({"like": "mag_jp"}, False)])
def test_new_nodes_fall_under_node_lists_by_the_stated_rule(net, rule, expected):
    """controls-oct-2025 halves the capacity of named non-China magnet makers (mag_us_mp,
    mag_us_other, ...): a new US magnet maker joins that list by country and kind unless
    the lever says otherwise."""
    sc = sim.load_scenario("controls-oct-2025")
    n2, s2 = apply_plan(_plan("p", _facility(controls=rule)), net, sc)
    nodes = [n for c in s2.controls for n in c.capacity_nodes]
    assert ("mag_us_new" in nodes) is expected
    base = [n for c in sc.controls for n in c.capacity_nodes]
    assert [n for n in nodes if n != "mag_us_new"] == base


# ---------------------------------------------------------------------------------------------
# composition
# ---------------------------------------------------------------------------------------------

def _three():
    a = load_plan(_plan("a", _facility()))
    b = load_plan(_plan("b", {"id": "ss", "type": "safety_stock", "extra_days": 10.0,
                              "kinds": ["defense_user"], "start": D(2025, 1, 1),
                              "source": "assumption: test", "cost": COST}))
    c = load_plan(_plan("c", {"id": "q", "type": "qualification", "from": "mag_ee",
                              "to": "us_auto", "material": "ndfeb_hre_magnet", "share": 0.1,
                              "lead_time": 20, "start": D(2025, 3, 1),
                              "source": "assumption: test", "cost": COST}))
    return a, b, c


def test_composition_is_associative(net):
    a, b, c = _three()
    left, right = (a + b) + c, a + (b + c)
    assert left.name == right.name == "a+b+c"
    assert left.levers == right.levers
    assert compose_plans(a, b, c).levers == left.levers
    n_l, s_l = apply_plan(left, net, "truce-expires")
    n_r, s_r = apply_plan(right, net, "truce-expires")
    assert n_l.digest() == n_r.digest() and s_l.digest() == s_r.digest()
    # applying a then b then c gives the same network as a+b+c (up to the plan marks)
    n_seq, s_seq = net, sim.load_scenario("truce-expires")
    for p in (a, b, c):
        n_seq, s_seq = apply_plan(p, n_seq, s_seq)
    strip = lambda n: {k: v for k, v in n.to_dict().items() if k != "network"}  # noqa: E731
    assert strip(n_seq) == strip(n_l)
    assert load_plan("status-quo") + a == a + load_plan("status-quo")


def test_resolved_plan_round_trips_through_its_toml(net):
    """Plan.to_dict() is the resolved plan (extends and delays applied): read back, it has the
    same levers, costs and effect."""
    import tomli_w
    import tomllib
    for name in ("allied-capacity-delayed", "substitution+stockpile-release"):
        p = load_plan(name)
        back = sim.plans.Plan.from_dict(tomllib.loads(tomli_w.dumps(p.to_dict())))
        assert back.name == p.name
        assert [lv.signature() for lv in back.levers] == [lv.signature() for lv in p.levers]
        assert back.cost("2025-01-01", "2031-01-01") == p.cost("2025-01-01", "2031-01-01")
        n1, s1 = apply_plan(p, net, "truce-expires")
        n2, s2 = apply_plan(back, net, "truce-expires")
        assert s1.digest() == s2.digest()
        assert n1.nodes == n2.nodes and n1.lanes == n2.lanes


def test_scenarios_with_layers_or_built_in_python_take_the_plan(net):
    """A layered scenario (composed data) and a scenario built in Python (no TOML data) both
    receive the plan's surges, and keep their name and other content."""
    layered = sim.load_scenario("truce-holds+japan-2026")
    n2, s2 = apply_plan("substitution", net, layered)
    assert s2.name == layered.name and s2.controls == layered.controls
    assert len(s2.demand_surges) == len(layered.demand_surges) + 38
    bare = sim.Scenario(start=D(2025, 1, 1), end=D(2029, 1, 1))
    _, s3 = apply_plan("substitution", net, bare)
    assert s3.demand_surges[len(bare.demand_surges):] == \
        s2.demand_surges[len(layered.demand_surges):]


def test_composition_conflicts_name_both_plans():
    a, _, _ = _three()
    other = load_plan(_plan("z", _facility(lag_days=400)))
    with pytest.raises(sim.ModelError, match="plans 'a' and 'z' both have a lever 'fac'"):
        a + other
    clash = load_plan(_plan("y", _facility(id="fac2")))
    with pytest.raises(sim.ModelError, match=r"'fac' \(plan 'a'\) and 'fac2' \(plan 'y'\) both "
                                             "create node mag_us_new"):
        a + clash
    assert (a + a).levers == a.levers and (a + a).name == "a"


def test_extends_remove_override_and_delay(tmp_path):
    base = tmp_path / "base.toml"
    import tomli_w
    base.write_text(tomli_w.dumps(_plan("base", _facility(), {
        "id": "ss", "type": "safety_stock", "extra_days": 10.0, "kinds": ["defense_user"],
        "start": D(2025, 1, 1), "source": "assumption: test", "cost": COST},
        description="the base")))
    child = tmp_path / "child.toml"
    child.write_text(tomli_w.dumps({
        "plan": {"name": "child", "extends": "base.toml", "remove": ["ss"], "delay_days": 365,
                 "delay_source": "assumption: test"},
        "levers": [_facility(id="fac", lag_days=100)]}))
    p = load_plan(child)
    assert p.description == "the base" and p.lever_ids == ["fac"]
    lv = p.levers[0]
    assert lv.lag_days == 100 and lv.start == D(2026, 6, 1)
    assert lv.params["start"] == D(2026, 6, 1)
    # the delay moves every date inside the lever, costs with them
    b = load_plan(base)
    assert b.cost("2025-01-01", "2040-01-01")["capital_usd"] == pytest.approx(2e8)
    assert p.cost("2025-01-01", "2026-06-01")["total_usd"] == 0
    cyc = tmp_path / "cyc.toml"
    cyc.write_text(tomli_w.dumps({"plan": {"name": "cyc", "extends": "cyc.toml"}}))
    with pytest.raises(sim.ModelError, match="extends cycle"):
        load_plan(cyc)


def test_delayed_shipped_plan_is_the_plan_two_years_later():
    a, d = load_plan("allied-capacity"), load_plan("allied-capacity-delayed")
    assert [lv.id for lv in a.levers] == [lv.id for lv in d.levers]
    for x, y in zip(a.levers, d.levers):
        assert y.online - x.online == dt.timedelta(days=730)
        assert (x.capital_usd, x.yearly_usd) == (y.capital_usd, y.yearly_usd)


# ---------------------------------------------------------------------------------------------
# costs
# ---------------------------------------------------------------------------------------------

def test_cost_capital_over_the_lag_yearly_from_online():
    lv = _facility(start=D(2025, 1, 1), lag_days=365)
    p = load_plan(_plan("p", lv))
    half = p.cost(D(2025, 1, 1), D(2025, 7, 2))     # 182 of 365 days of construction
    assert half["capital_usd"] == pytest.approx(1e8 * 182 / 365)
    assert half["yearly_usd"] == 0
    full = p.cost(D(2025, 1, 1), D(2028, 1, 1))
    assert full["capital_usd"] == pytest.approx(1e8)
    assert full["yearly_usd"] == pytest.approx(3.6525e6 * (D(2028, 1, 1) - D(2026, 1, 1)).days
                                               / 365.25)
    assert full["total_usd"] == pytest.approx(full["capital_usd"] + full["yearly_usd"])


# ---------------------------------------------------------------------------------------------
# errors name the file, the lever and the field
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, pattern", [
    ({"type": "factory"}, r"levers\[0\]: type: unknown lever type 'factory'"),
    ({"lag_days": -3}, r"lever 'fac': lag_days: must be >= 0"),
    ({"cost": {"capital_usd": 5}}, r"lever 'fac': cost.capital_source: must be a non-empty"),
    ({"start": "soon"}, r"lever 'fac': start: must be a date"),
    ({"ramp": [{"after_days": 0, "share": 0.5}]}, r"lever 'fac': ramp: the last step must reach"),
    ({"source": ""}, r"lever 'fac': source: must be a non-empty string"),
    ({"colour": "red"}, r"lever 'fac': unknown field\(s\) \['colour'\]"),
])
def test_errors_name_file_lever_and_field(tmp_path, change, pattern):
    import tomli_w
    lv = _facility()
    lv.update(change)
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(_plan("bad", lv)))
    with pytest.raises(sim.ModelError, match=str(path).replace("\\", "\\\\") + ": " + pattern):
        load_plan(path)


def test_apply_errors_name_plan_file_and_lever(tmp_path, net):
    import tomli_w
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(_plan("bad", _facility(buyers=[
        {"node": "nowhere", "material": "ndfeb_hre_magnet", "share": 0.1, "lead_time": 4}]))))
    with pytest.raises(sim.ModelError, match=f"{path}: plan 'bad': lever 'fac': buyers\\[0\\]"
                                             r".node: node 'nowhere' is not in network"):
        apply_plan(path, net)
    # an inherited lever's error names the file that defines it
    child = tmp_path / "child.toml"
    child.write_text(tomli_w.dumps({"plan": {"name": "child", "extends": "bad.toml"}}))
    with pytest.raises(sim.ModelError, match=f"{path}: plan 'child': lever 'fac': buyers"):
        apply_plan(child, net)
    with pytest.raises(sim.ModelError, match="unknown plan 'no-such-plan'"):
        load_plan("no-such-plan")


# ---------------------------------------------------------------------------------------------
# shipped plans and the CLI
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["status-quo", "allied-capacity", "allied-capacity-delayed",
                                  "substitution", "stockpile-release", "recycling"])
def test_every_shipped_plan_validates_and_runs(net, name):
    plan = load_plan(name)
    for lv in plan.levers:
        assert lv.source and (lv.capital_source or not lv.capital_usd)
    n2, s2 = apply_plan(plan, net, "truce-expires")
    run = sim.simulate(n2, s2, seed=1)
    assert 0.0 <= run.kpi("fill_rate", "sector:defense") <= 1.0
    assert isinstance(plan, Plan) and plan.cost("2025-01-01", "2029-01-01")["total_usd"] >= 0


def test_cli_plan_list_show_validate(capsys, tmp_path):
    assert main(["plan", "list"]) == 0
    out = capsys.readouterr().out
    assert "allied-capacity-delayed" in out and "status-quo" in out
    assert main(["plan", "show", "allied-capacity"]) == 0
    out = capsys.readouterr().out
    assert "vulcan-magnets" in out and "new_facility" in out and "cost 2025-01-01" in out
    assert main(["plan", "show", "substitution+allied-capacity", "--toml"]) == 0
    out = capsys.readouterr().out
    assert 'name = "substitution+allied-capacity"' in out
    assert main(["plan", "validate", "allied-capacity", "--scenario", "truce-expires"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: plan 'allied-capacity'") and "mag_us_vulcan" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[plan]\nname = "bad"\n[[levers]]\ntype = "factory"\n')
    assert main(["plan", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "unknown lever type" in err
    assert len(err.strip().splitlines()) == 1
