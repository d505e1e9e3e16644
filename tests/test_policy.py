"""Tests of the policy layer: export controls (element targeting, direct and extraterritorial
rules with de minimis), licensing, quotas, the truce, tariffs, outages, surges and re-routing.

Networks are built in Python (``sim.Network.from_dict``) so each test controls exactly which
lanes a policy can touch. Where a buyer's lanes change during a run, the buyer is a plain
(non-demand) stock: the US magnet maker of :func:`plain_net`, whose line consumes oxide at a
known rate. Properties of random quantities are checked against their expectations within a
few standard errors, never against seeded digits.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import numpy as np
import pytest

import sim
from sim.records import (
    REC_BACKLOG_DROP,
    REC_CANCELLED,
    REC_PRODUCED,
    REC_RECEIVED,
    REC_RETURNED,
    REC_SHIPPED,
)
from sim.errors import ModelError, ScenarioError

T0 = dt.date(2025, 1, 1)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def day(n: float) -> str:
    """ISO date of simulation day *n* (runs start on 2025-01-01)."""
    return (T0 + dt.timedelta(days=n)).isoformat()


def scenario(**parts) -> sim.Scenario:
    data = {"scenario": {"name": "test", "start": day(0)}}
    data.update(parts)
    return sim.Scenario.from_dict(data)


def control(start=0, elements=("Dy",), **kw) -> dict:
    c = {"exporter": "CN", "elements": list(elements),
         "start": start if isinstance(start, str) else day(start)}
    c.update(kw)
    return c


def lane(run, lane_id):
    return next(l for l in run.lanes if l.id == lane_id)


def stock(run, node, material):
    return next(s for s in run.stocks if s.node == node and s.material == material)


def records(st, code):
    return st.log[st.log[:, 1] == code]


def clock_monotone(run) -> bool:
    """Every stock's change log is in time order (the simulation clock never ran backwards)."""
    return all(np.all(np.diff(s.log[:, 0]) >= 0) for s in run.stocks)


def residual(run) -> float:
    return float(run.material_balance()["residual"].abs().max())


def plain_net(*, lead_cn=10.0, lead_au=10.0, au=False, share_cn=1.0, qual=0.0, s=10.0, S=20.0,
              init=20.0, elements=("Dy",), use=365.0, cn_capacity=None, extra_material=False):
    """CN (and optionally AU) sellers of ``dy_oxide`` to a US magnet maker whose line runs flat
    out, consuming ``use`` t/yr of oxide (1 t/day by default). The buyer's oxide stock has an
    (s, S) policy. ``cn_capacity`` makes the CN seller a slow producer with no stock (so orders
    queue there). ``extra_material`` adds ``ndpr_oxide`` (Nd, Pr) from CN to the recipe."""
    mats = {"dy_oxide": {"elements": list(elements), "price_usd_per_t": 300000},
            "magnet": {"elements": ["Nd", "Pr", "Dy"], "price_usd_per_t": 400000}}
    recipe = {"dy_oxide": 1.0}
    cn = {"kind": "processor", "country": "CN", "stock": {"dy_oxide": {"initial": 1e6}}}
    if cn_capacity is not None:
        cn = {"kind": "processor", "country": "CN", "stock": {"dy_oxide": {"initial": 0}},
              "production": {"dy_oxide": {"capacity_t_per_year": cn_capacity, "batch_days": 1,
                                          "target_stock": 1}}}
    buyer_stock = {"dy_oxide": {"initial": init, "policy": {"type": "sS", "s": s, "S": S}}}
    lanes = [{"from": "cn", "to": "us_mag", "material": "dy_oxide", "lead_time": lead_cn,
              "share": share_cn}]
    if extra_material:
        mats["ndpr_oxide"] = {"elements": ["Nd", "Pr"], "price_usd_per_t": 60000}
        cn["stock"]["ndpr_oxide"] = {"initial": 1e6}
        recipe["ndpr_oxide"] = 1.0
        buyer_stock["ndpr_oxide"] = {"initial": init, "policy": {"type": "sS", "s": s, "S": S}}
        lanes.append({"from": "cn", "to": "us_mag", "material": "ndpr_oxide",
                      "lead_time": lead_cn})
    nodes = {"cn": cn,
             "us_mag": {"kind": "magnet_maker", "country": "US", "stock": buyer_stock,
                        "production": {"magnet": {"capacity_t_per_year": use, "recipe": recipe,
                                                  "batch_days": 1, "target_stock": 1e9}}}}
    if au:
        nodes["au"] = {"kind": "processor", "country": "AU",
                       "stock": {"dy_oxide": {"initial": 1e6}}}
        lanes.append({"from": "au", "to": "us_mag", "material": "dy_oxide", "lead_time": lead_au,
                      "share": 1.0 - share_cn, "qualification_days": qual})
    return sim.Network.from_dict({"network": {"name": "plain"}, "materials": mats,
                                  "nodes": nodes, "lanes": lanes})


CN_LANE = "cn->us_mag:dy_oxide"
AU_LANE = "au->us_mag:dy_oxide"


def demand_net(lead=10.0, S=20.0):
    """A CN seller of four materials to a US manufacturer with deterministic weekly demand for
    each: Dy oxide, NdPr oxide, a Dy-bearing magnet and an NdPr-only magnet."""
    mats = {"dy_oxide": {"elements": ["Dy"], "price_usd_per_t": 300000},
            "ndpr_oxide": {"elements": ["Nd", "Pr"], "price_usd_per_t": 60000},
            "magnet_dy": {"elements": ["Nd", "Pr", "Dy"], "price_usd_per_t": 50000},
            "magnet_ndpr": {"elements": ["Nd", "Pr"], "price_usd_per_t": 40000}}
    sup = {"kind": "processor", "country": "CN", "stock": {m: {"initial": 1e6} for m in mats}}
    buyer = {"kind": "manufacturer", "country": "US", "sector": "automotive",
             "stock": {m: {"initial": S, "policy": {"type": "sS", "s": 15, "S": S}}
                       for m in mats},
             "demand": {m: {"process": "periodic", "rate_t_per_year": 104, "period_days": 7}
                        for m in mats}}
    lanes = [{"from": "cn", "to": "us", "material": m, "lead_time": lead} for m in mats]
    return sim.Network.from_dict({"network": {"name": "elements"}, "materials": mats,
                                  "nodes": {"cn": sup, "us": buyer}, "lanes": lanes})


DY_LANES = ("cn->us:dy_oxide", "cn->us:magnet_dy")
NDPR_LANES = ("cn->us:ndpr_oxide", "cn->us:magnet_ndpr")


# ---------------------------------------------------------------------------------------------
# 1. element targeting
# ---------------------------------------------------------------------------------------------

def test_licensing_on_dy_reaches_dy_materials_only():
    L, R = 10.0, 20.0
    run = sim.simulate(demand_net(lead=L), scenario(controls={
        "dy": control(regime="licensing", review_days=R)}), seed=1, horizon_days=365)
    for lid in NDPR_LANES:
        log = lane(run, lid).log
        assert len(log) > 5
        np.testing.assert_allclose(log[:, 2] - log[:, 0], L)        # no licence delay
    dy_shipped = []
    for lid in DY_LANES:
        log = lane(run, lid).log
        assert len(log) > 5
        np.testing.assert_allclose(log[:, 2] - log[:, 0], R + L)    # every one reviewed
        dy_shipped += log[:, 0].tolist()
    # one licence per Dy-lane shipment (those whose review ended before the horizon are in
    # the lane logs), none for the NdPr lanes
    lic = run.licences
    done = lic[lic[:, 0] + lic[:, 1] < run.horizon]
    np.testing.assert_allclose(np.sort(done[:, 0]), np.sort(dy_shipped))
    assert run.kpi("licence_reviews", "policy") == len(lic)
    assert residual(run) < 1e-6


def test_ban_on_dy_leaves_ndpr_demand_fully_served():
    base = sim.simulate(demand_net(), scenario(), seed=2, horizon_days=365)
    run = sim.simulate(demand_net(), scenario(controls={"dy": control(regime="ban")}),
                       seed=2, horizon_days=365)
    fill = {d.material: d.filled.sum() / d.D.sum() for d in run.demand}
    fill0 = {d.material: d.filled.sum() / d.D.sum() for d in base.demand}
    assert all(v == pytest.approx(1.0) for v in fill0.values())
    assert fill["ndpr_oxide"] == pytest.approx(1.0)
    assert fill["magnet_ndpr"] == pytest.approx(1.0)
    assert fill["dy_oxide"] < 0.3
    assert fill["magnet_dy"] < 0.3
    for lid in DY_LANES:
        assert len(lane(run, lid).log) == 0
    for lid in NDPR_LANES:
        assert len(lane(run, lid).log) == len(lane(base, lid).log) > 5
    assert len(run.licences) == 0
    assert residual(run) < 1e-6


def test_control_on_other_exporter_or_destination_touches_nothing():
    L = 10.0
    for c in (control(regime="ban", exporter="AU"),            # wrong exporter
              control(regime="ban", destinations=["JP"]),      # US not a covered destination
              control(regime="ban", destinations={"all_but": ["US"]}),
              control(regime="ban", elements=["Tb"])):         # element not contained
        run = sim.simulate(demand_net(lead=L), scenario(controls={"c": c}), seed=3,
                           horizon_days=200)
        for lid in DY_LANES + NDPR_LANES:
            log = lane(run, lid).log
            assert len(log) > 3
            np.testing.assert_allclose(log[:, 2] - log[:, 0], L)


# ---------------------------------------------------------------------------------------------
# 2. extraterritorial rule and de minimis
# ---------------------------------------------------------------------------------------------

MAG_LANE = "mag_jp->us:magnet"


def jp_net(*, cn_share=None, recipe=None, mag_price=100000.0, oxide_stock=(20, 40, 30)):
    """Oxide from a CN and an AU processor goes to a JP magnet maker (kind magnet_maker: does
    not confer origin), whose magnets go to a US maker with deterministic daily demand.

    With ``cn_share`` the JP maker buys one ``dy_oxide`` from both, split by lane shares
    (0 or 1 drops a lane). Otherwise it buys ``cn_oxide`` only from CN and ``au_oxide`` only
    from AU and ``recipe`` fixes the value share of each."""
    mats = {"magnet": {"elements": ["Nd", "Pr", "Dy"], "price_usd_per_t": mag_price}}
    s, S, init = oxide_stock
    nodes = {"sep_cn": {"kind": "processor", "country": "CN", "stock": {}},
             "sep_au": {"kind": "processor", "country": "AU", "stock": {}},
             "mag_jp": {"kind": "magnet_maker", "country": "JP",
                        "stock": {"magnet": {"initial": 50}},
                        "production": {"magnet": {"capacity_t_per_year": 2000, "batch_days": 2,
                                                  "target_stock": 50}}},
             "us": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                    "stock": {"magnet": {"initial": 40,
                                         "policy": {"type": "sS", "s": 30, "S": 50}}},
                    "demand": {"magnet": {"process": "periodic", "rate_t_per_year": 365,
                                          "period_days": 1}}}}
    lanes = [{"from": "mag_jp", "to": "us", "material": "magnet", "lead_time": 5}]
    pol = {"type": "sS", "s": s, "S": S}
    if cn_share is not None:
        mats["dy_oxide"] = {"elements": ["Nd", "Dy"], "price_usd_per_t": 100000}
        for n in ("sep_cn", "sep_au"):
            nodes[n]["stock"]["dy_oxide"] = {"initial": 1e6}
        nodes["mag_jp"]["stock"]["dy_oxide"] = {"initial": init, "policy": pol}
        nodes["mag_jp"]["production"]["magnet"]["recipe"] = recipe or {"dy_oxide": 0.3}
        if cn_share > 0:
            lanes.append({"from": "sep_cn", "to": "mag_jp", "material": "dy_oxide",
                          "lead_time": 5, "share": cn_share})
        if cn_share < 1:
            lanes.append({"from": "sep_au", "to": "mag_jp", "material": "dy_oxide",
                          "lead_time": 5, "share": 1 - cn_share})
    else:
        for m, n in (("cn_oxide", "sep_cn"), ("au_oxide", "sep_au")):
            mats[m] = {"elements": ["Nd", "Dy"], "price_usd_per_t": 100000}
            nodes[n]["stock"][m] = {"initial": 1e6}
            nodes["mag_jp"]["stock"][m] = {"initial": init, "policy": pol}
            lanes.append({"from": n, "to": "mag_jp", "material": m, "lead_time": 5})
        nodes["mag_jp"]["production"]["magnet"]["recipe"] = recipe
    return sim.Network.from_dict({"network": {"name": "jp"}, "materials": mats,
                                  "nodes": nodes, "lanes": lanes})


def extraterritorial(d, regime="ban", **kw):
    return scenario(controls={"ext": control(regime=regime, extraterritorial=True, direct=False,
                                             de_minimis=d, **kw)})


def caught(run) -> bool:
    """True when the JP->US magnet shipments were stopped (returned), False when they flowed."""
    log = lane(run, MAG_LANE).log
    returned = records(stock(run, "mag_jp", "magnet"), REC_RETURNED)
    assert residual(run) < 1e-6
    if len(returned):
        assert len(log) == 0
        assert run.kpi("fill_rate", "network") < 0.5
        return True
    assert len(log) >= 8
    np.testing.assert_allclose(log[:, 2] - log[:, 0], 5.0)
    assert run.kpi("fill_rate", "network") == pytest.approx(1.0)
    return False


@pytest.mark.parametrize("cn_part", [0.02, 0.2])
def test_de_minimis_threshold_on_both_sides(cn_part):
    # magnet price 100k; recipe: a_cn t of CN oxide (100k/t) + a_au t of AU oxide. The CN-origin
    # value share of a tonne of magnet is exactly a_cn x 100k / 100k = cn_part.
    recipe = {"cn_oxide": cn_part, "au_oxide": 0.3}
    net = jp_net(recipe=recipe)
    below = sim.simulate(net, extraterritorial(cn_part * 0.99), seed=1, horizon_days=200)
    above = sim.simulate(net, extraterritorial(cn_part * 1.01), seed=1, horizon_days=200)
    assert caught(below)        # content exceeds de minimis -> covered
    assert not caught(above)    # content under de minimis -> not covered


def test_de_minimis_with_lane_share_mixing():
    # 30% of the JP maker's oxide comes from CN (lane shares); content share of the magnet is
    # 0.3 x 100k / 100k = 0.3, so the CN-origin value share is about 0.09 (the stock's mix moves
    # a little as shipments arrive; a large oxide stock keeps it near 0.3)
    net = jp_net(cn_share=0.3, oxide_stock=(200, 220, 210))
    assert caught(sim.simulate(net, extraterritorial(0.06), seed=1, horizon_days=200))
    assert not caught(sim.simulate(net, extraterritorial(0.12), seed=1, horizon_days=200))


def test_de_minimis_origin_of_oxide_decides():
    au_only = jp_net(cn_share=0.0)
    cn_only = jp_net(cn_share=1.0)
    assert not caught(sim.simulate(au_only, extraterritorial(0.001), seed=1, horizon_days=200))
    assert caught(sim.simulate(cn_only, extraterritorial(0.001), seed=1, horizon_days=200))
    # the CN-only magnet's CN value share is 0.3: caught below that, not above
    assert caught(sim.simulate(cn_only, extraterritorial(0.29), seed=1, horizon_days=200))
    assert not caught(sim.simulate(cn_only, extraterritorial(0.31), seed=1, horizon_days=200))
    # direct=false: the direct CN->JP oxide export itself is not covered, not even by a
    # zero de minimis (the extraterritorial part skips exports from the controlling country)
    run = sim.simulate(cn_only, extraterritorial(0.31), seed=1, horizon_days=200)
    assert len(run.licences) == 0
    log = lane(run, "sep_cn->mag_jp:dy_oxide").log
    assert len(log) > 0
    np.testing.assert_allclose(log[:, 2] - log[:, 0], 5.0)


def test_extraterritorial_licensing_delays_foreign_made_magnets():
    R = 12.0
    run = sim.simulate(jp_net(cn_share=1.0), extraterritorial(0.001, regime="licensing",
                                                              review_days=R),
                       seed=1, horizon_days=200)
    log = lane(run, MAG_LANE).log
    assert len(log) > 5
    np.testing.assert_allclose(log[:, 2] - log[:, 0], R + 5.0)
    np.testing.assert_allclose(lane(run, "sep_cn->mag_jp:dy_oxide").log[:, 2]
                               - lane(run, "sep_cn->mag_jp:dy_oxide").log[:, 0], 5.0)
    assert len(run.licences) >= len(log)


# ---------------------------------------------------------------------------------------------
# 3. truce
# ---------------------------------------------------------------------------------------------

def _truce(start, duration, outcomes=None, **kw):
    t = {"suspends": ["c"], "start": day(start), "duration_days": duration}
    if outcomes is not None:
        t["outcomes"] = outcomes
    t.update(kw)
    return t


LIC = control(regime="licensing", review_days=5)


def test_truce_suspends_and_reinstates_on_the_right_days():
    L = 10.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": LIC},
                                                      truce=_truce(50, 100)),
                       seed=1, horizon_days=300)
    truce = [(d, label) for d, kind, label in run.policy_events if kind == "truce"]
    assert [d for d, _ in truce] == [50.0, 150.0]
    assert "suspended" in truce[0][1]
    assert "reinstated" in truce[1][1]
    assert run.truce_outcomes == ["reinstate"]
    t = run.licences[:, 0]
    assert not np.any((t >= 50) & (t < 150))          # no licences while suspended
    assert np.any(t < 50)
    assert np.any(t >= 150)
    log = lane(run, CN_LANE).log
    delay = log[:, 2] - log[:, 0]
    inside = (log[:, 0] >= 50) & (log[:, 0] < 150)
    assert inside.sum() > 3
    np.testing.assert_allclose(delay[inside], L)
    np.testing.assert_allclose(delay[log[:, 0] < 45], L + 5)
    np.testing.assert_allclose(delay[log[:, 0] >= 150], L + 5)


def test_truce_extend_keeps_controls_suspended_to_the_horizon():
    run = sim.simulate(plain_net(), scenario(controls={"c": LIC}, truce=_truce(
        50, 100, {"extend": 1.0}, extension_days=60)), seed=1, horizon_days=400)
    truce_days = [d for d, kind, _ in run.policy_events if kind == "truce"]
    expiries = [150.0, 210.0, 270.0, 330.0, 390.0]
    assert truce_days == [50.0, *expiries]
    assert run.truce_outcomes == ["extend"] * len(expiries)
    assert run.kpi("truce_extensions", "policy") == len(expiries)
    assert not np.any(run.licences[:, 0] >= 50)


def test_truce_escalation_applies_overrides():
    run = sim.simulate(plain_net(), scenario(controls={"c": LIC}, truce=_truce(
        50, 100, {"escalate": 1.0}, escalation={"regime": "ban"})), seed=1, horizon_days=300)
    assert run.truce_outcomes == ["escalate"]
    log = lane(run, CN_LANE).log
    assert len(log) > 5
    assert log[:, 0].max() < 150                        # banned from the expiry on
    assert any("escalated" in lab for d, k, lab in run.policy_events if d == 150.0)


def test_truce_outcome_frequencies_match_probabilities():
    probs = {"reinstate": 0.3, "extend": 0.5, "escalate": 0.2}
    sc = scenario(controls={"c": LIC}, truce=_truce(10, 100, probs))
    n = 300
    outcomes = []
    for i in range(n):
        run = sim.simulate(plain_net(), sc, seed=11, replication=i, horizon_days=111)
        assert len(run.truce_outcomes) == 1
        outcomes.append(run.truce_outcomes[0])
    counts = Counter(outcomes)
    for k, p in probs.items():
        se = math.sqrt(p * (1 - p) / n)
        assert abs(counts[k] / n - p) < 4 * se, (k, counts)


# ---------------------------------------------------------------------------------------------
# 4. licence delays and denials
# ---------------------------------------------------------------------------------------------

def test_fixed_review_shifts_every_covered_arrival():
    L, R = 10.0, 17.0
    run = sim.simulate(plain_net(lead_cn=L, extra_material=True), scenario(controls={
        "c": control(regime="licensing", review_days=R)}), seed=4, horizon_days=400)
    log = lane(run, CN_LANE).log
    assert len(log) > 10
    np.testing.assert_allclose(log[:, 2], log[:, 0] + R + L)
    ndpr = lane(run, "cn->us_mag:ndpr_oxide").log          # Nd/Pr only: not covered
    np.testing.assert_allclose(ndpr[:, 2], ndpr[:, 0] + L)
    assert np.all(run.licences[:, 1] == R)
    assert np.all(run.licences[:, 2] == 1)
    assert residual(run) < 1e-6


def test_random_review_days_are_the_drawn_delays():
    L = 10.0
    spec = {"dist": "uniform", "min": 5, "max": 25}
    delays = []
    for seed in range(4):
        run = sim.simulate(plain_net(lead_cn=L, s=40, S=45, init=45), scenario(controls={
            "c": control(regime="licensing", review_days=spec)}), seed=seed, horizon_days=730)
        log = lane(run, CN_LANE).log
        lic = run.licences
        done = lic[lic[:, 0] + lic[:, 1] < run.horizon]
        # pair each shipment with its licence by shipping time
        a = log[np.argsort(log[:, 0], kind="stable")]
        b = done[np.argsort(done[:, 0], kind="stable")]
        assert len(a) == len(b) > 20
        np.testing.assert_allclose(a[:, 0], b[:, 0])
        np.testing.assert_allclose(np.sort(a[:, 2] - a[:, 0] - L), np.sort(b[:, 1]))
        delays += (a[:, 2] - a[:, 0] - L).tolist()
    delays = np.array(delays)
    assert delays.min() >= 5
    assert delays.max() <= 25
    se = delays.std(ddof=1) / math.sqrt(len(delays))
    assert abs(delays.mean() - 15.0) < 4 * se + 1e-9


def test_approval_zero_returns_everything_and_books_balance():
    run = sim.simulate(plain_net(), scenario(controls={
        "c": control(regime="licensing", review_days=3, approval_probability=0.0,
                     avoid_days=20)}), seed=5, horizon_days=300)
    assert len(lane(run, CN_LANE).log) == 0                 # nothing covered arrives
    assert len(records(stock(run, "us_mag", "dy_oxide"), REC_RECEIVED)) == 0
    lic = run.licences
    assert len(lic) > 3
    assert np.all(lic[:, 2] == 0)
    assert run.kpi("licence_denials", "policy") == len(lic)
    returned = records(stock(run, "cn", "dy_oxide"), REC_RETURNED)
    cancelled = records(stock(run, "us_mag", "dy_oxide"), REC_CANCELLED)
    decided = lic[lic[:, 0] + lic[:, 1] < run.horizon]
    assert len(returned) == len(decided) == len(cancelled)
    np.testing.assert_allclose(returned[:, 2].sum(), cancelled[:, 2].sum())
    assert residual(run) < 1e-6
    buyer = stock(run, "us_mag", "dy_oxide")
    assert buyer.final_on_order == pytest.approx(lane(run, CN_LANE).in_transit_final, abs=1e-6)


def test_requeue_applies_again_until_approved():
    # on_denial = requeue: a denied shipment is reviewed again, so nothing is returned and each
    # shipment is reviewed a geometric number of times (mean 1 / approval)
    L, R = 10.0, 4.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": control(
        regime="licensing", review_days=R, approval_probability=0.5, on_denial="requeue")}),
        seed=6, horizon_days=500)
    log = lane(run, CN_LANE).log
    lic = run.licences
    assert len(records(stock(run, "cn", "dy_oxide"), REC_RETURNED)) == 0
    assert len(records(stock(run, "us_mag", "dy_oxide"), REC_CANCELLED)) == 0
    # every denial is followed by a new application when its review ends
    times = set(np.round(lic[:, 0], 9))
    for t, r, ok in lic:
        if not ok and t + r < run.horizon:
            assert round(t + r, 9) in times
    approved = lic[lic[:, 2] == 1]
    assert len(approved[approved[:, 0] + R < run.horizon]) == len(log) > 20
    p_hat = len(approved) / len(lic)
    assert abs(p_hat - 0.5) < 4 * math.sqrt(0.25 / len(lic))
    assert residual(run) < 1e-6


def test_requeued_shipment_keeps_its_shipped_time():
    L, R = 10.0, 4.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": control(
        regime="licensing", review_days=R, approval_probability=0.5, on_denial="requeue")}),
        seed=6, horizon_days=500)
    log = lane(run, CN_LANE).log
    left = set(records(stock(run, "cn", "dy_oxide"), REC_SHIPPED)[:, 0].tolist())
    assert all(t in left for t in log[:, 0].tolist())   # shipped when the goods left the seller
    k = (log[:, 2] - log[:, 0] - L) / R                  # reviews each shipment went through
    assert abs(k.mean() - 2.0) < 4 * math.sqrt(2.0 / len(k))   # actual: k == 1 for all


# ---------------------------------------------------------------------------------------------
# 5. tariffs
# ---------------------------------------------------------------------------------------------

def test_tariff_cost_is_rate_times_value_in_the_period():
    r, t1, t2 = 0.25, 100.0, 200.0
    net = plain_net(au=True, share_cn=0.5, extra_material=True)
    run = sim.simulate(net, scenario(tariffs=[
        {"origin": "CN", "destination": "US", "rate": r, "start": day(t1), "end": day(t2),
         "materials": ["dy_oxide"]}]), seed=7, horizon_days=365)
    price = 300000.0
    cn = lane(run, CN_LANE).log
    inside = (cn[:, 0] >= t1) & (cn[:, 0] < t2)
    assert inside.sum() > 3
    assert (~inside).sum() > 3
    expected = r * price * cn[inside, 1].sum()
    for scope in ("network", "country:US", "node:us_mag"):
        assert run.kpi("tariff_cost_usd", scope) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(cn[inside, 3], r)
    np.testing.assert_allclose(cn[~inside, 3], 0.0)
    # other origins and other materials pay nothing
    assert np.all(lane(run, AU_LANE).log[:, 3] == 0)
    assert np.all(lane(run, "cn->us_mag:ndpr_oxide").log[:, 3] == 0)
    purchase = sum(l.log[:, 1].sum() * l.price for l in run.lanes)
    for scope in ("network", "country:US"):
        assert run.kpi("purchase_cost_usd", scope) == pytest.approx(purchase, rel=1e-9)
    assert run.kpi("purchase_cost_usd", "network") > 0
    # the tariff changes costs only, not flows
    base = sim.simulate(net, scenario(), seed=7, horizon_days=365)
    assert base.kpi("tariff_cost_usd", "network") == 0.0
    np.testing.assert_allclose(lane(base, CN_LANE).log[:, :3], cn[:, :3])


def test_tariffs_stack_and_destination_filter():
    net = plain_net()
    run = sim.simulate(net, scenario(tariffs=[
        {"origin": "CN", "destination": "US", "rate": 0.1, "start": day(0)},
        {"origin": "CN", "rate": 0.05, "start": day(0)},                 # all destinations
        {"origin": "CN", "destination": "JP", "rate": 0.5, "start": day(0)}]),
        seed=1, horizon_days=100)
    log = lane(run, CN_LANE).log
    np.testing.assert_allclose(log[:, 3], 0.15)
    assert run.kpi("tariff_cost_usd") == pytest.approx(0.15 * 300000 * log[:, 1].sum())


def test_tariff_no_longer_applies_on_its_end_day():
    # A CN trader with no stock gets a domestic delivery on day 50 (scheduled on day 0) and
    # ships the queued US order at once. Tariff A (25%) runs [10, 50), tariff B (10%) from 50.
    mats = {"mag": {"elements": ["Nd"], "price_usd_per_t": 1000}}
    nodes = {"src": {"kind": "processor", "country": "CN", "stock": {"mag": {"initial": 1e6}}},
             "trader": {"kind": "stockpile", "country": "CN", "stock": {
                 "mag": {"initial": 0, "policy": {"type": "sS", "s": 0, "S": 10}}}},
             "us": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                    "stock": {"mag": {"initial": 0, "policy": {"type": "sS", "s": 0, "S": 5}}},
                    "demand": {"mag": {"process": "periodic", "rate_t_per_year": 1,
                                       "period_days": 1000}}}}
    lanes = [{"from": "src", "to": "trader", "material": "mag", "lead_time": 50},
             {"from": "trader", "to": "us", "material": "mag", "lead_time": 5}]
    net = sim.Network.from_dict({"network": {"name": "edge"}, "materials": mats,
                                 "nodes": nodes, "lanes": lanes})
    run = sim.simulate(net, scenario(tariffs=[
        {"origin": "CN", "destination": "US", "rate": 0.25, "start": day(10), "end": day(50)},
        {"origin": "CN", "destination": "US", "rate": 0.10, "start": day(50)}]),
        seed=1, horizon_days=100)
    log = lane(run, "trader->us:mag").log
    assert log[0, 0] == 50.0
    assert log[0, 3] == pytest.approx(0.10)     # actual: 0.35 (both tariffs)


# ---------------------------------------------------------------------------------------------
# 6. re-routing
# ---------------------------------------------------------------------------------------------

def test_ban_reroutes_to_other_supplier_and_cancels_queued_orders():
    X, L = 100.0, 10.0
    net = plain_net(au=True, share_cn=0.5, lead_cn=L, lead_au=L, cn_capacity=0.3 * 365)
    run = sim.simulate(net, scenario(controls={"b": control(start=X, regime="ban")}),
                       seed=1, horizon_days=300)
    assert clock_monotone(run)
    cn, au = lane(run, CN_LANE).log, lane(run, AU_LANE).log
    assert len(cn) > 10
    assert cn[:, 0].max() < X
    assert cn[:, 2].max() <= X + L                              # in-flight ones land by X + L
    # the orders queued at the CN seller are dropped at X and cancelled by the buyer
    seller, buyer = stock(run, "cn", "dy_oxide"), stock(run, "us_mag", "dy_oxide")
    drop, canc = records(seller, REC_BACKLOG_DROP), records(buyer, REC_CANCELLED)
    assert len(drop) == 1
    assert drop[0, 0] == X
    assert drop[0, 2] > 0
    assert len(canc) == 1
    assert canc[0, 0] == X
    assert canc[0, 2] == pytest.approx(drop[0, 2])
    assert seller.final_backlog == pytest.approx(0.0, abs=1e-9)
    transit = sum(l.in_transit_final for l in run.lanes if l.dst == "us_mag")
    assert buyer.final_on_order == pytest.approx(transit, abs=1e-6)
    assert residual(run) < 1e-6
    # the AU lane carries the buyer's orders: the line runs at capacity (1 t/day) after X + 2L
    after = au[:, 0] >= X
    assert au[after, 1].sum() > 0.9 * (run.horizon - X - L)
    prod = next(p for p in run.production if p[0] == "us_mag")[2]
    late = prod[prod[:, 0] >= X + 2 * L]
    assert late[:, 1].sum() == pytest.approx(run.horizon - (X + 2 * L), abs=2.0)


def test_licence_denial_makes_buyer_avoid_lane_then_return():
    A, R = 30.0, 2.0
    net = plain_net(au=True, share_cn=0.5)
    run = sim.simulate(net, scenario(controls={"c": control(
        regime="licensing", review_days=R, approval_probability=0.0, avoid_days=A)}),
        seed=1, horizon_days=400)
    assert clock_monotone(run)
    t = np.sort(run.licences[:, 0])                  # every CN-lane shipment is reviewed
    assert len(lane(run, CN_LANE).log) == 0
    # denials at t + R; the first denial while the lane is not avoided starts an avoid window
    windows, until = [], -np.inf
    for d in t + R:
        if d < run.horizon and d >= until:
            windows.append(d)
            until = d + A
    assert len(windows) >= 5
    for w in windows:
        assert not np.any((t > w) & (t < w + A - 1e-9))    # lane avoided ...
        if w + A < run.horizon - 5:
            assert np.any((t >= w + A - 1e-9) & (t < w + A + 12))  # ... then used again
    # meanwhile the AU lane carries the buyer's orders and the line keeps running
    prod = next(p for p in run.production if p[0] == "us_mag")[2]
    assert prod[:, 1].sum() > 0.95 * run.horizon
    assert residual(run) < 1e-6


def test_denial_uses_the_denying_controls_avoid_days():
    def lic(**kw):
        return control(regime="licensing", review_days=1, **kw)
    only = scenario(controls={"b": lic(approval_probability=0.0, avoid_days=100)})
    both = scenario(controls={"a": lic(start=1000, approval_probability=1.0, avoid_days=0),
                              "b": lic(approval_probability=0.0, avoid_days=100)})
    n_only = len(sim.simulate(plain_net(), only, seed=1, horizon_days=300).licences)
    n_both = len(sim.simulate(plain_net(), both, seed=1, horizon_days=300).licences)
    assert n_only <= 4          # one application per ~101 days
    assert n_both == n_only     # control "a" never in force: same run (actual: ~290)


def test_qualification_days_delay_first_use_of_a_lane():
    Q = 60.0
    run = sim.simulate(plain_net(au=True, share_cn=0.5, qual=Q), scenario(), seed=1,
                       horizon_days=200)
    au = lane(run, AU_LANE).log
    assert len(au) > 3
    assert au[:, 0].min() >= Q
    cn = lane(run, CN_LANE).log
    assert cn[cn[:, 0] < Q, 1].sum() > 0.9 * (Q - 20)      # CN alone before qualification


def test_lane_closure_blocks_shipments_for_its_duration():
    run = sim.simulate(plain_net(au=True, share_cn=0.5), scenario(lane_closures=[
        {"lane": CN_LANE, "start": day(50), "duration_days": 60}]), seed=1, horizon_days=250)
    assert clock_monotone(run)
    cn = lane(run, CN_LANE).log
    assert not np.any((cn[:, 0] >= 50) & (cn[:, 0] < 110))
    assert np.any(cn[:, 0] >= 110)
    assert np.any(cn[:, 0] < 50)
    assert any(k == "closure" and d == 50.0 for d, k, _ in run.policy_events)
    assert residual(run) < 1e-6


def test_demand_buyer_clock_never_runs_backwards_after_avoid():
    mats = {"dy_oxide": {"elements": ["Dy"], "price_usd_per_t": 300000}}
    nodes = {"cn": {"kind": "processor", "country": "CN", "stock": {"dy_oxide": {"initial": 1e6}}},
             "us": {"kind": "manufacturer", "country": "US", "sector": "automotive",
                    "stock": {"dy_oxide": {"initial": 20,
                                           "policy": {"type": "sS", "s": 15, "S": 20}}},
                    "demand": {"dy_oxide": {"process": "periodic", "rate_t_per_year": 104,
                                            "period_days": 7}}}}
    net = sim.Network.from_dict({"network": {"name": "clock"}, "materials": mats, "nodes": nodes,
                                 "lanes": [{"from": "cn", "to": "us", "material": "dy_oxide",
                                            "lead_time": 10}]})
    run = sim.simulate(net, scenario(controls={"c": control(
        regime="licensing", review_days=1, approval_probability=0.0, avoid_days=100)}),
        seed=1, horizon_days=300)
    assert clock_monotone(run)             # actual: the US log holds day 122 then day 42
    assert np.all(np.diff(run.licences[:, 0]) >= 0)


def test_regime_changes_by_date_for_all_destinations_and_buyers():
    L = 10.0
    net = plain_net(lead_cn=L)

    def run_with(change):
        c = control(regime="licensing", review_days=20, changes=[dict({"from": day(100)},
                                                                      **change)])
        run = sim.simulate(net, scenario(controls={"c": c}), seed=1, horizon_days=300)
        log = lane(run, CN_LANE).log
        return log[:, 0], log[:, 2] - log[:, 0] - L, run

    t, delay, run = run_with({"review_days": 5})                      # everyone
    assert set(delay[t < 100]) == {20.0}
    assert set(delay[t >= 100]) == {5.0}
    assert any(k == "change" and d == 100.0 for d, k, _ in run.policy_events)
    t, delay, _ = run_with({"destinations": ["JP"], "review_days": 5})  # not the US
    assert set(delay) == {20.0}
    t, delay, _ = run_with({"destinations": ["US"], "review_days": 5})
    assert set(delay[t >= 100]) == {5.0}
    t, delay, _ = run_with({"buyers": ["us_mag"], "review_days": 5})
    assert set(delay[t >= 100]) == {5.0}
    t, delay, run = run_with({"destinations": ["US"], "regime": "ban"})
    assert t.max() < 100
    assert len(t) > 3
    t, delay, run = run_with({"buyers": ["us_mag"], "approval_probability": 0.0})
    lic = run.licences
    assert np.all(lic[lic[:, 0] < 100, 2] == 1)
    assert np.all(lic[lic[:, 0] >= 100, 2] == 0)


def test_control_end_lifts_it():
    L = 10.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": control(
        regime="ban", start=50, end=day(120))}), seed=1, horizon_days=250)
    log = lane(run, CN_LANE).log
    assert not np.any((log[:, 0] >= 50) & (log[:, 0] < 120))
    assert np.any(log[:, 0] >= 120)
    np.testing.assert_allclose(log[:, 2] - log[:, 0], L)
    kinds = [(d, lab) for d, k, lab in run.policy_events if k == "control"]
    assert [d for d, _ in kinds] == [50.0, 120.0]


def test_capacity_effect_while_in_force_and_truce_lifts_it():
    tech = control(start=100, elements=(), regime="ban", end=day(300),
                   capacity_effect={"nodes": ["mine"], "factor": 0.5})
    run = sim.simulate(mine_net(batch=1.0), scenario(controls={"tech": tech}), seed=1,
                       horizon_days=400)
    prod = run.production[0][2]

    def made(a, b):     # output of batches started in [a, b)
        return prod[(prod[:, 0] >= a) & (prod[:, 0] < b), 1].sum()
    assert made(0, 100) == pytest.approx(100.0, abs=1.01)
    assert made(101, 299) == pytest.approx(99.0, abs=1.01)          # half rate
    assert made(301, 400) == pytest.approx(99.0, abs=1.01)
    # a truce suspending the control restores full capacity for its duration
    run = sim.simulate(mine_net(batch=1.0), scenario(
        controls={"tech": tech}, truce={"suspends": ["tech"], "start": day(150),
                                        "duration_days": 100}), seed=1, horizon_days=400)
    prod = run.production[0][2]
    assert made(101, 149) == pytest.approx(24.0, abs=1.01)
    assert made(151, 249) == pytest.approx(98.0, abs=1.01)
    assert made(251, 299) == pytest.approx(24.0, abs=1.01)


# ---------------------------------------------------------------------------------------------
# 7. validation
# ---------------------------------------------------------------------------------------------

def _bad(parts: dict, field: str, cls=ScenarioError):
    with pytest.raises(cls) as exc:
        scenario(**parts)
    assert field in str(exc.value)
    assert isinstance(exc.value, ModelError)
    return exc.value


@pytest.mark.parametrize(("parts", "field"), [
    ({"controls": {"c": control(regime="embargo")}}, "regime"),
    ({"controls": {"c": control(regime="licensing")}}, "review_days"),
    ({"controls": {"c": control(regime="quota")}}, "quota_t"),
    ({"controls": {"c": control(regime="licensing", review_days=5,
                                approval_probability=1.5)}}, "approval_probability"),
    ({"controls": {"c": control(regime="ban", start="2025-13-45")}}, "start"),
    ({"controls": {"c": control(regime="ban", direct=False)}}, "direct"),
    ({"controls": {"c": control(regime="ban", exporter="XX")}}, "exporter"),
    ({"controls": {"c": control(regime="ban", elements=["Xx"])}}, "elements"),
    ({"controls": {"c": control(regime="ban", de_minimis=2.0)}}, "de_minimis"),
    ({"controls": {"c": control(regime="ban")}, "truce": {
        "suspends": ["nope"], "start": day(1), "duration_days": 10}}, "suspends"),
    ({"controls": {"c": control(regime="ban")}, "truce": {
        "suspends": ["c"], "start": day(1), "duration_days": 10,
        "outcomes": {"reinstate": 0.5, "extend": 0.3}}}, "outcomes"),
    ({"tariffs": [{"origin": "CN", "rate": 0.1, "start": "not a date"}]}, "start"),
    ({"demand_surges": [{"sector": "defense", "factor": 2, "start": day(10),
                         "end": day(5)}]}, "end"),
])
def test_scenario_validation_names_the_field(parts, field):
    _bad(parts, field)


def test_scenario_naming_absent_node_or_lane_is_rejected():
    net = plain_net()
    for parts, field in (
            ({"outages": [{"node": "ghost", "start": day(1), "duration_days": 5}]}, "node"),
            ({"lane_closures": [{"lane": "cn->ghost:dy_oxide", "start": day(1),
                                 "duration_days": 5}]}, "lane"),
            ({"demand_surges": [{"node": "ghost", "factor": 2, "start": day(1),
                                 "end": day(5)}]}, "node"),
            ({"tariffs": [{"origin": "CN", "rate": 0.1, "start": day(0),
                           "materials": ["unobtainium"]}]}, "materials"),
            ({"controls": {"c": control(regime="ban", capacity_effect={
                "nodes": ["ghost"], "factor": 0.5})}}, "nodes")):
        sc = scenario(**parts)        # parses: only the network can tell
        with pytest.raises(ScenarioError, match=field):
            sc.check_network(net)
        with pytest.raises(ScenarioError, match=r"ghost|unobtainium"):
            sim.simulate(net, sc, seed=1, horizon_days=10)


# ---------------------------------------------------------------------------------------------
# 8. outages and demand surges
# ---------------------------------------------------------------------------------------------

def mine_net(batch=1.0, cap=365.0):
    mats = {"conc": {"elements": ["Nd", "Dy"], "price_usd_per_t": 5000}}
    return sim.Network.from_dict({"network": {"name": "mine"}, "materials": mats, "nodes": {
        "mine": {"kind": "mine", "country": "AU",
                 "production": {"conc": {"capacity_t_per_year": cap, "batch_days": batch,
                                         "target_stock": 1e9}}}}, "lanes": []})


def test_fixed_outage_stops_output_then_production_resumes():
    s, dur = 100.0, 50.0
    run = sim.simulate(mine_net(), scenario(outages=[
        {"node": "mine", "start": day(s), "duration_days": dur}]), seed=1, horizon_days=300)
    prod = run.production[0][2]                     # (start, quantity, end)
    assert not np.any((prod[:, 0] >= s) & (prod[:, 0] < s + dur))
    assert not np.any((prod[:, 2] > s + 1.0 + 1e-9) & (prod[:, 2] <= s + dur))
    assert prod[prod[:, 0] >= s + dur, 0].min() == pytest.approx(s + dur)
    out = records(stock(run, "mine", "conc"), REC_PRODUCED)
    assert out[(out[:, 0] > s + 1.0) & (out[:, 0] <= s + dur), 2].sum() == 0
    wip = run.production[0][3]                       # batch under way at the horizon
    assert out[:, 2].sum() + wip == pytest.approx(300 - dur, abs=1e-6)
    assert any(k == "outage" and d == s for d, k, _ in run.policy_events)


def test_random_outages_give_mtbf_over_mtbf_plus_mttr_availability():
    mtbf, mttr, H = 40.0, 10.0, 3000.0
    sc = scenario(outages=[{"node": "mine", "mtbf_days": mtbf, "mttr_days": mttr}])
    net = mine_net(batch=0.25)
    avail = np.array([records(stock(r, "mine", "conc"), REC_PRODUCED)[:, 2].sum() / H
                      for r in (sim.simulate(net, sc, seed=3, replication=i, horizon_days=H)
                                for i in range(12))])
    se = avail.std(ddof=1) / math.sqrt(len(avail))
    # a batch under way when the line fails still completes: bias < batch / (mtbf + mttr)
    assert abs(avail.mean() - mtbf / (mtbf + mttr)) < 4 * se + 0.25 / (mtbf + mttr)
    assert avail.std() > 0


def demand_surge_net(order_size=1.0, process="poisson"):
    mats = {"m": {"elements": ["Nd"], "price_usd_per_t": 1000}}
    demand = ({"process": "poisson", "rate_t_per_year": 365, "order_size": order_size}
              if process == "poisson" else
              {"process": "periodic", "rate_t_per_year": 365, "period_days": 7})
    return sim.Network.from_dict({"network": {"name": "surge"}, "materials": mats, "nodes": {
        "sup": {"kind": "processor", "country": "CN", "stock": {"m": {"initial": 1e7}}},
        "oem": {"kind": "manufacturer", "country": "US", "sector": "defense",
                "stock": {"m": {"initial": 100, "policy": {"type": "sS", "s": 50, "S": 100}}},
                "demand": {"m": demand}}},
        "lanes": [{"from": "sup", "to": "oem", "material": "m", "lead_time": 5}]})


SURGE = [{"sector": "defense", "factor": 3.0, "start": day(100), "end": day(200)}]


def test_demand_surge_multiplies_demand_in_window_only():
    net = demand_surge_net()
    H, n = 365.0, 20
    inside, after = [], []
    for i in range(n):
        r0 = sim.simulate(net, scenario(), seed=5, replication=i, horizon_days=H)
        r1 = sim.simulate(net, scenario(demand_surges=SURGE), seed=5, replication=i,
                          horizon_days=H)
        d0, d1 = r0.demand[0], r1.demand[0]
        before0, before1 = d0.T[d0.T < 100], d1.T[d1.T < 100]
        np.testing.assert_array_equal(before0, before1)     # same orders before the surge
        inside.append(d1.D[(d1.T >= 100) & (d1.T < 200)].sum())
        after.append(d1.D[d1.T >= 200].sum())
    inside, after = np.array(inside), np.array(after)
    # 1 t/day base rate: 300 t expected in the surge window, 165 t after it
    assert abs(inside.mean() - 300.0) < 4 * inside.std(ddof=1) / math.sqrt(n)
    assert abs(after.mean() - 165.0) < 4 * after.std(ddof=1) / math.sqrt(n)
    assert any(k == "surge" and d == 100.0 for d, k, _ in
               sim.simulate(net, scenario(demand_surges=SURGE), seed=5,
                            horizon_days=H).policy_events)


def test_periodic_demand_surge_scales_sizes():
    net = demand_surge_net(process="periodic")
    r0 = sim.simulate(net, scenario(), seed=1, horizon_days=365)
    r1 = sim.simulate(net, scenario(demand_surges=SURGE), seed=1, horizon_days=365)
    d0, d1 = r0.demand[0], r1.demand[0]
    np.testing.assert_array_equal(d0.T, d1.T)
    win = (d0.T >= 100) & (d0.T < 200)
    np.testing.assert_allclose(d1.D[win], 3.0 * d0.D[win])
    np.testing.assert_allclose(d1.D[~win], d0.D[~win])
    # other nodes are untouched
    elsewhere = {k: v for k, v in SURGE[0].items() if k != "sector"}
    r2 = sim.simulate(net, scenario(demand_surges=[dict(elsewhere, node="sup")]),
                      seed=1, horizon_days=365)
    np.testing.assert_allclose(r2.demand[0].D, d0.D)
    # a sector the network does not have is an error, not a surge that touches nothing
    with pytest.raises(sim.ScenarioError, match=r"demand_surges\[0\]: sector: .*'automotive'"):
        sim.simulate(net, scenario(demand_surges=[dict(SURGE[0], sector="automotive")]),
                     seed=1, horizon_days=365)


def test_demand_surge_keeps_order_sizes_before_it():
    net = demand_surge_net(order_size={"dist": "uniform", "min": 0.5, "max": 1.5})
    r0 = sim.simulate(net, scenario(), seed=3, horizon_days=365)
    r1 = sim.simulate(net, scenario(demand_surges=SURGE), seed=3, horizon_days=365)
    d0, d1 = r0.demand[0], r1.demand[0]
    n0 = int((d0.T < 100).sum())
    np.testing.assert_array_equal(d0.T[:n0], d1.T[:n0])   # holds
    np.testing.assert_array_equal(d0.D[:n0], d1.D[:n0])   # fails


# ---------------------------------------------------------------------------------------------
# 9. monotonicity in severity (common random numbers)
# ---------------------------------------------------------------------------------------------

def test_more_severe_control_never_raises_defense_fill_rate():
    net = sim.load_network("teaching")
    base = {"exporter": "CN", "elements": ["Dy", "Tb"], "start": "2025-04-04"}
    review = {"dist": "triangular", "min": 30, "mode": 45, "max": 60}
    controls = [None,
                dict(base, regime="licensing", review_days=review, approval_probability=0.8),
                dict(base, regime="licensing", review_days=review, approval_probability=0.3),
                dict(base, regime="ban")]
    seeds = range(30)
    fill = np.array([[sim.simulate(net, sim.Scenario.from_dict(
        {"scenario": {"name": f"s{k}"}, **({"controls": {"c": c}} if c else {})}),
        seed=sd).kpi("fill_rate", "sector:defense") for sd in seeds]
        for k, c in enumerate(controls)])
    for k in range(len(controls) - 1):
        diff = fill[k + 1] - fill[k]
        se = diff.std(ddof=1) / math.sqrt(len(diff))
        assert diff.mean() <= 3 * se + 1e-12, (k, diff.mean(), se)
    assert fill[3].mean() < fill[0].mean() - 0.1        # the ban does bite


# ---------------------------------------------------------------------------------------------
# 10. quota
# ---------------------------------------------------------------------------------------------

def test_quota_caps_tonnes_per_period():
    Qt, P, L = 50.0, 50.0, 10.0
    run = sim.simulate(plain_net(use=2 * 365, lead_cn=L), scenario(controls={"q": control(
        start=20, regime="quota", quota_t=Qt, quota_period_days=P)}), seed=1, horizon_days=400)
    assert clock_monotone(run)
    log = lane(run, CN_LANE).log
    release = log[:, 2] - L
    biggest = log[:, 1].max()
    covered = release >= 20
    per = np.floor((release[covered] - 20) / P)
    totals = np.bincount(per.astype(int), weights=log[covered, 1])
    assert len(totals) >= 6
    assert np.all(totals <= Qt + biggest + 1e-9)
    # the quota binds (demand 100 t per period): full periods release about Q
    assert np.all(totals[:-1] >= Qt - biggest - 1e-9)
    assert np.any(log[:, 2] - log[:, 0] > L + 1)            # some shipments waited
    assert residual(run) < 1e-6


def test_quota_that_never_binds_never_delays():
    # demand 0.6 t/day = 60 t per 100-day period, quota 100 t per period
    L = 10.0
    run = sim.simulate(plain_net(use=0.6 * 365, s=5, S=10, init=10, lead_cn=L),
                       scenario(controls={"q": control(regime="quota", quota_t=100,
                                                       quota_period_days=100)}),
                       seed=1, horizon_days=400)
    log = lane(run, CN_LANE).log
    np.testing.assert_allclose(log[:, 2] - log[:, 0], L)   # actual: waits of up to 29 days
