"""Time two checkouts of the project side by side, replication by replication.

The development machines drift in speed by up to 2x within minutes, so timings taken in
separate runs are not comparable. This script imports the ``sim`` package of two source trees
under different names (``sim_a``, ``sim_b``) and alternates them replication by replication on
the same seeds (the order flips every replication), so both see the same machine.

Usage::

    git worktree add /tmp/before <commit>
    python benchmarks/compare_versions.py /tmp/before .              # default network
    python benchmarks/compare_versions.py /tmp/before . --network medium --reps 20

``--network`` is ``default`` (the shipped network under ``truce-uncertain``) or a peer network
size (``small``, ``medium``, ``large``; built by ``benchmarks/peer_network.py``), with no
scenario or, with ``--variant disrupt``, the peer's disrupt scenario of each replication
(built before the replication is timed).
Prints medians of build, engine (run) and whole-replication time (``simulate`` + KPIs), events,
the network fill rate, the median of the per-replication ratios A/B, and the ratio of the
total times. ``--processes`` runs each tree in a process of its own (still alternating, one
replication at a time): in one process a garbage collection set off by one tree's garbage
may fall into the other's replication, so compare total times (which include such rare,
long pauses; medians do not) with ``--processes``.

The compiled engine (see README, "The compiled engine") serves a tree only in
``--processes`` mode (in one process both trees run as Python); build it in a worktree with
``python setup.py build_ext --inplace``. ``--engine-a`` / ``--engine-b`` choose each tree's build
(``RARE_EARTH_SIM_ENGINE``), e.g. the two builds of this tree::

    python benchmarks/compare_versions.py . . --processes --engine-a python --engine-b compiled
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def load_package(alias: str, root: Path):
    """Import ``root/sim`` as the package *alias*."""
    init = root / "sim" / "__init__.py"
    if not init.is_file():
        sys.exit(f"error: {root}: no sim/__init__.py there")
    spec = importlib.util.spec_from_file_location(alias, init,
                                                  submodule_search_locations=[str(root / "sim")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def inputs(pkg, network: str, variant: str = "base"):
    """(network, scenario of replication *i*) for *pkg*: the default pair, or a peer network
    with no scenario (``base``) or the disrupt scenario of each replication."""
    if network == "default":
        sc = pkg.scenario.load_scenario("truce-uncertain")
        return pkg.load_network("rare_earth_2025"), lambda i: sc
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import peer_network  # imports this checkout's sim, only to build the inputs' dicts
    net = pkg.Network.from_dict(peer_network.peer_network(network).to_dict())
    if variant == "base":
        return net, lambda i: None
    return net, lambda i: pkg.Scenario.from_dict(
        peer_network.peer_scenario(network, "disrupt", seed=i).to_dict())


def measure(pkg, net, sc, replication: int) -> tuple:
    """(build s, engine s, whole replication s, events, fill rate) of one replication."""
    t0 = time.perf_counter()
    run = pkg.simulate(net, sc, seed=0, replication=replication)
    run.kpi_rows()
    total = time.perf_counter() - t0
    return (run.stats["build_seconds"], run.stats["run_seconds"], total, run.stats["events"],
            run.kpi("fill_rate", "network"))


def child(root: Path, network: str, variant: str) -> None:
    """Serve ``--processes``: read replication indices from stdin, print one JSON row each.
    The tree is imported as ``sim`` itself (alone in its process), so its compiled engine, if
    built, serves it; the first line names the build that runs."""
    pkg = load_package("sim", root)
    net, scenario_of = inputs(pkg, network, variant)
    print(json.dumps(pkg.engine.ENGINE), flush=True)
    for line in sys.stdin:
        i = int(line)
        print(json.dumps(measure(pkg, net, scenario_of(i), i)), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="source tree A (e.g. a git worktree of the old commit)")
    ap.add_argument("b", type=Path, nargs="?", default=HERE.parent,
                    help="source tree B (default: this one)")
    ap.add_argument("--network", default="default",
                    choices=["default", "small", "medium", "large"])
    ap.add_argument("--variant", default="base", choices=["base", "disrupt"],
                    help="peer networks: no scenario, or the disrupt scenario")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--processes", action="store_true",
                    help="run each tree in its own process (for total times; see above)")
    for k in ("a", "b"):
        ap.add_argument(f"--engine-{k}", default="auto", choices=["auto", "compiled", "python"],
                        help=f"tree {k.upper()}'s engine build (with --processes; default auto)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.a.resolve(), args.network, args.variant)
        return
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if args.variant != "base" and args.network == "default":
        ap.error("--variant applies to the peer networks (small, medium, large)")
    roots = {"A": args.a.resolve(), "B": args.b.resolve()}
    wanted = {"A": args.engine_a, "B": args.engine_b}
    if not args.processes and set(wanted.values()) != {"auto"}:
        ap.error("--engine-a/--engine-b need --processes")
    if args.processes:
        procs = {k: subprocess.Popen([sys.executable, __file__, str(root), "--child",
                                      "--network", args.network, "--variant", args.variant],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, RARE_EARTH_SIM_ENGINE=wanted[k]))
                 for k, root in roots.items()}
        def reply(k: str, request: str | None = None):
            """The child's next line (after sending *request*), or exit naming the tree."""
            try:
                if request is not None:
                    procs[k].stdin.write(request)
                    procs[k].stdin.flush()
                line = procs[k].stdout.readline()
            except OSError:          # e.g. a broken pipe: it stopped before reading
                line = ""
            if not line:
                for proc in procs.values():     # the other tree's too, quietly
                    proc.kill()
                sys.exit(f"error: the process of tree {k} ({roots[k]}) stopped; its error is "
                         "printed above")
            return json.loads(line)

        engines = {k: reply(k) for k in procs}       # each child first names its build

        def one(k: str, i: int) -> tuple:
            return tuple(reply(k, f"{i}\n"))
    else:
        # both trees run as Python: an extension module loads once per process, so at most
        # one tree could have its compiled engine, and the comparison would mix builds
        os.environ["RARE_EARTH_SIM_ENGINE"] = "python"
        pkgs = {"A": load_package("sim_a", roots["A"]), "B": load_package("sim_b", roots["B"])}
        engines = {k: getattr(getattr(p, "engine", None), "ENGINE", "python")
                   for k, p in pkgs.items()}
        data = {k: inputs(p, args.network, args.variant) for k, p in pkgs.items()}

        def one(k: str, i: int) -> tuple:
            net, scenario_of = data[k]
            return measure(pkgs[k], net, scenario_of(i), i)

    rows: dict[str, list] = {"A": [], "B": []}
    for i in range(args.reps + 1):                 # replication 0 warms both up
        order = ("A", "B") if i % 2 else ("B", "A")
        for k in order:
            row = one(k, i)
            if i:
                rows[k].append(row)
    if args.processes:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    for k, root in (("A", args.a), ("B", args.b)):
        med = np.median(np.array(rows[k]), axis=0)
        print(f"{k} {root} ({engines[k]} engine): build {med[0] * 1e3:.2f} ms, "
              f"engine {med[1] * 1e3:.2f} ms, "
              f"whole replication {med[2] * 1e3:.2f} ms, events {med[3]:.0f}, fill {med[4]:.4f}")
    a, b = np.array(rows["A"]), np.array(rows["B"])
    where = "separate processes" if args.processes else "one process"
    label = args.network if args.variant == "base" else f"{args.network}/{args.variant}"
    print(f"A/B ({label}, {args.reps} reps, {where}): median of per-replication ratios: "
          f"engine {np.median(a[:, 1] / b[:, 1]):.2f}, "
          f"whole replication {np.median(a[:, 2] / b[:, 2]):.2f}; "
          f"total time {a[:, 2].sum() / b[:, 2].sum():.3f}")


if __name__ == "__main__":
    main()
