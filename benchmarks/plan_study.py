"""Plan study cost: 5 plans x 6 scenarios x 500 replications on the default network.

Runs :func:`sim.study.compare_plans` (KPI-only replications, every cell on common random
numbers, one process pool for all cells) over the shipped plans and scenarios, and prints the
elapsed time, the time per replication (the study's wall time per replication, and a worker's
wall time inside its tasks per replication: above the one-process figures below when the
workers share their cores with other work), and where a
replication's time goes, measured in this process on a few replications of every cell:

* ``simulate``  -- building and running the model (:func:`sim.simulate`), the engine;
* ``kpis``      -- the KPI table of the run (``Run.kpi_rows``: every KPI of every scope);
* ``series``    -- the weekly series Monte Carlo keeps by default (the sectors' fill rate,
  backorders and net inventory, reduced in the worker), which a plan study skips;
* ``pickle``    -- sending one replication's KPI vector and series back from a worker.

``--fraction F`` runs F of the replications of every cell and projects the full study's time
from it (the per-replication cost is the same at any count once the pool is started; the
fixed costs, plan application and the summary tables, are reported apart and added once).
Timings on a shared machine move with its load (see README.md): compare figures of one run.
Plans that cannot be applied in this tree (e.g. a plan whose lever needs an engine feature not
merged here) are reported and left out; the projection then scales the cells run to the 30
asked.

Usage::

    python benchmarks/plan_study.py                     # the full study (minutes)
    python benchmarks/plan_study.py --fraction 0.05     # 25 reps per cell, projected to 500
    python benchmarks/plan_study.py --reps 500 --workers 2 --profile-reps 2

Prints a table, then one line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import os
import json
import math
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import sim
import sim.engine as sim_engine
from sim.experiment import available_cores, scope_series
from sim.study import compare_plans

PLANS = ("status-quo", "stockpile-release", "allied-capacity", "allied-capacity-delayed",
         "substitution")
SCENARIOS = ("baseline", "controls-apr-2025", "controls-oct-2025", "truce-holds",
             "truce-expires", "truce-uncertain")


def usable_plans(network, plans, scenarios):
    """The plans that apply to the network under every scenario, and why the others do not."""
    from sim.plans import apply_plan, resolve_plan

    net = sim.load_network(network)
    ok, dropped = [], {}
    for name in plans:
        try:
            plan = resolve_plan(name)
            for s in scenarios:
                apply_plan(plan, net, sim.load_scenario(s))
            ok.append(name)
        except sim.ModelError as exc:
            dropped[name] = str(exc).splitlines()[0]
    return ok, dropped


def profile(network, plans, scenarios, reps: int, seed: int) -> dict:
    """Seconds per replication of each phase, averaged over *reps* replications of every cell
    (in this process; the first replication of each cell is not timed: it builds the caches a
    worker builds once)."""
    from sim.plans import apply_plan, resolve_plan

    net = sim.load_network(network)
    t = {"simulate": [], "kpis": [], "series": [], "pickle": [], "build": [], "engine": []}
    for s in scenarios:
        sc = sim.load_scenario(s)
        for name in plans:
            n, scp = apply_plan(resolve_plan(name), net, sc)
            sectors = None
            for i in range(reps + 1):
                t0 = time.perf_counter()
                run = sim.simulate(n, scp, seed=seed, replication=i)
                t1 = time.perf_counter()
                values = np.array([v for _, _, v in run.kpi_rows()])
                t2 = time.perf_counter()
                if sectors is None:
                    sectors = sorted({f"sector:{d.sector}" for d in run.demand})
                series = scope_series(run, sectors).astype(np.float32)
                t3 = time.perf_counter()
                blob = pickle.dumps((values, series), protocol=pickle.HIGHEST_PROTOCOL)
                pickle.loads(blob)
                t4 = time.perf_counter()
                if i:
                    for k, a, b in (("simulate", t0, t1), ("kpis", t1, t2), ("series", t2, t3),
                                    ("pickle", t3, t4)):
                        t[k].append(b - a)
                    # inside simulate: building the model, and the SimPy run itself
                    t["build"].append(run.stats.get("build_seconds", np.nan))
                    t["engine"].append(run.stats.get("run_seconds", np.nan))
    return {k: float(np.mean(v)) for k, v in t.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default="rare_earth_2025")
    p.add_argument("--plans", nargs="+", default=list(PLANS))
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    p.add_argument("--reps", type=int, default=500, help="replications per cell (default 500)")
    p.add_argument("--fraction", type=float, default=1.0,
                   help="run this share of --reps per cell and project (default 1: all)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile-reps", type=int, default=2,
                   help="replications per cell timed phase by phase in this process (0: skip)")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    if not 0 < args.fraction <= 1:
        p.error("--fraction must be in (0, 1]")
    workers = args.workers or available_cores()
    plans, dropped = usable_plans(args.network, args.plans, args.scenarios)
    for name, why in dropped.items():
        print(f"note: plan {name} left out (cannot be applied here): {why}")
    if not plans:
        print("no plan can be applied", file=sys.stderr)
        return 2
    cells_asked = len(args.plans) * len(args.scenarios)
    cells_run = len(plans) * len(args.scenarios)
    run_reps = max(2, math.ceil(args.reps * args.fraction))
    print(f"engine: {sim_engine.ENGINE}; {workers} workers; load average "
          f"{os.getloadavg()[0]:.1f}; {len(plans)} plans x "
          f"{len(args.scenarios)} scenarios x {run_reps} reps (of {args.reps} asked)")

    phases = profile(args.network, plans, args.scenarios, args.profile_reps, args.seed) \
        if args.profile_reps > 0 else {}
    t0 = time.perf_counter()
    res = compare_plans(args.network, plans, args.scenarios, reps=run_reps, seed=args.seed,
                        workers=workers, progress=False)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    tables = (res.summary(), res.differences(), res.cost_effectiveness())
    tables_s = time.perf_counter() - t1
    n_run = cells_run * run_reps
    fixed = res.meta["apply_seconds"]
    per_rep_wall = (wall - fixed) / n_run
    per_rep_task = res.meta["task_seconds"] / n_run
    # the tables' cost is per KPI column and cell more than per replication: added as measured
    projected = fixed * cells_asked / cells_run + per_rep_wall * cells_asked * args.reps \
        + tables_s * cells_asked / cells_run
    out = {
        "engine": sim_engine.ENGINE, "workers": workers, "plans": plans, "dropped": dropped,
        "scenarios": args.scenarios, "reps_run": run_reps, "reps_asked": args.reps,
        "replications_run": n_run, "wall_s": wall, "apply_s": fixed, "tables_s": tables_s,
        "per_rep_wall_ms": 1e3 * per_rep_wall, "per_rep_task_ms": 1e3 * per_rep_task,
        "busy": res.meta["task_seconds"] / max(1e-9, (wall - fixed) * workers),
        "projected_full_s": projected, "cells_asked": cells_asked,
        "phases_ms": {k: 1e3 * v for k, v in phases.items()},
        "load_average": list(os.getloadavg()),
        "rows": {"summary": len(tables[0]), "differences": len(tables[1])},
    }
    print(f"\nran {n_run} replications in {wall:.1f} s (plans applied in {fixed:.2f} s; tables "
          f"{tables_s:.1f} s): {out['per_rep_wall_ms']:.1f} ms wall per replication, "
          f"{out['per_rep_task_ms']:.1f} ms inside a task (a worker's wall time), workers busy "
          f"{out['busy']:.0%}")
    print(f"projected: {cells_asked} cells x {args.reps} reps = {cells_asked * args.reps} "
          f"replications in {projected:.0f} s ({projected / 60:.1f} min) on {workers} workers")
    if phases:
        total = sum(v for k, v in phases.items() if k not in ("build", "engine"))
        print("\nwhere a replication's time goes (one process, ms per replication):")
        for k, v in phases.items():
            inside = k in ("build", "engine")
            print(f"  {'  of which ' + k if inside else k:18s} {1e3 * v:8.1f}  {v / total:6.1%}")
        print("  (a plan study skips 'series': KPI-only replications; 'build' is the model built "
              "for each replication, 'engine' the SimPy run)")
    print(json.dumps(out))
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
