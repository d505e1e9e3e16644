"""Persistence of results folders: atomic writes, tables, the manifest (written last) and a
reader for each kind of folder.

Every saver (:meth:`sim.results.Run.save`, :meth:`sim.experiment.MonteCarloResults.save`,
:func:`sim.sweep.sweep` with ``out_dir``, the ``compare`` command) follows one protocol:

1. :func:`begin_save` checks the folder, creates it and removes an old ``manifest.json``: from
   then on the folder is incomplete.
2. Every file is written under a temporary name and renamed into place (:func:`write_atomic`,
   :func:`write_table`, :func:`save_npz`), so no reader ever sees half a file.
3. :func:`finish_save` writes ``manifest.json`` last, listing the files. A folder without a
   manifest is an interrupted save, and every reader refuses it.

Savers write tables and the manifest only; they never draw. Figures are derived from a saved
folder: whoever draws them (the command line, a script) calls :func:`record_files` afterwards,
which rewrites the manifest (atomically) with the figures added to its file list.

Readers: :func:`read_manifest` (any folder), :func:`read_run`, :func:`read_monte_carlo`,
:func:`read_sweep` and :func:`read_compare` return the parts of each kind of folder as plain
data; :func:`load_results` returns the result object of any folder by its manifest's ``kind``.
The result classes of the experiment layer register themselves with :func:`register_kind`, so
this module (and the figures, which read folders through it) never imports the code that runs
experiments.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .tables import check_format, read_table, table_path, write_table

__all__ = [
    "write_atomic", "save_npz", "package_versions", "git_commit", "write_table", "read_table",
    "check_format", "table_path", "has_table", "begin_save", "finish_save", "record_files",
    "read_manifest", "read_json", "read_run", "RunFolder", "read_monte_carlo", "read_sweep",
    "read_compare", "CompareFolder", "register_kind", "load_results", "kind_of", "MANIFEST",
    "KINDS",
]

MANIFEST = "manifest.json"
# the kinds of results folder (the manifest's "kind"; a manifest without one is a run's)
KINDS = ("run", "monte_carlo", "compare", "sweep")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def write_atomic(path: str | Path, text: str) -> None:
    """Write *text* to *path* through a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_npz(path: str | Path, **arrays) -> Path:
    """Write *arrays* to the ``.npz`` file *path* (compressed) through a temporary file and an
    atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def package_versions() -> dict:
    """Versions of Python and the packages that shape the numbers, and which build of the
    engine ran (``"compiled"`` or ``"python"``: the same results, at different speeds)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import engine

    out = {"python": platform.python_version(), "platform": sys.platform,
           "engine": engine.ENGINE}
    for pkg in ("rare-earth-sim", "simpy", "numpy", "networkx", "pandas", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    """The git commit of the working tree the code runs from, when there is one."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def has_table(stem: str | Path) -> bool:
    """Whether ``stem.csv`` or ``stem.parquet`` exists."""
    return any(table_path(stem, fmt).exists() for fmt in ("csv", "parquet"))


def begin_save(out_dir: str | Path, field: str = "out_dir") -> Path:
    """Check *out_dir* (:func:`sim.paths.check_out_dir`), create it and remove an old
    manifest: the folder counts as incomplete until :func:`finish_save`. Returns the folder."""
    from .paths import check_out_dir

    out = check_out_dir(out_dir, field=field)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    return out


def finish_save(out_dir: str | Path, manifest: dict) -> Path:
    """Write *manifest* (a JSON object; values JSON cannot hold are written as text) to
    ``manifest.json`` atomically: the last file of a save. Returns its path."""
    path = Path(out_dir) / MANIFEST
    write_atomic(path, json.dumps(manifest, indent=2, default=str))
    return path


def record_files(out_dir: str | Path, names, *, sort: bool = False) -> dict:
    """Add *names* (files written into a saved folder afterwards, e.g. figures) to the
    ``files`` list of its manifest, rewritten atomically; with *sort*, the list is kept sorted
    (as a Monte Carlo folder lists its files). Returns the manifest."""
    out = Path(out_dir)
    man = read_manifest(out)
    files = list(man.get("files") or [])
    files += [n for n in names if n not in files]
    man["files"] = sorted(set(files)) if sort else files
    finish_save(out, man)
    return man


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def read_json(path: str | Path, what: str, hint: str = ""):
    """The JSON document in *path*, or a :class:`~sim.errors.ModelError` naming the file
    (*what* it is; *hint* is appended to the message of a damaged file)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"damaged {what} (not JSON: {str(exc).splitlines()[0]}){hint}",
                         file=str(path)) from None
    except OSError as exc:
        raise ModelError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None


def read_manifest(folder: str | Path, missing: str = "not a complete results folder") -> dict:
    """The manifest of a results folder, checked: a folder without one is refused (*missing*
    says what it therefore is not), as is a manifest that is not a JSON object."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise ModelError(f"no {MANIFEST}: {missing}", file=str(folder))
    man = read_json(path, "manifest")
    if not isinstance(man, dict):
        raise ModelError("damaged manifest (not a JSON object)", file=str(path))
    return man


def kind_of(manifest: dict, folder: str | Path = "") -> str:
    """The kind of results folder a manifest describes (``run`` when it names none)."""
    kind = manifest.get("kind", "run")
    if kind not in KINDS:
        raise ModelError(f"damaged manifest: unknown kind {kind!r} (run, monte_carlo, compare "
                         "or sweep)", file=str(Path(folder) / MANIFEST), field="kind")
    return kind


@dataclass
class RunFolder:
    """The tables of a saved run (:meth:`sim.results.Run.save`): ``summary`` and ``series``
    (None when absent), ``tables`` (every other table present, by name: ``trade_flows``,
    ``lane_flows``, ``capacity_utilisation``, ``comparison``) and the ``manifest``."""

    path: Path
    manifest: dict
    summary: Any = None
    series: Any = None
    tables: dict = field(default_factory=dict)


def read_run(folder: str | Path) -> RunFolder:
    """Read a run folder (refuses one without a manifest: incomplete)."""
    folder = Path(folder)
    man = read_manifest(folder, "not a complete run")
    parts = {name: read_table(folder / name) if has_table(folder / name) else None
             for name in ("summary", "series")}
    rest = {name: read_table(folder / name)
            for name in ("trade_flows", "lane_flows", "capacity_utilisation", "comparison")
            if has_table(folder / name)}
    return RunFolder(folder, man, parts["summary"], parts["series"], rest)


def read_monte_carlo(folder: str | Path) -> dict:
    """The parts of a Monte Carlo folder (:meth:`sim.experiment.MonteCarloResults.save`) as
    keywords of :class:`~sim.experiment.MonteCarloResults`: ``per_rep``, ``series``,
    ``failures``, ``meta``, ``policy_events`` and ``trade`` (refuses a folder without a
    manifest: incomplete)."""
    from . import tables

    out = Path(folder)
    meta = read_manifest(out, "not a complete Monte Carlo result")
    per_rep = tables.wide(read_table(out / "replications"))
    with np.load(out / "series.npz") as z:
        if "names" in z.files:
            series = {str(k): z[f"s{i}"] for i, k in enumerate(z["names"])}
        else:       # folders written before the names were stored
            series = {k.replace("__", "|").replace("~", "/").replace("^", ":"): z[k]
                      for k in z.files}
    failures = json.loads((out / "failures.json").read_text())
    events = json.loads((out / "policy_events.json").read_text()) \
        if (out / "policy_events.json").exists() else []
    trade = None
    if (out / "trade_flows.npz").exists():
        with np.load(out / "trade_flows.npz") as z:
            trade = {"tonnes": z["tonnes"],
                     "groups": [tuple(str(x) for x in g) for g in z["groups"]]}
    return {"per_rep": per_rep, "series": series, "failures": failures, "meta": meta,
            "policy_events": [tuple(e) for e in events], "trade": trade}


def read_sweep(folder: str | Path) -> dict:
    """The parts of a finished sweep folder (:func:`sim.sweep.sweep` with ``out_dir``) as
    keywords of :class:`~sim.sweep.SweepResults`: ``table``, ``summary``, ``points``,
    ``failures`` and ``meta`` (refuses a folder without a manifest: the sweep is incomplete)."""
    from .tables import sweep_from_tables

    out = Path(folder)
    if not (out / MANIFEST).exists():
        raise ModelError("no manifest.json: the sweep is incomplete (rerun it to resume)",
                         file=str(out))
    meta = read_json(out / MANIFEST, "manifest", "; delete it to run its part again, or use a "
                     "new --out folder")
    if not isinstance(meta, dict) or not isinstance(meta.get("points"), list):
        raise ModelError("damaged manifest (no list of points)", file=str(out / MANIFEST))
    table, summary = sweep_from_tables(out, meta["points"])
    return {"table": table, "summary": summary, "points": meta["points"],
            "failures": json.loads((out / "failures.json").read_text()), "meta": meta}


@dataclass
class CompareFolder:
    """A saved scenario comparison (``python -m sim compare``): the ``manifest``, each
    scenario's Monte Carlo sub-folder (``folders``, in the order compared; the first is the
    reference) and the paired differences (``diffs``, wide as
    :func:`sim.stats.paired_comparison` returns them; None when absent or empty)."""

    path: Path
    manifest: dict
    folders: list[Path]
    diffs: Any = None


def read_compare(folder: str | Path) -> CompareFolder:
    """Read a comparison folder (refuses one without a manifest: incomplete). Its sub-folders
    are those the manifest lists (``folders``; older manifests: the scenario names), never
    outside the folder whatever the manifest says."""
    from .paths import inside

    folder = Path(folder)
    man = read_manifest(folder, "not a complete comparison")
    subs = [inside(folder, folder / str(s)) for s in man.get("folders") or man.get("scenarios", [])]
    diffs = read_table(folder / "paired_differences", wide_diffs=True) \
        if has_table(folder / "paired_differences") else None
    if diffs is not None and not len(diffs):
        diffs = None
    return CompareFolder(folder, man, subs, diffs)


_LOADERS: dict[str, Callable[[Path], Any]] = {"run": read_run, "compare": read_compare}


def register_kind(kind: str, loader: Callable[[Path], Any]) -> None:
    """Make :func:`load_results` read folders of *kind* with *loader* (a function of the
    folder, e.g. :meth:`sim.experiment.MonteCarloResults.load`)."""
    if kind not in KINDS:
        raise ModelError(f"unknown results kind {kind!r} (run, monte_carlo, compare or sweep)",
                         field="kind")
    _LOADERS[kind] = loader


def load_results(folder: str | Path, kind: str | None = None):
    """The result of a saved folder, by its manifest's kind (or *kind*): a
    :class:`RunFolder`, a :class:`CompareFolder`, or the registered result class of a Monte
    Carlo run or a sweep (:class:`~sim.experiment.MonteCarloResults`,
    :class:`~sim.sweep.SweepResults`; registered when :mod:`sim` is imported)."""
    folder = Path(folder)
    if kind is None:
        kind = kind_of(read_manifest(folder), folder)
    if kind not in _LOADERS:
        raise ModelError(f"unknown results kind {kind!r} (run, monte_carlo, compare or sweep)",
                         field="kind")
    return _LOADERS[kind](folder)
