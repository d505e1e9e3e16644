"""Statistics over replications: the summary of one KPI and the paired comparison of two
Monte Carlo results.

They sit in the results layer (below :mod:`sim.experiment`, which runs the replications)
because tables, trade-flow bands and figures summarise replications too, and none of them may
depend on the code that runs them. :mod:`sim.experiment` re-exports every name here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["QUANTILES", "Z95", "summarise", "paired_comparison"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
Z95 = 1.959963984540054


def summarise(values: np.ndarray) -> dict:
    """Mean, sd, standard error, 95% CI (normal) and quantiles of one KPI over replications."""
    v = values[np.isfinite(values)]
    n = len(v)
    if n == 0:
        return {"n": 0}
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    se = sd / math.sqrt(n) if n > 0 else 0.0
    q = np.quantile(v, QUANTILES)
    out = {"n": n, "mean": mean, "sd": sd, "se": se, "ci95_low": mean - Z95 * se,
           "ci95_high": mean + Z95 * se, "ci95_halfwidth": Z95 * se}
    out.update({f"q{int(p * 100):02d}": float(x) for p, x in zip(QUANTILES, q)})
    return out


def paired_comparison(base, other, kpis: Iterable[str] | None = None):
    """Difference ``other - base`` of each KPI, paired by replication index (CRN).

    *base* and *other* are Monte Carlo results (anything with a ``per_rep`` table indexed by
    replication and a ``meta`` dict, e.g. :class:`~sim.experiment.MonteCarloResults`).
    Returns a DataFrame with kpi, scope, mean difference, its sd and 95% CI, and the variance
    ratio var(paired difference) / (var(base) + var(other)): below 1 means common random numbers
    helped (an unpaired comparison would have that denominator).
    """
    import pandas as pd

    common = base.per_rep.index.intersection(other.per_rep.index)
    cols = [c for c in base.per_rep.columns if c in other.per_rep.columns]
    if kpis is not None:
        wanted = set(kpis)
        cols = [c for c in cols if c in wanted or c.split("|", 1)[0] in wanted]
    rows = []
    for c in cols:
        a = base.per_rep.loc[common, c].to_numpy()
        b = other.per_rep.loc[common, c].to_numpy()
        d = b - a
        s = summarise(d)
        if not s.get("n"):
            continue
        denom = np.var(a, ddof=1) + np.var(b, ddof=1) if len(a) > 1 else 0.0
        ratio = float(np.var(d, ddof=1) / denom) if denom > 0 else (0.0 if s["sd"] == 0 else math.inf)
        name, scope = c.split("|", 1)
        rows.append({"kpi": name, "scope": scope, "base": base.meta.get("scenario"),
                     "other": other.meta.get("scenario"), "mean_base": float(a.mean()),
                     "mean_other": float(b.mean()), "difference": s["mean"], "sd": s["sd"],
                     "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"], "n": s["n"],
                     "variance_ratio_paired_vs_unpaired": ratio})
    return pd.DataFrame(rows)
