"""Command line: ``python -m sim COMMAND ...`` (``--help`` on every command).

Commands wire the public stages together and print; they never reach inside them. Input errors
(:class:`~sim.errors.ModelError`) are printed on one line and exit with status 2; a run that is
interrupted leaves no complete-looking result behind (the manifest is written last).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from .cli_args import add_figure_options, add_format_option, command_line, figure_output
from .cli_args import default_out as _default_out
from .cli_args import horizon as _horizon
from .cli_args import nonneg_int as _nonneg_int  # noqa: F401  (private aliases stay)
from .cli_args import out_path as _out_path
from .cli_args import pos_float as _pos_float  # noqa: F401
from .cli_args import pos_int as _pos_int  # noqa: F401
from .cli_args import record_figures
from .cli_args import seed as _seed
from .errors import ModelError

__all__ = ["main", "build_parser", "add_figure_options", "add_format_option", "figure_output"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m sim``."""
    p = argparse.ArgumentParser(prog="python -m sim", description=(
        "Discrete-event simulator of the rare-earth supply chain. "
        "Start with: python -m sim run"))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run one replication and write summary, series, plots",
                       description="Run one replication of a network under a scenario; print a "
                                   "summary and write summary.csv, series.csv, manifest.json and "
                                   "PNG plots to --out.")
    r.add_argument("--network", default="rare_earth_2025", help="shipped network name or TOML path "
                   "(default: rare_earth_2025)")
    r.add_argument("--scenario", default=None, help="built-in scenario name or TOML path "
                   "(default: baseline, no policy events)")
    r.add_argument("--compare", default=None, metavar="SCENARIO",
                   help="also run this scenario on the same seed and plot both side by side")
    r.add_argument("--seed", type=_seed, default=0, help="root random seed (default 0)")
    r.add_argument("--days", type=_horizon, default=None,
                   help="horizon in days, at most 36525 (default: the scenario's end, else "
                        "2029-01-01)")
    r.add_argument("--start", default=None, help="start date YYYY-MM-DD (default 2025-01-01)")
    r.add_argument("--out", type=_out_path, default=None,
                   help="output folder (default results/<time>)")
    add_format_option(r)
    r.add_argument("--series", choices=("weekly", "daily"), default="weekly",
                   help="time step of the saved series table (default weekly: end-of-week "
                        "levels, weekly flows)")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_figure_options(r)

    n = sub.add_parser("network", help="show or validate a network")
    nsub = n.add_subparsers(dest="action", metavar="ACTION")
    for action, text in (("show", "print nodes, lanes and materials"),
                         ("validate", "check a network file and print its errors")):
        a = nsub.add_parser(action, help=text, description=text)
        a.add_argument("network", nargs="?", default="rare_earth_2025",
                       help="shipped network name or TOML path")
    nsub.add_parser("list", help="list the shipped networks")

    s = sub.add_parser("scenario", help="list, show or validate scenarios")
    ssub = s.add_subparsers(dest="action", metavar="ACTION")
    ssub.add_parser("list", help="list the built-in scenarios with one-line descriptions")
    for action, text in (("show", "print a scenario file"),
                         ("validate", "check a scenario (against a network) and print its errors")):
        a = ssub.add_parser(action, help=text, description=text)
        a.add_argument("scenario", help="built-in scenario name or TOML path (NAME+LAYER adds "
                       "layers)")
        if action == "show":
            a.add_argument("--resolved", action="store_true",
                           help="print the scenario with extends and layers resolved")
        if action == "validate":
            a.add_argument("--network", default="rare_earth_2025", help="network to check against")
    _add_experiment_commands(sub)
    from . import plan_cli
    plan_cli.add_commands(sub)
    from . import stress_cli
    stress_cli.add_commands(sub)
    return p


def _add_experiment_commands(sub) -> None:
    try:
        from . import experiment_cli
    except ImportError:     # pragma: no cover - experiment layer not installed
        return
    experiment_cli.add_commands(sub)
    from . import study_cli
    study_cli.add_commands(sub, (add_figure_options, add_format_option))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with figure_output(args):
            return _dispatch(args, parser)
    except ModelError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no result was completed", file=sys.stderr)
        return 130
    except BrokenPipeError:   # pragma: no cover - e.g. piped into head
        return 0


def _one_line(exc: Exception) -> str:
    """The error's message on one line (a message may quote a value that holds newlines)."""
    return " ".join(str(exc).split("\n"))


def _dispatch(args, parser) -> int:
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "network":
        return _cmd_network(args, parser)
    if args.command == "scenario":
        return _cmd_scenario(args, parser)
    if args.command == "robustness":
        from . import study_cli
        return study_cli.dispatch(args)
    if args.command == "plot":
        from . import study_cli
        if study_cli.is_study_folder(args.results_dir):     # compare --plans, robustness
            return study_cli.replot(args.results_dir)
        from . import stress_cli
        if stress_cli.is_stress_folder(args.results_dir):
            return stress_cli.replot(args.results_dir)
    if args.command == "plan":
        from . import plan_cli
        return plan_cli.dispatch(args, parser)
    if args.command == "stress":
        from . import stress_cli
        return stress_cli.dispatch(args)
    from . import experiment_cli
    return experiment_cli.dispatch(args)


def _cmd_run(args) -> int:
    from .simulation import simulate
    from .network import load_network
    from .paths import check_out_dir, child
    from .scenario import resolve_scenario

    from .tables import check_format

    check_format(args.format)
    net = load_network(args.network)
    scenario = resolve_scenario(args.scenario)
    scenario.check_network(net)
    other = None
    if args.compare:
        other = resolve_scenario(args.compare)
        other.check_network(net)
    out = check_out_dir(args.out or _default_out(scenario.name))
    sub = child(out, other.name) if other is not None else None
    if sub is not None:
        check_out_dir(sub)
    run = simulate(net, scenario, seed=args.seed, start=args.start, horizon_days=args.days)
    print(run.summary())
    extra = {"command": command_line()}
    maps: tuple[str, ...] = ()
    if not args.no_plots:
        from .plots import network_map
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").unlink(missing_ok=True)   # incomplete until save() ends
        from .style import sibling_files
        maps = tuple(sibling_files(network_map(net, out / "network_map.png", result=run)))
    run.save(out, extra_manifest=extra, series_format=args.format, extra_files=maps,
             series_step=args.series)
    if not args.no_plots:       # figures after the tables: saving draws nothing
        from .plots import plot_run
        record_figures(out, plot_run(run, out))
    if other is not None:
        run2 = simulate(net, other, seed=args.seed, start=args.start, horizon_days=args.days)
        print()
        print(run2.summary())
        run2.save(sub, extra_manifest=extra, series_format=args.format, series_step=args.series)
        if not args.no_plots:
            from .plots import plot_run
            record_figures(sub, plot_run(run2, sub))
        _write_comparison(run, run2, out, plots=not args.no_plots, table_format=args.format)
    print(f"\nwrote {out}/")
    return 0


def _write_comparison(a, b, out: Path, plots: bool, table_format: str = "csv") -> None:
    import pandas as pd

    from . import tables

    ka = a.kpis()[["kpi", "scope", "value"]]
    kb = b.kpis()[["kpi", "scope", "value"]]
    both = ka.merge(kb, on=["kpi", "scope"], suffixes=(f"_{a.scenario_name}", f"_{b.scenario_name}"))
    both["difference"] = both.iloc[:, 3] - both.iloc[:, 2]
    long = both[["kpi", "scope", "difference"]].rename(columns={"difference": "value"})
    long = long[~long["kpi"].isin(list(tables.CATEGORIES))]
    long = long.assign(scenario=b.scenario_name, reference=a.scenario_name, seed=a.seed,
                       replication=a.replication, statistic="difference")
    tables.write_table(tables.coerce(long), out / "comparison", table_format)
    rows = both[both["kpi"].isin(["fill_rate", "backordered_t", "first_shortage_day",
                                  "first_shortage_after_day"]) &
                both["scope"].str.startswith(("sector:", "network"))]
    print(f"\n{b.scenario_name} minus {a.scenario_name} (same seed):")
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        print(rows.to_string(index=False))
    if plots:
        from .plots import plot_run_comparison
        plot_run_comparison([a, b], out / "comparison.png")


def _cmd_network(args, parser) -> int:
    from .network import list_networks, load_network

    if args.action is None:
        parser.parse_args(["network", "--help"])
    if args.action == "list":
        for name in list_networks():
            net = load_network(name)
            print(f"{name:20s} {net.description}")
        return 0
    net = load_network(args.network)
    if args.action == "validate":
        print(f"ok: {net!r} ({net.file or 'in memory'})")
        return 0
    print(f"{net!r}\n{net.description}\n")
    print("materials:")
    for m in net.materials.values():
        print(f"  {m.id:18s} {','.join(sorted(m.elements)):28s} ${m.price_usd_per_t:>10,.0f}/t  {m.name}")
    print("\nnodes:")
    for n in net.nodes.values():
        prod = ", ".join(f"{m} {p.capacity_on(_dt.date(2025, 1, 1)):,.0f} t/yr"
                         for m, p in n.production.items())
        dem = ", ".join(f"{m} {d.rate_t_per_year:,.1f} t/yr" for m, d in n.demand.items())
        what = "; ".join(x for x in (f"makes {prod}" if prod else "", f"demand {dem}" if dem else "")
                         if x)
        if n.fleet is not None:
            what += "; fleet: " + ", ".join(
                f"{c.count} {c.name} ({c.share:.0%}, cover " + (
                    f"{c.cover_days[0]:.0f}" if min(c.cover_days) == max(c.cover_days) else
                    f"{min(c.cover_days):.0f}-{max(c.cover_days):.0f}") + " d)"
                for c in n.fleet.classes)
        for m, r in n.reserve.items():      # strategic reserves (see sim/network.py)
            what = "; ".join(x for x in (what, (
                f"reserve of {m}: target {r.target_t:,.0f} t, releases below "
                f"{r.release_cover_days:g} d of cover, <= {r.release_rate_t_per_day:g} t/d")) if x)
        print(f"  {n.id:24s} {n.kind:13s} {n.country}  {n.sector or '':12s} {what}")
    print("\nlanes:")
    for l in net.lanes:
        print(f"  {l.id:56s} share {l.share:4.2f}  lead time mean {l.lead_time.mean:5.1f} d")
    return 0


def _cmd_scenario(args, parser) -> int:
    from .network import load_network
    from .scenario import list_scenarios, load_scenario, scenario_path

    if args.action is None:
        parser.parse_args(["scenario", "--help"])
    if args.action == "list":
        for name, desc in list_scenarios().items():
            print(f"{name:20s} {desc}")
        from .scenario import list_layers
        print("\nlayers (switch on with NAME+LAYER, e.g. truce-holds+japan-2026):")
        for name, desc in list_layers().items():
            print(f"{name:20s} {desc}")
        return 0
    if args.action == "show":
        if args.resolved or "+" in str(args.scenario):
            import tomli_w

            print(tomli_w.dumps(load_scenario(args.scenario).to_dict()))
            return 0
        path = scenario_path(args.scenario)
        load_scenario(path)
        print(path.read_text())
        return 0
    sc = load_scenario(args.scenario)
    net = load_network(args.network)
    sc.check_network(net)
    print(f"ok: scenario {sc.name!r} ({len(sc.controls)} controls, truce: "
          f"{'yes' if sc.truce else 'no'}, {len(sc.tariffs)} tariffs) is valid for network {net.name!r}")
    return 0
