"""The experiment commands of ``python -m sim``: ``mc``, ``compare``, ``sweep`` and ``plot``."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

from .cli_args import command_line, record_figures, redraw
from .errors import ModelError

__all__ = ["add_commands", "dispatch"]


def _common(p, *, scenario=True) -> None:
    from .cli_args import add_figure_options, add_format_option, horizon, out_path, pos_int, seed

    p.add_argument("--network", default="rare_earth_2025", help="network name or TOML path")
    if scenario:
        p.add_argument("--scenario", default=None, help="scenario name or TOML path (default baseline)")
    p.add_argument("--reps", type=pos_int, default=100, help="replications (per point for sweeps)")
    p.add_argument("--seed", type=seed, default=0, help="root seed (default 0)")
    p.add_argument("--workers", type=pos_int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run on a Dask cluster instead of a local process pool")
    p.add_argument("--chunk-size", type=pos_int, default=None, help="replications per task")
    p.add_argument("--days", type=horizon, default=None, help="horizon in days (at most 36525)")
    p.add_argument("--out", type=out_path, default=None,
                   help="output folder (default results/<time>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    add_figure_options(p)
    add_format_option(p)
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--quiet", dest="progress", action="store_false", help="never show it")


def add_commands(sub) -> None:
    """Register the experiment commands on the ``python -m sim`` sub-parser."""
    from .cli_args import pos_int

    m = sub.add_parser("mc", help="Monte Carlo replications of one scenario",
                       description="Run replications and write per-replication KPIs, summary "
                                   "statistics with 95% CIs, quantile bands and figures.")
    _common(m)
    m.add_argument("--target", action="append", default=[], metavar="KPI|SCOPE=HALFWIDTH",
                   help="sequential stopping: stop when the 95%% CI half-width of this KPI column "
                        "is at most HALFWIDTH (e.g. 'fill_rate|sector:defense=0.005'); repeatable")
    m.add_argument("--max-reps", type=pos_int, default=10_000, help="cap on reps with --target")
    _failure_option(m)
    m.add_argument("--track", action="append", default=[], metavar="NODE/MATERIAL",
                   help="also keep quantile bands of this stock's inventory; repeatable")
    m.add_argument("--trade-flows", action="store_true",
                   help="also keep monthly trade flows (tonnes across each border by exporter, "
                        "importer, material) and write their bands to trade_flows.*")
    m.add_argument("--scope", action="append", default=[], dest="scopes", metavar="SCOPE",
                   help="also keep weekly bands of this scope's fill rate, backorders and net "
                        "inventory (network, civil, sector:<s>, country:<c>, node:<id>); "
                        "repeatable")

    c = sub.add_parser("compare", help="paired comparison of scenarios (common random numbers)",
                       description="Run each scenario with the same replication streams and "
                                   "report the paired difference of every KPI from the first.")
    _common(c, scenario=False)
    c.add_argument("--scenarios", nargs="+", required=True, metavar="SCENARIO",
                   help="two or more scenario names or paths; the first is the base (with "
                        "--plans: one or more)")
    from .study_cli import add_plan_options
    add_plan_options(c)

    s = sub.add_parser("sweep", help="vary parameters over a grid or Latin hypercube",
                       description="Vary scenario or network parameters addressed by dotted paths "
                                   "(see sim.sweep), with common random numbers across points. "
                                   "Rerunning with the same --out resumes an interrupted sweep.")
    _common(s)
    s.add_argument("--param", action="append", required=True, metavar="PATH=V1,V2,...|LOW:HIGH",
                   help="a parameter path and its grid values, or a LOW:HIGH range for --design lhs")
    s.add_argument("--design", choices=("grid", "lhs"), default="grid")
    s.add_argument("--samples", type=pos_int, default=None, help="points of a Latin hypercube")
    _failure_option(s)

    p = sub.add_parser("plot", help="redraw the figures of a results folder",
                       description="Redraw every figure of a folder written by run, mc, compare "
                                   "or sweep (read from its manifest).")
    p.add_argument("results_dir", type=Path)
    from .cli_args import add_figure_options
    add_figure_options(p)


def _share(text: str) -> float:
    import argparse

    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text!r}")
    return v


def _failure_option(p) -> None:
    from .experiment import MAX_FAILURE_SHARE

    p.add_argument("--max-failures", type=_share, default=MAX_FAILURE_SHARE, metavar="SHARE",
                   help="fail the whole run (exit 2, no manifest) when more than this share of "
                        f"replications fail (default {MAX_FAILURE_SHARE}); it always fails when "
                        "all do")


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
    if args.scheduler is not None:
        ex, client = make_executor(scheduler=args.scheduler)
        return ex, client
    return None, None


def dispatch(args) -> int:
    """Run the experiment command in *args*."""
    from .cli_args import default_out
    from .paths import check_out_dir

    if args.command == "plot":
        return _cmd_plot(args.results_dir)
    from .tables import check_format
    check_format(args.format)
    if args.out is not None:            # before a cluster is joined or anything runs
        check_out_dir(args.out)
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
            out = check_out_dir(args.out or default_out(f"mc-{_scenario_name(args.scenario)}"))
            res = monte_carlo(args.network, args.scenario, reps=args.reps, seed=args.seed,
                              executor=ex, workers=args.workers, chunk_size=args.chunk_size,
                              horizon_days=args.days, track=track, target=target or None,
                              max_reps=args.max_reps if target else None, progress=args.progress,
                              trade_flows=args.trade_flows, scopes=args.scopes,
                              max_failure_share=args.max_failures)
            res.meta["command"] = command_line()
            if not args.no_plots:
                from .network import load_network
                from .plots import network_map
                out.mkdir(parents=True, exist_ok=True)
                (out / "manifest.json").unlink(missing_ok=True)   # incomplete until saved
                network_map(load_network(args.network), out / "network_map.png", result=res)
            res.save(out, table_format=args.format)
            if not args.no_plots:       # figures after the tables: saving draws nothing
                from .plots import plot_monte_carlo
                record_figures(out, plot_monte_carlo(res, out), sort=True)
            _print_mc(res)
        elif args.command == "compare" and args.plans:
            from .study_cli import compare_command
            out = compare_command(args, ex)
        elif args.command == "compare":
            out = _compare(args, ex)
        else:
            from .sweep import sweep
            params = _parse_params(args.param, args.design)
            out = check_out_dir(args.out or default_out("sweep"))
            res = sweep(args.network, args.scenario, params, design=args.design,
                        samples=args.samples, reps=args.reps, seed=args.seed, out_dir=out,
                        executor=ex, workers=args.workers, chunk_size=args.chunk_size,
                        horizon_days=args.days, progress=args.progress,
                        table_format=args.format, max_failure_share=args.max_failures)
            if not args.no_plots:       # figures after the tables: a sweep draws nothing
                from .plots import plot_sweep
                record_figures(out, plot_sweep(res, out))
            _print_sweep(res)
    finally:
        if client is not None:
            client.close()
    print(f"\nwrote {out}/")
    return 0


def _scenario_name(scenario) -> str:
    from .scenario import resolve_scenario

    return resolve_scenario(scenario).name


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
    from .cli_args import default_out
    from .experiment import compare_scenarios
    from .paths import check_out_dir, child
    from .persist import begin_save, finish_save

    if len(args.scenarios) < 2:
        raise ModelError("give at least two scenarios", field="--scenarios")
    names = [_scenario_name(s) for s in args.scenarios]
    out = check_out_dir(args.out or default_out("compare-" + "-vs-".join(names)))
    taken: set[str] = set()
    folders = [child(out, n, taken) for n in names]    # names from files never become paths
    for f in folders:
        check_out_dir(f)
    results, diffs = compare_scenarios(args.network, args.scenarios, reps=args.reps, seed=args.seed,
                                       executor=ex, workers=args.workers,
                                       chunk_size=args.chunk_size, horizon_days=args.days,
                                       progress=args.progress)
    begin_save(out, field="--out")
    from . import tables
    for r, folder in zip(results, folders):
        r.save(folder, table_format=args.format)
        if not args.no_plots:
            from .plots import plot_monte_carlo
            record_figures(folder, plot_monte_carlo(r, folder), sort=True)
    tables.write_table(tables.tidy_diffs(diffs, seed=args.seed), out / "paired_differences",
                       args.format)
    files = [f"paired_differences.{args.format}"]
    meta = {"kind": "compare", "scenarios": [r.meta["scenario"] for r in results],
            "folders": [f.name for f in folders],
            "reps": args.reps, "seed": args.seed, "files": files,
            "command": command_line()}
    finish_save(out, meta)
    if not args.no_plots:       # figures after the tables: saving draws nothing
        from .plots import plot_comparison
        record_figures(out, plot_comparison(results, diffs, out))
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
    from .persist import kind_of, read_manifest

    kind = kind_of(read_manifest(folder), folder)
    return redraw(folder, lambda f: plots.replot(f, kind))


