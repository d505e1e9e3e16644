"""Resilience metrics and the time-to-survive / time-to-recover stress test.

Two parts, both computed from recorded series with numpy after the runs (nothing here touches
the engine's hot loop):

Resilience triangle (:func:`triangle`)
    From any performance series Q(t) (daily or weekly; a numpy array with its dates) and a
    disruption date t0 (Bruneau et al. 2003; Cimellaro, Reinhorn and Bruneau 2010), with q the
    performance as a share of its normal level ``baseline``:

    * ``trough`` = min q over [t0, end), ``trough_depth`` = 1 - trough;
    * ``time_to_trough_days``: from t0 to the first sample at the trough;
    * ``time_to_recover_days``: from t0 to the first sample at or after the trough from which q
      stays at or above ``threshold`` for a dwell window (the whole window observed); 0 when q
      never falls below the threshold; ``inf`` when it does not recover within the series;
    * ``loss_area_days`` = integral of (1 - q) dt from t0 to recovery (to the end of the series
      when it does not recover): the triangle's area, in days of total loss (RL / 100 with Q in
      percent);
    * ``normalised_resilience`` = integral of q dt over [t0, end) divided by its length.

    A sample stands for the period from its date to the next one (a step function), so a daily
    series integrates in days and a weekly one in weeks of seven days.
    :func:`prob_below` gives P(fill below x for more than y days) over replications, with a
    Wilson score interval (:func:`wilson`).

Stress test (:func:`stress_test`; Simchi-Levi et al., *Interfaces* 45(5), 2015)
    Each :class:`Disruption` (a supply node, every supply node of a country, or the
    cross-border lanes of one exporter country and material) is made total from a date for a
    duration: production of the nodes stops (scenario ``outages``) and their outgoing lanes
    close (``lane_closures`` with queued orders rerouted), built into a copy of the scenario
    through :meth:`Scenario.to_dict` / :meth:`Scenario.from_dict`. Each replication *i* runs the
    undisrupted scenario and every disruption on the same random streams (common random
    numbers), so the difference is the disruption's effect. Per downstream sector (and the
    whole network):

    * TTS (time to survive) = days from the disruption until demand first goes unmet beyond
      what the undisrupted run left unmet (cumulative excess over ``UNMET_TOLERANCE_T``), or,
      with ``survive_fill``, until the trailing fill rate first falls below it; ``inf`` if never;
    * TTR (time to recover) = the triangle's ``time_to_recover_days`` of the trailing fill rate
      as a share of the undisrupted run's (capped at 1): back at or above ``threshold`` for
      ``dwell_days``;
    * P(TTS < TTR) over replications with a Wilson interval, the unmet tonnes and value
      (excess over the undisrupted run) from the disruption to the end of the run, the triangle
      metrics;
    * ``days_below``: the longest stretch with the fill rate below ``threshold`` of the
      undisrupted run's, so P(fill below x% for more than y days) is
      :meth:`StressResults.prob_below` (x = the threshold);
    * a ranking of disruptions by their performance impact PI (mean excess unmet value, all
      sectors) as a risk exposure index PI / max PI (worst = 1; all 0 when no disruption
      leaves demand unmet).

Replication *i* of every disruption uses ``Streams(seed, replication=i)``, so the numbers do
not depend on the executor or the number of workers.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .network import parse_date

__all__ = [
    "Triangle", "triangle", "triangles", "prob_below", "longest_run_below", "wilson", "rolling_fill_rate",
    "Disruption", "default_disruptions", "parse_targets", "disrupted_scenario", "stress_test",
    "StressResults", "STRESS_KPIS", "DEFAULT_THRESHOLD", "DEFAULT_DWELL_DAYS",
    "DEFAULT_WINDOW_DAYS", "DEFAULT_AFTER_DAYS", "UNMET_TOLERANCE_T",
]

Z95 = 1.959963984540054
DEFAULT_THRESHOLD = 0.95      # recovered: at least 95% of the undisrupted performance
DEFAULT_DWELL_DAYS = 28       # ... for four weeks in a row (one weekly call-off can pass by)
DEFAULT_WINDOW_DAYS = 7       # trailing window of the fill rate (one demand day of few is noise)
DEFAULT_AFTER_DAYS = 365      # the run goes on this long after the disruption ends
# Demand counts as unmet once the cumulative excess over the undisrupted run passes this many
# tonnes: far below any order size, far above floating-point noise in summed tonnes.
UNMET_TOLERANCE_T = 1e-6
# per (disruption, replication, scope), in this order
STRESS_KPIS = ("tts_days", "ttr_days", "tts_lt_ttr", "excess_unmet_t", "excess_unmet_usd",
               "unmet_t", "trough_depth", "time_to_trough_days", "loss_area_days",
               "normalised_resilience", "days_below")
_TIME_KPIS = ("tts_days", "ttr_days")          # may be inf (never / not recovered)
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


# ---------------------------------------------------------------------------------------------
# Resilience triangle
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Triangle:
    """Resilience-triangle metrics of one performance series (see the module docstring)."""

    trough: float
    trough_depth: float
    time_to_trough_days: float
    time_to_recover_days: float
    recovered: bool
    loss_area_days: float
    normalised_resilience: float

    def as_dict(self) -> dict:
        """The metrics as a plain dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _as_days(dates, n: int) -> np.ndarray:
    """Day numbers (float) of *dates* (datetime64, dates, ISO strings), or 0..n-1 when None."""
    if dates is None:
        return np.arange(n, dtype=float)
    try:
        d = np.asarray(dates, dtype="datetime64[D]")
    except (TypeError, ValueError):
        raise ModelError(f"must be dates (datetime64, date or YYYY-MM-DD), got {dates!r:.60}",
                         field="dates") from None
    if d.shape != (n,):
        raise ModelError(f"must have one date per value ({n}), got shape {d.shape}", field="dates")
    days = (d - d[0]).astype(float) if n else d.astype(float)
    if n > 1 and not np.all(np.diff(days) > 0):
        raise ModelError("must be strictly increasing", field="dates")
    return days


def _step_lengths(days: np.ndarray) -> np.ndarray:
    """Length in days of the period each sample stands for: up to the next sample; the last
    one as long as the one before (one day for a single sample)."""
    if len(days) == 0:
        return days
    steps = np.diff(days)
    last = steps[-1] if len(steps) else 1.0
    return np.append(steps, last)


def triangle(values, dates=None, *, start=None, baseline: float = 1.0,
             threshold: float = DEFAULT_THRESHOLD, dwell_days: float = DEFAULT_DWELL_DAYS
             ) -> Triangle:
    """Resilience-triangle metrics of a performance series.

    Parameters
    ----------
    values:
        Performance Q per sample (e.g. a fill rate), a 1-D array without NaN.
    dates:
        The date of each sample (daily or weekly; strictly increasing), or None for days
        0, 1, 2, ...
    start:
        The disruption date (or day number when *dates* is None); default: the first sample.
    baseline:
        Normal performance: q = Q / baseline (default 1, Q already a share of normal).
    threshold:
        Recovery level of q (0 < threshold <= 1).
    dwell_days:
        How long q must stay at or above *threshold* to count as recovered (>= 0; a sample
        counts for the period up to the next sample).
    """
    q = np.asarray(values, dtype=float)
    if q.ndim != 1 or len(q) == 0:
        raise ModelError(f"must be a non-empty 1-D series, got shape {q.shape}", field="values")
    if not np.all(np.isfinite(q)):
        raise ModelError("holds NaN or infinite values", field="values")
    if not (isinstance(baseline, (int, float)) and math.isfinite(baseline) and baseline > 0):
        raise ModelError(f"must be a positive number, got {baseline!r}", field="baseline")
    if not (0 < threshold <= 1):
        raise ModelError(f"must be in (0, 1], got {threshold!r}", field="threshold")
    if not (dwell_days >= 0 and math.isfinite(dwell_days)):
        raise ModelError(f"must be a number of days >= 0, got {dwell_days!r}", field="dwell_days")
    q = q / baseline
    days = _as_days(dates, len(q))
    if start is None:
        t0 = days[0]
    elif dates is None:
        t0 = float(start)
    else:
        t0 = float((np.datetime64(start, "D") - np.asarray(dates, dtype="datetime64[D]")[0])
                   .astype(float))
    i0 = int(np.searchsorted(days, t0, side="left"))
    if i0 >= len(q):
        raise ModelError(f"the disruption ({start}) is after the last sample", field="start")
    steps = _step_lengths(days)
    seg, seg_days, seg_steps = q[i0:], days[i0:], steps[i0:]
    k = int(np.argmin(seg))
    trough = float(seg[k])
    rec = _recovery_index(seg, seg_steps, k, threshold, dwell_days)
    recovered = rec is not None
    if trough >= threshold:
        ttr, end = 0.0, 0
    elif recovered:
        ttr, end = float(seg_days[rec] - t0), rec
    else:
        ttr, end = math.inf, len(seg)
    loss = float(np.sum((1.0 - seg[:end]) * seg_steps[:end]))
    span = float(np.sum(seg_steps))
    return Triangle(trough=trough, trough_depth=1.0 - trough,
                    time_to_trough_days=float(seg_days[k] - t0), time_to_recover_days=ttr,
                    recovered=recovered or trough >= threshold, loss_area_days=loss,
                    normalised_resilience=float(np.sum(seg * seg_steps)) / span)


def _recovery_index(q: np.ndarray, steps: np.ndarray, trough: int, threshold: float,
                    dwell_days: float) -> int | None:
    """First index at or after *trough* from which q stays >= threshold for *dwell_days*
    (the samples covering the whole dwell window observed), or None."""
    ok = q >= threshold
    ends = np.cumsum(steps)           # end of each sample's period, from the segment's start
    n = len(q)
    k = trough
    while k < n:
        if not ok[k]:
            k += 1
            continue
        begin = ends[k] - steps[k]
        # samples needed: up to the one whose period reaches begin + dwell
        need = int(np.searchsorted(ends, begin + dwell_days - 1e-9, side="left"))
        if need >= n:
            return None              # the window runs past the series: not observed
        bad = np.flatnonzero(~ok[k:need + 1])
        if len(bad) == 0:
            return k
        k += int(bad[0]) + 1
    return None


def triangles(series, dates=None, **kwargs):
    """:func:`triangle` of each row of a (replications x samples) array, e.g. the weekly fill
    rates of :attr:`sim.MonteCarloResults.series`: a DataFrame, one row per replication
    (index), one column per metric; *kwargs* as for :func:`triangle`."""
    import pandas as pd

    arr = np.asarray(series, dtype=float)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ModelError(f"must be a (replications x samples) array, got shape {arr.shape}",
                         field="series")
    df = pd.DataFrame([triangle(row, dates, **kwargs).as_dict() for row in arr])
    df.index.name = "replication"
    return df


def longest_run_below(values, level: float, dates=None) -> float:
    """Longest stretch, in days, over which *values* stay below *level* (consecutive samples,
    each standing for the period up to the next one)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ModelError(f"must be a 1-D series, got shape {v.shape}", field="values")
    steps = _step_lengths(_as_days(dates, len(v)))
    best = run = 0.0
    for below, s in zip(v < level, steps):
        run = run + s if below else 0.0
        best = max(best, run)
    return float(best)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """A proportion k/n with its Wilson score interval: ``(p, low, high)``."""
    if not (isinstance(n, (int, np.integer)) and n > 0):
        raise ModelError(f"needs at least one trial, got n={n!r}", field="n")
    if not 0 <= k <= n:
        raise ModelError(f"must be between 0 and n={n}, got {k!r}", field="k")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return p, max(0.0, mid - half), min(1.0, mid + half)


def prob_below(series, level: float, min_days: float, dates=None) -> tuple[float, float, float]:
    """P(the series stays below *level* for more than *min_days* in a row), over replications:
    *series* is a (replications x samples) array (e.g. weekly fill rates from
    :attr:`sim.MonteCarloResults.series`); returns ``(p, low, high)`` with the Wilson 95%
    interval."""
    arr = np.asarray(series, dtype=float)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ModelError(f"must be a (replications x samples) array, got shape {arr.shape}",
                         field="series")
    if not (min_days >= 0 and math.isfinite(min_days)):
        raise ModelError(f"must be a number of days >= 0, got {min_days!r}", field="min_days")
    hits = sum(longest_run_below(row, level, dates) > min_days for row in arr)
    return wilson(int(hits), arr.shape[0])


def rolling_fill_rate(demand: np.ndarray, filled: np.ndarray, window: int) -> np.ndarray:
    """Fill rate over a trailing window of *window* samples (1 where there was no demand)."""
    k = np.ones(int(window))
    d = np.convolve(demand, k)[: len(demand)]
    f = np.convolve(filled, k)[: len(filled)]
    return np.where(d > 1e-12, f / np.where(d > 1e-12, d, 1.0), 1.0)


# ---------------------------------------------------------------------------------------------
# Disruptions
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Disruption:
    """A total disruption target: the nodes whose production stops and the lanes that close.

    ``key`` names it: ``node:<id>``, ``country:<code>`` (every supply node of the country) or
    ``lanes:<exporter>/<material>`` (the cross-border lanes of one exporter and material)."""

    key: str
    kind: str
    label: str
    nodes: tuple[str, ...] = ()
    lanes: tuple[str, ...] = ()


def _supply_nodes(network) -> list[str]:
    """Nodes with at least one outgoing lane (mines, refiners, magnet makers, stockpiles)."""
    out = {l.src for l in network.lanes}
    return sorted(n for n in network.nodes if n in out)


def _node_disruption(network, nid: str) -> Disruption:
    from .labels import node_label

    lanes = tuple(sorted(l.id for l in network.lanes if l.src == nid))
    stops = (nid,) if network.nodes[nid].production else ()
    return Disruption(f"node:{nid}", "node", node_label(nid, network), stops, lanes)


def _country_disruption(network, code: str) -> Disruption:
    from .labels import country_label

    nodes = [n for n in _supply_nodes(network) if network.nodes[n].country == code]
    stops = tuple(n for n in nodes if network.nodes[n].production)
    lanes = tuple(sorted(l.id for l in network.lanes if l.src in nodes))
    return Disruption(f"country:{code}", "country", f"all of {country_label(code)}", stops, lanes)


def _lane_groups(network) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for l in network.lanes:
        src, dst = network.nodes[l.src].country, network.nodes[l.dst].country
        if src != dst:
            groups.setdefault((src, l.material), []).append(l.id)
    return dict(sorted(groups.items()))


def _lane_disruption(network, code: str, material: str, lanes) -> Disruption:
    from .labels import country_label, material_label

    return Disruption(f"lanes:{code}/{material}", "lanes",
                      f"{material_label(material)} exports of {country_label(code)}", (),
                      tuple(sorted(lanes)))


def default_disruptions(network) -> list[Disruption]:
    """Every supply node, every country with supply nodes, and the cross-border lane groups by
    exporter country and material, in that order (each sorted)."""
    from .network import load_network

    net = load_network(network)
    out = [_node_disruption(net, n) for n in _supply_nodes(net)]
    countries = sorted({net.nodes[n].country for n in _supply_nodes(net)})
    out += [_country_disruption(net, c) for c in countries]
    out += [_lane_disruption(net, c, m, ids) for (c, m), ids in _lane_groups(net).items()]
    return out


def parse_targets(network, targets=None) -> list[Disruption]:
    """The disruptions named by *targets*: ``None`` or ``"all"`` (the default set of
    :func:`default_disruptions`), ``"nodes"``, ``"countries"``, ``"lanes"`` (one family of it),
    ``"node:<id>"``, ``"country:<code>"``, ``"lanes:<exporter>/<material>"``, or
    :class:`Disruption` objects. Duplicates are dropped; an unknown name is a
    :class:`ModelError` naming it."""
    from .network import load_network

    net = load_network(network)
    if targets is None or isinstance(targets, (str, Disruption)):
        targets = ["all"] if targets is None else [targets]
    default = default_disruptions(net)
    out: dict[str, Disruption] = {}
    supply = _supply_nodes(net)
    groups = _lane_groups(net)
    for t in targets:
        if isinstance(t, Disruption):
            out.setdefault(t.key, t)
            continue
        if not isinstance(t, str) or not t.strip():
            raise ModelError(f"must be a target name such as 'node:ID', got {t!r}",
                             field="targets")
        t = t.strip()
        kind, sep, name = t.partition(":")
        if not sep and t in ("all", "nodes", "countries", "lanes"):
            family = {"nodes": "node", "countries": "country", "lanes": "lanes"}.get(t)
            for d in default:
                if family is None or d.kind == family:
                    out.setdefault(d.key, d)
        elif kind == "node":
            if name not in net.nodes:
                raise ModelError(f"node {name!r} is not in network '{net.name}'", field="targets")
            if name not in supply:
                raise ModelError(f"node {name!r} supplies no one (no outgoing lanes): nothing to "
                                 "disrupt", field="targets")
            out.setdefault(t, _node_disruption(net, name))
        elif kind == "country":
            if not any(net.nodes[n].country == name for n in supply):
                have = sorted({net.nodes[n].country for n in supply})
                raise ModelError(f"country {name!r} has no supply node in network '{net.name}' "
                                 f"(countries with one: {', '.join(have)})", field="targets")
            out.setdefault(t, _country_disruption(net, name))
        elif kind == "lanes":
            code, sep2, mat = name.partition("/")
            if not sep2 or (code, mat) not in groups:
                have = ", ".join(f"{c}/{m}" for c, m in groups)
                raise ModelError(f"no cross-border lanes {name!r} (EXPORTER/MATERIAL) in network "
                                 f"'{net.name}'; there are: {have}", field="targets")
            out.setdefault(t, _lane_disruption(net, code, mat, groups[(code, mat)]))
        else:
            raise ModelError(f"unknown target {t!r}: give all, nodes, countries, lanes, node:ID, "
                             "country:CODE or lanes:EXPORTER/MATERIAL", field="targets")
    return list(out.values())


def disrupted_scenario(scenario, disruption: Disruption, start, duration_days: float):
    """A copy of *scenario* (a :class:`~sim.scenario.Scenario`) with *disruption* in force from
    *start* for *duration_days*: an outage of each of its producing nodes and a closure of each
    of its lanes (queued orders rerouted), appended to the scenario's own, built through
    :meth:`Scenario.to_dict` and :meth:`Scenario.from_dict`."""
    from .scenario import Scenario

    start = parse_date(start, "", "start")
    if not (isinstance(duration_days, (int, float)) and math.isfinite(duration_days)
            and duration_days > 0):
        raise ModelError(f"must be a positive number of days, got {duration_days!r}",
                         field="duration_days")
    data = scenario.to_dict()
    head = dict(data.get("scenario", {}))
    head["name"] = f"{scenario.name} [{disruption.key} down {duration_days:g} d]"
    data["scenario"] = head
    data["outages"] = list(data.get("outages", [])) + [
        {"node": n, "start": start, "duration_days": float(duration_days)}
        for n in disruption.nodes]
    data["lane_closures"] = list(data.get("lane_closures", [])) + [
        {"lane": l, "start": start, "duration_days": float(duration_days),
         "queued_orders": "reroute"} for l in disruption.lanes]
    return Scenario.from_dict(data, file=scenario.file)


def _check_round_trip(scenario) -> None:
    """A scenario built as dataclasses in Python has no TOML structure to extend: say so
    rather than stress-test something else."""
    from .scenario import Scenario

    again = Scenario.from_dict(scenario.to_dict(), file=scenario.file)
    if again != scenario:
        raise ModelError(f"scenario {scenario.name!r} was built in Python without its TOML "
                         "structure; build it with Scenario.from_dict or load_scenario",
                         field="scenario")


# ---------------------------------------------------------------------------------------------
# One replication of every disruption (runs in the worker)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _StressTask:
    network: Any
    base: Any                     # the undisrupted scenario
    scenarios: tuple              # (key, disrupted scenario), in target order
    seed: int
    replication: int
    horizon_days: float
    day0: int                     # the disruption's day of the run
    threshold: float
    dwell_days: float
    window_days: int
    survive_fill: float | None


def _daily_by_scope(run, prices: dict) -> dict[str, np.ndarray]:
    """Daily demand, filled-on-arrival and unmet value (USD) per scope (``sector:<s>`` and
    ``network``) as (3, ndays) arrays, from the run's customer demand records."""
    nd = run.ndays
    out: dict[str, np.ndarray] = {}
    total = np.zeros((3, nd))
    for d in run.demand:
        if not len(d.T):
            continue
        idx = np.minimum(np.floor(d.T).astype(np.int64), nd - 1)
        dem = np.bincount(idx, weights=d.D, minlength=nd)[:nd]
        fil = np.bincount(idx, weights=d.filled, minlength=nd)[:nd]
        arr = np.stack((dem, fil, (dem - fil) * prices.get(d.material, 0.0)))
        key = f"sector:{d.sector}"
        out[key] = out[key] + arr if key in out else arr
        total += arr
    out["network"] = total
    return out


def _scope_metrics(dis: np.ndarray, base: np.ndarray, task: _StressTask) -> list[float]:
    """The :data:`STRESS_KPIS` of one scope, from day ``day0`` on."""
    t0 = task.day0
    q = rolling_fill_rate(dis[0], dis[1], task.window_days)
    qb = rolling_fill_rate(base[0], base[1], task.window_days)
    rel = np.minimum(np.where(qb > 1e-12, q / np.where(qb > 1e-12, qb, 1.0), 1.0), 1.0)[t0:]
    unmet = (dis[0] - dis[1])[t0:]
    unmet_b = (base[0] - base[1])[t0:]
    if task.survive_fill is None:
        hit = np.flatnonzero(np.cumsum(unmet) - np.cumsum(unmet_b) > UNMET_TOLERANCE_T)
    else:
        hit = np.flatnonzero(q[t0:] < task.survive_fill)
    tts = float(hit[0]) if len(hit) else math.inf
    tri = triangle(rel, threshold=task.threshold, dwell_days=task.dwell_days)
    ttr = tri.time_to_recover_days
    return [tts, ttr, float(tts < ttr), float(unmet.sum() - unmet_b.sum()),
            float(dis[2, t0:].sum() - base[2, t0:].sum()), float(unmet.sum()),
            tri.trough_depth, tri.time_to_trough_days, tri.loss_area_days,
            tri.normalised_resilience, longest_run_below(rel, task.threshold)]


def run_stress_replication(task: _StressTask) -> dict:
    """Run one replication of the undisrupted scenario and of every disruption on the same
    random streams; return its metrics (``rows``: (key, scope, kpi values)) or its failure."""
    from .simulation import simulate

    t = time.perf_counter()
    prices = {m: float(mat.price_usd_per_t) for m, mat in task.network.materials.items()}
    try:
        def daily(sc):
            run = simulate(task.network, sc, seed=task.seed, replication=task.replication,
                           horizon_days=task.horizon_days)
            return _daily_by_scope(run, prices)

        base = daily(task.base)
        rows = []
        for key, sc in task.scenarios:
            dis = daily(sc)
            for scope in sorted(base):
                if scope in dis:
                    rows.append((key, scope, _scope_metrics(dis[scope], base[scope], task)))
        return {"replication": task.replication, "rows": rows, "failure": None,
                "seconds": time.perf_counter() - t}
    except Exception as exc:      # recorded, never dropped: the run fails if too many do
        import traceback
        return {"replication": task.replication, "rows": [], "seconds": time.perf_counter() - t,
                "failure": {"replication": task.replication, "seed": task.seed,
                            "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc(limit=6)}}


# ---------------------------------------------------------------------------------------------
# The stress test
# ---------------------------------------------------------------------------------------------

def _check_number(value, name: str, *, low: float, high: float = math.inf,
                  low_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not ok or not math.isfinite(v) or v < low or (low_open and v == low) or v > high:
        side = ">" if low_open else ">="
        raise ModelError(f"must be a number {side} {low:g}" +
                         (f" and <= {high:g}" if math.isfinite(high) else "") +
                         f", got {value!r}", field=name)
    return v


def stress_test(network="rare_earth_2025", scenario=None, *, start, duration_days: float,
                targets=None, reps: int = 20, seed: int = 0, plan=None,
                threshold: float = DEFAULT_THRESHOLD, dwell_days: float = DEFAULT_DWELL_DAYS,
                window_days: int = DEFAULT_WINDOW_DAYS, after_days: float = DEFAULT_AFTER_DAYS,
                survive_fill: float | None = None, executor=None, workers: int | None = None,
                progress: bool | None = None, max_failure_share: float | None = None
                ) -> "StressResults":
    """Time-to-survive / time-to-recover stress test (see the module docstring).

    Parameters
    ----------
    network, scenario:
        What :func:`sim.simulate` takes (names, paths or objects); the scenario must have its
        TOML structure (loaded, or built with :meth:`Scenario.from_dict`).
    start, duration_days:
        The date each disruption starts and how long it lasts.
    targets:
        What to disrupt (see :func:`parse_targets`; default: every supply node, country and
        cross-border lane group).
    reps, seed:
        Replications (each disruption and the undisrupted run share replication *i*'s
        streams) and root seed.
    plan:
        A plan (name or object of :mod:`sim.plans`) applied to the network and scenario once,
        before anything runs.
    threshold, dwell_days, window_days:
        Recovery: the trailing *window_days* fill rate back to at least *threshold* of the
        undisrupted run's for *dwell_days*.
    after_days:
        The run ends this many days after the disruption does.
    survive_fill:
        TTS by a fill threshold instead of the first unmet demand: the first day the trailing
        fill rate is below it.
    executor, workers:
        A :class:`concurrent.futures.Executor`, or the number of worker processes for
        :func:`sim.experiment.make_executor` (default: all cores). One task per replication
        runs the undisrupted scenario and every disruption.
    progress:
        Show a progress bar (default: when stderr is a terminal).
    max_failure_share:
        Above this share of failed replications the test raises
        :class:`~sim.errors.RunFailedError` (default that of :func:`sim.monte_carlo`); it always
        does when all fail.
    """
    from .engine import DEFAULT_START
    from .errors import MAX_HORIZON_DAYS, MAX_SEED
    from .experiment import MAX_FAILURE_SHARE, make_executor
    from .network import load_network
    from .scenario import Scenario, resolve_scenario

    if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool) or reps < 1:
        raise ModelError(f"must be a positive integer, got {reps!r}", field="reps")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ModelError(f"must be an integer between 0 and 2**63 - 1, got {seed!r}", field="seed")
    duration = _check_number(duration_days, "duration_days", low=0, low_open=True)
    threshold = _check_number(threshold, "threshold", low=0, high=1, low_open=True)
    dwell = _check_number(dwell_days, "dwell_days", low=0)
    window = _check_number(window_days, "window_days", low=1)
    if window != int(window):
        raise ModelError(f"must be a whole number of days, got {window_days!r}",
                         field="window_days")
    after = _check_number(after_days, "after_days", low=0)
    if survive_fill is not None:
        survive_fill = _check_number(survive_fill, "survive_fill", low=0, high=1, low_open=True)
    fail_share = MAX_FAILURE_SHARE if max_failure_share is None else _check_number(
        max_failure_share, "max_failure_share", low=0, high=1)
    net = load_network(network)
    sc = resolve_scenario(scenario) if not isinstance(scenario, Scenario) else scenario
    plan_name = ""
    if plan is not None:
        try:
            from .plans import apply_plan, load_plan
        except ImportError:
            raise ModelError("plans need sim.plans, which this installation lacks",
                             field="plan") from None
        p = load_plan(plan) if isinstance(plan, (str, Path)) else plan
        net, sc = apply_plan(p, net, sc)
        plan_name = str(getattr(p, "name", plan))
    sc.check_network(net)
    _check_round_trip(sc)
    run_start = sc.start or DEFAULT_START
    when = parse_date(start, "", "start")
    day0 = (when - run_start).days
    if day0 <= 0:
        raise ModelError(f"the disruption must start after the run does ({run_start}), got "
                         f"{when}", field="start")
    horizon = math.ceil(day0 + duration + after)
    if horizon > MAX_HORIZON_DAYS:
        raise ModelError(f"start + duration_days + after_days runs past {MAX_HORIZON_DAYS} days "
                         "from the run's start", field="duration_days")
    if dwell >= horizon - day0:
        raise ModelError(f"must be shorter than the time observed after the disruption starts "
                         f"({horizon - day0} days), got {dwell_days!r}", field="dwell_days")
    dis = parse_targets(net, targets)
    if not dis:
        raise ModelError("no disruption to run", field="targets")
    scenarios = tuple((d.key, disrupted_scenario(sc, d, when, duration)) for d in dis)
    for _, s in scenarios:
        s.check_network(net)
    owned = None
    if executor is None:
        executor, owned = make_executor(workers)
    bar = None
    if progress or (progress is None and sys.stderr.isatty()):
        from tqdm import tqdm
        bar = tqdm(total=reps, desc="stress test", unit="rep")
    t_start = time.perf_counter()
    outputs: list[dict | None] = [None] * reps
    try:
        futures = {executor.submit(run_stress_replication, _StressTask(
            net, sc, scenarios, int(seed), i, float(horizon), day0, threshold, dwell, int(window),
            survive_fill)): i for i in range(reps)}
        import concurrent.futures as cf
        for fut in cf.as_completed(futures):
            outputs[futures[fut]] = fut.result()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if owned is True:           # a process pool made here
            executor.shutdown()
        elif owned is not None:     # a Dask client
            owned.close()
    failures = [o["failure"] for o in outputs if o and o["failure"]]
    if len(failures) == reps or len(failures) > fail_share * reps:
        from .errors import RunFailedError
        raise RunFailedError(f"{len(failures)} of {reps} stress-test replications failed; first: "
                             f"{failures[0]['error']}")
    import pandas as pd

    recs = []
    for o in outputs:
        for key, scope, vals in o["rows"]:
            recs.append((key, o["replication"], scope, *vals))
    per_rep = pd.DataFrame(recs, columns=["disruption", "replication", "scope", *STRESS_KPIS])
    meta = {
        "kind": "stress", "network": net.name, "network_digest": net.digest(),
        "scenario": sc.name, "scenario_digest": sc.digest(), "plan": plan_name,
        "seed": int(seed), "reps": reps, "reps_ok": reps - len(failures),
        "start": str(run_start), "disruption_start": str(when), "disruption_day": day0,
        "duration_days": duration, "horizon_days": horizon, "after_days": after,
        "threshold": threshold, "dwell_days": dwell, "window_days": int(window),
        "survive_fill": survive_fill, "unmet_tolerance_t": UNMET_TOLERANCE_T,
        "elapsed_seconds": time.perf_counter() - t_start,
        "targets": [{"key": d.key, "kind": d.kind, "label": d.label, "nodes": list(d.nodes),
                     "lanes": list(d.lanes)} for d in dis],
    }
    return StressResults(per_rep, failures, meta)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

def _time_summary(v: np.ndarray) -> dict:
    """Statistics of a time that may be censored (inf: never / not recovered): quantiles over
    all replications (inf where the censored ones reach), the mean of all (inf when any is
    censored) and the share censored."""
    n = len(v)
    if n == 0:
        return {"n": 0}
    out = {"n": n, "mean": float(v.mean()), "share_censored": float(np.mean(~np.isfinite(v)))}
    srt = np.sort(v)
    for p in _QUANTILES:
        # nearest-rank quantile: defined with inf values (interpolation would give NaN)
        out[f"q{int(p * 100):02d}"] = float(srt[min(n - 1, max(0, math.ceil(p * n) - 1))])
    return out


@dataclass
class StressResults:
    """Results of :func:`stress_test`.

    Attributes
    ----------
    per_rep: DataFrame, one row per disruption, replication and scope (``network`` and
        ``sector:<s>``), one column per KPI of :data:`STRESS_KPIS` (times in days; ``inf``:
        demand never went unmet / performance did not recover within the run).
    failures: replications that raised (replication, seed, error, traceback).
    meta: the inputs (network, scenario, plan, dates, thresholds, targets) and timings.
    """

    per_rep: Any
    failures: list[dict]
    meta: dict
    _labels: dict = field(default_factory=dict, repr=False)

    def targets(self) -> list[dict]:
        """The disruptions run: key, kind, label, nodes, lanes (in the order run)."""
        return list(self.meta["targets"])

    def label(self, key: str) -> str:
        """The readable name of a disruption key."""
        if not self._labels:
            self._labels.update({t["key"]: t["label"] for t in self.meta["targets"]})
        return self._labels.get(key, key)

    def summary(self):
        """Statistics over replications per disruption, scope and KPI, one row each (wide):
        ``n``, ``mean``, and for the times ``share_censored`` and quantiles; for the others
        ``sd``, ``se``, 95% CI and quantiles; for ``tts_lt_ttr`` the share with its Wilson
        95% interval (``ci95_low``, ``ci95_high``)."""
        import pandas as pd

        from .experiment import summarise

        rows = []
        for (key, scope), g in self.per_rep.groupby(["disruption", "scope"], sort=False):
            for kpi in STRESS_KPIS:
                v = g[kpi].to_numpy(dtype=float)
                if kpi in _TIME_KPIS:
                    stats = _time_summary(v)
                elif kpi == "tts_lt_ttr":
                    p, lo, hi = wilson(int(v.sum()), len(v))
                    stats = {"n": len(v), "mean": p, "ci95_low": lo, "ci95_high": hi}
                else:
                    stats = summarise(v)
                rows.append({"disruption": key, "scope": scope, "kpi": kpi, **stats})
        return pd.DataFrame(rows)

    def ranking(self, scope: str = "network"):
        """Disruptions ranked by performance impact PI (mean excess unmet value in *scope*,
        USD, from the disruption to the end of the run): rank 1 = worst, risk exposure index
        PI / max PI (worst = 1; 0 throughout when none leaves demand unmet), with the mean
        excess unmet tonnes, P(TTS < TTR) and the median TTS and TTR of *scope*."""
        import pandas as pd

        g = self.per_rep[self.per_rep["scope"] == scope]
        if not len(g):
            scopes = sorted(set(self.per_rep["scope"]))
            raise ModelError(f"no scope {scope!r}; scopes: {', '.join(scopes)}", field="scope")
        order = {t["key"]: i for i, t in enumerate(self.meta["targets"])}
        kinds = {t["key"]: t["kind"] for t in self.meta["targets"]}
        rows = []
        for key, d in g.groupby("disruption", sort=False):
            usd = d["excess_unmet_usd"].to_numpy(dtype=float)
            n = len(usd)
            se = float(usd.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
            p, lo, hi = wilson(int(d["tts_lt_ttr"].sum()), n)
            rows.append({"disruption": key, "kind": kinds.get(key, ""), "label": self.label(key),
                         "impact_usd": float(usd.mean()), "impact_usd_ci95_low": usd.mean() - Z95 * se,
                         "impact_usd_ci95_high": usd.mean() + Z95 * se,
                         "excess_unmet_t": float(d["excess_unmet_t"].mean()),
                         "p_tts_lt_ttr": p, "p_tts_lt_ttr_low": lo, "p_tts_lt_ttr_high": hi,
                         "tts_median_days": _time_summary(d["tts_days"].to_numpy(float))["q50"],
                         "ttr_median_days": _time_summary(d["ttr_days"].to_numpy(float))["q50"],
                         "n": n, "_order": order.get(key, len(order))})
        df = pd.DataFrame(rows)
        worst = float(df["impact_usd"].max())
        df["risk_exposure_index"] = df["impact_usd"] / worst if worst > 0 else 0.0
        # worst first; equal impact in the order the targets were given
        df = df.sort_values(["impact_usd", "_order"], ascending=[False, True],
                            kind="stable").drop(columns="_order")
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        return df.reset_index(drop=True)

    def prob_below(self, min_days: float, scope: str = "network"):
        """P(the fill rate stays below the threshold share of the undisrupted run's for more
        than *min_days* in a row) per disruption in *scope*, over replications: columns
        ``disruption``, ``p``, ``ci95_low``, ``ci95_high`` (Wilson), ``n``."""
        import pandas as pd

        if not (isinstance(min_days, (int, float)) and math.isfinite(min_days) and min_days >= 0):
            raise ModelError(f"must be a number of days >= 0, got {min_days!r}", field="min_days")
        g = self.per_rep[self.per_rep["scope"] == scope]
        if not len(g):
            scopes = sorted(set(self.per_rep["scope"]))
            raise ModelError(f"no scope {scope!r}; scopes: {', '.join(scopes)}", field="scope")
        rows = []
        for key, d in g.groupby("disruption", sort=False):
            hits = int((d["days_below"].to_numpy(float) > min_days).sum())
            p, lo, hi = wilson(hits, len(d))
            rows.append({"disruption": key, "p": p, "ci95_low": lo, "ci95_high": hi,
                         "n": len(d)})
        return pd.DataFrame(rows)

    def tidy(self):
        """Per-replication values in the long schema of :mod:`sim.tables` (plus a
        ``disruption`` column)."""
        from . import tables

        long = self.per_rep.melt(id_vars=["disruption", "replication", "scope"],
                                 value_vars=list(STRESS_KPIS), var_name="kpi", value_name="value")
        long["scenario"], long["plan"], long["seed"] = (self.meta["scenario"], self.meta["plan"],
                                                        self.meta["seed"])
        long["statistic"] = "value"
        return tables.coerce(long)

    def tidy_summary(self):
        """:meth:`summary` in the long schema of :mod:`sim.tables` (plus ``disruption``)."""
        from . import tables

        s = self.summary()
        long = s.melt(id_vars=["disruption", "scope", "kpi"], var_name="statistic",
                      value_name="value").dropna(subset=["value"])
        long["scenario"], long["plan"], long["seed"] = (self.meta["scenario"], self.meta["plan"],
                                                        self.meta["seed"])
        return tables.coerce(long)

    def save(self, out_dir: str | Path, *, table_format: str = "csv") -> Path:
        """Write ``replications``, ``summary`` (long schema), ``ranking``, ``failures.json`` and
        ``manifest.json`` (last; every file atomically). Draws nothing: see
        :mod:`sim.plots_resilience`."""
        from . import tables
        from .paths import check_out_dir
        from .results import package_versions, write_atomic

        tables.check_format(table_format)
        out = check_out_dir(out_dir, field="out_dir")
        out.mkdir(parents=True, exist_ok=True)
        man = out / "manifest.json"
        man.unlink(missing_ok=True)           # incomplete until the manifest is back
        files = [tables.write_table(self.tidy(), out / "replications", table_format).name,
                 tables.write_table(self.tidy_summary(), out / "summary", table_format).name,
                 tables.write_table(self.ranking(), out / "ranking", table_format).name]
        write_atomic(out / "failures.json", json.dumps(self.failures, indent=2))
        meta = dict(self.meta)
        meta["files"] = sorted(files + ["failures.json"])
        meta["versions"] = package_versions()
        meta["table_format"] = table_format
        write_atomic(man, json.dumps(meta, indent=2, default=str))
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "StressResults":
        """Read a folder written by :meth:`save` (refused without its manifest: incomplete)."""
        from . import tables

        out = Path(out_dir)
        man = out / "manifest.json"
        if not man.exists():
            raise ModelError("no manifest.json: not a complete stress-test result", file=str(out))
        try:
            meta = json.loads(man.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ModelError(f"damaged manifest (not JSON: {str(exc).splitlines()[0]})",
                             file=str(man)) from None
        if not isinstance(meta, dict) or meta.get("kind") != "stress":
            raise ModelError("not a stress-test manifest (kind is not 'stress')", file=str(man))
        long = tables.read_table(out / "replications")
        per_rep = long.pivot_table(index=["disruption", "replication", "scope"], columns="kpi",
                                   values="value", aggfunc="first", sort=False).reset_index()
        per_rep.columns = [str(c) for c in per_rep.columns]     # plain names, as built
        missing = [k for k in STRESS_KPIS if k not in per_rep.columns]
        if missing:
            raise ModelError(f"no values of {', '.join(missing)} (a folder from another "
                             "version, or changed by hand)", file=str(out / "replications"))
        per_rep["replication"] = per_rep["replication"].astype(np.int64)
        for col in ("disruption", "scope"):
            per_rep[col] = per_rep[col].astype(str)
        # the order stress_test builds: replication, then target (as run), then scope
        order = {t["key"]: i for i, t in enumerate(meta.get("targets", []))}
        per_rep["_t"] = per_rep["disruption"].map(order)
        per_rep = per_rep.sort_values(["replication", "_t", "scope"], kind="stable")
        per_rep = per_rep[["disruption", "replication", "scope", *STRESS_KPIS]].reset_index(
            drop=True)
        failures = json.loads((out / "failures.json").read_text())
        return cls(per_rep, failures, meta)
