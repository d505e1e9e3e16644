"""Monte Carlo replications, paired scenario comparisons, sequential stopping and sweeps.

Every run goes through a standard :class:`concurrent.futures.Executor`: a process pool on a
laptop (the default), a Dask cluster (``distributed.Client(...).get_executor()``), or the
in-process :class:`SerialExecutor`. Work is sent in chunks of replications. Replication *i*
always uses the random streams of ``Streams(seed, replication=i)`` (see :mod:`sim.streams`), so
results do not depend on the number of workers, the executor, or the order in which chunks come
back, and replication *i* of two scenarios sees the same demand, lead-time and licence draws for
the same components (common random numbers), which is what makes paired differences precise.

Memory stays bounded: each replication returns its KPI vector and its time series already
reduced to a weekly grid (float32); full daily series are never kept.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (MAX_SEED, ModelError, RunFailedError, check_horizon_days, check_int,
                     check_number)
from .network import Network, load_network
from .persist import git_commit, register_kind
from .scenario import Scenario, resolve_scenario
# the statistics over replications live in the results layer (tables and figures use them);
# these names stay importable from here
from .stats import QUANTILES, Z95, paired_comparison, summarise  # noqa: F401

__all__ = [
    "monte_carlo", "MonteCarloResults", "SerialExecutor", "paired_comparison",
    "compare_scenarios", "make_executor", "QUANTILES", "GRID_DAYS", "summarise",
    "SharedInputs", "ChunkTask", "run_chunk", "progress_bar", "policy_timeline", "git_commit",
    "week_grid", "reduce_series", "UNPACKED_KEEP", "cached_inputs",
]

GRID_DAYS = 7
_SCOPE_SERIES = ("fill_rate", "backorders_t", "net_inventory_t")   # per scope, in this order
# Above this share of failed replications a run counts as failed (RunFailedError, no results
# saved): a summary of the few that survived would describe a biased sample.
MAX_FAILURE_SHARE = 0.5


class SerialExecutor(cf.Executor):
    """An executor that runs each task at once in the calling process (one worker)."""

    def submit(self, fn, /, *args, **kwargs):
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """An executor: a Dask cluster's (``scheduler`` = ``tcp://HOST:PORT``), a process pool with
    *workers* processes (default: available cores), or a :class:`SerialExecutor` for 1 worker.
    Returns ``(executor, owned)``; the caller shuts down executors it owns."""
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise ModelError("--scheduler needs Dask: pip install -e '.[dask]'",
                             field="scheduler") from None
        client = _connect(Client, scheduler)
        return client.get_executor(), client
    workers = workers or available_cores()
    if workers == 1:
        return SerialExecutor(), None
    return cf.ProcessPoolExecutor(max_workers=workers), True


SCHEDULER_TIMEOUT_S = 10.0     # how long to try a Dask scheduler before giving up


def _connect(client_type, scheduler):
    """A Dask client of *scheduler*, or :class:`ModelError` naming it (a bad address, or one
    that does not answer within :data:`SCHEDULER_TIMEOUT_S` seconds)."""
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ModelError(f"must be a scheduler address tcp://HOST:PORT, got {scheduler!r}",
                         field="scheduler")
    try:
        return client_type(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot connect to the Dask scheduler {scheduler!r}: {why}",
                         field="scheduler") from None


def release(executor, owned, bar=None) -> None:
    """Close a progress bar and shut down an executor made by :func:`make_executor`."""
    if bar is not None:
        bar.close()
    if owned is True:
        executor.shutdown()
    elif owned is not None:
        owned.close()


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# One chunk of replications (runs in the worker)
# ---------------------------------------------------------------------------------------------

class SharedInputs:
    """The network and scenario that every task of a run (or of one sweep point) shares,
    serialised once for all of them.

    Pickled as they are, a network and scenario cost each task a pickle and an unpickle, and
    a Dask client, which names a task by hashing its arguments, a walk through both besides:
    on many workers that kept the workers waiting (see benchmarks/README.md). Here they are
    pickled once, named by the SHA-256 of those bytes (also their Dask token), and each worker
    process unpickles a given pair once and keeps it for the tasks after (a few pairs at most).
    Sharing is safe because a run never changes its network or scenario.
    """

    __slots__ = ("_packed", "network", "scenario")

    def __init__(self, network: Network, scenario: Scenario | None):
        self.network = network
        self.scenario = scenario
        self._packed: tuple[str, bytes] | None = None

    def packed(self) -> tuple[str, bytes]:
        """``(sha256 hex, pickled (network, scenario))``, computed once."""
        if self._packed is None:
            blob = pickle.dumps((self.network, self.scenario), protocol=pickle.HIGHEST_PROTOCOL)
            self._packed = (hashlib.sha256(blob).hexdigest(), blob)
        return self._packed

    def __reduce__(self):
        return (_unpack_inputs, self.packed())

    def __dask_tokenize__(self) -> str:
        return self.packed()[0]


_Inputs = SharedInputs                  # alias: the private name stays importable
_UNPACKED: dict[str, _Inputs] = {}      # this process's unpickled inputs, oldest first
UNPACKED_KEEP = 4                       # unpickled inputs a worker process keeps at most
_UNPACKED_KEEP = UNPACKED_KEEP
_UNPACKED_LOCK = threading.Lock()


def _unpack_inputs(key: str, blob: bytes) -> _Inputs:
    with _UNPACKED_LOCK:
        hit = _UNPACKED.pop(key, None)
        if hit is None:
            network, scenario = pickle.loads(blob)
            hit = _Inputs(network, scenario)
            hit._packed = (key, blob)
        _UNPACKED[key] = hit                        # now the newest
        while len(_UNPACKED) > _UNPACKED_KEEP:
            del _UNPACKED[next(iter(_UNPACKED))]
    return hit


def cached_inputs() -> int:
    """How many unpickled :class:`SharedInputs` this process keeps now (at most
    :data:`UNPACKED_KEEP`)."""
    return len(_UNPACKED)


@dataclass(frozen=True)
class ChunkTask:
    """One task of a run: replications *reps* of the shared *inputs* from root *seed*; the
    argument of :func:`run_chunk` (sent to a worker as it is)."""

    inputs: _Inputs
    seed: int
    reps: tuple[int, ...]
    start: Any
    horizon_days: float | None
    track: tuple[tuple[str, str], ...]
    flows: bool = False         # keep each replication's monthly trade flows (sim.flows)
    scopes: tuple[str, ...] = ()    # more KPI scopes whose weekly series are kept
    series: bool = True         # keep weekly series at all (False: KPIs only, a lean study)


_Task = ChunkTask                       # alias: the private name stays importable


def week_grid(daily: np.ndarray, how: str) -> np.ndarray:
    """Daily values on the weekly grid: each week's sum (``"sum"``, NaN counted as 0, as
    ``np.nansum`` does) or the value on its last day (``"end"``; the last week may be partial).
    Several series at once go as the rows of a matrix (days along the last axis); each row
    comes out as it would alone (a week's sum is always the sum of one row of 7 days)."""
    n = daily.shape[-1]
    w = -(-n // GRID_DAYS)
    if how == "sum":
        pad = np.zeros((*daily.shape[:-1], w * GRID_DAYS))
        pad[..., :n] = daily
        np.copyto(pad, 0.0, where=np.isnan(pad))
        return np.add.reduce(pad.reshape(-1, GRID_DAYS), axis=1).reshape(*daily.shape[:-1], w)
    # end of week: the last day present in each block
    last = np.minimum(np.arange(1, w + 1) * GRID_DAYS, n) - 1
    return daily[..., last]


def reduce_series(run, track) -> dict[str, np.ndarray]:
    """The series a Monte Carlo run keeps of one replication *run*, on the weekly grid
    (float32): fill rate, backorders and net inventory of each sector and of every sector but
    defense (``"kpi|scope"`` keys), and the on-hand inventory of each tracked
    ``(node, material)`` stock of *track*."""
    names, sums = run._sector_sums()        # the sectors' daily series, as Run.sector_series
    rows: list[np.ndarray] = []             # the series, in the order of their keys
    keys: list[str] = []
    if names:
        # Every sector at once: weekly sums of demand and filled, end-of-week backorders and
        # inventory. A scope's series add its sectors' in order, to 0 (the end-of-week values
        # of a sum are the sums of the sectors' end-of-week values), elementwise.
        order = sorted(range(len(names)), key=names.__getitem__)
        sums = sums[order]
        weekly = _week_grid(sums[:, :2], "sum")         # (sector, demand or filled, week)
        ends = _week_grid(sums[:, 2:], "end")           # (sector, backorders or inventory, week)
        dem, fil, bo, inv = 0 + weekly[:, 0], 0 + weekly[:, 1], 0 + ends[:, 0], 0 + ends[:, 1]
        fill_rate = np.where(dem > 0, fil / np.where(dem > 0, dem, 1), 1.0)
        rows.append(np.stack((fill_rate, bo, inv - bo), axis=1).reshape(-1, weekly.shape[-1]))
        for i in order:
            keys += [f"{kind}|sector:{names[i]}" for kind in _SCOPE_SERIES]
        civil = [g for g, i in enumerate(order) if names[i] != "defense"]
        if civil and len(civil) < len(names):           # every sector but defense
            dem = sum(weekly[g, 0] for g in civil)
            fil = sum(weekly[g, 1] for g in civil)
            bo = sum(ends[g, 0] for g in civil)
            inv = sum(ends[g, 1] for g in civil)
            fill_rate = np.where(dem > 0, fil / np.where(dem > 0, dem, 1), 1.0)
            rows.append(np.stack((fill_rate, bo, inv - bo)))
            keys += [f"{kind}|civil" for kind in _SCOPE_SERIES]
    if track:
        stock_keys = [(s.node, s.material) for s in run.stocks]
        on_hand = run.daily_on_hand_by_stock()
        for node, mat in track:
            rows.append(_week_grid(on_hand[stock_keys.index((node, mat))], "end")[None])
            keys.append(f"inventory_t|stock:{node}/{mat}")
    if not rows:
        return {}
    return dict(zip(keys, np.concatenate(rows).astype(np.float32)))


# aliases: the private names stay importable
_week_grid, _reduce_series = week_grid, reduce_series


def run_chunk(task: _Task) -> dict:
    """Run the replications of one chunk; failures are recorded, never dropped."""
    from .simulation import simulate

    keys: list[str] | None = None
    rows, reps_ok, series, failures = [], [], [], []
    trade, trade_groups = [], None
    t0 = time.perf_counter()
    for i in task.reps:
        try:
            run = simulate(task.inputs.network, task.inputs.scenario, seed=task.seed, replication=i,
                           start=task.start, horizon_days=task.horizon_days)
            kr = run.kpi_rows()
            # before anything is kept: a failure here must not leave KPIs without series
            series_i = _reduce_series(run, task.track) if task.series else {}
            if task.series and task.scopes:
                series_i.update(scoped_series(run, task.scopes, series_i))
            if task.flows:      # tonnes across each border per month: (groups, months)
                from . import flows
                trade_i = flows.monthly_trade_array(run).astype(np.float32)
                trade_groups = flows.trade_groups(run)
            k = [f"{name}|{scope}" for name, scope, _ in kr]
            if keys is None:
                keys = k
            elif k != keys:
                index = {key: j for j, key in enumerate(k)}
                kr = [kr[index[key]] if key in index else (None, None, math.nan) for key in keys]
            rows.append([v for _, _, v in kr])
            series.append(series_i)
            if task.flows:
                trade.append(trade_i)
            reps_ok.append(i)
        except Exception as exc:
            failures.append({"replication": i, "seed": task.seed, "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc(limit=6)})
    return {"keys": keys, "reps": reps_ok, "values": np.asarray(rows, dtype=float),
            "series": series, "failures": failures, "seconds": time.perf_counter() - t0,
            "trade": trade, "trade_groups": trade_groups}


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

@dataclass
class MonteCarloResults:
    """Results of :func:`monte_carlo`.

    Attributes
    ----------
    per_rep: DataFrame, one row per replication (index ``replication``), one column per KPI
        named ``"kpi|scope"``.
    series: dict name -> float32 array (replications x weeks) of weekly-reduced series.
    failures: replications that raised: replication, seed, error, traceback.
    meta: network, scenario, seed, reps requested/used, precision target, timings.
    """

    per_rep: Any
    series: dict[str, np.ndarray]
    failures: list[dict]
    meta: dict
    policy_events: list = field(default_factory=list)
    # with monte_carlo(trade_flows=True): {"groups": [(exporter, importer, material)],
    # "tonnes": float32 array (replications x groups x months)}; else None
    trade: dict | None = None

    # -- tables -------------------------------------------------------------------------------
    def kpi(self, name: str, scope: str = "network"):
        """The per-replication values of one KPI (a pandas Series)."""
        col = f"{name}|{scope}"
        if col not in self.per_rep.columns:
            raise KeyError(f"no KPI column {col!r}")
        return self.per_rep[col]

    def summary(self):
        """One row per KPI and scope: n, mean, sd, se, 95% CI, quantiles."""
        import pandas as pd

        rows = []
        for col in self.per_rep.columns:
            name, scope = col.split("|", 1)
            rows.append({"kpi": name, "scope": scope, **summarise(self.per_rep[col].to_numpy())})
        df = pd.DataFrame(rows)
        df.insert(0, "scenario", self.meta.get("scenario"))
        return df

    def bands(self, name: str):
        """Quantile bands of a weekly series over replications: DataFrame (date x quantile)."""
        import pandas as pd

        arr = self.series[name]
        q = np.nanquantile(arr, QUANTILES, axis=0) if len(arr) else np.full((len(QUANTILES), 0), np.nan)
        start = np.datetime64(self.meta["start"])
        weeks = np.arange(arr.shape[1])
        last_day = weeks * GRID_DAYS + GRID_DAYS - 1
        if self.meta.get("ndays"):
            last_day = np.minimum(last_day, int(self.meta["ndays"]) - 1)   # a partial last week
        dates = start + last_day.astype("timedelta64[D]")
        df = pd.DataFrame(q.T, columns=[f"q{int(p * 100):02d}" for p in QUANTILES])
        df.insert(0, "date", dates)
        df["mean"] = np.nanmean(arr, axis=0) if len(arr) else np.nan
        return df

    @property
    def reps(self) -> int:
        """Replications that completed."""
        return len(self.per_rep)

    def trade_flows(self, **select):
        """Bands over replications of the monthly trade flows (tonnes across each border by
        exporter, importer, material and month), when :func:`monte_carlo` ran with
        ``trade_flows=True``: a tidy DataFrame, columns in
        :func:`sim.flows.trade_flow_bands`, whose keywords (``by``, ``exporters``,
        ``importers``, ``materials``) select and add flows per replication first, e.g.
        ``trade_flows(by=("exporter",), exporters=["CN"], materials=magnets)``."""
        from . import flows

        if self.trade is None:
            raise ModelError("no trade flows kept: run monte_carlo(..., trade_flows=True) "
                             "(CLI: mc --trade-flows)", field="trade_flows")
        return flows.trade_flow_bands(self.trade["tonnes"], self.trade["groups"],
                                      self.meta["start"], int(self.meta["ndays"]), **select)

    def series_nbytes(self) -> int:
        """Bytes held by the reduced series (the part of memory that grows with reps)."""
        return int(sum(a.nbytes for a in self.series.values()))

    # -- saving ---------------------------------------------------------------------------------
    def save(self, out_dir: str | Path, *, plots: bool = False, table_format: str = "csv") -> Path:
        """Write replications, summary and bands (tidy tables of :mod:`sim.tables`, as CSV or
        Parquet: *table_format*), failures and the manifest (last; :mod:`sim.persist`).

        Saving draws nothing: figures come from :func:`sim.plots.plot_monte_carlo` afterwards,
        listed in the manifest with :func:`sim.persist.record_files` (the ``mc`` command does
        both); *plots* is kept for old callers and must be False."""
        from . import persist, tables

        if plots:
            raise ModelError("saving draws no figures: call sim.plots.plot_monte_carlo(res, "
                             "out_dir) after save() (and sim.persist.record_files to list "
                             "them)", field="plots")
        out = persist.begin_save(out_dir, field="out_dir")
        scen, seed = str(self.meta.get("scenario", "")), self.meta.get("seed")
        persist.write_table(tables.tidy(self.per_rep, scenario=scen, seed=seed),
                            out / "replications", table_format)
        persist.write_table(tables.tidy_summary(self.per_rep, summarise, scenario=scen,
                                                seed=seed), out / "summary", table_format)
        import pandas as pd
        bands = []
        for name in self.series:
            b = self.bands(name).melt(id_vars=["date"], var_name="statistic", value_name="value")
            b["kpi"], b["scope"] = name.split("|", 1)
            bands.append(b)
        if bands:
            b = pd.concat(bands, ignore_index=True)
            b["scenario"], b["seed"] = scen, seed
            persist.write_table(tables.coerce(b, tables.BANDS_SCHEMA), out / "bands",
                                table_format)
        if self.trade is not None:
            persist.write_table(self.trade_flows(), out / "trade_flows", table_format)
            persist.save_npz(out / "trade_flows.npz", tonnes=self.trade["tonnes"],
                             groups=np.array(self.trade["groups"], dtype=str).reshape(-1, 3))
        # arrays s0, s1, ... and their names ("fill_rate|sector:automotive") in "names"
        names = list(self.series)
        persist.save_npz(out / "series.npz", names=np.array(names, dtype=str),
                         **{f"s{i}": self.series[k] for i, k in enumerate(names)})
        persist.write_atomic(out / "failures.json", json.dumps(self.failures, indent=2))
        persist.write_atomic(out / "policy_events.json", json.dumps(self.policy_events))
        # files already in the folder count (e.g. a network map the caller drew first)
        files = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        meta = dict(self.meta)
        meta["files"] = sorted(set(files))
        persist.finish_save(out, meta)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "MonteCarloResults":
        """Read a saved result folder (refuses folders without a manifest: incomplete)."""
        from .persist import read_monte_carlo

        return cls(**read_monte_carlo(out_dir))


register_kind("monte_carlo", MonteCarloResults.load)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

def _chunks(reps: Sequence[int], size: int) -> list[tuple[int, ...]]:
    return [tuple(reps[i:i + size]) for i in range(0, len(reps), size)]


def progress_bar(total: int, enabled: bool | None, desc: str):
    """A tqdm progress bar of *total* replications labelled *desc*, or None when disabled
    (*enabled* None: shown when standard error is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="rep", smoothing=0.1)


_progress = progress_bar                # alias: the private name stays importable


def run_replications(network: Network, scenario: Scenario, reps: Sequence[int], *, seed: int,
                     executor, chunk_size: int, start=None, horizon_days=None,
                     track: tuple = (), bar=None, flows: bool = False, scopes: tuple = (),
                     series: bool = True) -> list[dict]:
    """Run replications *reps* through *executor* in chunks; return chunk outputs in rep order
    (*flows*: keep each replication's monthly trade flows; *scopes*: more KPI scopes whose
    weekly series are kept; *series* False: keep KPIs only)."""
    inputs = _Inputs(network, scenario)
    tasks = [_Task(inputs, seed, c, start, horizon_days, track, flows, tuple(scopes), series)
             for c in _chunks(list(reps), chunk_size)]
    futures = {executor.submit(run_chunk, t): j for j, t in enumerate(tasks)}
    done: list[dict | None] = [None] * len(tasks)
    for fut in cf.as_completed(futures):
        j = futures[fut]
        done[j] = fut.result()
        if bar is not None:
            bar.update(len(tasks[j].reps))
    return done  # type: ignore[return-value]


def _assemble(outputs: list[dict], meta: dict, events) -> MonteCarloResults:
    import pandas as pd

    keys = next((o["keys"] for o in outputs if o["keys"]), None) or []
    reps, rows, failures = [], [], []
    series: dict[str, list[np.ndarray]] = {}
    trade, groups = [], None
    for o in outputs:
        failures += o["failures"]
        if not o["reps"]:
            continue
        vals = o["values"]
        if o["keys"] != keys:
            index = {k: j for j, k in enumerate(o["keys"])}
            vals = np.array([[row[index[k]] if k in index else np.nan for k in keys] for row in vals])
        reps += o["reps"]
        rows.append(vals)
        for s in o["series"]:
            for k, v in s.items():
                series.setdefault(k, []).append(v)
        trade += o.get("trade", [])
        groups = groups or o.get("trade_groups")
    values = np.vstack(rows) if rows else np.zeros((0, len(keys)))
    per_rep = pd.DataFrame(values, columns=keys, index=pd.Index(reps, name="replication"))
    stacked = {k: np.vstack(v) for k, v in series.items()}
    kept = {"groups": groups, "tonnes": np.stack(trade)} if groups is not None and trade \
        else None
    return MonteCarloResults(per_rep, stacked, sorted(failures, key=lambda f: f["replication"]),
                             meta, events, kept)


def _timeline(network, scenario, start, horizon_days) -> tuple[list, int]:
    """The policy events known before time starts and the number of days of a run (the
    scenario's dated events over the run's window; no model is built). Checks the start and
    the horizon as a model would."""
    from .engine import run_window
    from .policy import scheduled_events

    sc = resolve_scenario(scenario)
    sc.check_network(network)
    first, horizon = run_window(sc, start, horizon_days)
    return scheduled_events(sc, first, horizon), int(math.ceil(horizon))


def policy_timeline(network: Network, scenario: Scenario, start=None,
                    horizon_days=None) -> tuple[list, int]:
    """The policy events known before time starts, as ``(day, kind, label)``, and the number
    of days of a run of *network* under *scenario*; a bad start or horizon raises
    :class:`ModelError` here, before anything runs."""
    return _timeline(network, scenario, start, horizon_days)


def monte_carlo(network="rare_earth_2025", scenario=None, *, reps: int = 100, seed: int = 0,
                executor: cf.Executor | None = None, workers: int | None = None,
                chunk_size: int | None = None, start=None, horizon_days: float | None = None,
                track: Iterable[tuple[str, str]] = (), target: dict[str, float] | None = None,
                max_reps: int | None = None, check_every: int = 100,
                progress: bool | None = None, trade_flows: bool = False,
                max_failure_share: float = MAX_FAILURE_SHARE, scopes: Iterable[str] = (),
                series: bool = True) -> MonteCarloResults:
    """Run independent replications and summarise them.

    Parameters
    ----------
    network, scenario:
        As for :func:`sim.simulate` (names, paths or objects).
    reps:
        Number of replications (ignored when *target* is given: see *max_reps*).
    seed:
        Root seed; replication *i* uses ``Streams(seed, replication=i)``.
    executor:
        Any :class:`concurrent.futures.Executor` (e.g. a Dask client's ``get_executor()``);
        default: a process pool with *workers* processes (default: available cores), or
        in-process for ``workers=1``.
    chunk_size:
        Replications per task (default: about 16 tasks per worker, at most 20 reps each).
    track:
        ``(node, material)`` stocks whose weekly inventory gets quantile bands, besides the
        per-sector fill rate, backorders and net inventory that always do.
    target:
        Sequential stopping: ``{"fill_rate|sector:defense": 0.005}`` runs rounds of
        *check_every* replications until every named KPI's 95% CI half-width is at or below
        its target, or *max_reps* is reached. The stopping points depend only on the
        replication indices, so the result is the same for any number of workers.
    progress:
        Show a progress bar (default: only when stderr is a terminal).
    trade_flows:
        Keep each replication's monthly trade flows (tonnes across each border by exporter,
        importer and material, :func:`sim.flows.trade_flows`), reduced in the worker to a
        float32 array of (exporter, importer, material) x months, about 8 KB a replication
        on the default network; :meth:`MonteCarloResults.trade_flows` gives their bands.
    max_failure_share:
        The share of replications that may fail (raise inside the run) before the whole run
        counts as failed (default 0.5). Failed replications are listed in ``failures`` and
        counted in ``meta``; when all of them fail, or more than this share, the run raises
        :class:`~sim.errors.RunFailedError` quoting the first failure, and nothing is saved.
    scopes:
        More KPI scopes whose weekly fill rate, backorders and net inventory get quantile
        bands, besides the sectors' (and ``civil``'s) that always do: ``"country:US"``,
        ``"node:us_auto"``, ``"network"``, ... (each must hold demand in the network). They
        are reduced in the worker, saved and loaded with the results, and
        :meth:`MonteCarloResults.bands` takes them (``bands("fill_rate|country:US")``).
    series:
        Keep weekly series at all (default). ``False`` keeps KPIs only: a leaner run for
        studies that compare KPIs (no bands; *track* and *scopes* are then ignored).

    Returns
    -------
    MonteCarloResults
    """
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ModelError(f"must be a positive integer, got {reps!r}", field="reps")
    check_int(seed, "seed", 0, maximum=MAX_SEED)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ModelError(f"must be a positive integer, got {workers!r}", field="workers")
    check_run_options(reps=reps, workers=workers, chunk_size=chunk_size, max_reps=max_reps,
                      check_every=check_every,
                      target=target, max_failure_share=max_failure_share, executor=executor)
    check_horizon(horizon_days)
    net = load_network(network)
    sc = resolve_scenario(scenario)
    sc.check_network(net)
    track = check_track(track)
    # the run's start and horizon are checked before any work
    events, ndays = _timeline(net, sc, start, horizon_days)
    held = {(l.dst, l.material) for l in net.lanes} | {(l.src, l.material) for l in net.lanes}
    for n in net.nodes.values():
        held |= {(n.id, m) for m in (*n.stocks, *n.production, *n.demand)}
    for node, mat in track:
        if node not in net.nodes:
            raise ModelError(f"node {node!r} is not in network '{net.name}'", field="track")
        if (node, mat) not in held:
            raise ModelError(f"node {node!r} holds no {mat!r}", field="track")
    scopes = check_scopes(scopes, net)
    owned = None
    if executor is None:
        executor, owned = make_executor(workers)
    n_workers = workers or getattr(executor, "_max_workers", None) or available_cores()
    if target:
        if max_reps is None:
            max_reps = 10_000
        total = max_reps
    else:
        total = reps
    if chunk_size is None:
        chunk_size = default_chunk_size(min(total, check_every if target else total), n_workers)
    t0 = time.perf_counter()
    bar = _progress(total, progress, sc.name)
    outputs: list[dict] = []
    reached = None
    widths: dict = {}
    try:
        if not target:
            outputs = run_replications(net, sc, range(reps), seed=seed, executor=executor,
                                       chunk_size=chunk_size, start=start,
                                       horizon_days=horizon_days, track=track, bar=bar,
                                       flows=trade_flows, scopes=scopes, series=series)
        else:
            done = 0
            while done < total:
                nxt = min(total, done + check_every)
                outputs += run_replications(net, sc, range(done, nxt), seed=seed,
                                            executor=executor, chunk_size=chunk_size, start=start,
                                            horizon_days=horizon_days, track=track, bar=bar,
                                            flows=trade_flows, scopes=scopes, series=series)
                done = nxt
                partial = _assemble(outputs, {}, [])
                if partial.per_rep.empty:       # no replication done: say why, not "unknown KPI"
                    check_failures(partial.failures, done, max_failure_share, f"scenario '{sc.name}'")
                missing = [k for k in target if k not in partial.per_rep.columns]
                if missing:
                    raise ModelError(f"unknown KPI column(s) {missing}; columns look like "
                                     f"'fill_rate|sector:defense'", field="target")
                widths = {k: summarise(partial.per_rep[k].to_numpy()).get("ci95_halfwidth", math.inf)
                          for k in target}
                if len(partial.per_rep) >= 2 and all(widths[k] <= v for k, v in target.items()):
                    reached = widths
                    break
    finally:
        release(executor, owned, bar)
    elapsed = time.perf_counter() - t0
    from .engine import DEFAULT_START
    from .results import package_versions
    meta = {
        "kind": "monte_carlo", "network": net.name, "network_sha256": net.digest(),
        "scenario": sc.name, "scenario_sha256": sc.digest(), "seed": seed,
        "reps_requested": total, "workers": n_workers, "chunk_size": chunk_size,
        "start": str(start or sc.start or DEFAULT_START), "horizon_days": horizon_days,
        "target": target, "target_reached": (reached is not None) if target else None,
        "target_halfwidths": widths if target else None, "elapsed_seconds": elapsed,
        # time spent inside the tasks, summed over workers: against elapsed x workers it tells
        # slow replications apart from workers left waiting by the executor
        "task_seconds": sum(o["seconds"] for o in outputs),
        "executor": type(executor).__name__, "versions": package_versions(),
        "ndays": ndays,
        "git_commit": git_commit(), "quantiles": list(QUANTILES), "grid_days": GRID_DAYS,
        "scopes": list(scopes), "series": bool(series),
    }
    res = _assemble(outputs, meta, events)
    res.meta["reps_used"] = res.reps + len(res.failures)
    res.meta["failures"] = len(res.failures)
    res.meta["max_failure_share"] = max_failure_share
    check_failures(res.failures, res.meta["reps_used"], max_failure_share, f"scenario '{sc.name}'")
    return res



def check_failures(failures: list[dict], attempted: int, max_share: float, what: str) -> None:
    """Raise :class:`RunFailedError` when every one of *attempted* replications failed, or more
    than *max_share* of them; the one-line message quotes the first failure."""
    n = len(failures)
    if n == 0 or (n < attempted and n <= max_share * attempted):
        return
    first = failures[0]
    text = str(first.get("error", "")).strip().splitlines()
    reason = "all" if n >= attempted else f"more than {max_share:.0%} of the"
    raise RunFailedError(f"{n} of {attempted} replications failed ({reason} replications, "
                         f"max_failure_share={max_share:g}); the first, replication "
                         f"{first.get('replication')}: {text[0] if text else 'unknown error'}",
                         where=what)


MAX_REPS = 100_000_000       # replications of one run or sweep point (a sanity bound)
MAX_WORKERS = 4096           # local worker processes


def check_run_options(*, reps=1, workers=None, chunk_size=None, max_reps=None, check_every=100,
                      target=None, max_failure_share=MAX_FAILURE_SHARE, executor=None) -> None:
    """Check the options of :func:`monte_carlo` (and of sweeps) before any work starts;
    raise :class:`ModelError` naming the first bad one."""
    check_int(reps, "reps", 1, maximum=MAX_REPS)
    check_int(workers, "workers", 1, allow_none=True, maximum=MAX_WORKERS)
    check_int(chunk_size, "chunk_size", 1, allow_none=True, maximum=MAX_REPS)
    check_int(max_reps, "max_reps", 1, allow_none=True, maximum=MAX_REPS)
    check_int(check_every, "check_every", 1)
    check_number(max_failure_share, "max_failure_share", 0, 1)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ModelError(f"must be a concurrent.futures.Executor, got {type(executor).__name__}",
                         field="executor")
    if target is None:
        return
    if not isinstance(target, dict):
        raise ModelError(f"must be a dict {{'kpi|scope': halfwidth}}, got {target!r}",
                         field="target")
    for key, width in target.items():
        if not isinstance(key, str) or "|" not in key:
            raise ModelError(f"keys must look like 'fill_rate|sector:defense', got {key!r}",
                             field="target")
        check_number(width, f"target[{key!r}]", 0, strict_low=True)


def check_track(track) -> tuple[tuple[str, str], ...]:
    """*track* as a tuple of ``(node, material)`` string pairs, or :class:`ModelError`."""
    if isinstance(track, (str, bytes)):
        raise ModelError(f"must be a list of (node, material) pairs, got {track!r}", field="track")
    try:
        pairs = tuple(tuple(t) for t in track)
    except TypeError:
        raise ModelError(f"must be a list of (node, material) pairs, got {track!r}",
                         field="track") from None
    for t in pairs:
        if len(t) != 2 or not all(isinstance(x, str) for x in t):
            raise ModelError(f"each item must be a (node, material) pair of names, got {t!r}",
                             field="track")
    return pairs


def check_scopes(scopes, network: Network) -> tuple[str, ...]:
    """*scopes* as a tuple of KPI scope names that hold demand in *network* (``network``,
    ``civil``, ``sector:<s>``, ``country:<c>``, ``node:<id>``), or :class:`ModelError` naming
    the first that does not."""
    if isinstance(scopes, (str, bytes)):
        raise ModelError(f"must be a list of scopes like 'country:US', got {scopes!r}",
                         field="scopes")
    try:
        items = tuple(scopes)
    except TypeError:
        raise ModelError(f"must be a list of scopes like 'country:US', got {scopes!r}",
                         field="scopes") from None
    users = [n for n in network.nodes.values() if n.demand]
    held = {"network"} if users else set()
    if any(n.sector == "defense" for n in users) and any(n.sector != "defense" for n in users):
        held.add("civil")
    for n in users:
        held |= {f"sector:{n.sector}", f"country:{n.country}", f"node:{n.id}"}
    for s in items:
        if not isinstance(s, str):
            raise ModelError(f"each scope must be a name like 'country:US', got {s!r}",
                             field="scopes")
        if s not in held:
            kinds = ("sector:", "country:", "node:")
            what = "no demand" if s.startswith(kinds) else "not a scope (network, civil, " \
                "sector:<s>, country:<c> or node:<id>)"
            raise ModelError(f"{s!r}: {what} in network '{network.name}'", field="scopes")
    return tuple(dict.fromkeys(items))


def scope_series(run, scopes: Sequence[str]) -> np.ndarray:
    """Weekly fill rate, end-of-week backorders and net inventory of each KPI scope in
    *scopes* (:meth:`sim.results.Run.scope_sums`), as a ``(3 * scopes, weeks)`` array: the
    three series of the first scope, then of the next (the series Monte Carlo keeps per
    sector)."""
    sums = run.scope_sums(scopes)
    weekly = _week_grid(sums[:, :2], "sum")
    ends = _week_grid(sums[:, 2:], "end")
    dem, fil, bo, inv = weekly[:, 0], weekly[:, 1], ends[:, 0], ends[:, 1]
    fill_rate = np.where(dem > 0, fil / np.where(dem > 0, dem, 1), 1.0)
    return np.stack((fill_rate, bo, inv - bo), axis=1).reshape(-1, weekly.shape[-1])


def scoped_series(run, scopes: Sequence[str], kept=()) -> dict[str, np.ndarray]:
    """The weekly series of *scopes* (:func:`scope_series`) keyed ``"kind|scope"`` as float32,
    leaving out scopes whose series are in *kept* already (the sectors' always are)."""
    extra = [s for s in scopes if f"fill_rate|{s}" not in kept]
    if not extra:
        return {}
    rows = scope_series(run, extra).astype(np.float32)
    keys = [f"{kind}|{s}" for s in extra for kind in _SCOPE_SERIES]
    return dict(zip(keys, rows))


def default_chunk_size(reps: int, workers: int) -> int:
    """Replications per task: about 16 tasks per worker (so the last round leaves workers idle
    for at most a few replications), at most 20 (results stream back as they finish)."""
    return max(1, min(20, math.ceil(reps / (16 * max(1, workers)))))


def check_horizon(horizon_days) -> None:
    """Raise :class:`ModelError` unless *horizon_days* is None or a positive number of days up
    to :data:`~sim.errors.MAX_HORIZON_DAYS` (:func:`sim.errors.check_horizon_days`)."""
    if horizon_days is not None:
        check_horizon_days(horizon_days)


# ---------------------------------------------------------------------------------------------
# Paired comparison (common random numbers)
# ---------------------------------------------------------------------------------------------

def compare_scenarios(network, scenarios: Sequence, *, reps: int = 100, seed: int = 0,
                      **kwargs) -> tuple[list[MonteCarloResults], Any]:
    """Run several scenarios with common random numbers and compare each to the first."""
    import pandas as pd

    results = [monte_carlo(network, s, reps=reps, seed=seed, **kwargs) for s in scenarios]
    diffs = [paired_comparison(results[0], r) for r in results[1:]]
    return results, (pd.concat(diffs, ignore_index=True) if diffs else pd.DataFrame())


def digest_of(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable object (for manifests)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
