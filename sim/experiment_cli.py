"""The experiment commands of ``python -m sim``: ``mc``, ``compare``, ``sweep`` and ``plot``."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

from .errors import ModelError

__all__ = ["add_commands", "dispatch"]


def _common(p, *, scenario=True) -> None:
    from .cli import _nonneg_int, _pos_float, _pos_int

    p.add_argument("--network", default="rare_earth_2025", help="network name or TOML path")
    if scenario:
        p.add_argument("--scenario", default=None, help="scenario name or TOML path (default baseline)")
    p.add_argument("--reps", type=_pos_int, default=100, help="replications (per point for sweeps)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="root seed (default 0)")
    p.add_argument("--workers", type=_pos_int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run on a Dask cluster instead of a local process pool")
    p.add_argument("--chunk-size", type=_pos_int, default=None, help="replications per task")
    p.add_argument("--days", type=_pos_float, default=None, help="horizon in days")
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/<time>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--quiet", dest="progress", action="store_false", help="never show it")


def add_commands(sub) -> None:
    """Register the experiment commands on the ``python -m sim`` sub-parser."""
    m = sub.add_parser("mc", help="Monte Carlo replications of one scenario",
                       description="Run replications and write per-replication KPIs, summary "
                                   "statistics with 95%% CIs, quantile bands and figures.")
    _common(m)
    m.add_argument("--target", action="append", default=[], metavar="KPI|SCOPE=HALFWIDTH",
                   help="sequential stopping: stop when the 95%% CI half-width of this KPI column "
                        "is at most HALFWIDTH (e.g. 'fill_rate|sector:defense=0.005'); repeatable")
    m.add_argument("--max-reps", type=int, default=10_000, help="cap on reps with --target")
    m.add_argument("--track", action="append", default=[], metavar="NODE/MATERIAL",
                   help="also keep quantile bands of this stock's inventory; repeatable")
    m.add_argument("--trade-flows", action="store_true",
                   help="also keep monthly trade flows (tonnes across each border by exporter, "
                        "importer, material) and write their bands to trade_flows.*")

    c = sub.add_parser("compare", help="paired comparison of scenarios (common random numbers)",
                       description="Run each scenario with the same replication streams and "
                                   "report the paired difference of every KPI from the first.")
    _common(c, scenario=False)
    c.add_argument("--scenarios", nargs="+", required=True, metavar="SCENARIO",
                   help="two or more scenario names or paths; the first is the base")

    s = sub.add_parser("sweep", help="vary parameters over a grid or Latin hypercube",
                       description="Vary scenario or network parameters addressed by dotted paths "
                                   "(see sim.sweep), with common random numbers across points. "
                                   "Rerunning with the same --out resumes an interrupted sweep.")
    _common(s)
    s.add_argument("--param", action="append", required=True, metavar="PATH=V1,V2,...|LOW:HIGH",
                   help="a parameter path and its grid values, or a LOW:HIGH range for --design lhs")
    s.add_argument("--design", choices=("grid", "lhs"), default="grid")
    s.add_argument("--samples", type=int, default=None, help="points of a Latin hypercube")

    p = sub.add_parser("plot", help="redraw the figures of a results folder",
                       description="Redraw every figure of a folder written by run, mc, compare "
                                   "or sweep (read from its manifest).")
    p.add_argument("results_dir", type=Path)


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_params(items: list[str], design: str) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise ModelError(f"expected PATH=VALUES, got {item!r}", field="--param")
        path, vals = item.split("=", 1)
        if design == "lhs":
            lo, sep, hi = vals.partition(":")
            try:
                params[path] = (float(lo), float(hi))
            except ValueError:
                raise ModelError(f"expected LOW:HIGH numbers, got {vals!r}", field="--param") from None
            if not sep:
                raise ModelError(f"expected LOW:HIGH, got {vals!r}", field="--param")
        else:
            params[path] = [_value(v) for v in vals.split(",") if v != ""]
    return params


def _targets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, val = item.rpartition("=")
        try:
            out[key] = float(val)
        except ValueError:
            raise ModelError(f"expected KPI|SCOPE=HALFWIDTH, got {item!r}", field="--target") from None
        if not sep or "|" not in key or out[key] <= 0:
            raise ModelError(f"expected KPI|SCOPE=HALFWIDTH > 0, got {item!r}", field="--target")
    return out


def _executor(args):
    from .experiment import make_executor
    if args.scheduler:
        ex, client = make_executor(scheduler=args.scheduler)
        return ex, client
    return None, None


def dispatch(args) -> int:
    """Run the experiment command in *args*."""
    from .cli import _default_out

    if args.command == "plot":
        return _cmd_plot(args.results_dir)
    ex, client = _executor(args)
    try:
        if args.command == "mc":
            from .experiment import monte_carlo
            track = []
            for t in args.track:
                node, sep, mat = t.partition("/")
                if not sep:
                    raise ModelError(f"expected NODE/MATERIAL, got {t!r}", field="--track")
                track.append((node, mat))
            target = _targets(args.target)
            res = monte_carlo(args.network, args.scenario, reps=args.reps, seed=args.seed,
                              executor=ex, workers=args.workers, chunk_size=args.chunk_size,
                              horizon_days=args.days, track=track, target=target or None,
                              max_reps=args.max_reps if target else None, progress=args.progress,
                              trade_flows=args.trade_flows)
            out = args.out or _default_out(f"mc-{res.meta['scenario']}")
            res.meta["command"] = " ".join(["python -m sim"] + sys.argv[1:])
            if not args.no_plots:
                from .network import load_network
                from .plots import network_map
                out.mkdir(parents=True, exist_ok=True)
                (out / "manifest.json").unlink(missing_ok=True)   # incomplete until saved
                network_map(load_network(args.network), out / "network_map.png", result=res)
            res.save(out, plots=not args.no_plots)
            _print_mc(res)
        elif args.command == "compare":
            out = _compare(args, ex)
        else:
            from .sweep import sweep
            params = _parse_params(args.param, args.design)
            out = args.out or _default_out("sweep")
            res = sweep(args.network, args.scenario, params, design=args.design,
                        samples=args.samples, reps=args.reps, seed=args.seed, out_dir=out,
                        executor=ex, workers=args.workers, chunk_size=args.chunk_size,
                        horizon_days=args.days, progress=args.progress, plots=not args.no_plots)
            _print_sweep(res)
    finally:
        if client is not None:
            client.close()
    print(f"\nwrote {out}/")
    return 0


def _print_mc(res) -> None:
    s = res.summary()
    rows = s[s["kpi"].isin(["fill_rate", "first_shortage_day", "first_shortage_after_day",
                            "backordered_t"]) &
             s["scope"].str.match(r"^(network|sector:)")]
    print(f"{res.meta['scenario']}: {res.reps} replications ({len(res.failures)} failed), "
          f"seed {res.meta['seed']}, {res.meta['elapsed_seconds']:.1f} s")
    if res.meta.get("target"):
        print(f"precision target {'reached' if res.meta['target_reached'] else 'NOT reached'} "
              f"after {res.meta['reps_used']} reps")
    print(rows[["kpi", "scope", "mean", "ci95_low", "ci95_high", "q05", "q95"]]
          .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    event = s[(s["kpi"] == "shortage_after_event_day") & (s["scope"] == "policy")]
    if len(event) and "start" in res.meta:
        day = float(event["mean"].iloc[0])
        date = _dt.date.fromisoformat(res.meta["start"]) + _dt.timedelta(days=int(day))
        print(f"(first_shortage_day: day of the run from its start, {res.meta['start']}; "
              f"first_shortage_after_day: the same from the event on {date}, day {day:g})")
    for f in res.failures[:5]:
        print(f"FAILED replication {f['replication']}: {f['error']}")


def _compare(args, ex) -> Path:
    from .cli import _default_out
    from .experiment import compare_scenarios
    from .results import write_atomic

    if len(args.scenarios) < 2:
        raise ModelError("give at least two scenarios", field="--scenarios")
    results, diffs = compare_scenarios(args.network, args.scenarios, reps=args.reps, seed=args.seed,
                                       executor=ex, workers=args.workers,
                                       chunk_size=args.chunk_size, horizon_days=args.days,
                                       progress=args.progress)
    out = args.out or _default_out("compare-" + "-vs-".join(r.meta["scenario"] for r in results))
    out.mkdir(parents=True, exist_ok=True)
    man = out / "manifest.json"
    if man.exists():
        man.unlink()
    for r in results:
        r.save(out / r.meta["scenario"], plots=not args.no_plots)
    write_atomic(out / "paired_differences.csv", diffs.to_csv(index=False))
    files = ["paired_differences.csv"]
    if not args.no_plots:
        from . import plots
        files += [p.name for p in plots.plot_comparison(results, diffs, out)]
    meta = {"kind": "compare", "scenarios": [r.meta["scenario"] for r in results],
            "reps": args.reps, "seed": args.seed, "files": files,
            "command": " ".join(["python -m sim"] + sys.argv[1:])}
    write_atomic(man, json.dumps(meta, indent=2))
    rows = diffs[diffs["kpi"].isin(["fill_rate", "first_shortage_day", "first_shortage_after_day",
                                    "backordered_t"]) &
                 diffs["scope"].str.match(r"^(network|sector:)")]
    print(f"paired differences vs {results[0].meta['scenario']} ({args.reps} reps, seed {args.seed}, "
          "common random numbers):")
    print(rows[["other", "kpi", "scope", "difference", "ci95_low", "ci95_high",
                "variance_ratio_paired_vs_unpaired"]]
          .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return out


def _print_sweep(res) -> None:
    s = res.summary
    rows = s[(s["kpi"] == "fill_rate") & s["scope"].str.match(r"^(sector:)")]
    cols = ["point", *res.param_names, "scope", "mean", "ci95_low", "ci95_high"]
    print(f"sweep: {len(res.points)} points x {res.meta['reps']} reps, {len(res.failures)} failed")
    print(rows[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def _cmd_plot(folder: Path) -> int:
    from . import plots

    man = folder / "manifest.json"
    if not man.exists():
        raise ModelError("no manifest.json: not a complete results folder", file=str(folder))
    meta = json.loads(man.read_text())
    kind = meta.get("kind", "run")
    written = plots.replot(folder, kind)
    for p in written:
        print(p)
    return 0


