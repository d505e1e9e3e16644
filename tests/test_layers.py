"""The package is layered along the data path, and this test keeps it so.

Every module of ``sim/`` is read with :mod:`ast` (imports inside functions included) and
placed in one layer of :data:`LAYERS`. It fails on an import cycle, on an import of a higher
layer, on a module missing from the table, and on a private name (leading underscore)
imported from another module, in ``sim/`` or in ``tests/`` (tests use public seams).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sim"
TESTS = ROOT / "tests"

# The layers, bottom first: a module imports only from its own layer or those below it.
ORDER = ("inputs", "engine", "results", "experiments", "plots", "cli", "package")

LAYERS = {
    # inputs: files and their validated objects, random streams, names
    "errors": "inputs", "paths": "inputs", "kinds": "inputs", "kpis": "inputs", "materials": "inputs", "distributions": "inputs",
    "streams": "inputs", "labels": "inputs", "network": "inputs", "fleet": "inputs",
    "scenario": "inputs", "sourcing": "inputs", "plans": "inputs",
    # engine: the simulation and what it records
    "records": "engine", "simpy_access": "engine", "policy": "engine", "engine": "engine", "reserve": "engine",
    "_engine_compiled": "engine",         # the compiled build of engine.py (Cython)
    # results: one run's KPIs and series, tables, statistics, saving and reading folders
    "metrics": "results", "flows": "results", "results": "results", "tables": "results",
    "stats": "results", "persist": "results",
    "simulation": "results",              # the run path: network -> Model -> recording -> Run
    # experiments: replications, sweeps and the studies built on them
    "experiment": "experiments", "sweep": "experiments", "study": "experiments",
    "resilience": "experiments", "ema": "experiments",
    # plots: figures, from results objects or saved folders
    "style": "plots", "plots": "plots", "plots_study": "plots", "plots_resilience": "plots",
    "plots_ema": "plots",
    # cli: the commands of python -m sim (every *_cli module belongs here too)
    "cli_args": "cli", "cli": "cli", "experiment_cli": "cli", "__main__": "cli",
    # the package's front door re-exports the public names of every layer
    "__init__": "package",
}

# Imports that break the layering today, each to be removed by the work named beside it; the
# test fails once one is gone, so that its line here goes too.
KNOWN = {
}


def layer_of(module: str) -> str | None:
    """The layer of a module of ``sim/`` (None: not in the table)."""
    if module in LAYERS:
        return LAYERS[module]
    if module.endswith("_cli"):
        return "cli"
    return None


@lru_cache(maxsize=1)
def package_modules() -> dict[str, Path]:
    """Every module of the package: ``.py`` files and compiled extensions, by module name."""
    out = {p.stem: p for p in PACKAGE.glob("*.py")}
    for p in PACKAGE.glob("*.so"):
        out.setdefault(p.name.split(".")[0], p)
    return out


def imports_of(path: Path, modules) -> list[tuple[str, str, int]]:
    """``(imported module of sim, imported name or '', line)`` for each import in *path*."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    in_package = path.parent == PACKAGE
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sim" or alias.name.startswith("sim."):
                    parts = alias.name.split(".")
                    out.append((parts[1] if len(parts) > 1 else "__init__", "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 and in_package:
                head = node.module
            elif node.level == 0 and node.module and (node.module == "sim"
                                                      or node.module.startswith("sim.")):
                head = node.module[4:] or None
            else:
                continue
            if head:
                for alias in node.names:
                    out.append((head.split(".")[0], alias.name, node.lineno))
            else:                                   # from . import x / from sim import x
                for alias in node.names:
                    if alias.name in modules:
                        out.append((alias.name, "", node.lineno))
                    else:
                        out.append(("__init__", alias.name, node.lineno))
    return out


@lru_cache(maxsize=1)
def graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` of the package."""
    modules = package_modules()
    edges: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        if path.suffix != ".py":
            continue
        deps = edges.setdefault(name, {})
        for target, _, line in imports_of(path, modules):
            if target != name:
                deps.setdefault(target, line)
    return edges


def test_every_module_has_a_layer():
    missing = sorted(m for m in package_modules() if layer_of(m) is None)
    assert not missing, (f"sim/ modules without a layer: {missing}; add it to the table "
                         "LAYERS in tests/test_layers.py")


def test_imports_go_downward():
    upward = []
    for src, deps in graph().items():
        for dst, line in deps.items():
            a, b = layer_of(src), layer_of(dst)
            if a is None or b is None or (src, dst) in KNOWN:
                continue
            if ORDER.index(b) > ORDER.index(a):
                upward.append(f"sim/{src}.py:{line} ({a}) imports {dst} ({b})")
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_no_import_cycle():
    edges = {src: {d for d in deps if (src, d) not in KNOWN} for src, deps in graph().items()}
    cycles = []
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(path[path.index(d):] + [d]))
            elif d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_known_exceptions_still_exist():
    """Each exception of KNOWN names an import that is still there (remove the line when the
    import goes)."""
    edges = graph()
    gone = sorted(f"{a} -> {b}" for a, b in KNOWN if b not in edges.get(a, {}))
    assert not gone, f"no longer imported, remove from KNOWN in tests/test_layers.py: {gone}"


@pytest.mark.parametrize("folder", [PACKAGE, TESTS], ids=["sim", "tests"])
def test_no_private_name_is_imported_from_another_module(folder):
    modules = package_modules()
    found = []
    for path in sorted(folder.glob("*.py")):
        for target, name, line in imports_of(path, modules):
            if path.parent == PACKAGE and target == path.stem:
                continue
            if path.parent == PACKAGE and path.stem == "engine" \
                    and "_engine_compiled" in (target, name):
                continue                # the compiled build of engine.py itself
            private = name if name.startswith("_") else (target if target.startswith("_")
                                                         and target != "__init__" else "")
            if private:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {private} from "
                             f"sim.{target}")
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def test_the_checks_see_what_they_must(tmp_path):
    """The reader finds imports inside functions, relative and absolute, and private names."""
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from sim.results import _hidden, Run\n"
                   "    import sim.plots\n    from sim import tables, simulate\n")
    got = imports_of(src, package_modules())
    assert ("results", "_hidden", 2) in got and ("results", "Run", 2) in got
    assert ("plots", "", 3) in got and ("tables", "", 4) in got
    assert ("__init__", "simulate", 4) in got
    assert layer_of("plan_cli") == "cli" and layer_of("nowhere") is None
