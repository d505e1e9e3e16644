"""Plan studies: plans x scenarios on common random numbers, and robustness across an ensemble.

A *plan* (:mod:`sim.plans`) is a set of changes to a network and scenario. :func:`compare_plans`
applies each plan once to each scenario (before any replication starts, so a plan costs
nothing per replication) and runs every (plan, scenario) cell on the same replication indices:
replication *i* of every cell draws from ``Streams(seed, replication=i)``, so the paired
difference of a plan and the reference plan under one scenario is free of most sampling
noise (common random numbers). Its :class:`PlanStudyResults` gives, in the long schema of
:mod:`sim.tables` (``plan`` and ``scenario`` columns):

* ``summary``: statistics over replications of every KPI of every cell;
* ``differences``: paired differences plan - reference of every KPI under each scenario, with
  95% CIs and the variance ratio paired / unpaired;
* ``cost_effectiveness``: the plan's cost over the simulated horizon beyond the reference's
  (:meth:`Plan.cost <sim.plans.Plan.cost>`), the tonnes of unmet demand it avoids and the
  defense fill-rate points it gains (paired, with CIs), and their ratios: dollars per tonne of
  unmet demand avoided and per defense-fill point, with CIs.

Unmet demand is demand not filled on arrival, ``demand_t - filled_t`` of all users (the
tonnes backordered or lost). A ratio's CI is the image of the benefit's CI under
``cost / benefit``: the cost is a number, not a draw, so the transform is exact and
monotone where the benefit's CI lies above zero; where it reaches zero the plan's benefit is
not established and the ratio's CI is unbounded (``inf``; the row's label says so).

:func:`robustness` runs the plans over an ensemble of scenarios (a Latin hypercube over
sweep-style parameter paths of a base scenario, :func:`sim.sweep.design_points` and
:func:`sim.sweep.apply_params`, or a list of scenarios) and :func:`regret_table` scores them:
each plan's regret against the best plan in each scenario, the share of scenarios in which it
meets a target, and percentiles.

Savers do not draw: ``save()`` writes tables and the manifest (last); figures are drawn from
the saved tables (:mod:`sim.plots_study`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MAX_SEED, ModelError, check_int, check_number
from .experiment import (
    MAX_FAILURE_SHARE,
    QUANTILES,
    Z95,
    MonteCarloResults,
    check_horizon,
    check_run_options,
    digest_of,
    git_commit,
    make_executor,
    monte_carlo,
    release,
    summarise,
)
from .network import load_network
from .scenario import resolve_scenario

__all__ = ["compare_plans", "PlanStudyResults", "robustness", "RobustnessResults",
           "regret_table", "ratio_interval", "comparison_title", "delayed_plan",
           "DEFAULT_REFERENCE", "DEFAULT_UNCERTAINTIES", "DEFAULT_PLAN_UNCERTAINTIES",
           "load_study", "paired_stats"]

DEFAULT_REFERENCE = "status-quo"
UNMET = ("demand_t", "filled_t", "network")          # unmet = demand_t - filled_t, all users
DEFENSE_FILL = ("fill_rate", "sector:defense")
_DIFF_STATS = ("difference", "sd", "ci95_low", "ci95_high", "n", "mean_base", "mean_other",
               "variance_ratio_paired_vs_unpaired")
# The scenario ensemble of robustness() by default: sweep-style paths of truce-uncertain
# (sampled truce outcomes, control severity, approval rates, demand growth). Ranges are
# assumptions spanning the cases DOMAIN.md section C discusses: renewal from unlikely to
# likely; the April regime's approval rate from June 2025 on (its first change; 0.75 in the
# file, itself an assumption) from the early months' 0.25 to 0.9; escalation from a near-ban
# to the April regime's early approval rate; demand from 10% below to 30% above the network's
# 2025 figures.
DEFAULT_UNCERTAINTIES = {
    "truce.renewal_probability": (0.2, 0.9),
    "controls.apr_2025.changes.0.approval_probability": (0.25, 0.9),
    "truce.escalation.approval_probability": (0.0, 0.25),
    "demand.factor": (0.9, 1.3),
}
# ... and of the plans: every plan's projects from on time to two years late (the delay of the
# shipped allied-capacity-delayed plan). Kept apart: these change plans, not the scenario.
DEFAULT_PLAN_UNCERTAINTIES = {"plan.delay_days": (0.0, 730.0)}
DEFAULT_BASE = "truce-uncertain"


def comparison_title(plan: str, reference: str, scenario: str) -> str:
    """``"allied-capacity vs status-quo under truce-expires"``: the label of a paired
    comparison of two plans under one scenario."""
    return f"{plan} vs {reference} under {scenario}"


def _plans_api():
    """``(resolve_plan, apply_plan)`` of :mod:`sim.plans`."""
    from .plans import apply_plan, resolve_plan
    return resolve_plan, apply_plan


def _resolve_plans(plans) -> list:
    resolve_plan, _ = _plans_api()
    if isinstance(plans, (str, bytes)) or not isinstance(plans, Iterable):
        raise ModelError(f"must be a list of plans (names, paths or Plan objects), got {plans!r}",
                         field="plans")
    out = [resolve_plan(p) for p in plans]
    if not out:
        raise ModelError("give at least one plan", field="plans")
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ModelError(f"plan {dup[0]!r} is given twice", field="plans")
    return out


def _resolve_scenarios(scenarios) -> list:
    if scenarios is None or isinstance(scenarios, (str, bytes)) or \
            not isinstance(scenarios, Iterable):
        scenarios = [scenarios]
    out = [resolve_scenario(s) for s in scenarios]
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ModelError(f"scenario {dup[0]!r} is given twice", field="scenarios")
    return out


def _pick_reference(plans: list, reference) -> str:
    names = [p.name for p in plans]
    if reference is None:
        return DEFAULT_REFERENCE if DEFAULT_REFERENCE in names else names[0]
    ref = getattr(reference, "name", reference)
    if ref not in names:
        raise ModelError(f"reference plan {ref!r} is not among the plans {names}",
                         field="reference")
    return ref


def _horizon_dates(meta: dict) -> tuple[_dt.date, _dt.date]:
    start = _dt.date.fromisoformat(str(meta["start"])[:10])
    return start, start + _dt.timedelta(days=int(meta["ndays"]))


def _plan_cost(plan, start: _dt.date, end: _dt.date) -> dict:
    cost = plan.cost(start, end)
    out = {}
    for key in ("capital_usd", "yearly_usd", "total_usd"):
        v = float(cost.get(key, 0.0)) if isinstance(cost, dict) else math.nan
        if not math.isfinite(v):
            raise ModelError(f"plan cost {key} is {v!r}", where=f"plan '{plan.name}'")
        out[key] = v
    return out


# ---------------------------------------------------------------------------------------------
# Paired statistics
# ---------------------------------------------------------------------------------------------

def paired_stats(base: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Paired differences ``other - base`` of matrices (replications x KPIs), column by column
    over the replications where both are finite: difference (mean), sd, 95% CI, n, the two
    means, and the variance ratio var(difference) / (var(base) + var(other)) (below 1: the
    pairing made the interval narrower than an unpaired one)."""
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    d = b0 - a0
    nn = np.maximum(n, 1)
    mean_a, mean_b, mean_d = a0.sum(0) / nn, b0.sum(0) / nn, d.sum(0) / nn

    def var(x, m):
        ss = (np.where(ok, x - m, 0.0) ** 2).sum(0)
        return np.where(n > 1, ss / np.maximum(n - 1, 1), 0.0)

    vd, va, vb = var(d, mean_d), var(a0, mean_a), var(b0, mean_b)
    sd = np.sqrt(vd)
    half = Z95 * sd / np.sqrt(nn)
    denom = va + vb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denom > 0, vd / np.where(denom > 0, denom, 1.0),
                         np.where(vd == 0, 0.0, np.inf))
    nan = np.where(n > 0, 1.0, np.nan)
    return {"difference": mean_d * nan, "sd": sd * nan, "ci95_low": (mean_d - half) * nan,
            "ci95_high": (mean_d + half) * nan, "n": n.astype(float),
            "mean_base": mean_a * nan, "mean_other": mean_b * nan,
            "variance_ratio_paired_vs_unpaired": ratio * nan}


def ratio_interval(cost: float, benefit: float, low: float, high: float,
                   tol: float = 0.0) -> tuple[float, float, float, str]:
    """Cost per unit of benefit: ``(estimate, ci95_low, ci95_high, label)`` from a fixed
    *cost* and the benefit's mean and 95% CI (*low*, *high*).

    The cost is a number, so the interval is the image of the benefit's interval under
    ``cost / x``: exact where the interval lies above zero. Where it reaches zero or below the
    benefit is not established: the ratio's interval is unbounded on one side (label
    ``benefit not significant``); where the whole interval is at or below zero there is no
    benefit to price (estimate NaN, label ``no benefit``). Benefits within *tol* of zero count
    as zero (a sum taken in another order differs in its last bits: no benefit to divide by)."""
    if not all(math.isfinite(x) for x in (cost, benefit, low, high)):
        return math.nan, math.nan, math.nan, "no estimate"
    benefit, low, high = (0.0 if abs(x) <= tol else x for x in (benefit, low, high))
    if high <= 0:
        return math.nan, math.nan, math.nan, "no benefit"
    est = cost / benefit if benefit > 0 else math.nan
    if low > 0:
        a, b = cost / low, cost / high
        return est, min(a, b), max(a, b), ""
    if cost > 0:
        return est, cost / high, math.inf, "benefit not significant"
    if cost < 0:
        return est, -math.inf, cost / high, "benefit not significant"
    return 0.0, 0.0, 0.0, "benefit not significant"


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

@dataclass
class PlanStudyResults:
    """The results of :func:`compare_plans`.

    Attributes
    ----------
    cells: ``{(plan, scenario): MonteCarloResults}``, every cell on the same replications.
    plans, scenarios: names in the order given; ``reference``: the plan differences are
        taken from.
    costs: ``{(plan, scenario): {capital_usd, yearly_usd, total_usd}}`` over each
        scenario's simulated horizon.
    meta: seed, replications, timings, versions.
    """

    cells: dict
    plans: list[str]
    scenarios: list[str]
    reference: str
    costs: dict
    meta: dict = field(default_factory=dict)

    def result(self, plan: str, scenario: str) -> MonteCarloResults:
        """The Monte Carlo results of one cell."""
        try:
            return self.cells[(plan, scenario)]
        except KeyError:
            raise ModelError(f"no cell ({plan!r}, {scenario!r}); plans {self.plans}, "
                             f"scenarios {self.scenarios}", field="cell") from None

    def title(self, plan: str, scenario: str) -> str:
        """``"<plan> vs <reference> under <scenario>"``."""
        return comparison_title(plan, self.reference, scenario)

    # -- tables -------------------------------------------------------------------------------
    def replications(self):
        """Per-replication values of every KPI of every cell (long schema)."""
        import pandas as pd

        return pd.concat(list(self._replication_parts()), ignore_index=True)

    def _replication_parts(self):
        """The per-replication table, one cell at a time (scenario by scenario, plan by plan)."""
        from . import tables

        seed = self.meta.get("seed")
        for s in self.scenarios:
            for p in self.plans:
                yield tables.tidy(self.cells[(p, s)].per_rep, scenario=s, plan=p, seed=seed)

    def summary(self):
        """Statistics over replications of every KPI of every cell (long schema)."""
        import pandas as pd

        from . import tables

        seed = self.meta.get("seed")
        parts = [tables.tidy_summary(self.cells[(p, s)].per_rep, summarise, scenario=s, plan=p,
                                     seed=seed)
                 for s in self.scenarios for p in self.plans]
        return pd.concat(parts, ignore_index=True)

    def differences(self, kpis: Iterable[str] | None = None):
        """Paired differences plan - reference of every KPI under each scenario (long schema:
        ``plan`` the plan, ``reference`` the reference plan, ``scenario`` the scenario they
        share; statistics as :func:`sim.paired_comparison`), with a ``comparison`` column
        naming both plans and the scenario. *kpis*: KPI names or ``kpi|scope`` columns."""
        import pandas as pd

        from . import tables
        from .labels import CATEGORIES

        wanted = set(kpis) if kpis is not None else None
        parts = []
        for s in self.scenarios:
            base = self.cells[(self.reference, s)].per_rep
            for p in self.plans:
                if p == self.reference:
                    continue
                other = self.cells[(p, s)].per_rep
                common = base.index.intersection(other.index)
                cols = [c for c in base.columns if c in other.columns
                        and c.split("|", 1)[0] not in CATEGORIES
                        and (wanted is None or c in wanted or c.split("|", 1)[0] in wanted)]
                if not cols:
                    continue
                st = paired_stats(base.loc[common, cols].to_numpy(),
                                  other.loc[common, cols].to_numpy())
                kpi = [c.split("|", 1)[0] for c in cols]
                scope = [c.split("|", 1)[1] for c in cols]
                for stat in _DIFF_STATS:
                    parts.append(pd.DataFrame({"scenario": s, "plan": p,
                                               "reference": self.reference, "statistic": stat,
                                               "kpi": kpi, "scope": scope, "value": st[stat]}))
        if not parts:
            return tables.coerce(pd.DataFrame(columns=[*tables.SCHEMA, "comparison"]))
        df = tables.coerce(pd.concat(parts, ignore_index=True))
        df["seed"] = pd.array([self.meta.get("seed")] * len(df), dtype="Int64")
        df["comparison"] = [comparison_title(p, self.reference, s)
                            for p, s in zip(df["plan"], df["scenario"])]
        return df

    def cost_effectiveness(self):
        """Per plan and scenario against the reference: the plan's extra cost (``cost_usd``),
        unmet tonnes avoided and defense fill points gained (paired, with CIs), and dollars per
        tonne of unmet demand avoided and per defense-fill point, with CIs (see
        :func:`ratio_interval`; the ``label`` column says where the benefit is not
        established). Long schema, with a ``comparison`` column; KPIs (scope):
        ``cost_usd`` (``plan``), ``unmet_avoided_t`` and ``cost_per_t_unmet_avoided_usd``
        (``network``), ``defense_fill_gain_points`` and ``cost_per_defense_fill_point_usd``
        (``sector:defense``, percentage points of fill rate)."""
        import pandas as pd

        from . import tables

        rows = []
        for s in self.scenarios:
            ref = self.cells[(self.reference, s)].per_rep
            ref_cost = self.costs[(self.reference, s)]["total_usd"]
            for p in self.plans:
                if p == self.reference:
                    continue
                other = self.cells[(p, s)].per_rep
                common = ref.index.intersection(other.index)
                cost = self.costs[(p, s)]["total_usd"] - ref_cost
                rows.append((s, p, "cost_usd", "plan", "mean", cost, ""))
                benefits = []
                dem, fil, sc = UNMET
                if f"{dem}|{sc}" in ref.columns and f"{fil}|{sc}" in ref.columns:
                    unmet = lambda df: (df.loc[common, f"{dem}|{sc}"]            # noqa: E731
                                        - df.loc[common, f"{fil}|{sc}"]).to_numpy()
                    benefits.append(("unmet_avoided_t", "cost_per_t_unmet_avoided_usd",
                                     "network", unmet(ref), unmet(other), 1.0))
                col = "|".join(DEFENSE_FILL)
                if col in ref.columns:
                    benefits.append(("defense_fill_gain_points", "cost_per_defense_fill_point_usd",
                                     DEFENSE_FILL[1], ref.loc[common, col].to_numpy(),
                                     other.loc[common, col].to_numpy(), -100.0))
                for gain, per, scope, a, b, sign in benefits:
                    # unmet avoided = reference - plan; fill points gained = 100 (plan - ref)
                    st = paired_stats(b[:, None], a[:, None]) if sign > 0 else \
                        paired_stats(100 * a[:, None], 100 * b[:, None])
                    mean, lo, hi = (float(st[k][0])
                                    for k in ("difference", "ci95_low", "ci95_high"))
                    for stat in ("mean", "ci95_low", "ci95_high", "sd", "n"):
                        v = float(st["difference" if stat == "mean" else stat][0])
                        rows.append((s, p, gain, scope, stat, v, ""))
                    # rounding noise of the KPI sums is no benefit: 1e-9 of the scale
                    scale = 100.0 if sign < 0 else max(1.0, float(np.nanmean(np.abs(a))))
                    est, rlo, rhi, label = ratio_interval(cost, mean, lo, hi, tol=1e-9 * scale)
                    for stat, v in (("mean", est), ("ci95_low", rlo), ("ci95_high", rhi)):
                        rows.append((s, p, per, scope, stat, v, label))
        df = pd.DataFrame(rows, columns=["scenario", "plan", "kpi", "scope", "statistic",
                                         "value", "label"])
        df["reference"] = self.reference
        df = tables.coerce(df)
        df["seed"] = pd.array([self.meta.get("seed")] * len(df), dtype="Int64")
        df["comparison"] = [comparison_title(p, self.reference, s)
                            for p, s in zip(df["plan"], df["scenario"])]
        return df

    def bands(self):
        """Quantile bands of the weekly series kept in each cell (``series=True``), in the
        bands schema of :mod:`sim.tables` with a ``plan`` column; None when none were kept."""
        import pandas as pd

        from . import tables

        parts = []
        for (p, s), res in self.cells.items():
            for name in res.series:
                b = res.bands(name).melt(id_vars=["date"], var_name="statistic",
                                         value_name="value")
                b["kpi"], b["scope"] = name.split("|", 1)
                b["scenario"], b["plan"], b["seed"] = s, p, self.meta.get("seed")
                parts.append(b)
        if not parts:
            return None
        return tables.coerce(pd.concat(parts, ignore_index=True), tables.BANDS_SCHEMA)

    def plan_costs(self):
        """Each plan's cost over each scenario's horizon: plan, scenario, start, end,
        capital_usd, yearly_usd, total_usd."""
        import pandas as pd

        rows = []
        for (p, s), c in self.costs.items():
            start, end = _horizon_dates(self.cells[(p, s)].meta)
            rows.append({"plan": p, "scenario": s, "start": start.isoformat(),
                         "end": end.isoformat(), **c})
        return pd.DataFrame(rows)

    # -- saving ---------------------------------------------------------------------------------
    def save(self, out_dir: str | Path, *, table_format: str = "csv",
             replications: bool = True) -> Path:
        """Write ``summary``, ``paired_differences``, ``cost_effectiveness``, ``plan_costs``
        (and with *replications* the per-replication ``replications`` table; it has
        plans x scenarios x replications x KPIs rows), ``failures.json`` and
        ``manifest.json`` last, each atomically. Draws nothing."""
        from . import tables
        from .paths import check_out_dir
        from .results import write_atomic

        tables.check_format(table_format)
        out = check_out_dir(out_dir, field="out_dir")
        out.mkdir(parents=True, exist_ok=True)
        man = out / "manifest.json"
        man.unlink(missing_ok=True)             # incomplete until the manifest is written
        written = []
        if replications:
            written.append(_write_parts(self._replication_parts(), out / "replications",
                                        table_format))
        written += [tables.write_table(self.summary(), out / "summary", table_format),
                    tables.write_table(self.differences(), out / "paired_differences",
                                       table_format),
                    tables.write_table(self.cost_effectiveness(), out / "cost_effectiveness",
                                       table_format),
                    tables.write_table(self.plan_costs(), out / "plan_costs", table_format)]
        bands = self.bands()
        if bands is not None:
            written.append(tables.write_table(bands, out / "bands", table_format))
        failures = [{"plan": p, "scenario": s, **f} for (p, s), r in self.cells.items()
                    for f in r.failures]
        write_atomic(out / "failures.json", json.dumps(failures, indent=2, default=str))
        meta = dict(self.meta)
        meta.update({"kind": "plan_study", "plans": self.plans, "scenarios": self.scenarios,
                     "reference": self.reference, "table_format": table_format,
                     "files": sorted([p.name for p in written] + ["failures.json"])})
        write_atomic(man, json.dumps(meta, indent=2, default=str))
        return out


def _write_parts(parts, stem: Path, fmt: str) -> Path:
    """Write the DataFrames *parts* (same columns) one after the other as one table
    ``stem.csv`` or ``stem.parquet``, atomically (a temporary file, then a rename): one part
    in memory at a time (a study's replications can have tens of millions of rows)."""
    import os

    from .tables import table_path

    path = table_path(stem, fmt)
    tmp = stem.with_name(f".{stem.name}.tmp.{fmt}")
    writer = None
    try:
        for i, df in enumerate(parts):
            if fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                t = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, t.schema)
                writer.write_table(t)
            else:
                df.to_csv(tmp, index=False, mode="w" if i == 0 else "a", header=i == 0)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    other = table_path(stem, "csv" if fmt == "parquet" else "parquet")
    if other.exists():
        other.unlink()
    return path


def load_study(out_dir: str | Path) -> dict:
    """The tables of a saved plan study or robustness folder (``{name: DataFrame}``, with
    ``"manifest"`` the manifest dict); refuses a folder without a manifest (incomplete)."""
    from . import tables

    out = Path(out_dir)
    man = out / "manifest.json"
    if not man.exists():
        raise ModelError("no manifest.json: not a complete results folder", file=str(out))
    try:
        meta = json.loads(man.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"damaged manifest (not JSON: {str(exc).splitlines()[0]})",
                         file=str(man)) from None
    if not isinstance(meta, dict) or meta.get("kind") not in ("plan_study", "robustness"):
        raise ModelError("not a plan study or robustness folder (manifest kind)", file=str(man))
    got: dict[str, Any] = {"manifest": meta}
    for name in meta.get("files", []):
        stem, dot, ext = str(name).rpartition(".")
        if dot and ext in tables.FORMATS and stem != "replications":
            got[stem] = tables.read_table(out / stem)
    return got


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

def _check_common(reps, seed, workers, executor, horizon_days, max_failure_share) -> None:
    check_int(seed, "seed", 0, maximum=MAX_SEED)
    check_run_options(reps=reps, workers=workers, executor=executor,
                      max_failure_share=max_failure_share)
    check_horizon(horizon_days)


def compare_plans(network="rare_earth_2025", plans: Sequence = (DEFAULT_REFERENCE,),
                  scenarios: Sequence | None = None, *, reps: int = 100, seed: int = 0,
                  reference=None, executor=None, workers: int | None = None,
                  chunk_size: int | None = None, start=None, horizon_days: float | None = None,
                  scopes: Iterable[str] = (), series: bool | None = None,
                  progress: bool | None = None,
                  max_failure_share: float = MAX_FAILURE_SHARE) -> PlanStudyResults:
    """Run every plan under every scenario on common random numbers.

    Parameters
    ----------
    network:
        A network name, path or :class:`~sim.network.Network`.
    plans:
        Plan names, paths, dicts or :class:`~sim.plans.Plan` objects (see
        :func:`sim.plans.resolve_plan`); each is applied once per scenario, before any
        replication runs.
    scenarios:
        Scenario names, paths or objects (default: the baseline).
    reference:
        The plan differences and cost-effectiveness are taken against (default
        ``status-quo`` when among *plans*, else the first plan).
    executor, workers, chunk_size:
        As for :func:`sim.monte_carlo`; one executor serves every cell (a process pool with
        *workers* processes when none is given). Results do not depend on the number of
        workers.
    scopes, series:
        Weekly series are not kept by default (a study compares KPIs); ``series=True`` keeps
        the sectors' in each cell, and *scopes* (``"country:US"``, ``"node:us_auto"``, ...)
        those scopes' besides (giving *scopes* keeps series unless ``series=False``).
        ``save`` writes their quantile bands.

    Returns
    -------
    PlanStudyResults
    """
    _check_common(reps, seed, workers, executor, horizon_days, max_failure_share)
    scopes = tuple(scopes) if not isinstance(scopes, (str, bytes)) else scopes
    if series is None:
        series = bool(scopes)
    net = load_network(network)
    plan_objs = _resolve_plans(plans)
    scens = _resolve_scenarios(scenarios)
    ref = _pick_reference(plan_objs, reference)
    _, apply_plan = _plans_api()
    # every plan applied to every scenario before anything runs: a bad pair fails at once
    applied = {}
    t0 = time.perf_counter()
    for sc in scens:
        for plan in plan_objs:
            applied[(plan.name, sc.name)] = apply_plan(plan, net, sc)
    apply_s = time.perf_counter() - t0
    owned = None
    if executor is None:
        executor, owned = make_executor(workers)
    cells, costs = {}, {}
    t1 = time.perf_counter()
    try:
        for sc in scens:
            for plan in plan_objs:
                n, s = applied[(plan.name, sc.name)]
                res = monte_carlo(n, s, reps=reps, seed=seed, executor=executor, workers=workers,
                                  chunk_size=chunk_size, start=start, horizon_days=horizon_days,
                                  scopes=scopes if series else (), series=series,
                                  progress=progress, max_failure_share=max_failure_share)
                res.meta["plan"] = plan.name
                cells[(plan.name, sc.name)] = res
                costs[(plan.name, sc.name)] = _plan_cost(plan, *_horizon_dates(res.meta))
    finally:
        release(executor, owned)
    from .results import package_versions
    first = next(iter(cells.values()))
    meta = {
        "kind": "plan_study", "network": net.name, "network_sha256": net.digest(),
        "seed": seed, "reps": reps, "workers": first.meta.get("workers"),
        "executor": type(executor).__name__,
        "cell_digests": {f"{p}|{s}": {"network_sha256": n.digest(), "scenario_sha256": sc.digest()}
                         for (p, s), (n, sc) in applied.items()},
        "apply_seconds": apply_s, "elapsed_seconds": time.perf_counter() - t1,
        "task_seconds": sum(r.meta.get("task_seconds", 0.0) for r in cells.values()),
        "replications_run": sum(r.meta.get("reps_used", r.reps) for r in cells.values()),
        "series": bool(series), "scopes": list(scopes) if series else [],
        "start": start, "horizon_days": horizon_days,
        "versions": package_versions(), "git_commit": git_commit(),
    }
    return PlanStudyResults(cells, [p.name for p in plan_objs], [s.name for s in scens], ref,
                            costs, meta)


# ---------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------

def regret_table(values, *, higher_is_better: bool = True, target: float | None = None):
    """Robustness of plans from a table of outcomes: *values* is a DataFrame with one row per
    scenario and one column per plan (e.g. each cell's mean defense fill rate).

    Regret of plan *p* in scenario *s* = the best plan's value in *s* minus *p*'s (or *p*'s
    minus the best, when lower is better): 0 for the best plan, never negative. Returns
    ``(regret, table)``: the regret matrix (same shape as *values*) and one row per plan with
    ``max_regret``, ``mean_regret``, ``regret_q50``, ``regret_q95``, ``best_share`` (share of
    scenarios in which the plan is best, ties counted for each), the outcome's ``mean`` and
    quantiles ``q05`` ... ``q95`` over the scenarios and, given *target*, ``target_share``:
    the share of scenarios in which the plan meets it (value >= target, or <= when lower is
    better). Rows are ordered by max regret, then mean regret (the minimax-regret plan
    first)."""
    import pandas as pd

    v = values.astype(float)
    if v.shape[0] == 0 or v.shape[1] == 0:
        raise ModelError("needs at least one scenario and one plan", field="values")
    if not np.isfinite(v.to_numpy()).all():
        bad = v.columns[~np.isfinite(v.to_numpy()).all(axis=0)][0]
        raise ModelError(f"plan {bad!r} has a missing outcome in some scenario", field="values")
    best = v.max(axis=1) if higher_is_better else v.min(axis=1)
    regret = (v.rsub(best, axis=0) if higher_is_better else v.sub(best, axis=0))
    rows = []
    for p in v.columns:
        r, x = regret[p].to_numpy(), v[p].to_numpy()
        row = {"plan": p, "max_regret": float(r.max()), "mean_regret": float(r.mean()),
               "regret_q50": float(np.quantile(r, 0.5)), "regret_q95": float(np.quantile(r, 0.95)),
               "best_share": float(np.mean(r == 0)), "mean": float(x.mean())}
        row.update({f"q{int(q * 100):02d}": float(np.quantile(x, q)) for q in QUANTILES})
        if target is not None:
            meets = x >= target if higher_is_better else x <= target
            row["target_share"] = float(np.mean(meets))
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["max_regret", "mean_regret"], kind="stable")
    return regret, table.reset_index(drop=True)


def _default_space() -> dict:
    return {**DEFAULT_UNCERTAINTIES, **DEFAULT_PLAN_UNCERTAINTIES}


def delayed_plan(plan, days: float):
    """*plan* with every lever starting *days* later (the plan's ``delay_days``, added to any
    delay it has); the same plan when it has no levers or *days* is 0."""
    from .plans import Plan

    check_number(days, "plan.delay_days", 0)
    doc = plan.to_dict()
    if not days or not doc.get("levers"):
        return plan
    doc["plan"]["delay_days"] = float(days)
    doc["plan"]["delay_source"] = "assumption: a robustness ensemble's sampled project delay"
    try:
        return Plan.from_dict(doc)
    except ModelError as exc:
        raise ModelError(f"{exc}", where=f"plan '{plan.name}' delayed {days:g} days") from None


def _apply_uncertainties(net, sc, point: dict):
    """The network and scenario of one ensemble member: sweep-style paths
    (:func:`sim.sweep.apply_params`) and ``demand.factor`` (every sector's demand times the
    factor over the whole run, as a scenario demand surge). ``plan.delay_days`` is the
    caller's (it changes the plans, :func:`delayed_plan`)."""
    from .sweep import apply_params

    point = {k: v for k, v in point.items() if k != "plan.delay_days"}
    factor = point.pop("demand.factor", None)
    if point:
        net, sc = apply_params(net, sc, point)
    if factor is not None:
        check_number(factor, "demand.factor", 0, strict_low=True)
        from .engine import DEFAULT_START
        doc = sc.to_dict()
        begin = sc.start or DEFAULT_START
        sectors = sorted({n.sector for n in net.nodes.values() if n.demand and n.sector})
        surges = list(doc.get("demand_surges", []))
        surges += [{"sector": s, "factor": float(factor), "start": begin,
                    "end": _dt.date(9999, 1, 1) if sc.end is None else sc.end}
                   for s in sectors]
        doc["demand_surges"] = surges
        sc = type(sc).from_dict(doc)
        sc.check_network(net)
    return net, sc


@dataclass
class RobustnessResults:
    """The results of :func:`robustness`.

    Attributes
    ----------
    values: DataFrame, one row per ensemble member (index ``member``), one column per plan:
        the mean of the outcome KPI over the replications.
    regret: the regret of each plan in each member (same shape).
    table: one row per plan (see :func:`regret_table`).
    members: the ensemble: ``[{"member": label, **parameters}]``.
    per_member: ``{(plan, member): {"kpi|scope": mean}}`` of the KPIs kept (see *kpis*).
    meta: outcome KPI, direction, target, seed, replications, timings.
    """

    values: Any
    regret: Any
    table: Any
    members: list[dict]
    per_member: dict
    meta: dict

    def save(self, out_dir: str | Path, *, table_format: str = "csv") -> Path:
        """Write ``robustness`` (one row per plan), ``regret`` and ``ensemble_values`` (long
        schema: plan, scenario = the member, point = its number), ``ensemble_points`` (the
        parameters of each member) and ``manifest.json`` last. Draws nothing."""
        import pandas as pd

        from . import tables
        from .paths import check_out_dir
        from .results import write_atomic

        tables.check_format(table_format)
        out = check_out_dir(out_dir, field="out_dir")
        out.mkdir(parents=True, exist_ok=True)
        man = out / "manifest.json"
        man.unlink(missing_ok=True)
        kpi, scope = self.meta["kpi"].split("|", 1)
        long = []
        labels = list(self.values.index)
        for j, m in enumerate(labels):
            for p in self.values.columns:
                long.append({"scenario": m, "plan": p, "point": j, "statistic": "mean",
                             "kpi": kpi, "scope": scope, "value": self.values.loc[m, p]})
                long.append({"scenario": m, "plan": p, "point": j, "statistic": "regret",
                             "kpi": kpi, "scope": scope, "value": self.regret.loc[m, p]})
                for col, v in self.per_member.get((p, m), {}).items():
                    if col == self.meta["kpi"]:
                        continue
                    k, sc = col.split("|", 1)
                    long.append({"scenario": m, "plan": p, "point": j, "statistic": "mean",
                                 "kpi": k, "scope": sc, "value": v})
        ens = tables.coerce(pd.DataFrame(long))
        ens["seed"] = pd.array([self.meta.get("seed")] * len(ens), dtype="Int64")
        params = [{k: v for k, v in m.items() if k != "member"} for m in self.members]
        written = [tables.write_table(self.table, out / "robustness", table_format),
                   tables.write_table(ens, out / "ensemble_values", table_format),
                   tables.write_table(tables.tidy_points(params), out / "ensemble_points",
                                      table_format)]
        meta = dict(self.meta)
        meta.update({"kind": "robustness", "members": self.members,
                     "files": sorted(p.name for p in written)})
        write_atomic(man, json.dumps(meta, indent=2, default=str))
        return out


def robustness(network="rare_earth_2025", plans: Sequence = (DEFAULT_REFERENCE,),
               scenarios: Sequence | None = None, *, base=DEFAULT_BASE,
               uncertainties: dict | None = None, samples: int = 20, design_seed: int = 0,
               reps: int = 30, seed: int = 0, kpi: str = "fill_rate|sector:defense",
               higher_is_better: bool = True, target: float | None = 0.99,
               kpis: Iterable[str] = ("fill_rate|network", "fill_rate|sector:defense",
                                      "backordered_t|network"),
               executor=None, workers: int | None = None, chunk_size: int | None = None,
               horizon_days: float | None = None, progress: bool | None = None,
               max_failure_share: float = MAX_FAILURE_SHARE) -> RobustnessResults:
    """Score plans across a scenario ensemble: regret against the best plan per scenario,
    the share of scenarios meeting *target*, percentiles (:func:`regret_table`).

    The ensemble is *scenarios* (names, paths or objects) when given, else *samples* points of
    a Latin hypercube (:func:`sim.sweep.design_points`, seeded by *design_seed*) over
    *uncertainties* (path -> (low, high); default :data:`DEFAULT_UNCERTAINTIES` and
    :data:`DEFAULT_PLAN_UNCERTAINTIES`: truce renewal probability, approval probabilities, a
    demand factor, project delays) applied to the
    *base* scenario: sweep paths (:func:`sim.sweep.apply_params`), ``demand.factor`` (all
    demand times the factor) and ``plan.delay_days`` (every plan's levers that much later,
    :func:`delayed_plan`).
    Every plan runs in every member on the same replications (*reps*, *seed*: common random
    numbers), KPIs only. The outcome is the mean over replications of *kpi* (a ``kpi|scope``
    column); *kpis* are also kept per member."""
    _check_common(reps, seed, workers, executor, horizon_days, max_failure_share)
    if not isinstance(kpi, str) or "|" not in kpi:
        raise ModelError(f"must be a KPI column like 'fill_rate|sector:defense', got {kpi!r}",
                         field="kpi")
    if target is not None:
        check_number(target, "target")
    net = load_network(network)
    plan_objs = _resolve_plans(plans)
    _, apply_plan = _plans_api()
    members: list[tuple[dict, Any, Any]] = []
    if scenarios is not None:
        for sc in _resolve_scenarios(scenarios):
            sc.check_network(net)
            members.append(({"member": sc.name}, net, sc))
    else:
        from .sweep import design_points
        check_int(samples, "samples", 1, maximum=100_000)
        check_int(design_seed, "design_seed", 0, maximum=MAX_SEED)
        space = dict(_default_space() if uncertainties is None else uncertainties)
        base_sc = resolve_scenario(base)
        base_sc.check_network(net)
        for j, point in enumerate(design_points(space, "lhs", samples, design_seed)):
            n, s = _apply_uncertainties(net, base_sc, point)
            members.append(({"member": f"{base_sc.name} #{j}", **point}, n, s))
    # plans applied to every member before anything runs
    applied = {(p.name, m["member"]): apply_plan(
        delayed_plan(p, m["plan.delay_days"]) if "plan.delay_days" in m else p, n, s)
        for m, n, s in members for p in plan_objs}
    owned = None
    if executor is None:
        executor, owned = make_executor(workers)
    keep = list(dict.fromkeys([kpi, *kpis]))
    per_member: dict = {}
    t0 = time.perf_counter()
    try:
        for m, _, _ in members:
            for p in plan_objs:
                n, s = applied[(p.name, m["member"])]
                res = monte_carlo(n, s, reps=reps, seed=seed, executor=executor, workers=workers,
                                  chunk_size=chunk_size, horizon_days=horizon_days, series=False,
                                  progress=progress, max_failure_share=max_failure_share)
                if kpi not in res.per_rep.columns:
                    raise ModelError(f"no KPI column {kpi!r} in the results (columns look like "
                                     "'fill_rate|sector:defense')", field="kpi")
                per_member[(p.name, m["member"])] = {
                    c: float(np.nanmean(res.per_rep[c].to_numpy()))
                    for c in keep if c in res.per_rep.columns}
    finally:
        release(executor, owned)
    import pandas as pd

    labels = [m["member"] for m, _, _ in members]
    values = pd.DataFrame({p.name: [per_member[(p.name, m)][kpi] for m in labels]
                           for p in plan_objs}, index=pd.Index(labels, name="member"))
    regret, table = regret_table(values, higher_is_better=higher_is_better, target=target)
    from .results import package_versions
    meta = {"kind": "robustness", "network": net.name, "network_sha256": net.digest(),
            "plans": [p.name for p in plan_objs], "kpi": kpi,
            "higher_is_better": higher_is_better, "target": target, "reps": reps, "seed": seed,
            "base": None if scenarios is not None else resolve_scenario(base).name,
            "uncertainties": None if scenarios is not None else
            {k: list(v) for k, v in (_default_space() if uncertainties is None
                                     else uncertainties).items()},
            "samples": len(members), "design_seed": design_seed,
            "elapsed_seconds": time.perf_counter() - t0, "versions": package_versions(),
            "git_commit": git_commit(), "members_digest": digest_of([m for m, _, _ in members])}
    return RobustnessResults(values, regret, table, [m for m, _, _ in members], per_member, meta)
