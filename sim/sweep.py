"""Parameter sweeps: a grid or Latin hypercube over scenario and network parameters.

Parameters are addressed by a dotted *path* into the TOML structure of the scenario or the
network (optionally prefixed ``scenario.`` or ``network.``), for example::

    truce.outcomes.extend                  # a field of the scenario file
    controls.apr_2025.approval_probability
    controls.apr_2025.review_days          # a number sets a fixed review time
    nodes.nds_us.stock.ndfeb_magnet.initial
    lanes.mine_au->sep_my:concentrate.share  # lanes by id (from->to:material) or index

and these aliases:

* ``truce.renewal_probability`` = p: the probability that the truce is extended at expiry;
  the remaining 1 - p is split between reinstatement and escalation in their current
  proportions (all of it to reinstatement if both are zero).
* ``nodes.<id>.initial.<material>``: the initial stock of that material at that node.

Every point is rebuilt and validated like a file, so an out-of-range value fails with a
:class:`~sim.errors.ModelError` naming the path. Each point runs the same replication indices
(common random numbers across points).

With ``out_dir`` the sweep is resumable: every completed chunk of replications is written with
an atomic rename; a rerun with the same output folder skips finished chunks and produces the
same final tables as an uninterrupted run, whatever the number of workers or the chunk size of
either run (chunking is not part of a sweep's identity; a damaged chunk file is an error naming
it). The final tables and ``manifest.json`` (written last)
appear only when every chunk is done.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MAX_SEED, ModelError, check_int
from .experiment import (
    MAX_FAILURE_SHARE,
    ChunkTask,
    SharedInputs,
    available_cores,
    check_failures,
    check_horizon,
    check_run_options,
    default_chunk_size,
    digest_of,
    make_executor,
    policy_timeline,
    progress_bar,
    release,
    run_chunk,
)
from .network import Network, load_network
from .persist import (
    MANIFEST,
    finish_save,
    git_commit,
    package_versions,
    read_json,
    register_kind,
    write_atomic,
)
from .scenario import Scenario, resolve_scenario
from .stats import summarise

__all__ = ["sweep", "SweepResults", "apply_params", "design_points"]

_SCENARIO_KEYS = {"scenario", "controls", "truce", "tariffs", "outages", "lane_closures",
                  "demand_surges", "sourcing"}
_NETWORK_KEYS = {"network", "materials", "nodes", "lanes"}


def _split(path: str) -> tuple[str, list[str]]:
    parts = path.split(".")
    if parts[0] in ("scenario", "network") and len(parts) > 1:
        rest = parts[1:]
        keys = _SCENARIO_KEYS if parts[0] == "scenario" else _NETWORK_KEYS
        if rest[0] in keys:
            return parts[0], rest
    if parts[0] in _SCENARIO_KEYS:
        return "scenario", parts
    if parts[0] in _NETWORK_KEYS:
        return "network", parts
    raise ModelError(f"path must start with one of {sorted(_SCENARIO_KEYS | _NETWORK_KEYS)}",
                     where=f"parameter '{path}'")


def _set(doc: dict, parts: list[str], value: Any, path: str) -> None:
    node: Any = doc
    for i, key in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, key, path)
        elif isinstance(node, dict):
            if key not in node:
                raise ModelError(f"no key {key!r} at {'.'.join(parts[:i]) or 'top level'} "
                                 f"(keys: {sorted(node)})", where=f"parameter '{path}'")
            node = node[key]
        else:
            raise ModelError(f"{'.'.join(parts[:i + 1])} is a value, not a table",
                             where=f"parameter '{path}'")
    last = parts[-1]
    if isinstance(node, list):
        idx = _list_index(node, last, path)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ModelError(f"{'.'.join(parts[:-1])} is a value, not a table", where=f"parameter '{path}'")


def _list_index(items: list, key: str, path: str) -> int:
    if key.lstrip("-").isdigit():
        i = int(key)
        if not -len(items) <= i < len(items):
            raise ModelError(f"index {i} out of range (0..{len(items) - 1})", where=f"parameter '{path}'")
        return i
    for i, it in enumerate(items):
        if isinstance(it, dict) and f"{it.get('from')}->{it.get('to')}:{it.get('material')}" == key:
            return i
    raise ModelError(f"no list item {key!r} (use an index or a lane id 'from->to:material')",
                     where=f"parameter '{path}'")


def _list_item(items: list, key: str, path: str):
    return items[_list_index(items, key, path)]


def apply_params(network: Network, scenario: Scenario, params: dict[str, Any]) -> tuple[Network, Scenario]:
    """Return the network and scenario with the dotted-path *params* set (validated)."""
    net_doc = None
    sc_doc = None
    for path, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        target, parts = _split(path)
        if target == "network":
            net_doc = net_doc if net_doc is not None else network.to_dict()
            if len(parts) == 4 and parts[0] == "nodes" and parts[2] == "initial":
                node = net_doc["nodes"].get(parts[1])
                if node is None:
                    raise ModelError(f"no node {parts[1]!r} in network '{network.name}'",
                                     where=f"parameter '{path}'")
                node.setdefault("stock", {}).setdefault(parts[3], {})["initial"] = value
            else:
                _set(net_doc, parts, value, path)
        else:
            sc_doc = sc_doc if sc_doc is not None else scenario.to_dict()
            if parts == ["truce", "renewal_probability"]:
                _set_renewal(sc_doc, value, path)
            else:
                _set(sc_doc, parts, value, path)
    try:
        net = Network.from_dict(net_doc) if net_doc is not None else network
        sc = Scenario.from_dict(sc_doc) if sc_doc is not None else scenario
        sc.check_network(net)
    except ModelError as exc:
        raise ModelError(f"{exc}", where=f"sweep point {params}") from None
    return net, sc


def _set_renewal(doc: dict, p: Any, path: str) -> None:
    if "truce" not in doc:
        raise ModelError("the scenario has no [truce]", where=f"parameter '{path}'")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ModelError(f"must be a probability in [0, 1], got {p!r}", where=f"parameter '{path}'")
    out = doc["truce"].setdefault("outcomes", {})
    rein, esc = float(out.get("reinstate", 0.0)), float(out.get("escalate", 0.0))
    rest = 1.0 - p
    if rein + esc > 0:
        out["reinstate"], out["escalate"] = rest * rein / (rein + esc), rest * esc / (rein + esc)
    else:
        out["reinstate"], out["escalate"] = rest, 0.0
    out["extend"] = float(p)


def design_points(params: dict[str, Any], design: str = "grid", samples: int | None = None,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Points of a full grid (*params* maps path -> list of values) or of a Latin hypercube
    (*params* maps path -> (low, high); *samples* points; reproducible from *seed*)."""
    if not params:
        raise ModelError("give at least one parameter", field="params")
    names = list(params)
    if design == "grid":
        lists = []
        for n in names:
            v = params[n]
            if not isinstance(v, (list, tuple)) or not v:
                raise ModelError("grid values must be a non-empty list", where=f"parameter '{n}'")
            lists.append(list(v))
        return [dict(zip(names, combo)) for combo in itertools.product(*lists)]
    if design == "lhs":
        if not samples or samples < 1:
            raise ModelError("a Latin hypercube needs samples >= 1", field="samples")
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(7_777,))))
        cols = []
        for n in names:
            v = params[n]
            if not isinstance(v, (list, tuple)) or len(v) != 2 or not v[0] <= v[1]:
                raise ModelError("a Latin hypercube range must be [low, high]", where=f"parameter '{n}'")
            u = (rng.permutation(samples) + rng.random(samples)) / samples
            cols.append(v[0] + u * (v[1] - v[0]))
        return [{n: float(c[i]) for n, c in zip(names, cols)} for i in range(samples)]
    raise ModelError(f"design must be 'grid' or 'lhs', got {design!r}", field="design")


@dataclass
class SweepResults:
    """Sweep output: ``table`` (one row per point x replication: point, parameter columns,
    replication, KPI columns ``kpi|scope``), ``points`` (point id -> parameters), ``summary``
    (per point and KPI: mean, sd, se, 95% CI, quantiles), ``failures`` and ``meta``."""

    table: Any
    summary: Any
    points: list[dict]
    failures: list[dict]
    meta: dict

    @property
    def param_names(self) -> list[str]:
        """Swept parameter paths."""
        return list(self.points[0]) if self.points else []

    @classmethod
    def load(cls, out_dir: str | Path) -> "SweepResults":
        """Read a finished sweep folder (refuses one without manifest.json)."""
        from .persist import read_sweep

        return cls(**read_sweep(out_dir))


register_kind("sweep", SweepResults.load)


def _chunk_path(root: Path, point: int, reps: tuple[int, ...]) -> Path:
    return root / "chunks" / f"p{point:05d}_r{reps[0]:06d}-{reps[-1]:06d}.json"


_CHUNK_NAME = re.compile(r"p(\d{5})_r(\d{6})-(\d{6})\.json")


def _runs(indices: list[int]) -> list[list[int]]:
    """*indices* (sorted) split into runs of consecutive numbers."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][-1] == i - 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _read_json(path: Path, what: str):
    """A JSON file of a sweep folder, or :class:`ModelError` naming it."""
    return read_json(path, what, "; delete it to run its part again, or use a new --out folder")


def _stored_spec_hash(path: Path) -> str | None:
    """The identity of the sweep in *path*, computed without the chunk size (folders written
    when the chunk size was part of it stay resumable)."""
    old = _read_json(path, "sweep spec")
    if not isinstance(old, dict) or not isinstance(old.get("spec"), dict):
        raise ModelError("damaged sweep spec (no 'spec' table); use a new --out folder",
                         file=str(path))
    spec = {k: v for k, v in old["spec"].items() if k != "chunk_size"}
    return digest_of(spec)


def _done_chunks(root: Path, n_points: int, reps: int) -> dict[tuple[int, int], dict]:
    """The chunks already written in *root*, whatever chunk size wrote them, checked: keyed
    ``(point, first replication)``, each with ``covers`` (the replications it ran). A chunk
    that overlaps one read before it is skipped (its replications are already there)."""
    found = []
    for path in sorted((root / "chunks").glob("p*_r*.json")):
        m = _CHUNK_NAME.fullmatch(path.name)
        if m is None:
            continue
        j, a, b = (int(x) for x in m.groups())
        if j >= n_points or not a <= b < reps:
            raise ModelError(f"chunk for point {j}, replications {a}-{b} does not belong to this "
                             f"sweep ({n_points} points x {reps} reps); use a new --out folder",
                             file=str(path))
        found.append((j, a, b, path))
    out: dict[tuple[int, int], dict] = {}
    covered: set[tuple[int, int]] = set()
    for j, a, b, path in found:
        span = {(j, i) for i in range(a, b + 1)}
        if span & covered:
            continue
        rec = _read_json(path, "chunk file")
        _check_chunk(rec, a, b, path)
        rec["covers"] = list(range(a, b + 1))
        out[(j, a)] = rec
        covered |= span
    return out


def _check_chunk(rec, a: int, b: int, path: Path) -> None:
    """Raise :class:`ModelError` unless *rec* is a chunk record of replications *a*..*b*."""
    ok = isinstance(rec, dict) and isinstance(rec.get("reps"), list) \
        and isinstance(rec.get("values"), list) and isinstance(rec.get("failures"), list) \
        and (rec.get("keys") is None or isinstance(rec.get("keys"), list)) \
        and len(rec["values"]) == len(rec["reps"]) \
        and all(isinstance(i, int) and a <= i <= b for i in rec["reps"]) \
        and all(isinstance(f, dict) for f in rec["failures"]) \
        and all(isinstance(row, list) and len(row) == len(rec.get("keys") or [])
                for row in rec["values"])
    if not ok:
        raise ModelError("damaged chunk file (not a record of replications "
                         f"{a}-{b}); delete it to run them again", file=str(path))


def sweep(network="rare_earth_2025", scenario=None, params: dict[str, Any] | None = None, *,
          design: str = "grid", samples: int | None = None, reps: int = 20, seed: int = 0,
          out_dir: str | Path | None = None, executor: cf.Executor | None = None,
          workers: int | None = None, chunk_size: int | None = None, start=None,
          horizon_days: float | None = None, progress: bool | None = None,
          plots: bool = False, table_format: str = "csv",
          max_failure_share: float = MAX_FAILURE_SHARE) -> SweepResults:
    """Run *reps* replications at every point of a parameter design (see module docstring);
    with *out_dir*, the tables (:mod:`sim.tables`) are written as *table_format* (csv or
    parquet).

    When all replications of the sweep fail, or more than *max_failure_share* of them, it
    raises :class:`~sim.errors.RunFailedError` quoting the first failure and writes no final
    tables or manifest; fewer failures are listed in ``failures`` and counted in the manifest.

    A sweep draws nothing: figures come from :func:`sim.plots.plot_sweep` afterwards, listed in
    the manifest with :func:`sim.persist.record_files` (the ``sweep`` command does both);
    *plots* is kept for old callers and must be False.
    """
    if plots:
        raise ModelError("a sweep draws no figures: call sim.plots.plot_sweep(res, out_dir) "
                         "after it (and sim.persist.record_files to list them)", field="plots")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ModelError(f"must be a positive integer, got {reps!r}", field="reps")
    check_int(seed, "seed", 0, maximum=MAX_SEED)
    check_int(samples, "samples", 1, allow_none=True, maximum=1_000_000)
    check_run_options(reps=reps, workers=workers, chunk_size=chunk_size,
                      max_failure_share=max_failure_share,
                      executor=executor)
    if params is not None and not isinstance(params, dict):
        raise ModelError(f"must be a dict of parameter paths and values, got {params!r}",
                         field="params")
    for path in params or {}:
        if not isinstance(path, str):
            raise ModelError(f"parameter paths must be strings, got {path!r}", field="params")
    check_horizon(horizon_days)
    root = None
    if out_dir is not None:
        from .paths import check_out_dir
        from .tables import check_format
        check_format(table_format)
        root = check_out_dir(out_dir, field="out_dir")
    base_net = load_network(network)
    base_sc = resolve_scenario(scenario)
    points = design_points(params or {}, design, samples, seed)
    built = [apply_params(base_net, base_sc, p) for p in points]   # validate every point first
    for net, sc in built[:1]:       # start, horizon and dates (alike at every point), up front
        policy_timeline(net, sc, start, horizon_days)
    owned = None
    if executor is None:
        executor, owned = make_executor(workers)
    n_workers = workers or getattr(executor, "_max_workers", None) or available_cores()
    if chunk_size is None:
        chunk_size = min(default_chunk_size(reps * len(points), n_workers), reps)
    # what makes the numbers: not the chunking, so a sweep resumes with any number of workers
    spec = {"network_sha256": base_net.digest(), "scenario_sha256": base_sc.digest(),
            "params": params, "design": design, "samples": samples, "reps": reps, "seed": seed,
            "start": str(start), "horizon_days": horizon_days}
    if root is not None:
        (root / "chunks").mkdir(parents=True, exist_ok=True)
        spec_path = root / "sweep_spec.json"
        if spec_path.exists():
            if _stored_spec_hash(spec_path) != digest_of(spec):
                raise ModelError("the folder holds a different sweep (other parameters, seed or "
                                 "inputs); use a new --out folder", file=str(root))
        else:
            write_atomic(spec_path, json.dumps({"hash": digest_of(spec), "spec": spec}, default=str,
                                               indent=2))
        (root / MANIFEST).unlink(missing_ok=True)   # incomplete until finish_save
    results: dict[tuple[int, int], dict] = _done_chunks(root, len(points), reps) \
        if root is not None else {}
    pending = []
    for j, (net, sc) in enumerate(built):
        inputs = SharedInputs(net, sc)               # serialised once for the point's chunks
        done = {i for (jj, _), rec in results.items() if jj == j for i in rec["covers"]}
        for run in _runs([i for i in range(reps) if i not in done]):
            for c in range(0, len(run), chunk_size):
                r = tuple(run[c:c + chunk_size])
                pending.append((j, ChunkTask(inputs, seed, r, start, horizon_days, ())))
    bar = progress_bar(sum(len(t.reps) for _, t in pending), progress, "sweep")
    t0 = time.perf_counter()
    try:
        futs = {executor.submit(run_chunk, t): (j, t) for j, t in pending}
        for fut in cf.as_completed(futs):
            j, t = futs[fut]
            out = fut.result()
            rec = {"keys": out["keys"], "reps": out["reps"], "values": out["values"].tolist(),
                   "failures": out["failures"], "covers": list(t.reps)}
            if root is not None:
                write_atomic(_chunk_path(root, j, t.reps), json.dumps(rec))
            results[(j, t.reps[0])] = rec
            if bar is not None:
                bar.update(len(t.reps))
    finally:
        release(executor, owned, bar)
    res = _assemble_sweep(points, results)
    check_failures(res.failures, reps * len(points), max_failure_share,
                   "sweep" + (f" {str(root)!r} (its chunks keep the failures: use a new --out "
                              "folder to run them again)" if root is not None else ""))
    res.meta.update(failures=len(res.failures), max_failure_share=max_failure_share,
                    chunk_size=chunk_size)
    res.meta.update(kind="sweep", network=base_net.name, scenario=base_sc.name, seed=seed,
                    reps=reps, design=design, samples=samples, params=params, points=points,
                    elapsed_seconds=time.perf_counter() - t0, versions=package_versions(),
                    git_commit=git_commit(), spec=spec, workers=n_workers)
    if root is not None:
        from .tables import write_sweep_tables
        write_sweep_tables(res, root, table_format)
        write_atomic(root / "failures.json", json.dumps(res.failures, indent=2))
        files = [f"{t}.{table_format}" for t in ("sweep", "sweep_summary", "sweep_points")] + \
            ["failures.json"]
        res.meta["files"] = files
        finish_save(root, res.meta)
    return res


def _assemble_sweep(points: list[dict], results: dict) -> SweepResults:
    import pandas as pd

    keys = next((r["keys"] for r in results.values() if r["keys"]), None) or []
    frames, failures = [], []
    for (j, first) in sorted(results):
        r = results[(j, first)]
        for f in r["failures"]:
            failures.append({"point": j, **points[j], **f})
        if not r["reps"]:
            continue
        vals = np.asarray(r["values"], dtype=float)
        if r["keys"] != keys:
            index = {k: i for i, k in enumerate(r["keys"])}
            vals = np.array([[row[index[k]] if k in index else np.nan for k in keys] for row in vals])
        df = pd.DataFrame(vals, columns=keys)
        df.insert(0, "replication", r["reps"])
        for name in reversed(list(points[j])):
            df.insert(0, name, points[j][name])
        df.insert(0, "point", j)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    rows = []
    for j, p in enumerate(points):
        sub = table[table["point"] == j] if len(table) else table
        for col in keys:
            name, scope = col.split("|", 1)
            rows.append({"point": j, **p, "kpi": name, "scope": scope,
                         **summarise(sub[col].to_numpy() if len(sub) else np.array([]))})
    return SweepResults(table, pd.DataFrame(rows), points, failures, {})
