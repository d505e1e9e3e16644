"""The headline comparison: the truce holds vs the truce expires on 10 November 2026.

Covers: a paired Monte Carlo comparison of ``truce-holds`` and ``truce-expires`` with the same
root seed, so replication *i* of both scenarios sees the same demand, lead-time and licence
draws (common random numbers). Draws weekly fill-rate fan charts (5-95% and 25-75% of
replications, median) of defense users and of civil users (automotive, electronics and wind;
their weekly fill rates weighted by each replication's demand) for both scenarios, and the
paired differences (expires minus holds) of the fill rate over the whole horizon with 95% CIs
and the variance ratio paired / unpaired. Also writes the standard comparison figures of
``sim.plots.plot_comparison`` and each scenario's Monte Carlo folder.

Scenario: ``truce-holds`` vs ``truce-expires`` on the default network ``rare_earth_2025``
(2025-01-01 to 2029-01-01).

Run from the repository root::

    python experiments/headline_figure.py             # REPS replications per scenario
    python experiments/headline_figure.py --quick     # smoke test (4 replications)

Results go to ``--out`` (default ``results/headline``): ``headline.png``,
``paired_differences.csv``, ``compare_*.png`` and one folder per scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim import plots
from sim.experiment import monte_carlo, paired_comparison

# ---- parameters ------------------------------------------------------------------------------
NETWORK = "rare_earth_2025"
BASE_SCENARIO = "truce-holds"
OTHER_SCENARIO = "truce-expires"
RANDOM_SEED = 20251030              # the Busan meeting
REPS = 200                          # replications per scenario
QUICK_REPS = 4
WORKERS = None                      # None: all available cores
CIVIL_SECTORS = ("automotive", "electronics", "wind")
SCOPES = ("network", "sector:defense", "sector:civil", "sector:automotive", "sector:electronics",
          "sector:wind")
COLOURS = {BASE_SCENARIO: "#2166ac", OTHER_SCENARIO: "#b2182b"}
OUT_DIR = Path("results/headline")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per scenario (default {REPS})")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help="worker processes (default: all cores)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT_DIR})")
    p.add_argument("--seed", type=int, default=RANDOM_SEED,
                   help=f"root seed (default {RANDOM_SEED})")
    p.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_REPS} replications")
    return p.parse_args(argv)


def with_civil(res):
    """The results with pooled civil columns in per_rep (fill rate = filled / demand tonnes
    over the civil sectors) and a weekly civil fill-rate series: each replication's weekly
    sector fill rates weighted by that replication's sector demand over the horizon (weekly
    demand is not kept, so this approximates the weekly pooled ratio)."""
    per_rep = res.per_rep.copy()
    sectors = [s for s in CIVIL_SECTORS if f"demand_t|sector:{s}" in per_rep.columns]
    demand = sum(per_rep[f"demand_t|sector:{s}"] for s in sectors)
    filled = sum(per_rep[f"filled_t|sector:{s}"] for s in sectors)
    per_rep["demand_t|sector:civil"] = demand
    per_rep["filled_t|sector:civil"] = filled
    per_rep["fill_rate|sector:civil"] = (filled / demand.where(demand > 0, 1)).where(demand > 0,
                                                                                     1.0)
    weights = np.column_stack([per_rep[f"demand_t|sector:{s}"].to_numpy() for s in sectors])
    weights = weights / np.where(weights.sum(axis=1, keepdims=True) > 0,
                                 weights.sum(axis=1, keepdims=True), 1.0)
    stack = np.stack([res.series[f"fill_rate|sector:{s}"] for s in sectors], axis=2)
    series = dict(res.series)
    series["fill_rate|sector:civil"] = np.einsum("rws,rs->rw", stack, weights).astype(np.float32)
    return dataclasses.replace(res, per_rep=per_rep, series=series)


def _fan(ax, results, name: str, title: str) -> None:
    """Quantile bands of one weekly series for each scenario, on one axis."""
    start = dt.date.fromisoformat(str(results[0].meta["start"])[:10])
    for res in results:
        b = res.bands(name)
        c = COLOURS.get(res.meta["scenario"], "0.3")
        x = b["date"].to_numpy()
        ax.fill_between(x, 100 * b["q05"], 100 * b["q95"], color=c, alpha=0.15, lw=0)
        ax.fill_between(x, 100 * b["q25"], 100 * b["q75"], color=c, alpha=0.3, lw=0)
        ax.plot(x, 100 * b["q50"], color=c, lw=1.5, label=f"{res.meta['scenario']} (median)")
    expiry = [e for e in results[0].policy_events if "expiry" in str(e[2])]
    plots.mark_policy_events(ax, expiry, start)
    low = min(float(np.nanmin(r.bands(name)["q05"])) for r in results) * 100
    ax.set_ylim(max(-2.0, min(low - 5.0, 80.0)), 101)
    ax.set_ylabel("fill rate in the week (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def headline_figure(results, diffs: pd.DataFrame, path: Path) -> Path:
    """Fan charts of defense and civil fill rates (both scenarios) and the paired differences
    of the horizon fill rate with 95% CIs."""
    fig = plt.figure(figsize=(13, 7.5))
    gs = fig.add_gridspec(2, 2, width_ratios=[1.6, 1])
    ax_def = fig.add_subplot(gs[0, 0])
    ax_civ = fig.add_subplot(gs[1, 0], sharex=ax_def)
    ax_ci = fig.add_subplot(gs[:, 1])
    _fan(ax_def, results, "fill_rate|sector:defense", "Defense users: weekly fill rate")
    _fan(ax_civ, results, "fill_rate|sector:civil",
         "Civil users (automotive, electronics, wind): weekly fill rate")
    ax_civ.set_xlabel("date (weekly grid)")
    ax_def.legend(fontsize=8, loc="lower left",
                  title="bands: 5-95% and 25-75% of replications", title_fontsize=7)
    d = diffs[(diffs["kpi"] == "fill_rate") & diffs["scope"].isin(SCOPES)].set_index("scope")
    d = d.loc[[s for s in SCOPES if s in d.index]]
    y = np.arange(len(d))
    m, lo, hi = 100 * d["difference"], 100 * d["ci95_low"], 100 * d["ci95_high"]
    ax_ci.errorbar(m, y, xerr=[m - lo, hi - m], fmt="o", color="k", capsize=4, ms=5,
                   label="mean with 95% CI")
    ratios = d["variance_ratio_paired_vs_unpaired"]
    for yi, (mi, lo_i, hi_i, vr) in enumerate(zip(m, lo, hi, ratios, strict=True)):
        ax_ci.annotate(f"{mi:+.2f} [{lo_i:+.2f}, {hi_i:+.2f}]\nvar. ratio {vr:.2f}", (mi, yi),
                       xytext=(0, 9), textcoords="offset points", ha="center", fontsize=7)
    ax_ci.axvline(0, color="0.4", lw=0.8)
    ax_ci.set_yticks(y, [s.split(":", 1)[-1] for s in d.index])
    ax_ci.set_ylim(len(d) - 0.4, -0.7)
    ax_ci.set_xlabel(f"fill rate: {OTHER_SCENARIO} minus {BASE_SCENARIO}\n"
                     "(percentage points)")
    ax_ci.set_title("Paired differences over the horizon\n(common random numbers)", fontsize=10)
    ax_ci.grid(axis="x", alpha=0.3)
    ax_ci.legend(fontsize=7, loc="lower right")
    n = int(d["n"].max()) if len(d) else 0
    fig.suptitle(f"If the truce expires on 10 November 2026: {OTHER_SCENARIO} vs {BASE_SCENARIO}")
    plots.caption(fig, f"network {results[0].meta['network']} | {n} paired replications per "
                       f"scenario | seed {results[0].meta['seed']} | CIs: normal, 95% | var. "
                       "ratio: var(paired difference) / (var(base) + var(other)) | civil weekly "
                       "fill rate: sector rates weighted by each replication's demand")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return plots.save_figure(fig, path)


def print_table(diffs: pd.DataFrame) -> None:
    rows = diffs[diffs["kpi"].isin(["fill_rate", "shortage_after_occurred", "backordered_t"])
                 & diffs["scope"].isin(SCOPES)].copy()
    for c in ("mean_base", "mean_other", "difference", "ci95_low", "ci95_high"):
        rows[c] = np.where(rows["kpi"].isin(["fill_rate", "shortage_after_occurred"]), 100,
                           1) * rows[c]
    keys = ("fill_rate", "shortage_after_occurred", "backordered_t", *SCOPES)
    order = {k: i for i, k in enumerate(keys)}
    rows = rows.sort_values(["kpi", "scope"], key=lambda c: c.map(order))
    rows["scope"] = rows["scope"].str.replace("sector:", "", regex=False)
    print(f"{OTHER_SCENARIO} minus {BASE_SCENARIO} (fill rate and P(shortage after the expiry) "
          "in %, backorders in t):")
    print(rows[["kpi", "scope", "mean_base", "mean_other", "difference", "ci95_low", "ci95_high",
                "variance_ratio_paired_vs_unpaired"]]
          .rename(columns={"variance_ratio_paired_vs_unpaired": "var_ratio"})
          .to_string(index=False, float_format=lambda x: f"{x:.3g}"))


def main(argv=None) -> int:
    args = parse_args(argv)
    reps = args.reps or (QUICK_REPS if args.quick else REPS)
    out = args.out or (OUT_DIR.with_name(OUT_DIR.name + "-quick") if args.quick else OUT_DIR)
    print(f"{BASE_SCENARIO} vs {OTHER_SCENARIO} on {NETWORK}: {reps} paired replications, "
          f"seed {args.seed}")
    try:
        results = [monte_carlo(NETWORK, s, reps=reps, seed=args.seed, workers=args.workers)
                   for s in (BASE_SCENARIO, OTHER_SCENARIO)]
    except sim.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        r.save(out / r.meta["scenario"], plots=False)
        if r.failures:
            print(f"{r.meta['scenario']}: {len(r.failures)} replication(s) FAILED, e.g. "
                  f"{r.failures[0]['error']}")
    results = [with_civil(r) for r in results]
    diffs = paired_comparison(results[0], results[1])
    diffs.to_csv(out / "paired_differences.csv", index=False)
    written = [headline_figure(results, diffs, out / "headline.png")]
    written += plots.plot_comparison(results, diffs, out)
    print_table(diffs)
    print(f"\nwrote {out}/ and figures:")
    for p in written:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
