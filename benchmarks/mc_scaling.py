"""Monte Carlo scaling: replications per second and parallel efficiency by worker count.

Covers: ``sim.experiment.monte_carlo`` on the default network and scenario through a local
process pool and through a Dask ``LocalCluster`` (the same code path, any
``concurrent.futures.Executor``), at several worker counts, with a fixed number of replications
per worker (weak scaling) so each run lasts about as long. Every executor, a one-process pool
included, is started and warmed up (processes started, modules imported) before the timed run,
so the efficiency compares the same per-task costs at both ends; the start-up is reported
separately (``start_s``). ``ceiling x`` is what the machine itself allows: the throughput of
that many processes running the same pure-Python loop at once, relative to one alone (below
the worker count on hyperthreaded, shared or throttled cores). ``task ms/rep`` is the time spent
inside the tasks per replication and ``busy`` the share of the workers' wall time spent there:
a slow executor either makes the replications themselves slower (task ms/rep up) or leaves
workers waiting (busy down). ``dask-noprofile`` is a LocalCluster whose workers' statistical
profiler (on by default: it samples the running task's stack every 10 ms) is switched off,
``dask-notrim`` one whose workers start without Dask's ``MALLOC_TRIM_THRESHOLD_=65536``.
It also checks that the tables are
identical whatever the executor and the worker count (replication *i* always has the same
streams), and measures the peak memory of a long run (all processes; resident
and proportional set sizes, see ``memory.py``).

Usage::

    python benchmarks/mc_scaling.py                      # 1 and all cores, process pool
    python benchmarks/mc_scaling.py --workers 1,4,16 --dask --memory-reps 10000
    python benchmarks/mc_scaling.py --workers 1,16 --executors pool,dask,dask-noprofile

Prints a table, then one line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from memory import PeakMemory

import sim.engine as sim_engine
from sim.experiment import available_cores, monte_carlo

# Dask settings of each executor variant (Dask's defaults, then one change at a time)
DASK_VARIANTS = {
    "dask": {},
    # the workers' statistical profiler samples the running task's stack every 10 ms
    "dask-noprofile": {"distributed.worker.profile.enabled": False},
    # the nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, so glibc hands freed memory
    # back to the system (a system call) far more often than by default
    "dask-notrim": {"distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}},
}
EXECUTORS = ("pool", *DASK_VARIANTS)
NETWORK = "rare_earth_2025"
SCENARIO = "truce-uncertain"
SEED = 2025


def _burn(n: int) -> float:
    """A pure-Python CPU loop; returns its own wall time."""
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def machine_ceiling(workers: int, n: int = 10_000_000) -> float:
    """Throughput of *workers* processes each running the same CPU loop at once, relative to
    one process alone (the sum of their rates over the lone rate): the most any Python code
    can scale on this machine (hyperthreads and shared or throttled cores bring it below the
    worker count)."""
    ratios = []
    with cf.ProcessPoolExecutor(max_workers=workers) as ex:
        list(ex.map(_burn, [n // 10] * workers))             # start and warm the processes
        for _ in range(3):              # interleaved rounds: the machine's speed drifts
            alone = ex.submit(_burn, n).result()
            together = list(ex.map(_burn, [n] * workers))
            ratios.append(sum(alone / t for t in together))
    return sorted(ratios)[1]


def timed(fn):
    """Run *fn* and return (result, seconds, :class:`memory.PeakMemory` of this process and
    its children)."""
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
    return res, dt, mem


def _fmt(mb) -> str:
    return "-" if mb is None else f"{mb:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default=f"1,{available_cores()}",
                    help="comma-separated worker counts (default: 1 and all cores)")
    ap.add_argument("--reps-per-worker", type=int, default=40)
    ap.add_argument("--dask", action="store_true",
                    help="also run on a Dask LocalCluster (same as adding 'dask' to --executors)")
    ap.add_argument("--executors", default="pool",
                    help="comma-separated subset of pool, dask, dask-noprofile (the workers' "
                         "statistical profiler off), dask-notrim (no MALLOC_TRIM_THRESHOLD_)")
    ap.add_argument("--memory-reps", type=int, default=0,
                    help="also run this many reps on all workers and report peak memory")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    kinds = [k for k in args.executors.split(",") if k]
    if args.dask and "dask" not in kinds:
        kinds.append("dask")
    unknown = sorted(set(kinds) - set(EXECUTORS))
    if unknown:
        ap.error(f"--executors: unknown {unknown}; choose from {', '.join(EXECUTORS)}")
    out = {"network": NETWORK, "scenario": SCENARIO, "cores": available_cores(),
           "reps_per_worker": args.reps_per_worker, "runs": [], "python": sys.version.split()[0],
           "engine": sim_engine.ENGINE}
    reference = None
    print(f"{sim_engine.ENGINE} engine, python {out['python']}, {out['cores']} cores")
    print(f"{'executor':14s} {'workers':>7s} {'start s':>7s} {'reps':>6s} {'seconds':>8s} "
          f"{'reps/s':>8s} {'efficiency':>10s} {'ceiling x':>9s} {'task ms/rep':>11s} "
          f"{'busy':>5s} {'RSS MB':>7s} {'PSS MB':>7s} identical")
    for kind in kinds:
        base_rate = None
        for w in counts:
            reps = args.reps_per_worker * w
            client = cluster = None
            t_start = time.perf_counter()
            if kind.startswith("dask"):
                import dask
                from distributed import Client, LocalCluster
                # the nannies hand this configuration to the worker processes they start
                with dask.config.set(DASK_VARIANTS[kind]):
                    cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
                client = Client(cluster)
                executor = client.get_executor()
            else:
                # a pool of w processes also for w = 1, so both ends of the ratio pay the same
                # per-task costs (pickling, result transfer)
                executor = cf.ProcessPoolExecutor(max_workers=w)
            try:
                # warm-up: start the processes and import everything (a user pays this once
                # per pool; it is reported as start_s, not counted in the rate)
                monte_carlo(NETWORK, SCENARIO, reps=w, seed=SEED + 1, executor=executor,
                            workers=w, progress=False)
                start_s = time.perf_counter() - t_start
                res, dt, peak = timed(functools.partial(
                    monte_carlo, NETWORK, SCENARIO, reps=reps, seed=SEED, executor=executor,
                    workers=w, progress=False))
            finally:
                if client is not None:
                    client.close()
                    cluster.close()
                else:
                    executor.shutdown()
            rate = res.reps / dt
            # time inside the tasks: per replication, and as a share of the workers' wall time
            task_ms = 1e3 * res.meta["task_seconds"] / max(1, res.reps)
            busy = res.meta["task_seconds"] / (dt * w)
            if base_rate is None:
                base_rate = rate / w
            eff = rate / (base_rate * w)
            ceiling = machine_ceiling(w) if w > 1 else 1.0
            n = min(len(res.per_rep), args.reps_per_worker * counts[0])
            head = res.per_rep.iloc[:n]
            if reference is None:
                reference = head
                same = True
            else:
                same = bool(head.equals(reference.iloc[:len(head)]))
            pool_rate = next((r["reps_per_s"] for r in out["runs"]
                              if r["executor"] == "pool" and r["workers"] == w), None)
            out["runs"].append({"executor": kind, "workers": w, "reps": res.reps,
                                "rate_vs_pool": None if pool_rate is None or kind == "pool"
                                else round(rate / pool_rate, 3),
                                "failures": len(res.failures), "start_s": round(start_s, 2),
                                "seconds": round(dt, 3),
                                "reps_per_s": round(rate, 2), "parallel_efficiency": round(eff, 3),
                                "machine_ceiling_x": round(ceiling, 2),
                                "task_ms_per_rep": round(task_ms, 2),
                                "busy_fraction": round(busy, 3),
                                "peak_rss_mb": peak.mb(peak.peak_rss_total),
                                "peak_pss_mb": peak.mb(peak.peak_pss_total),
                                "identical_to_first": same})
            print(f"{kind:14s} {w:7d} {start_s:7.2f} {res.reps:6d} {dt:8.2f} {rate:8.2f} "
                  f"{eff:10.3f} {ceiling:9.2f} {task_ms:11.1f} {busy:5.2f} "
                  f"{_fmt(peak.mb(peak.peak_rss_total)):>7s} "
                  f"{_fmt(peak.mb(peak.peak_pss_total)):>7s} {same}", flush=True)
    if args.memory_reps:
        w = max(counts)
        res, dt, peak = timed(lambda: monte_carlo(NETWORK, SCENARIO, reps=args.memory_reps,
                                                  seed=SEED, workers=w, progress=False))
        out["memory"] = {"reps": res.reps, "workers": w, "seconds": round(dt, 2),
                         "reps_per_s": round(res.reps / dt, 2),
                         "peak_rss_mb_all_processes": peak.mb(peak.peak_rss_total),
                         "peak_pss_mb_all_processes": peak.mb(peak.peak_pss_total),
                         "series_mb": round(res.series_nbytes() / 2**20, 1),
                         "per_rep_mb": round(res.per_rep.memory_usage(deep=True).sum() / 2**20, 1)}
        print(f"memory: {res.reps} reps on {w} workers in {dt:.1f} s, peak memory of all "
              f"processes: RSS {_fmt(out['memory']['peak_rss_mb_all_processes'])} MB, PSS "
              f"{_fmt(out['memory']['peak_pss_mb_all_processes'])} MB (series "
              f"{out['memory']['series_mb']} MB, per-rep table {out['memory']['per_rep_mb']} MB)")
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    raise SystemExit(main())
