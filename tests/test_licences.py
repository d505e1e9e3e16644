"""Tests of licences with a scope and a validity, re-application after denial, the licence
decision log and consignment clearance holds (sim/policy.py).

The networks are those of tests/test_policy.py: a CN seller of Dy oxide to a US magnet maker
whose line consumes 1 t/day, with an (s, S) stock, so shipments of S - s tonnes leave every
S - s days or so. Random quantities are compared with their expectations within a few
standard errors.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

import sim
from sim.records import REC_CANCELLED, REC_RETURNED, REC_SHIPPED
from sim.errors import ScenarioError

from test_policy import CN_LANE, control, day, lane, plain_net, records, residual, scenario, stock


def licensing(**kw) -> dict:
    """A licensing control on Dy from CN (fixed review, everything approved unless told)."""
    kw.setdefault("review_days", 10)
    return control(regime="licensing", **kw)


def events(run, name):
    d = run.licence_decisions()
    return d[d["event"] == name]


# ---------------------------------------------------------------------------------------------
# licences of a scope
# ---------------------------------------------------------------------------------------------

def test_shipments_inside_a_granted_licence_pass_without_review():
    L, R, V = 10.0, 12.0, 90.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": licensing(
        review_days=R, licence_scope="lane", licence_validity_days=V)}), seed=3,
        horizon_days=700)
    granted = events(run, "granted")["day"].to_numpy()
    applied = events(run, "applied")["day"].to_numpy()
    assert len(granted) >= 5
    np.testing.assert_allclose(granted, applied[:len(granted)] + R)
    log = lane(run, CN_LANE).log
    inside = 0
    for shipped, _, arrive, *_ in log:     # (shipped, qty, arrive, tariff[, dispatched])
        cover = granted[(granted <= shipped) & (shipped < granted + V)]
        if len(cover):                  # a valid licence: no review
            inside += 1
            assert arrive == pytest.approx(shipped + L)
        else:                           # waits for the next grant
            nxt = granted[granted >= shipped].min()
            assert arrive == pytest.approx(nxt + L)
    assert inside > len(log) / 2
    # one review per licence, not per shipment
    assert len(run.licences) == len(applied) < len(log) / 2
    assert residual(run) < 1e-6


def test_after_expiry_the_next_shipment_files_a_new_application():
    L, R, V = 10.0, 12.0, 60.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": licensing(
        review_days=R, licence_scope="lane", licence_validity_days=V)}), seed=3,
        horizon_days=700)
    granted = events(run, "granted")["day"].to_numpy()
    applied = events(run, "applied")["day"].to_numpy()
    expired = events(run, "expired")
    np.testing.assert_allclose(expired["day"], (granted + V)[granted + V < run.horizon])
    shipped = np.sort(records(stock(run, "cn", "dy_oxide"), REC_SHIPPED)[:, 0])
    for g, a in zip(granted[:-1], applied[1:]):
        assert a >= g + V              # nothing is filed while the licence is valid
        # the first shipment at or after the expiry files it
        assert a == pytest.approx(shipped[shipped >= g + V - 1e-9].min())
    # the tonnes of each expired licence are what shipped under it
    used = events(run, "used")
    for (_, row), g in zip(expired.iterrows(), granted):
        assert row["tonnes"] == pytest.approx(
            used[(used["day"] >= g) & (used["day"] < g + V)]["tonnes"].sum())


def test_licence_can_expire_unused():
    # a licence valid for 2 days, granted after the shipment that applied already passed on
    # the next grant: with shipments every ~10 days most licences expire with that one only;
    # with validity shorter than the gap to the next shipment nothing else uses them
    run = sim.simulate(plain_net(), scenario(controls={"c": licensing(
        review_days=3, licence_scope="lane", licence_validity_days=0.5)}), seed=1,
        horizon_days=300)
    expired = events(run, "expired")
    assert len(expired) > 5
    # each licence carried exactly the shipments that waited on it, released at its grant
    granted = events(run, "granted")
    np.testing.assert_allclose(np.sort(expired["tonnes"].to_numpy()),
                               np.sort(granted["tonnes"].to_numpy()[:len(expired)]))


def test_pending_application_is_shared_within_its_scope():
    # Dy and Nd both controlled: per buyer, one application covers both materials' lanes; per
    # lane, each lane has its own
    def run_with(scope):
        return sim.simulate(plain_net(extra_material=True), scenario(controls={"c": licensing(
            elements=("Dy", "Nd"), review_days=30, licence_scope=scope,
            licence_validity_days=1000)}), seed=2, horizon_days=200)
    buyer = run_with("buyer")
    per_lane = run_with("lane")
    assert len(events(buyer, "applied")) == 1
    assert len(events(per_lane, "applied")) == 2
    # shipments that found the application pending waited on it: all released at the grant
    g = events(buyer, "granted")["day"].iloc[0]
    first = events(buyer, "applied")["day"].iloc[0]
    for lane_id in (CN_LANE, "cn->us_mag:ndpr_oxide"):
        log = lane(buyer, lane_id).log
        waiting = log[log[:, 0] < g]
        assert len(waiting) >= 2
        np.testing.assert_allclose(waiting[:, 2], g + 10.0)
        assert waiting[:, 0].min() >= first
    assert residual(buyer) < 1e-6 and residual(per_lane) < 1e-6


def test_reapply_after_denial_files_again_after_the_delay():
    D = 7.0
    run = sim.simulate(plain_net(), scenario(controls={"c": licensing(
        review_days=5, approval_probability=0.4, licence_scope="lane",
        licence_validity_days=40, on_denial="reapply", reapply_days=D)}), seed=8,
        horizon_days=900)
    d = run.licence_decisions()
    denied = d[d["event"] == "denied"]["day"].to_numpy()
    applied = d[d["event"] == "applied"]["day"].to_numpy()
    assert len(denied) > 10
    for t in denied[denied + D < run.horizon]:
        assert np.any(np.isclose(applied, t + D))
    # nothing is returned or cancelled: the goods wait at the exporter and then ship
    assert len(records(stock(run, "cn", "dy_oxide"), REC_RETURNED)) == 0
    assert len(records(stock(run, "us_mag", "dy_oxide"), REC_CANCELLED)) == 0
    assert residual(run) < 1e-6


def test_cancel_on_denial_returns_every_waiting_shipment():
    run = sim.simulate(plain_net(), scenario(controls={"c": licensing(
        review_days=20, approval_probability=0.0, licence_scope="lane",
        licence_validity_days=100, avoid_days=15)}), seed=4, horizon_days=400)
    assert len(lane(run, CN_LANE).log) == 0
    denied = events(run, "denied")
    returned = records(stock(run, "cn", "dy_oxide"), REC_RETURNED)
    assert len(denied) > 3
    assert returned[:, 2].sum() == pytest.approx(denied["tonnes"].sum())
    assert residual(run) < 1e-6


def test_delay_under_reapply_is_geometric_in_attempts():
    """One buyer, review R, approval p, re-application after d days: a shipment's delay is
    N R + (N - 1) d with N ~ Geometric(p) (attempts until the first approval)."""
    L, R, d, p = 10.0, 6.0, 4.0, 0.4
    k = []
    for seed in range(6):
        run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": licensing(
            review_days=R, approval_probability=p, on_denial="reapply", reapply_days=d)}),
            seed=seed, horizon_days=800)
        log = lane(run, CN_LANE).log
        delay = log[:, 2] - log[:, 0] - L
        n = (delay + d) / (R + d)
        np.testing.assert_allclose(n, np.round(n), atol=1e-9)      # whole attempts
        k += np.round(n).astype(int).tolist()
    k = np.array(k)
    assert len(k) > 200 and k.min() >= 1
    se = math.sqrt((1 - p) / p ** 2 / len(k))
    assert abs(k.mean() - 1 / p) < 4 * se
    for j in (1, 2, 3):                  # P(N = j) = (1 - p)^(j - 1) p
        q = (1 - p) ** (j - 1) * p
        assert abs((k == j).mean() - q) < 4 * math.sqrt(q * (1 - q) / len(k))


def test_scoped_licence_takes_a_geometric_number_of_applications():
    """The same analytic case for a lane licence: each licence (valid 1 day, so every
    shipment needs a new one) takes N applications, N ~ Geometric(p), and arrives
    N R + (N - 1) d after the first of them; the shipments waiting on it all leave then."""
    L, R, d, p = 10.0, 6.0, 4.0, 0.4
    n_apps = []
    for seed in range(8):
        run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": licensing(
            review_days=R, approval_probability=p, on_denial="reapply", reapply_days=d,
            licence_scope="lane", licence_validity_days=1)}), seed=seed, horizon_days=900)
        dec = run.licence_decisions()
        dec = dec[dec["event"].isin(["applied", "granted"])]
        first = None
        k = 0
        for _, row in dec.iterrows():
            if row["event"] == "applied":
                if first is None:
                    first = row["day"]
                k += 1
            else:                                   # granted: the chain is complete
                assert row["day"] - first == pytest.approx(k * R + (k - 1) * d)
                n_apps.append(k)
                first, k = None, 0
    n = np.array(n_apps)
    assert len(n) > 100
    se = math.sqrt((1 - p) / p ** 2 / len(n))
    assert abs(n.mean() - 1 / p) < 4 * se
    q = p
    assert abs((n == 1).mean() - q) < 4 * math.sqrt(q * (1 - q) / len(n))


def test_per_shipment_licence_can_expire_before_approval():
    """Validity counted from the application (DOMAIN.md F4: SmCo licences "often expire before
    approval"): a review of at least V days brings an expired licence, and the shipment is
    reviewed again, until a review shorter than V."""
    L, V = 10.0, 15.0
    run = sim.simulate(plain_net(lead_cn=L, s=40, S=45, init=45), scenario(controls={
        "c": licensing(review_days={"dist": "uniform", "min": 5, "max": 25},
                       licence_validity_from="application", licence_validity_days=V)}),
        seed=3, horizon_days=900)
    review_at = {round(t, 9): r for t, r, _ in run.licences}
    log = lane(run, CN_LANE).log
    attempts = []
    for shipped, _, arrive, *_ in log:
        t, k = shipped, 1
        while review_at[round(t, 9)] >= V:          # expired on arrival: reviewed again
            t += review_at[round(t, 9)]
            k += 1
        assert arrive == pytest.approx(t + review_at[round(t, 9)] + L)
        attempts.append(k)
    k = np.array(attempts)
    assert len(k) > 40 and k.max() > 1
    q = 0.5                                          # P(review < 15) for U(5, 25)
    assert abs(k.mean() - 1 / q) < 4 * math.sqrt((1 - q) / q ** 2 / len(k))
    d = run.licence_decisions()
    # (and those of shipments still under review at the horizon)
    assert (d["event"] == "expired").sum() >= sum(attempts) - len(attempts)
    assert residual(run) < 1e-6


@pytest.mark.parametrize(("validity", "ships"), [(3.0, False), (8.0, True)])
def test_scoped_licence_expiring_before_approval_is_filed_again(validity, ships):
    run = sim.simulate(plain_net(), scenario(controls={"c": licensing(
        review_days=5, licence_scope="lane", licence_validity_days=validity,
        licence_validity_from="application")}), seed=1, horizon_days=200)
    d = run.licence_decisions()
    applied = d[d["event"] == "applied"]["day"].to_numpy()
    if ships:
        assert len(lane(run, CN_LANE).log) > 5
    else:
        assert len(lane(run, CN_LANE).log) == 0
        # one application after another, each expired when granted
        np.testing.assert_allclose(np.diff(applied), 5.0)
        assert (d["event"] == "expired").sum() == (d["event"] == "granted").sum() > 20
    assert residual(run) < 1e-6


def test_per_shipment_scope_is_the_default_and_logs_each_review():
    run = sim.simulate(plain_net(), scenario(controls={"c": licensing(review_days=5)}), seed=2,
                       horizon_days=300)
    d = run.licence_decisions()
    assert set(d["event"]) == {"applied", "granted"}
    assert len(d[d["event"] == "applied"]) == len(run.licences)
    assert list(d.columns) == ["date", "day", "control", "lane", "from", "to", "material",
                               "exporter_country", "importer_country", "event", "tonnes",
                               "review_days"]
    assert (d["exporter_country"] == "CN").all() and (d["importer_country"] == "US").all()
    assert np.all(np.diff(d["day"].to_numpy()) >= 0)
    # nothing gated: an empty table with the same columns
    empty = sim.simulate(plain_net(), scenario(), seed=2, horizon_days=50).licence_decisions()
    assert len(empty) == 0 and list(empty.columns) == list(d.columns)


def test_regime_change_to_scoped_licences_on_a_date():
    # per-shipment review until day 200, then one-year licences per buyer (as the December
    # 2025 general licences): after the switch only one application, the rest pass
    L = 10.0
    sc = scenario(controls={"c": licensing(review_days=20, changes=[{
        "from": day(200), "licence_scope": "buyer", "licence_validity_days": 365}])})
    run = sim.simulate(plain_net(lead_cn=L), sc, seed=5, horizon_days=500)
    d = run.licence_decisions()
    applied = d[d["event"] == "applied"]["day"].to_numpy()
    assert np.sum(applied >= 200) == 1
    log = lane(run, CN_LANE).log
    g = d[d["event"] == "granted"]["day"].to_numpy().max()
    after = log[log[:, 0] >= g]
    assert len(after) > 10
    np.testing.assert_allclose(after[:, 2], after[:, 0] + L)


# ---------------------------------------------------------------------------------------------
# validation of regime parameters
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ctrl", "field"), [
    (licensing(licence_scope="lane"), "licence_validity_days"),
    (licensing(licence_scope="planet", licence_validity_days=5), "licence_scope"),
    (licensing(licence_scope="lane", licence_validity_days=0), "licence_validity_days"),
    (licensing(on_denial="reapply"), "reapply_days"),
    (licensing(on_denial="sulk"), "on_denial"),
    (licensing(on_denial="reapply", reapply_days=-1), "reapply_days"),
    (licensing(licence_validity_from="application"), "licence_validity_days"),
    (licensing(licence_validity_from="signature", licence_validity_days=5),
     "licence_validity_from"),
    (licensing(changes=[{"from": day(5), "regime": "quota"}]), "quota_t"),
    (licensing(changes=[{"from": day(5), "licence_scope": "buyer"}]), "licence_validity_days"),
    (licensing(changes=[{"from": day(5), "buyers": ["us_mag"], "on_denial": "reapply"}]),
     "reapply_days"),
    (control(regime="ban", changes=[{"from": day(5), "regime": "licensing"}]), "review_days"),
])
def test_incomplete_regime_is_rejected_naming_the_field(ctrl, field):
    with pytest.raises(ScenarioError, match=field) as exc:
        scenario(controls={"c": ctrl})
    assert "controls.c" in str(exc.value)


def test_change_may_rely_on_earlier_changes_and_escalation_is_checked():
    # the validity comes with an earlier change for everyone, or earlier for the same buyers
    scenario(controls={"c": licensing(changes=[
        {"from": day(5), "licence_validity_days": 30},
        {"from": day(9), "licence_scope": "lane"}])})
    scenario(controls={"c": licensing(changes=[
        {"from": day(5), "buyers": ["b"], "licence_validity_days": 30},
        {"from": day(9), "buyers": ["b"], "licence_scope": "lane"}])})
    with pytest.raises(ScenarioError, match="licence_validity_days"):
        scenario(controls={"c": licensing(changes=[    # the earlier one was for other buyers
            {"from": day(5), "buyers": ["a"], "licence_validity_days": 30},
            {"from": day(9), "buyers": ["b"], "licence_scope": "lane"}])})
    with pytest.raises(ScenarioError, match=r"truce\.escalation.*reapply_days"):
        scenario(controls={"c": licensing()}, truce={
            "suspends": ["c"], "start": day(1), "duration_days": 10,
            "outcomes": {"escalate": 1.0}, "escalation": {"on_denial": "reapply"}})


# ---------------------------------------------------------------------------------------------
# clearance holds
# ---------------------------------------------------------------------------------------------

def hold(**kw) -> dict:
    h = {"id": "lab", "exporter": "CN", "elements": ["Dy"], "start": day(0), "delay_days": 3}
    h.update(kw)
    return h


def test_clearance_holds_uncontrolled_material_before_dispatch():
    # no control at all: Nd/Pr oxide is held only by the clearance rule, which ends on day 150
    L, D = 10.0, 4.0
    run = sim.simulate(plain_net(lead_cn=L, extra_material=True), scenario(clearance=[hold(
        elements=["Nd"], delay_days=D, end=day(150))]), seed=1, horizon_days=300)
    held = lane(run, "cn->us_mag:ndpr_oxide").log
    before = held[held[:, 0] < 150]
    assert len(before) > 5
    np.testing.assert_allclose(before[:, 2], before[:, 0] + D + L)      # shipped time kept
    late = held[held[:, 0] >= 150]
    np.testing.assert_allclose(late[:, 2], late[:, 0] + L)
    dy = lane(run, CN_LANE).log                                       # not held
    np.testing.assert_allclose(dy[:, 2], dy[:, 0] + L)
    h = run.clearance_holds()
    assert len(h) == len(before) and (h["lane"] == "cn->us_mag:ndpr_oxide").all()
    assert len(run.licence_decisions()) == 0
    assert residual(run) < 1e-6


def test_one_server_deterministic_testing_matches_hand_computation():
    # shipments of two lanes (Dy and Nd/Pr oxide) compete for one lab with a fixed 6-day test:
    # start_i = max(arrival_i, end_{i-1}), end_i = start_i + 6, in order of arrival
    L, D = 10.0, 6.0
    run = sim.simulate(plain_net(lead_cn=L, extra_material=True), scenario(clearance=[hold(
        elements=["Dy", "Nd"], delay_days=D, servers=1)]), seed=1, horizon_days=400)
    h = run.clearance_holds().sort_values(["arrived", "started"], kind="stable")
    assert len(h) > 20 and (h["wait_days"] > 0).sum() > 5
    end = -math.inf
    for _, row in h.iterrows():
        start = max(row["arrived"], end)
        assert row["started"] == pytest.approx(start)
        assert row["test_days"] == pytest.approx(D)
        end = start + D
    # each consignment crosses the border when its test ends
    for lane_id in (CN_LANE, "cn->us_mag:ndpr_oxide"):
        log = lane(run, lane_id).log
        ends = np.sort(h[h["lane"] == lane_id]["ended"].to_numpy())
        np.testing.assert_allclose(np.sort(log[:, 2]), ends[ends + L <= log[:, 2].max() + 1e-9]
                                   + L)
    assert residual(run) < 1e-6


def test_finite_testing_capacity_is_a_fcfs_queue_obeying_littles_law():
    """c servers, random tests: never more than c in testing, nobody waits while a server is
    idle, and the time-average number in testing (sampled at random instants) equals
    throughput x mean time in testing (Little's law) within standard errors."""
    c = 2
    spec = {"dist": "exponential", "mean": 9.0}
    diffs = []
    rng = np.random.default_rng(0)
    for seed in range(8):
        run = sim.simulate(plain_net(extra_material=True, s=5, S=9, init=9), scenario(
            clearance=[hold(elements=["Dy", "Nd"], delay_days=spec, servers=c)]),
            seed=seed, horizon_days=1500)
        h = run.clearance_holds()
        a, s, e = (h[k].to_numpy() for k in ("arrived", "started", "ended"))
        order = np.argsort(a, kind="stable")
        assert np.all(np.diff(s[order]) >= -1e-9)                 # first come, first served
        for t in s:                                               # at most c in testing
            assert np.sum((s <= t) & (t < e)) <= c
        for t in a[s > a + 1e-9]:                                 # waited: all servers busy
            assert np.sum((s <= t) & (t < e)) == c
        t0, t1 = 200.0, 1300.0
        inside = (a >= t0) & (a < t1)
        lam_w = inside.sum() / (t1 - t0) * (e[inside] - a[inside]).mean()
        probe = rng.uniform(t0, t1, 400)
        n_in = ((a[None, :] <= probe[:, None]) & (probe[:, None] < e[None, :])).sum(axis=1)
        diffs.append(n_in.mean() - lam_w)
    diffs = np.array(diffs)
    assert abs(diffs.mean()) < 4 * diffs.std(ddof=1) / math.sqrt(len(diffs)) + 0.02


@pytest.mark.parametrize(("h", "field"), [
    (hold(delay_days=None), "delay_days"),
    (hold(servers=0), "servers"),
    (hold(servers=1.5), "servers"),
    (hold(elements=[]), "materials"),
    (hold(exporter="XX"), "exporter"),
    (hold(end=day(0)), "end"),
    (hold(color="red"), "color"),
])
def test_clearance_validation_names_the_field(h, field):
    h = {k: v for k, v in h.items() if v is not None}
    with pytest.raises(ScenarioError, match=field) as exc:
        scenario(clearance=[h])
    assert "clearance" in str(exc.value)


def test_clearance_of_unknown_material_is_rejected_by_the_network():
    sc = scenario(clearance=[hold(elements=[], materials=["unobtainium"])])
    with pytest.raises(ScenarioError, match="unobtainium"):
        sc.check_network(plain_net())


def two_buyer_net():
    """A CN seller of Dy oxide to two plain buyers, one in the US, one in Japan."""
    mats = {"dy_oxide": {"elements": ["Dy"], "price_usd_per_t": 300000},
            "magnet": {"elements": ["Nd", "Dy"], "price_usd_per_t": 400000}}
    nodes = {"cn": {"kind": "processor", "country": "CN", "stock": {"dy_oxide": {"initial": 1e6}}}}
    lanes = []
    for b, c in (("us_a", "US"), ("us_b", "US"), ("jp", "JP")):
        nodes[b] = {"kind": "magnet_maker", "country": c,
                    "stock": {"dy_oxide": {"initial": 20, "policy": {"type": "sS", "s": 10,
                                                                     "S": 20}}},
                    "production": {"magnet": {"capacity_t_per_year": 365,
                                              "recipe": {"dy_oxide": 1.0}, "batch_days": 1,
                                              "target_stock": 1e9}}}
        lanes.append({"from": "cn", "to": b, "material": "dy_oxide", "lead_time": 10})
    return sim.Network.from_dict({"network": {"name": "two"}, "materials": mats,
                                  "nodes": nodes, "lanes": lanes})


@pytest.mark.parametrize(("scope", "applications"), [("buyer", 3), ("country", 2),
                                                     ("exporter", 1)])
def test_scope_decides_how_many_buyers_one_licence_covers(scope, applications):
    run = sim.simulate(two_buyer_net(), scenario(controls={"c": licensing(
        review_days=15, licence_scope=scope, licence_validity_days=1000)}), seed=1,
        horizon_days=300)
    d = run.licence_decisions()
    assert (d["event"] == "applied").sum() == applications
    used = d[d["event"] == "used"]
    assert set(used["to"]) == {"us_a", "us_b", "jp"}
    assert residual(run) < 1e-6


def test_change_for_some_buyers_ends_on_until():
    # us_a gets one-off licences (scope buyer) from day 50 until day 150; before and after it
    # is reviewed per shipment like the others
    run = sim.simulate(two_buyer_net(), scenario(controls={"c": licensing(
        review_days=5, changes=[{"from": day(50), "until": day(150), "buyers": ["us_a"],
                                 "licence_scope": "buyer", "licence_validity_days": 1000}])}),
        seed=1, horizon_days=300)
    d = run.licence_decisions()
    a = d[d["to"] == "us_a"]
    used = a[a["event"] == "used"]["day"]
    assert len(used) > 3 and used.min() >= 50 and used.max() < 150
    applied = a[a["event"] == "applied"]["day"]
    assert ((applied >= 50) & (applied < 150)).sum() == 1      # one licence in the window
    assert (applied >= 150).sum() > 3                           # per shipment again after it
    other = d[(d["to"] == "us_b")]
    assert (other["event"] == "used").sum() == 0


def test_scenario_until_needs_a_selection_and_a_later_date():
    with pytest.raises(ScenarioError, match="until"):
        scenario(controls={"c": licensing(changes=[{"from": day(5), "until": day(9),
                                                    "approval_probability": 0.5}])})
    with pytest.raises(ScenarioError, match="until"):
        scenario(controls={"c": licensing(changes=[{
            "from": day(5), "until": day(5), "buyers": ["x"], "approval_probability": 0.5}])})


def test_june_2025_temporary_licences_cover_us_auto_on_the_default_network():
    sc = sim.load_scenario("controls-apr-2025")
    run = sim.simulate("rare_earth_2025", sc, seed=3, horizon_days=365)
    d = run.licence_decisions()
    used = d[d["event"] == "used"]
    assert len(used) > 0 and set(used["to"]) == {"us_auto"}
    jun5 = (dt.date(2025, 6, 5) - run.start).days
    dec5 = (dt.date(2025, 12, 5) - run.start).days
    assert used["day"].min() >= jun5
    apps = d[(d["event"] == "applied") & (d["to"] == "us_auto")]
    # one licence per exporter and buyer within the temporary terms (not one per shipment)
    window = apps[(apps["day"] >= jun5) & (apps["day"] < dec5)]
    assert len(window) == window["from"].nunique() >= 1
    # every magnet consignment leaving China is tested
    holds = run.clearance_holds()
    assert len(holds) > 0 and holds["lane"].str.startswith("mag_cn->").all()


# ---------------------------------------------------------------------------------------------
# renewal ahead of expiry (renew_before_days)
# ---------------------------------------------------------------------------------------------

def test_renewed_scope_in_continuous_use_never_waits_after_its_first_licence():
    """Review R shorter than renew_before B, everything approved: the renewal of each licence
    is granted before it lapses and runs on from its end, so the licences cover one unbroken
    stretch from the first grant g: every shipment after g arrives one lead time after it
    left, the k-th renewal is filed at g + k V - B and the k-th licence expires at
    g + (k + 1) V."""
    L, R, V, B = 10.0, 12.0, 90.0, 30.0
    run = sim.simulate(plain_net(lead_cn=L), scenario(controls={"c": licensing(
        review_days=R, licence_scope="lane", licence_validity_days=V,
        renew_before_days=B)}), seed=3, horizon_days=900)
    g = events(run, "granted")["day"].to_numpy()
    assert len(events(run, "applied")) == 1          # only the first licence is applied for
    renewals = events(run, "renewal_applied")["day"].to_numpy()
    k = np.arange(1, len(renewals) + 1)
    assert len(renewals) >= 8
    np.testing.assert_allclose(renewals, g[0] + k * V - B)
    np.testing.assert_allclose(g[1:], (renewals + R)[renewals + R < run.horizon])
    expired = events(run, "expired")["day"].to_numpy()
    np.testing.assert_allclose(expired, g[0] + np.arange(1, len(expired) + 1) * V)
    log = lane(run, CN_LANE).log
    after = log[log[:, 0] > g[0]]
    assert len(after) > 50
    np.testing.assert_allclose(after[:, 2], after[:, 0] + L)     # no shipment waits
    assert residual(run) < 1e-6


def test_share_of_renewals_granted_is_the_approval_probability():
    """Each renewal is reviewed and approved like any application: with a fixed review R its
    decision comes R days after the filing and is a grant with probability p."""
    R, V, B, p = 5.0, 30.0, 15.0, 0.6
    outcomes = []
    for seed in range(6):
        run = sim.simulate(plain_net(), scenario(controls={"c": licensing(
            review_days=R, approval_probability=p, licence_scope="lane",
            licence_validity_days=V, renew_before_days=B, on_denial="requeue")}),
            seed=seed, horizon_days=1500)
        d = run.licence_decisions()
        filed = d[d["event"] == "renewal_applied"]["day"].to_numpy()
        granted = d[d["event"] == "granted"]["day"].to_numpy()
        denied = d[d["event"] == "denied"]["day"].to_numpy()
        for t in filed[filed + R < run.horizon]:
            ok = np.isclose(granted, t + R).sum()
            no = np.isclose(denied, t + R).sum()
            assert ok + no == 1
            outcomes.append(ok)
        assert residual(run) < 1e-6
    x = np.array(outcomes)
    assert len(x) > 150
    assert abs(x.mean() - p) < 4 * math.sqrt(p * (1 - p) / len(x))


def test_unused_licences_are_not_renewed():
    """The CN lane closes for good (the buyer orders from AU): the renewal of the licence in
    force then (review R longer than B, so granted after that licence lapsed) is never used
    and is not renewed; every renewal filed is for a licence that shipments used."""
    V, B, R = 60.0, 20.0, 30.0
    run = sim.simulate(plain_net(au=True, share_cn=0.5), scenario(
        controls={"c": licensing(review_days=R, licence_scope="lane", licence_validity_days=V,
                                 renew_before_days=B)},
        lane_closures=[{"lane": CN_LANE, "start": day(200), "duration_days": 5000}]),
        seed=2, horizon_days=800)
    d = run.licence_decisions()
    renewals = d[d["event"] == "renewal_applied"]["day"].to_numpy()
    expired = d[d["event"] == "expired"]
    assert len(renewals) >= 2
    assert (expired["tonnes"] == 0).any()                # a licence expired unused...
    for _, row in expired.iterrows():
        renewed = np.isclose(renewals, row["day"] - B).any()
        assert renewed == (row["tonnes"] > 0)            # ...and only used ones were renewed
    assert renewals.max() < 200 + V + R
    assert residual(run) < 1e-6


def test_renew_before_zero_is_the_default():
    def run_with(**kw):
        return sim.simulate(plain_net(), scenario(controls={"c": licensing(
            review_days={"dist": "uniform", "min": 5, "max": 40}, approval_probability=0.7,
            licence_scope="buyer", licence_validity_days=50, on_denial="requeue", **kw)}),
            seed=5, horizon_days=700)
    a, b = run_with(), run_with(renew_before_days=0)
    assert a.kpi_rows() == b.kpi_rows()
    np.testing.assert_array_equal(lane(a, CN_LANE).log, lane(b, CN_LANE).log)
    assert a.licence_decisions().equals(b.licence_decisions())
    assert len(events(a, "renewal_applied")) == 0


@pytest.mark.parametrize("ctrl, field", [
    (dict(licence_scope="lane", licence_validity_days=30, renew_before_days=-1),
     "renew_before_days"),
    (dict(licence_scope="lane", licence_validity_days=30, renew_before_days="90"),
     "renew_before_days"),
    (dict(renew_before_days=30), "renew_before_days"),      # per-shipment scope
    (dict(licence_scope="lane", licence_validity_days=30,
          changes=[{"from": day(10), "licence_scope": "shipment", "renew_before_days": 5}]),
     "renew_before_days"),
])
def test_renew_before_days_is_validated_naming_the_field(ctrl, field):
    with pytest.raises(ScenarioError, match=field):
        scenario(controls={"c": licensing(**ctrl)})
