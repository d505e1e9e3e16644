"""The ``python -m sim plan`` commands: ``list``, ``show`` and ``validate`` (see
:mod:`sim.plans`)."""

from __future__ import annotations

import datetime as _dt

__all__ = ["add_commands", "dispatch"]

_WINDOW = ("2025-01-01", "2029-01-01")   # the default network's horizon (rare_earth_2025)


def add_commands(sub) -> None:
    """Register ``plan list|show|validate`` on the ``python -m sim`` sub-parser."""
    p = sub.add_parser("plan", help="list, show or validate plans (levers a study compares)")
    psub = p.add_subparsers(dest="action", metavar="ACTION")
    psub.add_parser("list", help="list the shipped plans with one-line descriptions")
    s = psub.add_parser("show", help="print a plan's levers, dates and costs",
                        description="Print a plan's levers (type, start, online and full dates, "
                                    "full size) and its cost over a window; --toml prints the "
                                    "resolved plan (extends and delays applied).")
    s.add_argument("plan", help="shipped plan name, TOML path, or A+B (a composition)")
    s.add_argument("--from", dest="window_from", default=_WINDOW[0], metavar="DATE",
                   help=f"start of the cost window (default {_WINDOW[0]})")
    s.add_argument("--to", dest="window_to", default=_WINDOW[1], metavar="DATE",
                   help=f"end of the cost window, exclusive (default {_WINDOW[1]})")
    s.add_argument("--toml", action="store_true", help="print the resolved plan as TOML")
    v = psub.add_parser("validate", help="check a plan and apply it to a network and scenario",
                        description="Read the plan, apply it to the network and scenario and "
                                    "validate the result; print what it changes.")
    v.add_argument("plan", help="shipped plan name, TOML path, or A+B (a composition)")
    v.add_argument("--network", default="rare_earth_2025", help="network name or TOML path")
    v.add_argument("--scenario", default=None, help="scenario name or TOML path (default baseline)")


def dispatch(args, parser) -> int:
    """Run a ``plan`` command; returns the exit status."""
    from .plans import apply_plan, list_plans, load_plan

    if args.action is None:
        parser.parse_args(["plan", "--help"])
    if args.action == "list":
        for name, desc in list_plans().items():
            print(f"{name:26s} {desc}")
        return 0
    plan = load_plan(args.plan)
    if args.action == "show":
        from .network import parse_date

        a = parse_date(args.window_from, "--from", "")
        b = parse_date(args.window_to, "--to", "")
        if args.toml:
            import tomli_w

            print(tomli_w.dumps(_toml_ready(plan.to_dict())))
            return 0
        print(f"plan {plan.name!r}: {plan.description}")
        if plan.file:
            print(f"file: {plan.file}")
        if not plan.levers:
            print("no levers")
        for row in plan.cost_table(a, b):
            print(f"  {row['lever']:28s} {row['type']:18s} start {row['start']}  online "
                  f"{row['online']}  full {row['full']}  size {row['cap']:,.4g} {row['unit']}  "
                  f"${row['total_usd'] / 1e6:,.1f}M")
        cost = plan.cost(a, b)
        print(f"cost {a} to {b}: capital ${cost['capital_usd'] / 1e6:,.1f}M, yearly "
              f"${cost['yearly_usd'] / 1e6:,.1f}M, total ${cost['total_usd'] / 1e6:,.1f}M")
        return 0
    from .network import load_network
    from .scenario import resolve_scenario

    net = load_network(args.network)
    scen = resolve_scenario(args.scenario)
    net2, scen2 = apply_plan(plan, net, scen)
    new_nodes = sorted(set(net2.nodes) - set(net.nodes))
    old_lanes = {l.id: l.share for l in net.lanes}
    new_lanes = [l.id for l in net2.lanes if l.id not in old_lanes]
    moved = [l.id for l in net2.lanes
             if l.id in old_lanes and abs(l.share - old_lanes[l.id]) > 1e-12]
    surges = len(scen2.demand_surges) - len(scen.demand_surges)
    print(f"ok: plan {plan.name!r} ({len(plan.levers)} levers) applies to network {net.name!r} "
          f"under scenario {scen.name!r}: {len(new_nodes)} new nodes"
          f"{' (' + ', '.join(new_nodes) + ')' if new_nodes else ''}, {len(new_lanes)} new "
          f"lanes, {len(moved)} lane shares changed, {surges} demand surges added")
    return 0


def _toml_ready(obj):
    if isinstance(obj, dict):
        return {k: _toml_ready(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_toml_ready(v) for v in obj]
    if isinstance(obj, _dt.datetime):
        return obj.date()
    return obj
