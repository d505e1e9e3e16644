"""The ``python -m sim stress`` command: the time-to-survive / time-to-recover stress test
(:func:`sim.resilience.stress_test`), saved, then drawn (:mod:`sim.plots_resilience`)."""

from __future__ import annotations

import sys

__all__ = ["add_commands", "dispatch"]


def _number(kind: str):
    """An argparse type: ``"pos_int"``, ``"nonneg_int"``, ``"pos_float"`` or ``"seed"`` (an
    integer from 0 to 2**63 - 1, as the result tables store seeds)."""
    import argparse
    import math

    from .errors import MAX_SEED

    def parse(text: str):
        try:
            v = float(text) if kind == "pos_float" else int(text)
        except ValueError:
            v = math.nan
        ok = {"pos_int": lambda x: x >= 1, "nonneg_int": lambda x: x >= 0,
              "pos_float": lambda x: 0 < x < math.inf,
              "seed": lambda x: 0 <= x <= MAX_SEED}[kind]
        if not (v == v and ok(v)):
            what = {"pos_int": "a positive integer", "nonneg_int": "a non-negative integer",
                    "pos_float": "a positive number",
                    "seed": "an integer from 0 to 2**63 - 1"}[kind]
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return v
    parse.__name__ = kind
    return parse


def _out_path(text: str):
    """An output folder argument: any non-empty path ('' would silently mean '.')."""
    import argparse
    from pathlib import Path

    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a folder path, got {text!r}")
    return Path(text)


def add_commands(sub) -> None:
    """Register ``stress`` on the ``python -m sim`` sub-parser."""
    from .cli_args import add_figure_options, add_format_option
    from .resilience import (DEFAULT_AFTER_DAYS, DEFAULT_DWELL_DAYS, DEFAULT_THRESHOLD,
                             DEFAULT_WINDOW_DAYS)

    _pos_int, _nonneg_int = _number("pos_int"), _number("nonneg_int")
    _pos_float, _seed = _number("pos_float"), _number("seed")

    s = sub.add_parser(
        "stress", help="time-to-survive / time-to-recover stress test of nodes, countries, lanes",
        description="Disrupt each target fully (production stopped, outgoing lanes closed) from "
                    "--start for --duration-days, on common random numbers with the undisrupted "
                    "run; write per-replication TTS, TTR, unmet demand and resilience metrics "
                    "by sector, their summary, the ranking by risk exposure, and figures.")
    s.add_argument("--network", default="rare_earth_2025", help="network name or TOML path")
    s.add_argument("--scenario", default=None,
                   help="scenario name or TOML path the disruptions are added to (default "
                        "baseline)")
    s.add_argument("--plan", default=None, help="plan name or TOML path applied first (sim.plans)")
    s.add_argument("--targets", nargs="+", default=None, metavar="TARGET",
                   help="what to disrupt: all (default), nodes, countries, lanes, node:ID, "
                        "country:CODE, lanes:EXPORTER/MATERIAL")
    s.add_argument("--start", required=True, metavar="YYYY-MM-DD",
                   help="date each disruption starts (after the run's start)")
    s.add_argument("--duration-days", type=_pos_float, required=True,
                   help="how long each disruption lasts")
    s.add_argument("--reps", type=_pos_int, default=20, help="replications (default 20)")
    s.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    s.add_argument("--workers", type=_pos_int, default=None,
                   help="worker processes (default: all cores)")
    s.add_argument("--threshold", type=_pos_float, default=DEFAULT_THRESHOLD,
                   help="recovered: fill rate back to this share of the undisrupted run's "
                        f"(default {DEFAULT_THRESHOLD})")
    s.add_argument("--dwell-days", type=_nonneg_int, default=DEFAULT_DWELL_DAYS,
                   help=f"... for this many days (default {DEFAULT_DWELL_DAYS})")
    s.add_argument("--window-days", type=_pos_int, default=DEFAULT_WINDOW_DAYS,
                   help=f"trailing window of the fill rate (default {DEFAULT_WINDOW_DAYS})")
    s.add_argument("--after-days", type=_nonneg_int, default=DEFAULT_AFTER_DAYS,
                   help="days the run goes on after the disruption ends "
                        f"(default {DEFAULT_AFTER_DAYS})")
    s.add_argument("--survive-fill", type=_pos_float, default=None, metavar="SHARE",
                   help="TTS when the trailing fill rate first falls below SHARE (default: when "
                        "demand first goes unmet)")
    s.add_argument("--scope", default="network",
                   help="scope of the figures and printed ranking: network or sector:NAME")
    s.add_argument("--out", type=_out_path, default=None,
                   help="output folder (default results/<time>-stress-<scenario>)")
    s.add_argument("--no-plots", action="store_true", help="skip the figures")
    add_figure_options(s)
    add_format_option(s)
    bar = s.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--quiet", dest="progress", action="store_false", help="never show it")


def dispatch(args) -> int:
    """Run ``stress`` with the parsed *args*; returns the exit status."""
    import datetime as _dt
    from pathlib import Path

    from .errors import ModelError
    from .paths import check_out_dir, safe_name
    from .resilience import stress_test
    from .tables import check_format

    check_format(args.format)
    if args.out is not None:                # before anything runs
        check_out_dir(args.out)
    res = stress_test(args.network, args.scenario, plan=args.plan, targets=args.targets,
                      start=args.start, duration_days=args.duration_days, reps=args.reps,
                      seed=args.seed, workers=args.workers, threshold=args.threshold,
                      dwell_days=args.dwell_days, window_days=args.window_days,
                      after_days=args.after_days, survive_fill=args.survive_fill,
                      progress=args.progress)
    scopes = sorted(set(res.per_rep["scope"]))
    if args.scope not in scopes:
        raise ModelError(f"no scope {args.scope!r}; scopes: {', '.join(scopes)}", field="--scope")
    res.meta["command"] = " ".join(["python -m sim"] + sys.argv[1:])
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    # the scenario's name comes from a file: never a path as it is
    out = check_out_dir(args.out or Path("results") / safe_name(
        f"{stamp}-stress-{res.meta['scenario']}"))
    res.save(out, table_format=args.format)
    if not args.no_plots:       # drawn after saving, then listed in the manifest
        from .cli_args import record_figures
        from .plots_resilience import plot_stress
        record_figures(out, plot_stress(res, out, scope=args.scope))
    _print(res, args.scope)
    print(f"\nwrote {out}/")
    return 0


def _print(res, scope: str) -> None:
    m = res.meta
    rank = res.ranking(scope)
    print(f"stress test: {len(rank)} disruptions x {m['reps']} replications "
          f"({len(res.failures)} failed), {m['duration_days']:g} days from "
          f"{m['disruption_start']}, network {m['network']}, scenario {m['scenario']}"
          + (f", plan {m['plan']}" if m.get("plan") else "") + f", {m['elapsed_seconds']:.1f} s")
    cols = ["rank", "disruption", "risk_exposure_index", "impact_usd", "excess_unmet_t",
            "p_tts_lt_ttr", "tts_median_days", "ttr_median_days"]
    print(f"ranking by unmet value, {scope} (TTS/TTR medians in days; inf: never / not "
          "recovered):")
    print(rank[cols].head(15).to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def is_stress_folder(folder) -> bool:
    """Whether *folder* holds a saved stress test (its manifest's kind is "stress")."""
    from pathlib import Path

    from .errors import ModelError
    from .persist import read_manifest
    manifest = Path(folder) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return read_manifest(Path(folder)).get("kind") == "stress"
    except ModelError:
        return False


def replot(folder) -> int:
    """``python -m sim plot DIR`` for a stress-test folder: redraw the TTS-vs-TTR scatter and
    the ranking (network scope) from the saved tables, and list them in the manifest."""
    from .cli_args import record_figures
    from .plots_resilience import plot_stress
    from .resilience import StressResults

    from .cli_args import redraw

    def draw(f):
        written = plot_stress(StressResults.load(f), f)
        record_figures(f, written)
        return written
    return redraw(folder, draw)
