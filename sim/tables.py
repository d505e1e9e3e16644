"""Result tables: one tidy long schema for every command, written as CSV or Parquet.

Every KPI table that ``run``, ``mc``, ``compare`` and ``sweep`` write has the columns of
:data:`SCHEMA`, in this order and with these dtypes (the same after a round trip through
CSV or Parquet; :func:`read_table` restores them):

=============  ===========  ================================================================
column         dtype        meaning
=============  ===========  ================================================================
scenario       string       scenario name (for a paired difference: the other scenario)
plan           string       the plan (mitigation policy) simulated; "" when none
point          Int64        sweep point (see ``sweep_points``); <NA> outside sweeps
replication    Int64        replication index; <NA> for statistics over replications
seed           Int64        root seed
statistic      string       ``value`` (one replication's value), or a statistic over
                            replications: ``n``, ``mean``, ``sd``, ``se``, ``ci95_low``,
                            ``ci95_high``, ``ci95_halfwidth``, ``q05`` ... ``q95``, ``share``
                            (of a category); paired differences: ``difference``,
                            ``mean_base``, ``mean_other``, ``variance_ratio_paired_vs_unpaired``
reference      string       what a difference is taken from (the base scenario); "" else
kpi            string       KPI name (see :mod:`sim.labels` for readable names and units)
scope          string       ``network``, ``civil``, ``sector:<s>``, ``country:<c>``,
                            ``node:<id>``, ``policy``
label          string       text form of the value where it has one: the category of a
                            categorical KPI (truce outcome ``extend``), the date of a first
                            shortage; "" else
value          float64      the number (fractions for rates); empty (NaN) for a category,
                            whose ``label`` is the value
=============  ===========  ================================================================

Sweeps also write ``sweep_points`` (point, parameter, value, label: the parameter values of
each point) and Monte Carlo runs ``bands`` (scenario, seed, date, kpi, scope, statistic,
value: quantile bands of the weekly series). Daily or weekly series of a run have one row per
node, material and period, with string ``node``, ``material``, ``kind``, ``sector`` (``none``
where a node has no sector) and float64 quantities.

CSV is the default format; Parquet needs pyarrow, and asking for it without pyarrow is a
:class:`~sim.errors.ModelError` before anything runs (:func:`check_format`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ModelError
from .labels import CATEGORIES

__all__ = ["SCHEMA", "FORMATS", "DEFAULT_FORMAT", "check_format", "write_table", "read_table",
           "tidy", "tidy_summary", "tidy_diffs", "wide", "wide_diffs", "coerce", "table_path"]

SCHEMA = {
    "scenario": "string", "plan": "string", "point": "Int64", "replication": "Int64",
    "seed": "Int64", "statistic": "string", "reference": "string", "kpi": "string",
    "scope": "string", "label": "string", "value": "float64",
}
BANDS_SCHEMA = {"scenario": "string", "seed": "Int64", "date": "datetime64[ns]",
                "kpi": "string", "scope": "string", "statistic": "string", "value": "float64"}
POINTS_SCHEMA = {"point": "Int64", "parameter": "string", "value": "float64", "label": "string"}
FORMATS = ("csv", "parquet")
DEFAULT_FORMAT = "csv"
_STATS = ("n", "mean", "sd", "se", "ci95_low", "ci95_high", "ci95_halfwidth")
_DIFF_STATS = ("difference", "sd", "ci95_low", "ci95_high", "n", "mean_base", "mean_other",
               "variance_ratio_paired_vs_unpaired")


def check_format(fmt: str) -> str:
    """*fmt* if it can be written here: ``csv``, or ``parquet`` with pyarrow installed; else a
    :class:`~sim.errors.ModelError` (call it before a long run)."""
    if fmt not in FORMATS:
        raise ModelError(f"unknown table format {fmt!r}; choose csv or parquet", field="format")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ModelError("Parquet output needs pyarrow (pip install pyarrow); or use "
                             "--format csv", field="format") from None
    return fmt


def table_path(stem: str | Path, fmt: str) -> Path:
    """``stem`` with the suffix of *fmt*."""
    return Path(stem).with_suffix("." + fmt)


def write_table(df, stem: str | Path, fmt: str = DEFAULT_FORMAT) -> Path:
    """Write *df* as ``stem.csv`` or ``stem.parquet`` atomically (a temporary file, then a
    rename); a table of the other format with the same stem is removed (a rerun never
    leaves two versions). Returns the path."""
    check_format(fmt)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = table_path(stem, fmt)
    tmp = stem.with_name(f".{stem.name}.tmp.{fmt}")
    if fmt == "parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    other = table_path(stem, "csv" if fmt == "parquet" else "parquet")
    if other.exists():
        other.unlink()
    return path


def coerce(df, schema: dict | None = None):
    """*df* with the columns of *schema* (default :data:`SCHEMA`) in order and with their
    dtypes (missing text columns become "", missing numbers <NA>); other columns follow."""
    import pandas as pd

    schema = SCHEMA if schema is None else schema
    df = df.copy()
    for col, dtype in schema.items():
        if col not in df:
            df[col] = "" if dtype == "string" else (pd.NA if dtype == "Int64" else np.nan)
        if dtype == "string":
            df[col] = df[col].astype("string").fillna("")
        elif dtype == "Int64":
            df[col] = pd.to_numeric(df[col], errors="raise").astype("Int64")
        elif dtype.startswith("datetime64"):
            df[col] = pd.to_datetime(df[col]).astype(dtype)
        else:
            df[col] = pd.to_numeric(df[col], errors="raise").astype(dtype)
    rest = [c for c in df.columns if c not in schema]
    return df[list(schema) + rest].reset_index(drop=True)


def read_table(stem: str | Path, schema: dict | None = None, *, wide_diffs: bool = False):
    """Read ``stem.parquet`` or ``stem.csv`` (whichever exists) with the dtypes of *schema*
    (default: :data:`SCHEMA` when the table has its columns; else as pandas reads it).
    *wide_diffs*: a paired-difference table back in the wide form of
    :func:`~sim.experiment.paired_comparison`."""
    import pandas as pd

    stem = Path(stem)
    if table_path(stem, "parquet").exists():
        df = pd.read_parquet(table_path(stem, "parquet"))
    elif table_path(stem, "csv").exists():
        df = pd.read_csv(table_path(stem, "csv"), keep_default_na=False, na_values=[""],
                         low_memory=False)
    else:
        raise ModelError("missing table (no .csv or .parquet)", file=str(stem))
    if schema is None and set(SCHEMA) <= set(df.columns):
        schema = SCHEMA
    if schema is not None:
        df = coerce(df, schema)
    if wide_diffs and schema is SCHEMA:         # (a table of the wide form is returned as is)
        return globals()["wide_diffs"](df)
    return df


# ---------------------------------------------------------------------------------------------
# wide <-> long
# ---------------------------------------------------------------------------------------------

def _label_of(kpi: str, value: float) -> str:
    cats = CATEGORIES.get(kpi)
    if cats is None or not np.isfinite(value):
        return ""
    return cats.get(int(round(value)), str(value))


def tidy(per_rep, *, scenario: str = "", seed=None, plan: str = "", point=None,
         replications=None):
    """Per-replication values in the long schema: *per_rep* has one row per replication and
    one column per ``kpi|scope`` (the index or *replications* gives the replication);
    categorical KPIs become labels (value empty)."""
    import pandas as pd

    cols = [c for c in per_rep.columns if "|" in str(c)]
    reps = np.asarray(per_rep.index if replications is None else replications)
    vals = per_rep[cols].to_numpy(dtype=float)
    n, k = vals.shape
    kpi = np.array([c.split("|", 1)[0] for c in cols], dtype=object)
    scope = np.array([c.split("|", 1)[1] for c in cols], dtype=object)
    df = pd.DataFrame({
        "scenario": scenario, "plan": plan, "point": point if point is not None else pd.NA,
        "replication": np.repeat(reps, k), "seed": seed if seed is not None else pd.NA,
        "statistic": "value", "reference": "", "kpi": np.tile(kpi, n),
        "scope": np.tile(scope, n), "label": "", "value": vals.ravel(),
    })
    _categorical(df)
    return coerce(df)


def _categorical(df) -> None:
    """Categorical KPIs: the label of each value's category, the value left empty."""
    for name in CATEGORIES:
        m = (df["kpi"] == name).to_numpy()
        if m.any():
            df.loc[m, "label"] = [_label_of(name, v) for v in df.loc[m, "value"]]
            df.loc[m, "value"] = np.nan


def tidy_summary(per_rep, summarise, *, scenario: str = "", seed=None, plan: str = "",
                 point=None):
    """Statistics over replications (``summarise(values) -> dict``) in the long schema, one
    row per KPI column and statistic; a categorical KPI gets the ``share`` of each category
    instead."""
    import pandas as pd

    rows = []
    for col in per_rep.columns:
        if "|" not in str(col):
            continue
        name, scope = col.split("|", 1)
        v = per_rep[col].to_numpy(dtype=float)
        if name in CATEGORIES:
            v = v[np.isfinite(v)]
            for code, lab in CATEGORIES[name].items():
                share = float(np.mean(np.round(v) == code)) if len(v) else np.nan
                rows.append((name, scope, "share", lab, share))
            continue
        for stat, x in summarise(v).items():
            rows.append((name, scope, stat, "", float(x)))
    df = pd.DataFrame(rows, columns=["kpi", "scope", "statistic", "label", "value"])
    df["scenario"], df["plan"], df["seed"] = scenario, plan, seed if seed is not None else pd.NA
    df["point"] = point if point is not None else pd.NA
    return coerce(df)


def tidy_diffs(diffs, *, seed=None, plan: str = ""):
    """The wide paired differences of :func:`~sim.experiment.paired_comparison` in the long
    schema: scenario = the other scenario, reference = the base (categorical KPIs, whose
    codes have no differences, are left out)."""
    import pandas as pd

    if diffs is None or not len(diffs):
        return coerce(pd.DataFrame(columns=list(SCHEMA)))
    stats = [s for s in _DIFF_STATS if s in diffs.columns]
    diffs = diffs[~diffs["kpi"].isin(list(CATEGORIES))]      # a difference of codes means nothing
    df = diffs.melt(id_vars=["kpi", "scope", "base", "other"], value_vars=stats,
                    var_name="statistic", value_name="value")
    df = df.rename(columns={"other": "scenario", "base": "reference"})
    df["plan"], df["seed"] = plan, seed if seed is not None else pd.NA
    return coerce(df)


def wide(long, *, index: str = "replication"):
    """Per-replication values of the long schema back as one column per ``kpi|scope`` (the
    categories as their codes), indexed by *index* (``replication``, or ``point`` and
    ``replication`` for sweeps)."""
    import pandas as pd

    df = long[long["statistic"] == "value"].copy()
    for name, cats in CATEGORIES.items():
        m = (df["kpi"] == name).to_numpy()
        if m.any():
            code = {lab: float(c) for c, lab in cats.items()}
            df.loc[m, "value"] = [code.get(lab, np.nan) for lab in df.loc[m, "label"]]
    df["col"] = df["kpi"].astype(str) + "|" + df["scope"].astype(str)
    idx = [index] if isinstance(index, str) else list(index)
    order = list(dict.fromkeys(df["col"]))
    out = df.pivot(index=idx, columns="col", values="value")[order]
    out.columns.name = None
    out.index = out.index.astype("int64") if len(idx) == 1 else \
        pd.MultiIndex.from_arrays([out.index.get_level_values(i).astype("int64") for i in idx],
                                  names=idx)
    return out


def wide_diffs(long):
    """A long paired-difference table back in the wide form of
    :func:`~sim.experiment.paired_comparison`."""
    if not len(long):
        import pandas as pd
        return pd.DataFrame()
    df = long.pivot_table(index=["kpi", "scope", "reference", "scenario"], columns="statistic",
                          values="value", sort=False).reset_index()
    df.columns.name = None
    df = df.rename(columns={"reference": "base", "scenario": "other"})
    for c in ("kpi", "scope", "base", "other"):
        df[c] = df[c].astype(str)
    if "n" in df:
        df["n"] = df["n"].astype("int64")
    return df


# ---------------------------------------------------------------------------------------------
# sweeps
# ---------------------------------------------------------------------------------------------

def tidy_points(points: list[dict]):
    """The parameter values of each sweep point: point, parameter, value (numbers) and label
    (text values, and numbers as written)."""
    import pandas as pd

    rows = []
    for j, p in enumerate(points):
        for name, v in p.items():
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            rows.append((j, name, float(v) if num else np.nan, "" if num else str(v)))
    return coerce(pd.DataFrame(rows, columns=list(POINTS_SCHEMA)), POINTS_SCHEMA)


def write_sweep_tables(res, root: Path, fmt: str = DEFAULT_FORMAT) -> list[Path]:
    """Write ``sweep`` (per point and replication), ``sweep_summary`` (statistics per point)
    and ``sweep_points`` of a :class:`~sim.sweep.SweepResults` in the long schema."""
    import pandas as pd

    from .stats import summarise

    scen, seed = str(res.meta.get("scenario", "")), res.meta.get("seed")
    t = res.table
    kcols = [c for c in t.columns if "|" in str(c)] if len(t) else []
    per, summ = [], []
    for j in range(len(res.points)):
        sub = t[t["point"] == j] if len(t) else t
        if len(sub):
            per.append(tidy(sub[kcols], scenario=scen, seed=seed, point=j,
                            replications=sub["replication"].to_numpy()))
            summ.append(tidy_summary(sub[kcols], summarise, scenario=scen, seed=seed, point=j))
    empty = coerce(pd.DataFrame(columns=list(SCHEMA)))
    return [write_table(pd.concat(per, ignore_index=True) if per else empty, root / "sweep", fmt),
            write_table(pd.concat(summ, ignore_index=True) if summ else empty,
                        root / "sweep_summary", fmt),
            write_table(tidy_points(res.points), root / "sweep_points", fmt)]


def sweep_from_tables(root: Path, points: list[dict]):
    """The wide sweep table (point, parameters, replication, ``kpi|scope`` columns) and the
    wide summary (point, parameters, kpi, scope, statistics) from a sweep folder."""
    import pandas as pd

    long = read_table(Path(root) / "sweep")
    if len(long):
        table = wide(long, index=["point", "replication"]).reset_index()
    else:
        table = pd.DataFrame()
    summ = read_table(Path(root) / "sweep_summary")
    summ = summ[summ["statistic"] != "share"]          # category shares: not a column
    summary = summ.pivot_table(index=["point", "kpi", "scope"], columns="statistic",
                               values="value", sort=False).reset_index() if len(summ) \
        else pd.DataFrame()
    if len(summary):
        summary.columns.name = None
        summary["point"] = summary["point"].astype("int64")
        summary["kpi"] = summary["kpi"].astype(str)
        summary["scope"] = summary["scope"].astype(str)
    for frame in (table, summary):
        if not len(frame):
            continue
        names = list(points[0]) if points else []
        for pos, name in enumerate(names):
            frame.insert(1 + pos, name, [points[int(j)][name] for j in frame["point"]])
    return table, summary


# ---------------------------------------------------------------------------------------------
# series of one run
# ---------------------------------------------------------------------------------------------

SERIES_STEPS = {"daily": 1, "weekly": 7}
NO_SECTOR = "none"           # the sector of a series row of a node without one
_LEVELS = ("inventory", "on_order", "backorders")


def compact_series(series, step: str = "weekly"):
    """A run's daily series (:meth:`~sim.results.Run.series`) on a coarser grid: ``weekly``
    keeps each week's last day for levels (inventory, on_order, backorders) and the week's sum
    for flows (received, shipped, produced, consumed, demand, filled); ``daily`` as it is.
    Text columns become strings (sector ``"none"`` for a node without one); ``day`` is the last
    day of the period."""
    import pandas as pd

    if step not in SERIES_STEPS:
        raise ModelError(f"unknown series step {step!r}; choose daily or weekly", field="series")
    df = series.copy()
    for c in ("node", "material", "kind", "sector"):
        if c in df:
            df[c] = df[c].astype("string").fillna("")
    if "sector" in df:
        # "none", not empty: an empty field reads back as a missing number, and a long file
        # whose first rows all lack a sector would load as a mixed column (DtypeWarning)
        df["sector"] = df["sector"].mask(df["sector"] == "", NO_SECTOR)
    k = SERIES_STEPS[step]
    if k == 1 or not len(df):
        return df.reset_index(drop=True)
    keys = ["node", "material", "kind", "sector"]
    df["period"] = df["day"] // k
    flows = [c for c in df.columns if c not in (*keys, "day", "date", "period", *_LEVELS)]
    g = df.groupby([*keys, "period"], sort=False)
    out = g[["day", "date", *[c for c in _LEVELS if c in df]]].last()
    out[flows] = g[flows].sum()
    out = out.reset_index().drop(columns="period")
    cols = ["day", "date", *keys, *[c for c in series.columns if c not in ("day", "date", *keys)]]
    out = out[cols]
    for c in keys:
        out[c] = out[c].astype("string")
    return out.reset_index(drop=True)


def tidy_run(kpis, *, plan: str = ""):
    """The KPI table of one run (:meth:`~sim.results.Run.kpis`) in the long schema: the date
    of a first shortage and the category of a categorical KPI go in ``label``."""
    df = kpis.copy()
    df["label"] = df.pop("date").fillna("").astype(str) if "date" in df else ""
    df["statistic"], df["plan"] = "value", plan
    for name in CATEGORIES:
        m = (df["kpi"] == name).to_numpy()
        if m.any():
            df.loc[m, "label"] = [_label_of(name, v) for v in df.loc[m, "value"]]
            df.loc[m, "value"] = np.nan
    return coerce(df)
