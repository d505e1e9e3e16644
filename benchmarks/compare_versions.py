"""Time two checkouts of the project in one process, replication by replication.

The development machines drift in speed by up to 2x within minutes, so timings taken in
separate runs are not comparable. This script imports the ``sim`` package of two source trees
under different names (``sim_a``, ``sim_b``) and alternates them replication by replication on
the same seeds (the order flips every replication), so both see the same machine.

Usage::

    git worktree add /tmp/before <commit>
    python benchmarks/compare_versions.py /tmp/before .              # default network
    python benchmarks/compare_versions.py /tmp/before . --network medium --reps 20

``--network`` is ``default`` (the shipped network under ``truce-uncertain``) or a peer network
size (``small``, ``medium``, ``large``; built by ``benchmarks/peer_network.py``, no scenario).
Prints medians of build, engine (run) and whole-replication time (``simulate`` + KPIs), events,
the network fill rate, and the median of the per-replication ratios A/B.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def inputs(pkg, network: str):
    """(network, scenario) for *pkg*: the default pair, or a peer network without scenario."""
    if network == "default":
        return pkg.load_network("rare_earth_2025"), pkg.scenario.load_scenario("truce-uncertain")
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import peer_network  # imports this checkout's sim, only to build the network's dict
    return pkg.Network.from_dict(peer_network.peer_network(network).to_dict()), None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="source tree A (e.g. a git worktree of the old commit)")
    ap.add_argument("b", type=Path, nargs="?", default=HERE.parent,
                    help="source tree B (default: this one)")
    ap.add_argument("--network", default="default",
                    choices=["default", "small", "medium", "large"])
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    pkgs = {"A": load_package("sim_a", args.a.resolve()),
            "B": load_package("sim_b", args.b.resolve())}
    data = {k: inputs(p, args.network) for k, p in pkgs.items()}
    rows: dict[str, list] = {"A": [], "B": []}
    for i in range(args.reps + 1):                 # replication 0 warms both up
        order = ("A", "B") if i % 2 else ("B", "A")
        for k in order:
            net, sc = data[k]
            t0 = time.perf_counter()
            run = pkgs[k].simulate(net, sc, seed=0, replication=i)
            run.kpi_rows()
            total = time.perf_counter() - t0
            if i:
                rows[k].append((run.stats["build_seconds"], run.stats["run_seconds"], total,
                                run.stats["events"], run.kpi("fill_rate", "network")))
    for k, root in (("A", args.a), ("B", args.b)):
        med = np.median(np.array(rows[k]), axis=0)
        print(f"{k} {root}: build {med[0] * 1e3:.2f} ms, engine {med[1] * 1e3:.2f} ms, "
              f"whole replication {med[2] * 1e3:.2f} ms, events {med[3]:.0f}, fill {med[4]:.4f}")
    a, b = np.array(rows["A"]), np.array(rows["B"])
    print(f"A/B (median of per-replication ratios, {args.network}, {args.reps} reps): "
          f"engine {np.median(a[:, 1] / b[:, 1]):.2f}, "
          f"whole replication {np.median(a[:, 2] / b[:, 2]):.2f}")


if __name__ == "__main__":
    main()
