"""Statistical validation of the engine against exact queueing and inventory results.

Every test compares an estimate with an exact value and accepts it when the difference is
within four standard errors, the standard error being computed from independent replications
(``replication=i``) of a long run after a warm-up. Seeds are fixed so the suite is
reproducible, but no seeded digits are pinned: any correct engine passes with probability
about 0.999 per comparison.

Exact results used
------------------
* Single-stage base-stock (one-for-one) node, Poisson unit demand of rate lambda, fixed lead
  time L, ample supplier: net inventory = S - Poisson(lambda L); the fill rate is
  P(Poisson(lambda L) <= S - 1) (type 1 = type 2 for unit orders, by PASTA) and the mean
  backorder level is E[(Poisson(lambda L) - S)+].
* Palm's theorem: with i.i.d. random lead times of any distribution the number of units on
  order is Poisson(lambda E[L]) (the pipeline is an M/G/infinity queue), so the results above
  hold with lambda E[L].
* A make-to-order processor with unit batches of 1 day serving Poisson unit orders is an M/D/1
  queue: mean time in system W = 1/mu + rho / (2 mu (1 - rho)), mean number in system
  L = lambda W (Little), utilisation rho = lambda / mu, throughput lambda; when demand
  exceeds capacity the throughput is the capacity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.distributions import from_spec
from sim.records import REC_ORDERED

Z = 4.0   # accept |estimate - exact| < Z standard errors


# ---------------------------------------------------------------------------------------------
# Exact formulas (scipy is not a dependency)
# ---------------------------------------------------------------------------------------------

def poisson_pmf(mu: float, kmax: int) -> np.ndarray:
    """P(N = k), k = 0..kmax, for N ~ Poisson(mu), by the stable recursion p_k = p_{k-1} mu/k."""
    p = np.empty(kmax + 1)
    p[0] = math.exp(-mu)
    for k in range(1, kmax + 1):
        p[k] = p[k - 1] * mu / k
    return p


def poisson_cdf(k: int, mu: float) -> float:
    """P(N <= k) for N ~ Poisson(mu)."""
    return float(poisson_pmf(mu, k).sum()) if k >= 0 else 0.0


def poisson_expected_excess(S: int, mu: float) -> float:
    """E[(N - S)+] for N ~ Poisson(mu) (expected backorders of a base-stock level S)."""
    kmax = int(mu + 20 * math.sqrt(mu) + S + 50)
    p = poisson_pmf(mu, kmax)
    k = np.arange(kmax + 1)
    return float((np.maximum(k - S, 0) * p).sum())


def mean_and_se(values) -> tuple[float, float]:
    """Mean of independent replication estimates and its standard error."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def assert_close(values, exact: float, what: str, *, bias: float = 0.0) -> None:
    """Assert that the replication mean of *values* is within Z standard errors of *exact*
    (plus a stated deterministic *bias* bound, e.g. from an included warm-up)."""
    est, se = mean_and_se(values)
    assert se > 0, f"{what}: zero spread across replications (replications not independent?)"
    assert abs(est - exact) < Z * se + bias, (
        f"{what}: estimate {est:.5g} +- {se:.2g} (SE, {len(values)} replications) vs exact "
        f"{exact:.5g}: off by {abs(est - exact) / se:.1f} SE")


def test_poisson_helpers_are_exact():
    """The pmf helper sums to one and reproduces known Poisson values (guards the oracle)."""
    p = poisson_pmf(10.0, 200)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (np.arange(201) * p).sum() == pytest.approx(10.0, rel=1e-12)
    assert poisson_cdf(0, 2.0) == pytest.approx(math.exp(-2.0))
    assert poisson_cdf(2, 1.0) == pytest.approx(2.5 * math.exp(-1.0))
    # E[(N - 0)+] = E[N]; E[(N - S)+] - E[(S - N)+] = mu - S
    assert poisson_expected_excess(0, 7.5) == pytest.approx(7.5)
    mu, S = 7.5, 9
    k = np.arange(300)
    shortfall = (np.maximum(S - k, 0) * poisson_pmf(mu, 299)).sum()
    assert poisson_expected_excess(S, mu) - shortfall == pytest.approx(mu - S)


# ---------------------------------------------------------------------------------------------
# a. Single-stage base stock, fixed lead time
# ---------------------------------------------------------------------------------------------

LAM, S_FIXED, L_FIXED = 2.0, 12, 5.0          # lambda L = 10
REPS, HORIZON = 20, 3000.0


@pytest.fixture(scope="module")
def base_stock_runs(single_stage):
    """20 independent replications of the fixed-lead-time base-stock node (3000 days each)."""
    net = single_stage(LAM, S_FIXED, {"dist": "fixed", "value": L_FIXED})
    return [sim.simulate(net, seed=11, replication=i, horizon_days=HORIZON) for i in range(REPS)]


def test_base_stock_fill_rate_matches_poisson(base_stock_runs):
    """Fill rate after the warm-up (orders at t >= 10 L) equals P(Poisson(lambda L) <= S-1),
    for type 2 (units) and type 1 (orders), which coincide for unit orders."""
    warm = 10 * L_FIXED
    type2, type1 = [], []
    for run in base_stock_runs:
        d = run.demand[0]
        keep = d.T >= warm
        assert np.all(d.D == 1.0)
        type2.append(d.filled[keep].sum() / d.D[keep].sum())
        type1.append(np.mean(d.filled[keep] >= d.D[keep]))
    exact = poisson_cdf(S_FIXED - 1, LAM * L_FIXED)
    assert_close(type2, exact, "type-2 fill rate")
    assert_close(type1, exact, "type-1 fill rate")


def test_base_stock_fill_rate_kpi_matches_poisson(base_stock_runs):
    """The ``fill_rate`` and ``order_fill_rate`` KPIs (whole run, warm-up included) match the
    exact fill rate; the warm-up can only raise the KPI, by at most L / horizon."""
    exact = poisson_cdf(S_FIXED - 1, LAM * L_FIXED)
    fr = [r.kpi("fill_rate", "node:buyer") for r in base_stock_runs]
    t1 = [r.kpi("order_fill_rate", "node:buyer") for r in base_stock_runs]
    assert fr == pytest.approx(t1, abs=1e-12)        # unit orders: type 1 == type 2
    assert_close(fr, exact, "fill_rate KPI", bias=L_FIXED / HORIZON)


def test_base_stock_net_inventory_is_s_minus_poisson(base_stock_runs):
    """End-of-day net inventory after the warm-up has mean S - lambda L and variance lambda L,
    and the mean backorder level is E[(Poisson(lambda L) - S)+]."""
    mu = LAM * L_FIXED
    warm = int(10 * L_FIXED)
    means, sq, bo = [], [], []
    for run in base_stock_runs:
        lev = run.demand[0].daily_level[warm:]
        means.append(lev.mean())
        sq.append(np.mean((lev - (S_FIXED - mu)) ** 2))
        bo.append(np.maximum(-lev, 0.0).mean())
    assert_close(means, S_FIXED - mu, "mean net inventory")
    assert_close(sq, mu, "variance of net inventory")
    assert_close(bo, poisson_expected_excess(S_FIXED, mu), "mean backorders")


def test_base_stock_mean_backorders_kpi(base_stock_runs):
    """The ``mean_backorders_t`` KPI (time average of end-of-day backorders over the whole run)
    matches E[(Poisson(lambda L) - S)+]; the warm-up can only lower it, by at most
    (L + 1) / horizon of the exact value."""
    exact = poisson_expected_excess(S_FIXED, LAM * L_FIXED)
    kpi = [r.kpi("mean_backorders_t", "node:buyer") for r in base_stock_runs]
    assert_close(kpi, exact, "mean_backorders_t KPI", bias=(L_FIXED + 1) / HORIZON * exact)
    # the same number from the DemandRecord (KPI definition in sim.metrics)
    for r in base_stock_runs[:3]:
        assert r.kpi("mean_backorders_t", "node:buyer") == pytest.approx(
            r.demand[0].daily_backorders.mean(), rel=1e-12, abs=1e-12)


def test_base_stock_is_one_for_one(base_stock_runs):
    """Every customer unit triggers one replenishment order of one unit at the same instant,
    and every order arrives exactly L days later (fixed lead time)."""
    run = base_stock_runs[0]
    d = run.demand[0]
    buyer = next(s for s in run.stocks if s.node == "buyer")
    orders = buyer.log[buyer.log[:, 1] == REC_ORDERED]
    np.testing.assert_array_equal(orders[:, 0], d.T)
    np.testing.assert_array_equal(orders[:, 2], 1.0)
    lane = run.lanes[0].log
    np.testing.assert_allclose(lane[:, 2] - lane[:, 0], L_FIXED, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# b. Palm's theorem: random lead times with the same mean
# ---------------------------------------------------------------------------------------------

PALM_LAM, PALM_S, PALM_MEAN = 2.0, 14, 6.0     # lambda E[L] = 12
PALM_REPS, PALM_H, PALM_WARM = 16, 3000.0, 100

PALM_LEAD_TIMES = {
    "uniform": {"dist": "uniform", "min": 2, "max": 10},
    "triangular": {"dist": "triangular", "min": 1, "mode": 5, "max": 12},
    "lognormal": {"dist": "lognormal", "mean": 6, "sd": 4},
    "exponential": {"dist": "exponential", "mean": 6},
}


@pytest.mark.parametrize("dist", list(PALM_LEAD_TIMES), ids=list(PALM_LEAD_TIMES))
def test_palm_units_on_order_are_poisson(dist, single_stage):
    """Palm's theorem: for any i.i.d. lead-time distribution with mean E[L], the end-of-day
    number of units on order (``series()`` column ``on_order``) has mean and variance
    lambda E[L]; the fill rate is P(Poisson(lambda E[L]) <= S - 1). Also checks that the
    ``on_order`` series agrees with the lane shipment log (shipped, not yet arrived)."""
    spec = PALM_LEAD_TIMES[dist]
    assert from_spec(spec).mean == pytest.approx(PALM_MEAN)
    net = single_stage(PALM_LAM, PALM_S, spec)
    mu = PALM_LAM * PALM_MEAN
    means, sq, fills = [], [], []
    for i in range(PALM_REPS):
        run = sim.simulate(net, seed=23, replication=i, horizon_days=PALM_H)
        ser = run.series()
        oo = ser.loc[ser["node"] == "buyer", "on_order"].to_numpy()
        if i == 0:
            lane = run.lanes[0].log
            ends = np.arange(1, run.ndays + 1, dtype=float)
            outstanding = ((lane[:, 0][None, :] < ends[:, None])
                           & (lane[:, 2][None, :] >= ends[:, None])).sum(axis=1)
            np.testing.assert_allclose(oo, outstanding, atol=1e-9)
        x = oo[PALM_WARM:]
        means.append(x.mean())
        sq.append(np.mean((x - mu) ** 2))
        d = run.demand[0]
        keep = d.T >= PALM_WARM
        fills.append(d.filled[keep].sum() / d.D[keep].sum())
    assert_close(means, mu, f"{dist}: mean units on order")
    assert_close(sq, mu, f"{dist}: variance of units on order")
    assert_close(fills, poisson_cdf(PALM_S - 1, mu), f"{dist}: fill rate")


# ---------------------------------------------------------------------------------------------
# c. Capacity-limited processor: M/D/1, Little's law, throughput
# ---------------------------------------------------------------------------------------------

MU = 1.0                      # t/day: capacity 365 t/yr, unit batches (batch_days = 1)
Q_REPS, Q_H, Q_WARM, Q_TAIL = 16, 4000.0, 200, 200


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_processor_is_md1_queue_and_littles_law(rho, processor_queue):
    """A make-to-order processor (unit batches of 1/mu days) fed Poisson unit orders is an
    M/D/1 queue. Checks, after a warm-up:

    * mean order-to-shipment time (buyer's order log matched FIFO with the lane shipment log)
      = W = 1/mu + rho / (2 mu (1 - rho)) (Pollaczek-Khinchine);
    * time-average of the processor's end-of-day order backlog (``series()`` column
      ``backorders``) = lambda W (Little's law, L and W measured independently);
    * time-average work in process from the production log = rho = lambda x (1/mu)
      (Little's law at the server);
    * throughput (tonnes shipped per day) = lambda.
    """
    lam = rho * MU
    net = processor_queue(lam, MU * 365.0, batch_days=1.0, target_stock=0.0)
    W = 1 / MU + rho / (2 * MU * (1 - rho))
    sojourn, backlog, wip, thr = [], [], [], []
    for i in range(Q_REPS):
        run = sim.simulate(net, seed=5, replication=i, horizon_days=Q_H)
        buyer = next(s for s in run.stocks if s.node == "buyer")
        orders = buyer.log[buyer.log[:, 1] == REC_ORDERED]
        assert np.all(orders[:, 2] == 1.0)
        ships = run.lanes[0].log
        assert np.all(ships[:, 1] == 1.0), "unit orders must ship whole (one batch each)"
        n = len(ships)
        t_order, t_ship = orders[:n, 0], ships[:, 0]
        assert np.all(t_ship >= t_order - 1e-9), "FIFO: shipment before its order"
        sel = (t_order >= Q_WARM) & (t_order < Q_H - Q_TAIL)
        assert sel.sum() == ((orders[:, 0] >= Q_WARM) & (orders[:, 0] < Q_H - Q_TAIL)).sum(), \
            "an order placed long before the end was never shipped"
        sojourn.append((t_ship - t_order)[sel].mean())
        ser = run.series()
        bl = ser.loc[(ser["node"] == "proc") & (ser["material"] == "m"), "backorders"]
        backlog.append(bl.to_numpy()[Q_WARM:].mean())
        node, mat, plog, _ = run.production[0]
        assert (node, mat) == ("proc", "m")
        np.testing.assert_allclose(plog[:, 2] - plog[:, 0], plog[:, 1] / MU, atol=1e-9)
        busy = np.clip(plog[:, 2], Q_WARM, Q_H) - np.clip(plog[:, 0], Q_WARM, Q_H)
        wip.append((plog[:, 1] * busy).sum() / (Q_H - Q_WARM))
        in_window = (t_ship >= Q_WARM) & (t_ship < Q_H)
        thr.append(ships[in_window, 1].sum() / (Q_H - Q_WARM))
    assert_close(sojourn, W, f"rho={rho}: mean time in system")
    assert_close(backlog, lam * W, f"rho={rho}: mean backlog (Little)")
    assert_close(wip, rho, f"rho={rho}: mean work in process")
    assert_close(thr, lam, f"rho={rho}: throughput")


@pytest.mark.parametrize(("capacity", "batch_days", "order_size", "demand_per_day"), [
    (365.0, 1.0, 1, 1.3),         # unit batches, demand 30% above capacity
    (100.0, 7.0, 2, 150 / 365),   # weekly batches, 2 t orders, demand 50% above capacity
])
def test_overloaded_processor_throughput_equals_capacity(capacity, batch_days, order_size,
                                                         demand_per_day, processor_queue):
    """When demand exceeds capacity the line never idles once the backlog has built up:
    after the first quarter of the run, production and shipments per day equal the capacity
    (within 1%) and never exceed it, batches run back to back at the capacity rate, and the
    backlog grows at demand - capacity."""
    H = 2000.0
    t0 = H / 4
    net = processor_queue(demand_per_day, capacity, batch_days=batch_days,
                          order_size=order_size, target_stock=0.0)
    run = sim.simulate(net, seed=3, horizon_days=H)
    cap_day = capacity / 365.0
    _, _, plog, _ = run.production[0]
    done = plog[:, 2] <= H
    assert plog[done, 1].sum() <= cap_day * H + 1e-6
    late = done & (plog[:, 0] >= t0)
    assert plog[late, 1].sum() / (H - t0) == pytest.approx(cap_day, rel=0.01)
    starts = plog[:, 0][plog[:, 0] >= t0]
    ends = plog[:, 2][plog[:, 0] >= t0]
    np.testing.assert_allclose(starts[1:], ends[:-1], atol=1e-9, err_msg="line idled")
    # batches never exceed capacity x batch_days and run at the capacity rate
    assert plog[:, 1].max() <= cap_day * batch_days + 1e-9
    np.testing.assert_allclose(plog[:, 2] - plog[:, 0], plog[:, 1] / cap_day, rtol=1e-9)
    ships = run.lanes[0].log
    shipped = ships[ships[:, 0] >= t0, 1].sum()
    assert shipped / (H - t0) == pytest.approx(cap_day, rel=0.01)
    ser = run.series()
    bl = ser.loc[(ser["node"] == "proc") & (ser["material"] == "m"), "backorders"].to_numpy()
    half = int(H) // 2
    span = run.ndays - 1 - half
    growth = bl[-1] - bl[half]
    # Poisson demand over the span: sd = sqrt(order_size x demand x span); plus batch granularity
    tol = Z * math.sqrt(order_size * demand_per_day * span) + 2 * cap_day * batch_days + order_size
    assert abs(growth - (demand_per_day - cap_day) * span) < tol


def test_lane_capacity_limits_throughput(single_stage_spec):
    """A lane with ``capacity_t_per_year`` loads shipments one after another at that rate:
    when the buyer orders more, deliveries per day equal the lane capacity (within 1%) and
    the loading intervals never overlap."""
    d = single_stage_spec(1.0, 10, 3.0)           # 365 t/yr demand
    d["lanes"][0]["capacity_t_per_year"] = 200.0
    run = sim.simulate(sim.Network.from_dict(d), seed=9, horizon_days=2000)
    log = run.lanes[0].log
    depart = log[:, 2] - 3.0                      # fixed lead time: arrival - L = departure
    load_start = depart - log[:, 1] / (200 / 365)
    assert np.all(load_start[1:] >= depart[:-1] - 1e-9), "two shipments loading at once"
    arrived = log[log[:, 2] <= 2000, 1].sum()
    assert arrived / 2000 == pytest.approx(200 / 365, rel=0.01)
