"""What plant fleets cost: a demand region as a fleet of plants (:mod:`sim.fleet`) against the
same region as separate nodes.

Covers: one replication (``sim.simulate`` + ``run.kpi_rows()``, what Monte Carlo does per
replication) of the default network ``rare_earth_2025`` under ``truce-expires``, in three forms:

* ``plain`` -- the network as shipped;
* ``fleet`` -- ``eu_auto`` as a fleet of PLANTS plants (30% of demand at 6 just-in-time plants
  of 21 days, 70% at the rest with covers uniform on 60-90 days, the example of the README);
* ``nodes`` -- ``eu_auto`` split into PLANTS separate demand nodes with the same shares (demand,
  initial stock and (s, S) scaled by each plant's share, the plant's initial stock as the fleet
  gives it, every lane into ``eu_auto`` repeated into each of them).

The forms run interleaved, replication by replication with the same seeds, so that the load
of a shared machine hits them alike; medians are reported. A fleet leaves the engine as it is
(the same events, printed), so what it costs is the post-processing: ``fleet ms/plant`` =
(median ``kpi_rows`` of the fleet - of the plain network) / PLANTS, and again on copies of one
finished run (``kpi_rows`` alone, 30 times: median, and the smallest time, the least
disturbed by other jobs and by garbage collections). ``nodes ms/plant`` = (median
replication with the separate nodes - plain) / PLANTS.

Run from the repository root::

    python benchmarks/fleet_cost.py                 # REPS replications per form
    python benchmarks/fleet_cost.py --reps 3 --plants 20,100
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import statistics
import sys
import time
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

NETWORK = "rare_earth_2025"
SCENARIO = "truce-expires"
NODE = "eu_auto"
REPS = 7
PLANTS = 20
RANDOM_SEED = 0


def fleet_table(plants: int) -> dict:
    """The README's example fleet scaled to *plants* plants (30% just-in-time)."""
    jit = max(1, round(0.3 * plants))
    return {"source": "benchmark", "plants": [
        {"name": "just-in-time", "share": 0.3, "count": jit, "cover_days": 21},
        {"name": "buffered", "share": 0.7, "count": plants - jit,
         "cover_days": {"dist": "uniform", "min": 60, "max": 90}}]}


def _scaled(spec, f: float):
    """A distribution (or number) of a demand size scaled by *f* (scale-family parameters)."""
    if isinstance(spec, (int, float)):
        return spec * f
    out = dict(spec)
    for key in ("mean", "sd", "value", "min", "mode", "max"):
        if key in out:
            out[key] = out[key] * f
    return out


def with_fleet(base: dict, plants: int) -> sim.Network:
    """The network with NODE as a fleet of *plants* plants."""
    d = copy.deepcopy(base)
    d["nodes"][NODE]["fleet"] = fleet_table(plants)
    return sim.Network.from_dict(d)


def with_nodes(base: dict, plants: int) -> sim.Network:
    """The network with NODE split into *plants* demand nodes of the fleet's shares."""
    fleet_net = with_fleet(base, plants)
    fleet = fleet_net.nodes[NODE].fleet
    d = copy.deepcopy(base)
    node = d["nodes"].pop(NODE)
    inbound = [l for l in d["lanes"] if l["to"] == NODE]
    d["lanes"] = [l for l in d["lanes"] if l["to"] != NODE]
    for i, (name, _cls, f, _cover) in enumerate(fleet.plants()):
        nid = f"{NODE}_{i}"
        n = copy.deepcopy(node)
        for m, dem in n["demand"].items():
            dem["rate_t_per_year"] *= f
            if "size" in dem:
                dem["size"] = _scaled(dem["size"], f)
            if "order_size" in dem and dem.get("process") != "poisson":
                dem["order_size"] = _scaled(dem["order_size"], f)
            st = n["stock"][m]
            daily = node["demand"][m]["rate_t_per_year"] / 365.0
            st["initial"] = fleet.initial_split(node["stock"][m]["initial"], daily)[i]
            pol = st["policy"]
            for key in ("s", "S", "r", "Q"):
                if key in pol:
                    pol[key] *= f
        n["name"] = f"{node.get('name', NODE)}: {name}"
        d["nodes"][nid] = n
        for lane in inbound:
            d["lanes"].append(dict(lane, to=nid))
    return sim.Network.from_dict(d)


def replicate(network, scenario, seed: int) -> tuple[float, float, object]:
    """(seconds of simulate + kpi_rows, seconds of kpi_rows, the run) of one replication."""
    t0 = time.perf_counter()
    run = sim.simulate(network, scenario, seed=seed)
    t1 = time.perf_counter()
    run.kpi_rows()
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, run


def kpi_only(run, repeat: int = 30) -> tuple[float, float]:
    """Median and smallest seconds of ``kpi_rows`` on fresh copies of a finished run (as a
    worker computes them)."""
    blob = pickle.dumps(run)
    times = []
    for _ in range(repeat):
        copy_ = pickle.loads(blob)
        for cached in ("_kpi_rows", "_kpi_pair", "_kpi_streams", "_kpi_arrays"):
            copy_.__dict__.pop(cached, None)
        copy_._demand_arrays          # (made in from_recording in a real run)
        t = time.perf_counter()
        copy_.kpi_rows()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def measure(plants: int, reps: int, seed: int) -> dict:
    """The figures for a fleet of *plants* plants."""
    base = sim.load_network(NETWORK).to_dict()
    scenario = sim.load_scenario(SCENARIO)
    forms = {"plain": sim.Network.from_dict(base), "fleet": with_fleet(base, plants),
             "nodes": with_nodes(base, plants)}
    for net in forms.values():
        sim.simulate(net, scenario, seed=seed, horizon_days=30).kpi_rows()     # warm up
    total: dict[str, list[float]] = {k: [] for k in forms}
    kpis: dict[str, list[float]] = {k: [] for k in forms}
    events: dict[str, int] = {}
    runs = {}
    for i in range(reps):
        for name, net in forms.items():
            t, k, run = replicate(net, scenario, seed + i)
            total[name].append(t)
            kpis[name].append(k)
            events[name] = run.stats["events"]
            runs[name] = run
    med = {k: statistics.median(v) for k, v in total.items()}
    post_both = {k: kpi_only(runs[k]) for k in ("plain", "fleet")}
    post = {k: v[0] for k, v in post_both.items()}
    post_min = {k: v[1] for k, v in post_both.items()}
    return {
        "plants": plants, "reps": reps, "network": NETWORK, "scenario": SCENARIO,
        "engine": sim.engine.ENGINE,
        "replication_s": med, "events": events,
        "kpi_rows_s": {k: statistics.median(v) for k, v in kpis.items()},
        "post_kpi_rows_s": post, "post_kpi_rows_min_s": post_min,
        "fleet_ms_per_plant": 1e3 * (statistics.median(kpis["fleet"])
                                     - statistics.median(kpis["plain"])) / plants,
        "fleet_ms_per_plant_one_run": 1e3 * (post["fleet"] - post["plain"]) / plants,
        "fleet_ms_per_plant_one_run_min": 1e3 * (post_min["fleet"] - post_min["plain"]) / plants,
        "nodes_ms_per_plant": 1e3 * (med["nodes"] - med["plain"]) / plants,
        "fleet_first_stoppage_day": runs["fleet"].kpi("first_shortage_day", f"node:{NODE}"),
        "plain_first_stoppage_day": runs["plain"].kpi("first_shortage_day", f"node:{NODE}"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=REPS)
    p.add_argument("--plants", default=str(PLANTS), help="comma-separated fleet sizes")
    p.add_argument("--seed", type=int, default=RANDOM_SEED)
    args = p.parse_args(argv)
    out = []
    print(f"{NETWORK} / {SCENARIO}, {NODE} as a fleet vs separate nodes; medians of "
          f"{args.reps} replications (simulate + kpi_rows), {sim.engine.ENGINE} engine")
    print(f"{'plants':>6} | {'events plain/fleet/nodes':>24} | {'replication ms':>20} | "
          f"{'kpi_rows ms':>11} | {'fleet ms/plant':>14} | {'nodes ms/plant':>14}")
    print(f"{'':6} | {'':24} | {'plain/fleet/nodes':>20} | {'plain/fleet':>11} | "
          f"{'(one run; min)':>14} |")
    for n in (int(x) for x in args.plants.split(",")):
        r = measure(n, args.reps, args.seed)
        out.append(r)
        e, s, k = r["events"], r["replication_s"], r["kpi_rows_s"]
        print(f"{n:6d} | {e['plain']:>7d} {e['fleet']:>7d} {e['nodes']:>8d} | "
              f"{1e3 * s['plain']:6.1f} {1e3 * s['fleet']:6.1f} {1e3 * s['nodes']:6.1f} | "
              f"{1e3 * k['plain']:5.2f} {1e3 * k['fleet']:5.2f} | "
              f"{r['fleet_ms_per_plant']:5.3f} ({r['fleet_ms_per_plant_one_run']:5.3f}; "
              f"{r['fleet_ms_per_plant_one_run_min']:5.3f}) | "
              f"{r['nodes_ms_per_plant']:14.3f}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
