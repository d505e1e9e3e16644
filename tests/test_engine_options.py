"""Node and lane options: whole-order shipping, overlapping lane closures, rated orders."""

from __future__ import annotations

import numpy as np

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
