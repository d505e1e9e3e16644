"""The benchmark helpers measure what they say (the timed figures themselves are never
asserted: they live in the benchmark scripts' output)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _benchmark_module(name: str):
    """Import benchmarks/<name>.py (the scripts import each other by plain name)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def memory_module():
    pytest.importorskip("psutil")
    yield from _benchmark_module("memory")


def test_peak_memory_sees_an_allocation_and_pss_is_at_most_rss(memory_module):
    """A 200 MB array allocated (and touched) inside the block raises the peak resident
    memory by about that much, and the proportional set size never exceeds the resident."""
    with memory_module.PeakMemory(interval=0.01) as before:
        pass
    with memory_module.PeakMemory(interval=0.01) as during:
        block = np.ones(200 * 2**20 // 8)
        time.sleep(0.2)                           # several sampling intervals
        del block
    grown = (during.peak_rss_total - before.peak_rss_total) / 2**20
    assert 150 < grown < 400, grown
    assert during.peak_rss_self <= during.peak_rss_total
    if during.peak_pss_total is not None:          # Linux
        assert 0 < during.peak_pss_total <= during.peak_rss_total * 1.01


@pytest.mark.parametrize("variant", ["base", "disrupt"])
def test_compare_versions_runs_a_tree_against_itself_in_separate_processes(variant):
    """``compare_versions.py --processes`` drives one process per tree and reports the same
    events and fill rate for a tree compared with itself (also with the peer's disrupt
    scenarios, one per replication)."""
    root = BENCH.parent
    out = subprocess.run([sys.executable, str(BENCH / "compare_versions.py"), str(root), str(root),
                          "--network", "small", "--variant", variant, "--reps", "2",
                          "--processes"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("A ")
    assert lines[1].startswith("B ")
    tail_a = lines[0].split("events")[1]
    tail_b = lines[1].split("events")[1]
    assert tail_a == tail_b                       # same events and fill rate
    assert "separate processes" in lines[2]
    assert "total time" in lines[2]
    assert ("small/disrupt" in lines[2]) == (variant == "disrupt")


def test_benchmark_suite_runs_and_writes_its_json(tmp_path):
    """``benchmark.py --quick`` (bare SimPy and the default network; the peer section without
    SupplyNetPy's driver reports only this project's side) ends with one line of JSON holding
    the figures, the same as the file it writes."""
    out_file = tmp_path / "bench.json"
    out = subprocess.run([sys.executable, str(BENCH / "benchmark.py"), "--quick",
                          "--sections", "bare,default,peer", "--sizes", "small",
                          "--variants", "base", "--reps", "1", "--no-fill-diagnostic",
                          "--json-out", str(out_file)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PEER_BENCH": str(tmp_path / "no_such_driver.py")})
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures == json.loads(out_file.read_text())
    assert figures["bare_simpy"]["timeouts_per_s_median"] > 0
    default = figures["default_network"]
    assert default["events_median"] > 1000 and default["cost_per_event_vs_bare_simpy"] > 0
    peer = figures["peer"]
    assert peer["available"] is False and peer["note"]
    assert peer["configs"]["small/base"]["ours"]["events_median"] > 0


def test_paired_ratio_range_is_median_min_and_max():
    """The peer table's "x total, pairs" column: median [min-max] of per-replication ratios."""
    sys.path.insert(0, str(BENCH))
    try:
        import benchmark
    finally:
        sys.path.remove(str(BENCH))
    assert benchmark._pair_range([30.0, 28.0, 35.0]) == "30.0 [28.0-35.0]"
    assert benchmark._pair_range(None) == "-"


@pytest.fixture(scope="module")
def peer_network_module():
    yield from _benchmark_module("peer_network")


def test_peer_disrupt_maps_mine_outages_to_closed_lanes_by_default(peer_network_module):
    """The peer's disrupted mine accepts no orders, so by default the disrupt variant closes
    every mine's outbound lanes over sampled periods (no production outages at mines); the
    other mapping stops the mines' production instead. Both keep the processors' year offline.
    Closures keep the orders queued on the lane, as the peer's disruptions do."""
    pn = peer_network_module
    net = pn.network_dict("medium")
    mines = {nid for nid, n in net["nodes"].items() if n["kind"] == "mine"}
    procs = [nid for nid, n in net["nodes"].items() if n["kind"] == "processor"]
    lanes = pn.peer_scenario("medium", "disrupt", seed=3)
    closed_from = {c.lane.split("->")[0] for c in lanes.lane_closures}
    assert closed_from & mines                       # ~0.002/day x 3 years: most mines
    assert not {o.node for o in lanes.outages} & mines
    production = pn.peer_scenario("medium", "disrupt", seed=3, mine_outages="production")
    assert {o.node for o in production.outages} >= mines
    assert not {c.lane.split("->")[0] for c in production.lane_closures} & mines
    for sc in (lanes, production):
        assert {o.node for o in sc.outages} >= set(procs[:2])
    assert pn.peer_scenario("medium", "disrupt", seed=3).digest() == lanes.digest()
    assert pn.peer_scenario("medium", "disrupt", seed=4).digest() != lanes.digest()
    # a disrupted peer link or node still delivers the orders already queued: so do ours
    assert {c.queued_orders for c in lanes.lane_closures} == {"keep"}
    reroute = pn.peer_scenario("medium", "disrupt", seed=3, queued_orders="reroute")
    assert {c.queued_orders for c in reroute.lane_closures} == {"reroute"}
    assert [c.lane for c in reroute.lane_closures] == [c.lane for c in lanes.lane_closures]


@pytest.fixture(scope="module")
def snp_driver_module():
    yield from _benchmark_module("snp_driver")


def test_peer_diagnostics_set_a_default_keyword_and_restore_the_class(snp_driver_module):
    """The diagnostics' patch gives a keyword left out (or None) the diagnostic's value, keeps
    one given explicitly, and restores the class on exit, also when the block raises."""
    snp = snp_driver_module

    class Node:
        def __init__(self, name, mode=None):
            self.name, self.mode = name, mode

    original = Node.__init__
    with snp._default_keyword(Node, "mode", "dynamic"):
        assert Node("a").mode == "dynamic"
        assert Node("b", mode=None).mode == "dynamic"
        assert Node("c", mode="fixed").mode == "fixed"
    assert Node.__init__ is original and Node("d").mode is None
    with pytest.raises(RuntimeError):
        with snp._default_keyword(Node, "mode", "dynamic"):
            raise RuntimeError
    assert Node.__init__ is original


def test_fleet_cost_splits_the_region_into_nodes_of_the_fleets_shares():
    """The separate nodes that benchmarks/fleet_cost.py times against a fleet carry the
    region's demand and initial stock, split as the fleet splits them, and its lanes."""
    import sim

    fleet_cost = next(_benchmark_module("fleet_cost"))
    base = sim.load_network(fleet_cost.NETWORK).to_dict()
    fleet = fleet_cost.with_fleet(base, 20).nodes[fleet_cost.NODE]
    nodes = fleet_cost.with_nodes(base, 20)
    split = [n for nid, n in nodes.nodes.items() if nid.startswith(f"{fleet_cost.NODE}_")]
    assert len(split) == 20 and fleet_cost.NODE not in nodes.nodes
    for m, dem in fleet.demand.items():
        assert sum(n.demand[m].rate_t_per_year for n in split) == \
            pytest.approx(dem.rate_t_per_year, rel=1e-12)
        assert sum(n.stocks[m].initial for n in split) == \
            pytest.approx(fleet.stocks[m].initial, rel=1e-12)
        assert sum(n.demand[m].size.mean for n in split) == pytest.approx(
            fleet.demand[m].size.mean, rel=1e-12)
    inbound = sum(1 for l in nodes.lanes if l.dst.startswith(f"{fleet_cost.NODE}_"))
    assert inbound == 20 * sum(1 for l in sim.load_network(fleet_cost.NETWORK).lanes
                               if l.dst == fleet_cost.NODE)
