#!/usr/bin/env python3
"""Benchmark suite of the rare-earth supply-chain simulator (``sim``), in one process.

    python benchmarks/benchmark.py [--quick] [--reps N] [--json-out FILE] [--profile]

Sections (see ``benchmarks/README.md`` for what each figure means):

1. bare SimPy: timeout events per second of a plain SimPy loop (the yardstick);
2. default network: ``sim.simulate("rare_earth_2025", "truce-uncertain")`` per replication;
3. scaling: synthetic layered networks of ~10/25/100/400 nodes x 1/3/10-year horizons, with the
   exponent b of ``log(time) = a + b log(nodes x days)``;
4. peer comparison: the peer network (``benchmarks/peer_network.py``) in this simulator vs
   SupplyNetPy 0.5.1 driven by the shared peer driver (``PEER_BENCH``, see
   ``benchmarks/README.md``): time, events per customer order, customer fill rates;
5. Monte Carlo throughput (when ``sim.monte_carlo`` / ``sim.experiment.monte_carlo`` exists).

Prints tables, then ONE final line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import simpy  # noqa: E402
from memory import PeakMemory  # noqa: E402
from peer_network import DAYS, layer_counts, peer_network, peer_scenario  # noqa: E402
from snp_driver import snp_available, snp_replication, snp_version  # noqa: E402

import sim  # noqa: E402

DEFAULT_NETWORK = "rare_earth_2025"
DEFAULT_SCENARIO = "truce-uncertain"
_DEFAULT_OBJECTS: dict = {}     # the default network and scenario objects, for Monte Carlo

# fill-rate diagnostics: the peer re-run with some of its rules set to ours (snp_driver)
DIAGNOSTICS = {
    "same-rules": {"take_available": True, "per_order": True},
    "take-available": {"take_available": True},
    "per-order": {"per_order": True},
    "partial-ship": {"partial": True},
}
DIAGNOSTIC_NOTES = {
    "same-rules": "with customers who take what there is when stock is short and buyers who "
                  "choose their supplier for each order, as ours do",
    "take-available": "with customers who take what there is when stock is short, as ours do",
    "per-order": "with buyers who choose their supplier for each order (not the supplier of "
                 "their first order for good), as ours do",
    "partial-ship": "with replenishment orders shipped partially (ours ships whole orders "
                    "on this network: how much that rule matters)",
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def mean_se(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = statistics.fmean(xs)
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else None
    return m, se


def rnd(x, n=4):
    if x is None:
        return None
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            return None
        return round(float(x), n)
    return x


def fmt(x, spec=".3f", none="-"):
    return none if x is None else format(x, spec)


def table(title, header, rows):
    print()
    print(title)
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    print("  " + "  ".join(str(h).rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  " + "  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))
    sys.stdout.flush()


def git_state():
    def git(*a):
        try:
            out = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10)
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", "sim", "networks")
    modified = bool(dirty) if dirty is not None else None
    return {"commit": commit, "sim_or_networks_modified": modified}


def loadavg():
    """1/5/15-minute load averages (None where the OS has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def versions():
    """The package's own version list plus the machine and the peer's packages."""
    from importlib.metadata import PackageNotFoundError, version

    from sim.results import package_versions

    out = package_versions()
    out.update(machine=platform.machine(), platform=platform.platform(), cpus=os.cpu_count())
    for p in ("supplynetpy", "psutil"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


# ---------------------------------------------------------------------------------------------
# 1. bare SimPy
# ---------------------------------------------------------------------------------------------

def bare_simpy_rate(n=300_000):
    """Timeout events per second of one SimPy process yielding *n* timeouts (as the peer
    driver's ``bare_simpy_rate``)."""
    env = simpy.Environment()

    def proc(env, n):
        for _ in range(n):
            yield env.timeout(1)
    env.process(proc(env, n))
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def section_bare(args):
    rates = [bare_simpy_rate() for _ in range(3)]
    r = med(rates)
    print(f"bare SimPy: {r:,.0f} timeout events/s (median of 3: "
          f"{', '.join(f'{x:,.0f}' for x in rates)})")
    return {"timeouts_per_s_median": round(r), "timeouts_per_s_runs": [round(x) for x in rates],
            "us_per_event": rnd(1e6 / r, 3)}


# ---------------------------------------------------------------------------------------------
# our replications
# ---------------------------------------------------------------------------------------------

def ours_rep(net, scenario, seed, horizon_days=None, scenario_fn=None, kpis=True):
    """One timed replication: (scenario build) + sim.simulate + KPI table."""
    gc.collect()
    t0 = time.perf_counter()
    sc = scenario_fn(seed) if scenario_fn is not None else scenario
    t1 = time.perf_counter()
    run = sim.simulate(net, sc, seed=seed, horizon_days=horizon_days)
    t2 = time.perf_counter()
    out = {"scenario_s": t1 - t0, "simulate_s": t2 - t1,
           "build_s": run.stats.get("build_seconds"), "run_s": run.stats.get("run_seconds"),
           "events": run.stats.get("events")}
    if kpis:
        run.kpi_rows()                     # every KPI (what Monte Carlo keeps per replication)
        t3 = time.perf_counter()
        out["kpi_s"] = t3 - t2
        out["total_s"] = t3 - t0
        try:
            out["fill"] = run.kpi("fill_rate", "network")
            out["orders"] = run.kpi("orders", "network")
            out["units_demanded"] = run.kpi("demand_t", "network")
        except KeyError:
            out["fill"] = out["orders"] = out["units_demanded"] = None
        # diagnostic: share of demanded units in orders filled completely on arrival (what a
        # customer who takes nothing unless the whole order is there would have received)
        num = den = 0.0
        for d in run.demand:
            den += float(d.D.sum())
            num += float(d.D[d.filled >= d.D - 1e-9].sum())
        out["fill_whole_orders"] = num / den if den else None
    else:
        out["total_s"] = t2 - t0
    out["post_s"] = out["simulate_s"] - (out["build_s"] or 0) - (out["run_s"] or 0)
    return out


# ---------------------------------------------------------------------------------------------
# 2. default network
# ---------------------------------------------------------------------------------------------

def section_default(args, bare):
    note = []
    name = DEFAULT_NETWORK
    if name not in sim.list_networks():
        note.append(f"network {name!r} not shipped; using 'teaching' instead")
        name = "teaching"
    net = sim.load_network(name)
    sc = None
    try:
        if DEFAULT_SCENARIO in sim.list_scenarios():
            sc = sim.load_scenario(DEFAULT_SCENARIO)
            sc.check_network(net)
        else:
            note.append(f"scenario {DEFAULT_SCENARIO!r} not built in; baseline (None) used")
    except Exception as exc:
        note.append(f"scenario {DEFAULT_SCENARIO!r} failed to load ({type(exc).__name__}: "
                    f"{str(exc)[:160]}); baseline (None) used")
        sc = None
    reps = args.default_reps
    runs = [ours_rep(net, sc, seed=i) for i in range(reps)]
    ev = med([r["events"] for r in runs])
    run_s = med([r["run_s"] for r in runs])
    eps = med([r["events"] / r["run_s"] for r in runs])
    res = {
        "network": name, "scenario": sc.name if sc is not None else None, "reps": reps,
        "nodes": len(net.nodes), "lanes": len(net.lanes),
        "simulate_s_median": rnd(med([r["simulate_s"] for r in runs]), 5),
        "total_s_median": rnd(med([r["total_s"] for r in runs]), 5),
        "build_s_median": rnd(med([r["build_s"] for r in runs]), 5),
        "run_s_median": rnd(run_s, 5),
        "post_s_median": rnd(med([r["post_s"] for r in runs]), 5),
        "kpi_s_median": rnd(med([r["kpi_s"] for r in runs]), 5),
        "events_median": ev,
        "events_per_s_median": round(eps) if eps else None,
        "us_per_event": rnd(1e6 / eps, 3) if eps else None,
        "cost_per_event_vs_bare_simpy":
            rnd(bare["timeouts_per_s_median"] / eps, 2) if eps else None,
        "fill_rate_mean": rnd(mean_se([r["fill"] for r in runs])[0]),
        "note": "; ".join(note) or None,
    }
    rows = [[name, res["scenario"] or "baseline", reps, fmt(res["simulate_s_median"], ".4f"),
             fmt(res["build_s_median"], ".4f"), fmt(res["run_s_median"], ".4f"),
             fmt(res["post_s_median"], ".4f"), fmt(res["kpi_s_median"], ".4f"),
             f"{ev:,.0f}", f"{res['events_per_s_median']:,}",
             fmt(res["cost_per_event_vs_bare_simpy"], ".2f")]]
    table("Default network, seconds per replication (medians)",
          ["network", "scenario", "reps", "simulate", "build", "engine", "collect", "kpis",
           "events", "events/s", "x bare"], rows)
    if res["note"]:
        print("  note:", res["note"])
    _DEFAULT_OBJECTS["network"], _DEFAULT_OBJECTS["scenario"] = net, sc
    return res


# ---------------------------------------------------------------------------------------------
# 3. scaling
# ---------------------------------------------------------------------------------------------

def section_scaling(args):
    nodes = [10, 25, 100] if args.quick else [10, 25, 100, 400]
    years = [1, 3] if args.quick else [1, 3, 10]
    reps = args.scaling_reps
    points = []
    rows = []
    for n in nodes:
        net = peer_network(n)
        for y in years:
            days = 365 * y
            runs = [ours_rep(net, None, seed=i, horizon_days=days, kpis=False) for i in range(reps)]
            p = {"nodes": len(net.nodes), "counts": list(layer_counts(n)), "lanes": len(net.lanes),
                 "days": days, "reps": reps,
                 "simulate_s_median": rnd(med([r["simulate_s"] for r in runs]), 5),
                 "run_s_median": rnd(med([r["run_s"] for r in runs]), 5),
                 "build_s_median": rnd(med([r["build_s"] for r in runs]), 5),
                 "events_median": med([r["events"] for r in runs])}
            p["events_per_s"] = round(p["events_median"] / p["run_s_median"])
            points.append(p)
            rows.append([p["nodes"], p["lanes"], days, fmt(p["simulate_s_median"], ".4f"),
                         fmt(p["build_s_median"], ".4f"), fmt(p["run_s_median"], ".4f"),
                         f"{p['events_median']:,.0f}", f"{p['events_per_s']:,}"])
    table("Scaling: synthetic layered networks (medians over reps)",
          ["nodes", "lanes", "days", "simulate s", "build s", "engine s", "events", "events/s"],
          rows)
    x = np.log([p["nodes"] * p["days"] for p in points])
    fits = {}
    for key in ("simulate_s_median", "run_s_median"):
        y = np.log([p[key] for p in points])
        b, a = np.polyfit(x, y, 1)
        r2 = 1 - ((y - (a + b * x)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        fits[key] = {"a": rnd(a, 4), "b": rnd(b, 4), "r2": rnd(r2, 4)}
    print(f"  fit log(time) = a + b log(nodes x days): simulate b = "
          f"{fits['simulate_s_median']['b']:.3f} (R2 {fits['simulate_s_median']['r2']:.3f}), "
          f"engine b = {fits['run_s_median']['b']:.3f} (R2 {fits['run_s_median']['r2']:.3f})")
    return {"points": points, "fit": fits, "exponent_b_simulate": fits["simulate_s_median"]["b"],
            "exponent_b_engine": fits["run_s_median"]["b"]}


# ---------------------------------------------------------------------------------------------
# 4. peer comparison
# ---------------------------------------------------------------------------------------------

def _pair_range(pairs) -> str:
    """'median [min-max]' of the per-replication ratios, for the table."""
    if not pairs:
        return "-"
    return f"{med(pairs):.1f} [{min(pairs):.1f}-{max(pairs):.1f}]"


def section_peer(args, bare):
    ok, why = snp_available()
    sizes = args.sizes.split(",")
    variants = args.variants.split(",")
    reps = args.reps
    out = {"supplynetpy": snp_version() if ok else None, "available": ok,
           "note": why or None, "days": DAYS, "reps": reps, "configs": {}}
    rows = []
    rows_fill = []
    for size in sizes:
        t0 = time.perf_counter()
        net = peer_network(size)
        net_build_s = time.perf_counter() - t0
        for variant in variants:
            if variant == "disrupt":
                def scenario_fn(seed, size=size):
                    return peer_scenario(size, "disrupt", seed=seed)
            else:
                base_sc = peer_scenario(size, "base")
                scenario_fn = None
            ours, peer = [], []
            for r in range(reps):
                seed = args.seed + r
                ours.append(ours_rep(net, None if scenario_fn else base_sc, seed,
                                     horizon_days=DAYS, scenario_fn=scenario_fn))
                if ok:
                    try:
                        peer.append(snp_replication(size, variant, seed, DAYS))
                        if args.fill_diagnostic:
                            peer[-1]["fill_diagnostic"] = snp_replication(
                                size, variant, seed, DAYS,
                                **DIAGNOSTICS[args.diagnostic])["fill"]
                    except Exception as exc:  # keep going; report
                        out["note"] = f"SupplyNetPy failed on {size}/{variant}: {exc!r}"
                        traceback.print_exc()
            c = {"nodes": len(net.nodes), "lanes": len(net.lanes),
                 "network_from_dict_s": rnd(net_build_s, 5)}
            o = {
                "engine_s_median": rnd(med([x["run_s"] for x in ours]), 5),
                "build_s_median": rnd(med([x["build_s"] for x in ours]), 5),
                "scenario_s_median": rnd(med([x["scenario_s"] for x in ours]), 5),
                "simulate_s_median": rnd(med([x["simulate_s"] for x in ours]), 5),
                "kpi_s_median": rnd(med([x["kpi_s"] for x in ours]), 5),
                # sim.simulate after the run: collecting the records into arrays, freeing the model
                "collect_s_median": rnd(med([x["post_s"] for x in ours]), 5),
                "total_s_median": rnd(med([x["total_s"] for x in ours]), 5),
                "total_s_min": rnd(min(x["total_s"] for x in ours), 5),
                "total_s_max": rnd(max(x["total_s"] for x in ours), 5),
                "events_median": med([x["events"] for x in ours]),
                "orders_median": med([x["orders"] for x in ours]),
            }
            o["events_per_order"] = rnd(med([x["events"] / x["orders"] for x in ours]), 3)
            o["events_per_s_median"] = round(med([x["events"] / x["run_s"] for x in ours]))
            o["fill_mean"], o["fill_se"] = (rnd(v, 5) for v in mean_se([x["fill"] for x in ours]))
            o["fill_whole_orders_mean"] = rnd(mean_se([x["fill_whole_orders"] for x in ours])[0], 5)
            o["fill_runs"] = [rnd(x["fill"], 4) for x in ours]
            c["ours"] = o
            if peer:
                p = {
                    "run_s_median": rnd(med([x["run_s"] for x in peer]), 5),
                    "build_s_median": rnd(med([x["build_s"] for x in peer]), 5),
                    "total_s_median": rnd(med([x["build_s"] + x["run_s"] for x in peer]), 5),
                    "run_s_min": rnd(min(x["run_s"] for x in peer), 5),
                    "run_s_max": rnd(max(x["run_s"] for x in peer), 5),
                    "events_median": med([x["events"] for x in peer]),
                    "orders_median": med([x["orders"] for x in peer]),
                    "events_per_order": rnd(med([x["events"] / x["orders"] for x in peer]), 3),
                    "events_per_s_median": round(med([x["events"] / x["run_s"] for x in peer])),
                    "fill_runs": [rnd(x["fill"], 4) for x in peer],
                }
                pf = mean_se([x["fill"] for x in peer])
                p["fill_mean"], p["fill_se"] = rnd(pf[0], 5), rnd(pf[1], 5)
                c["supplynetpy"] = p
                c["speedup_engine"] = rnd(p["run_s_median"] / o["engine_s_median"], 2)
                c["speedup_total"] = rnd(p["total_s_median"] / o["total_s_median"], 2)
                if len(peer) == len(ours):
                    # replication r of both ran back to back on the same seed: their ratio is
                    # the least exposed to this machine's drift; its spread shows the noise
                    for key, num, den in (("engine", lambda x: x["run_s"], lambda x: x["run_s"]),
                                          ("total", lambda x: x["build_s"] + x["run_s"],
                                           lambda x: x["total_s"])):
                        pairs = [num(b) / den(a) for a, b in zip(ours, peer)]
                        c[f"speedup_{key}_pairs"] = [rnd(v, 2) for v in pairs]
                        c[f"speedup_{key}_pairs_median"] = rnd(med(pairs), 2)
                diff = o["fill_mean"] - p["fill_mean"]
                se = math.sqrt((o["fill_se"] or 0) ** 2 + (p["fill_se"] or 0) ** 2)
                c["fill_diff"] = rnd(diff, 5)
                c["fill_diff_z"] = rnd(diff / se, 2) if se > 0 else None
                c["fill_agree_3se"] = bool(abs(diff) <= 3 * se) if se > 0 else None
                if args.fill_diagnostic:
                    pm, ps = mean_se([x.get("fill_diagnostic") for x in peer])
                    p["fill_diagnostic"] = args.diagnostic
                    p["fill_diagnostic_mean"] = rnd(pm, 5)
                    p["fill_diagnostic_se"] = rnd(ps, 5)
                    d2 = o["fill_mean"] - pm
                    se2 = math.sqrt((o["fill_se"] or 0) ** 2 + (ps or 0) ** 2)
                    c["fill_diff_vs_diagnostic"] = rnd(d2, 5)
                    c["fill_diff_vs_diagnostic_z"] = rnd(d2 / se2, 2) if se2 > 0 else None
            out["configs"][f"{size}/{variant}"] = c
            p = c.get("supplynetpy", {})
            rows.append([f"{size}/{variant}", c["nodes"], c["lanes"],
                         fmt(o["engine_s_median"], ".4f"), fmt(o["total_s_median"], ".4f"),
                         fmt(p.get("run_s_median"), ".4f"), fmt(p.get("total_s_median"), ".4f"),
                         fmt(c.get("speedup_engine"), ".1f"), fmt(c.get("speedup_total"), ".1f"),
                         _pair_range(c.get("speedup_total_pairs")),
                         f"{o['events_median']:,.0f}", fmt(p.get("events_median"), ",.0f"),
                         fmt(o["events_per_order"], ".2f"), fmt(p.get("events_per_order"), ".2f")])
            rows_fill.append([f"{size}/{variant}", fmt(o["fill_mean"], ".4f"),
                              fmt(o["fill_se"], ".4f"), fmt(o["fill_whole_orders_mean"], ".4f"),
                              fmt(p.get("fill_mean"), ".4f"), fmt(p.get("fill_se"), ".4f"),
                              fmt(c.get("fill_diff"), "+.4f"), fmt(c.get("fill_diff_z"), "+.1f"),
                              {True: "yes", False: "NO", None: "-"}[c.get("fill_agree_3se")],
                              fmt(p.get("fill_diagnostic_mean"), ".4f"),
                              fmt(c.get("fill_diff_vs_diagnostic"), "+.4f"),
                              fmt(c.get("fill_diff_vs_diagnostic_z"), "+.1f")])
            print(f"  peer {size}/{variant}: done ({reps} reps)", flush=True)
    table(f"Peer network, seconds per replication (medians of {reps}); ours engine = SimPy run, "
          "ours total = scenario + sim.simulate + run.kpi_rows(); peer run = simulate_sc_net, "
          "peer total = build + run",
          ["config", "nodes", "lanes", "ours engine", "ours total", "peer run", "peer total",
           "x engine", "x total", "x total, pairs", "ours events", "peer events",
           "ours ev/order", "peer ev/order"], rows)
    parts = [f"{name} {1e3 * c['ours']['build_s_median']:.1f} / {1e3 * c['ours']['engine_s_median']:.1f}"
             f" / {1e3 * c['ours']['collect_s_median']:.1f} / {1e3 * c['ours']['kpi_s_median']:.1f}"
             for name, c in out["configs"].items() if "ours" in c]
    if parts:
        print("  ours, medians in ms, build / engine / collect (records to arrays, model freed) / "
              "KPIs: " + "; ".join(parts))
    table("Peer network, customer unit fill rate (mean and standard error over reps)",
          ["config", "ours", "se", "ours whole-order", "peer", "se", "diff", "z", "agree (3 se)",
           f"peer {args.diagnostic}", "diff", "z"], rows_fill)
    print("  ours whole-order = units in customer orders filled completely on arrival / units "
          "demanded (diagnostic);\n  peer " + args.diagnostic + " = the peer re-run on the same "
          "seeds " + DIAGNOSTIC_NOTES[args.diagnostic] + " (diagnostic)")
    if out["note"]:
        print("  note:", out["note"])
    return out


# ---------------------------------------------------------------------------------------------
# 5. Monte Carlo throughput
# ---------------------------------------------------------------------------------------------

def find_monte_carlo():
    fn = getattr(sim, "monte_carlo", None)
    if callable(fn):
        return fn, "sim.monte_carlo"
    try:
        from sim import experiment
        fn = getattr(experiment, "monte_carlo", None)
        if callable(fn):
            return fn, "sim.experiment.monte_carlo"
    except Exception:
        pass
    return None, None


def section_mc(args, default_res):
    fn, where = find_monte_carlo()
    if fn is None:
        msg = "skipped: sim.monte_carlo does not exist yet"
        print("\nMonte Carlo:", msg)
        return {"skipped": True, "note": msg}
    import inspect
    params = inspect.signature(fn).parameters
    net_name = default_res.get("network") or DEFAULT_NETWORK
    sc = default_res.get("scenario")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    reps_1 = args.mc_reps_serial
    reps_n = args.mc_reps
    net = _DEFAULT_OBJECTS.get("network") or sim.load_network(net_name)
    scen = _DEFAULT_OBJECTS.get("scenario")
    out = {"function": where, "network": net_name, "scenario": sc, "cores": cores}

    def call(reps, workers):
        kw = {}
        if "reps" in params:
            kw["reps"] = reps
        if "seed" in params:
            kw["seed"] = 0
        if "workers" in params:
            kw["workers"] = workers
        if "progress" in params:
            kw["progress"] = False
        gc.collect()
        t0 = time.perf_counter()
        res = fn(net, scen, **kw)
        dt = time.perf_counter() - t0
        failures = len(getattr(res, "failures", []) or [])
        return dt, failures

    try:
        dt1, f1 = call(reps_1, 1)
        out["serial"] = {"reps": reps_1, "seconds": rnd(dt1, 3), "reps_per_s": rnd(reps_1 / dt1, 2),
                         "failures": f1}
        with PeakMemory() as mem:
            dtn, fn_ = call(reps_n, cores)
        if mem.available:
            peak = {"peak_rss_total_mb": mem.mb(mem.peak_rss_total),
                    "peak_rss_parent_mb": mem.mb(mem.peak_rss_self),
                    "peak_pss_total_mb": mem.mb(mem.peak_pss_total)}
        else:
            peak = {"note": "psutil missing: no memory figures"}
        rate_n = reps_n / dtn
        out["parallel"] = {"reps": reps_n, "workers": cores, "seconds": rnd(dtn, 3),
                           "reps_per_s": rnd(rate_n, 2), "failures": fn_, **peak}
        out["parallel_efficiency"] = rnd(rate_n / (reps_1 / dt1) / cores, 3)
        from mc_scaling import machine_ceiling
        out["machine_ceiling_x"] = rnd(machine_ceiling(cores), 2) if cores > 1 else 1.0
        rows = [["1", reps_1, fmt(dt1, ".2f"), fmt(reps_1 / dt1, ".2f"), "-", "-", "-", "-"],
                [str(cores), reps_n, fmt(dtn, ".2f"), fmt(rate_n, ".2f"),
                 fmt(out["parallel_efficiency"], ".2f"), fmt(out["machine_ceiling_x"], ".2f"),
                 fmt(peak.get("peak_rss_total_mb"), ".0f"),
                 fmt(peak.get("peak_pss_total_mb"), ".0f")]]
        table(f"Monte Carlo throughput ({where}, {net_name}, scenario {sc or 'baseline'})",
              ["workers", "reps", "seconds", "reps/s", "efficiency", "machine ceiling x",
               "peak RSS MB", "peak PSS MB"], rows)
        print("  peak RSS / PSS = peak over the run of the summed resident / proportional set "
              "sizes of all processes (see benchmarks/memory.py)")
        print("  machine ceiling x = throughput of that many processes running one pure-Python "
              "loop at once / one alone")
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:400]
        print("\nMonte Carlo: failed:", out["error"])
    return out


# ---------------------------------------------------------------------------------------------
# profile
# ---------------------------------------------------------------------------------------------

def profile_medium(top=15):
    net = peer_network("medium")
    sim.simulate(net, None, seed=1, horizon_days=DAYS)          # warm-up
    pr = cProfile.Profile()
    pr.enable()
    run = sim.simulate(net, None, seed=1, horizon_days=DAYS)
    run.kpi_rows()
    pr.disable()
    buf = io.StringIO()
    st = pstats.Stats(pr, stream=buf).sort_stats("tottime")
    st.print_stats(top)
    text = buf.getvalue()
    print("\ncProfile of one medium peer replication (sim.simulate + run.kpi_rows(), by tottime):")
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if "ncalls" in l), 0)
    print("\n".join(lines[max(0, start - 6):]))
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():
        rows.append((tt, ct, nc, f"{Path(file).name}:{line}({func})"))
    rows.sort(reverse=True)
    return [{"tottime_s": rnd(tt, 5), "cumtime_s": rnd(ct, 5), "calls": nc, "function": f}
            for tt, ct, nc, f in rows[:top]]


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer reps, no 400-node or 10-year scaling points (~1-2 minutes)")
    ap.add_argument("--reps", type=int, default=None,
                    help="replications per peer configuration (default 7, quick 3)")
    ap.add_argument("--json-out", default=None, help="also write the JSON to this file")
    ap.add_argument("--sizes", default="small,medium,large")
    ap.add_argument("--variants", default="base,disrupt")
    ap.add_argument("--seed", type=int, default=12345, help="first seed of the peer replications")
    ap.add_argument("--sections", default="bare,default,scaling,peer,mc",
                    help="comma-separated subset of bare,default,scaling,peer,mc")
    ap.add_argument("--no-fill-diagnostic", dest="fill_diagnostic", action="store_false",
                    help="skip re-running the peer for the fill-rate diagnostic")
    ap.add_argument("--diagnostic", choices=sorted(DIAGNOSTICS), default="same-rules",
                    help="which of the peer's rules the fill-rate diagnostic sets to ours "
                         "(default: same-rules, the customers' and the buyers' rules; "
                         "take-available or per-order: one of them)")
    ap.add_argument("--profile", action="store_true",
                    help="also print a cProfile top 15 of one medium peer replication")
    args = ap.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 7)
    args.default_reps = 3 if args.quick else 9
    args.scaling_reps = 2 if args.quick else 3
    args.mc_reps = 100 if args.quick else 1000
    args.mc_reps_serial = 30 if args.quick else 200
    warnings.simplefilter("ignore")
    sections = set(args.sections.split(","))

    t_start = time.perf_counter()
    result = {"benchmark": "rare-earth-sim", "created": _dt.datetime.now(_dt.UTC).isoformat(),
              "quick": args.quick, "args": {k: v for k, v in vars(args).items()},
              "versions": versions(), "git": git_state(),
              "loadavg_start": loadavg()}
    print(f"rare-earth-sim benchmark ({'quick' if args.quick else 'full'}), python "
          f"{platform.python_version()}, simpy {result['versions']['simpy']}, "
          f"{result['versions'].get('engine', '?')} engine, {os.cpu_count()} CPUs, git {str(result['git']['commit'])[:10]}"
          f"{' (sim/ or networks/ modified)' if result['git']['sim_or_networks_modified'] else ''}"
          f", load average {result['loadavg_start']}")
    # warm-up (imports pandas for run.kpis(), fills caches) so the first timed rep is not charged
    ours_rep(peer_network("small"), None, seed=0, horizon_days=DAYS)
    bare = section_bare(args)   # always: the yardstick
    result["bare_simpy"] = bare
    default_res = {}
    if "default" in sections or "mc" in sections:
        try:
            default_res = section_default(args, bare)
        except Exception as exc:
            traceback.print_exc()
            default_res = {"error": f"{type(exc).__name__}: {exc}"[:400]}
        result["default_network"] = default_res
    if "scaling" in sections:
        try:
            result["scaling"] = section_scaling(args)
        except Exception as exc:
            traceback.print_exc()
            result["scaling"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    if "peer" in sections:
        try:
            result["peer"] = section_peer(args, bare)
        except Exception as exc:
            traceback.print_exc()
            result["peer"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    if "mc" in sections:
        result["monte_carlo"] = section_mc(args, default_res)
    if args.profile:
        result["profile_medium_top15"] = profile_medium()
    result["wall_seconds"] = round(time.perf_counter() - t_start, 2)
    result["loadavg_end"] = loadavg()
    print(f"\nbenchmark wall time: {result['wall_seconds']:.1f} s")
    line = json.dumps(result, separators=(",", ":"), default=_json_default)
    if args.json_out:
        Path(args.json_out).write_text(line + "\n")
    print(line)
    return 0


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (_dt.date, Path)):
        return str(o)
    return repr(o)


if __name__ == "__main__":
    sys.exit(main())
