"""How severe must China's April 2025 licensing be before users run short, and who runs short?

Covers: the licence approval probability (``controls.apr_2025.approval_probability``) crossed
with a fixed licence review time in days (``controls.apr_2025.review_days`` set to a number)
of the 4 April 2025 dual-use licensing of Sm, Gd, Tb, Dy, Lu, Sc, Y and magnets containing them.
For each point: shortage by sector and by country of the demand node, as the type-2 fill rate
and the unfilled tonnes (backordered + lost), with 95% CIs over replications. Every point runs
the same replication streams (common random numbers).

Scenario: ``controls-apr-2025`` on the default network ``rare_earth_2025`` (2025-01-01 to
2029-01-01). By default (``SWEPT_REGIME_HOLDS = True``) the swept approval probability and
review time hold from 4 April 2025 to the end of the horizon: the file's later regime changes
(the June 2025 easing to 0.75, the December 2025 general licences and the January 2026 Japan
rules) are dropped, and the scenario is renamed ``controls-apr-2025-held``. With
``--keep-changes`` the swept values apply only until the first change (10 June 2025) and the
file's changes follow, as in the built-in scenario.

Run from the repository root::

    python experiments/export_control_severity.py            # REPS replications per point
    python experiments/export_control_severity.py --quick    # smoke test

Results (sweep tables, manifest, figures, ``severity_by_sector.csv``,
``severity_by_country.csv``) go to ``--out`` (default ``results/export_control_severity``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

try:
    import sim
except ImportError:     # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sim

import pandas as pd

from sim import plots
from sim.cli import add_figure_options, figure_output
from sim.cli_args import record_figures
from sim.experiment import summarise
from sim.sweep import sweep

# ---- parameters ------------------------------------------------------------------------------
NETWORK = "rare_earth_2025"
SCENARIO = "controls-apr-2025"
CONTROL = "apr_2025"
RANDOM_SEED = 20250404
REPS = 30                           # replications per point (25 points)
QUICK_REPS = 2
WORKERS = None                      # None: all available cores
APPROVAL_PROBABILITIES = [0.1, 0.25, 0.5, 0.75, 1.0]
REVIEW_DAYS = [10, 30, 63, 90, 180]    # 63: the 45-working-day statutory limit
SWEPT_REGIME_HOLDS = True           # drop the file's later regime changes (see docstring)
SECTORS = ("defense", "automotive", "electronics", "wind")
OUT_DIR = Path("results/export_control_severity")

P_APPROVE = f"controls.{CONTROL}.approval_probability"
P_REVIEW = f"controls.{CONTROL}.review_days"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per point (default {REPS})")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help="worker processes (default: all cores)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT_DIR})")
    p.add_argument("--seed", type=int, default=RANDOM_SEED,
                   help=f"root seed (default {RANDOM_SEED})")
    p.add_argument("--keep-changes", action="store_true",
                   help="keep the file's later regime changes (swept values apply until June 2025)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_REPS} replications per point, 3 x 3 points")
    add_figure_options(p)              # --figure-format, --dpi, --figure-size
    return p.parse_args(argv)


def held_scenario(scenario: sim.Scenario) -> sim.Scenario:
    """The scenario with the control's later regime changes removed (the swept regime holds)."""
    doc = scenario.to_dict()
    doc["controls"][CONTROL].pop("changes", None)
    doc["scenario"]["name"] = f"{scenario.name}-held"
    doc["scenario"]["description"] = (f"{scenario.description} Regime changes of {CONTROL} "
                                      "removed: the swept parameters hold to the end.")
    return sim.Scenario.from_dict(doc)


def unfilled_columns(table: pd.DataFrame) -> list[str]:
    """Add ``unfilled_t|scope`` = demand - filled (backordered + lost) for every scope with
    demand; return the scopes."""
    scopes = [c.split("|", 1)[1] for c in table.columns if c.startswith("demand_t|")]
    for s in scopes:
        table[f"unfilled_t|{s}"] = table[f"demand_t|{s}"] - table[f"filled_t|{s}"]
    return scopes


def by_scope(table: pd.DataFrame, scopes: list[str]) -> pd.DataFrame:
    """Long table: point parameters, scope, mean fill rate and unfilled tonnes with 95% CIs."""
    rows = []
    for (a, r), g in table.groupby([P_APPROVE, P_REVIEW], sort=True):
        for s in scopes:
            f = summarise(g[f"fill_rate|{s}"].to_numpy())
            u = summarise(g[f"unfilled_t|{s}"].to_numpy())
            rows.append({"approval_probability": a, "review_days": r, "scope": s,
                         "fill_rate": f["mean"], "fill_rate_ci95": f["ci95_halfwidth"],
                         "unfilled_t": u["mean"], "unfilled_t_ci95": u["ci95_halfwidth"],
                         "reps": f["n"]})
    return pd.DataFrame(rows)


def print_wide(df: pd.DataFrame, title: str) -> None:
    """Fill rate (%) per point (rows) and scope (columns)."""
    wide = df.pivot_table(index=["approval_probability", "review_days"], columns="scope",
                          values="fill_rate", sort=True) * 100
    wide.columns = [c.split(":", 1)[-1] for c in wide.columns]
    print(f"\n{title}: mean type-2 fill rate (%)")
    print(wide.to_string(float_format=lambda x: f"{x:6.1f}"))


def figures(res, out: Path, countries: list[str]) -> list[Path]:
    """Heatmaps of fill rate per demand country and of unfilled tonnes per sector, lines of
    the network's unfilled tonnes against the approval probability by review time."""
    written = []
    for c in countries:
        written.append(plots.sweep_heatmap(res, f"fill_rate|country:{c}", P_APPROVE, P_REVIEW,
                                           out / f"severity_heatmap_fill_rate_{c}.png"))
    for s in SECTORS:
        col = f"unfilled_t|sector:{s}"
        if col in res.table.columns:
            written.append(plots.sweep_heatmap(res, col, P_APPROVE, P_REVIEW,
                                               out / f"severity_heatmap_unfilled_{s}.png"))
    written.append(plots.sweep_lines(res, "unfilled_t|network", P_APPROVE,
                                     out / "severity_lines_unfilled_network.png", by=P_REVIEW))
    return [w for w in written if w is not None]          # figures of constants are skipped


def main(argv=None) -> int:
    args = parse_args(argv)
    with figure_output(args):
        return run(args)


def run(args) -> int:
    reps = args.reps or (QUICK_REPS if args.quick else REPS)
    out = args.out or (OUT_DIR.with_name(OUT_DIR.name + "-quick") if args.quick else OUT_DIR)
    if args.quick and args.out is None and (out / "sweep_spec.json").exists():
        shutil.rmtree(out)          # a smoke test starts afresh (inputs may have changed)
    network = sim.load_network(NETWORK)
    scenario = sim.load_scenario(SCENARIO)
    if SWEPT_REGIME_HOLDS and not args.keep_changes:
        scenario = held_scenario(scenario)
    approvals = [0.1, 0.5, 1.0] if args.quick else APPROVAL_PROBABILITIES
    reviews = [10, 63, 180] if args.quick else REVIEW_DAYS
    params = {P_APPROVE: approvals, P_REVIEW: reviews}
    print(f"{scenario.name} on {NETWORK}: {len(approvals)} x {len(reviews)} points x {reps} "
          f"replications, seed {args.seed}")
    try:
        res = sweep(network, scenario, params, reps=reps, seed=args.seed, out_dir=out,
                    workers=args.workers)
    except sim.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # the sweep's own figures, drawn after it saved its tables and listed in its manifest
    record_figures(out, plots.plot_sweep(res, out))
    table = res.table.copy()
    scopes = unfilled_columns(table)
    sectors = [s for s in scopes if s.startswith("sector:")]
    countries = sorted(s for s in scopes if s.startswith("country:"))
    by_sector = by_scope(table, ["network", *sectors])
    by_country = by_scope(table, countries)
    by_sector.to_csv(out / "severity_by_sector.csv", index=False)
    by_country.to_csv(out / "severity_by_country.csv", index=False)
    res2 = dataclasses.replace(res, table=table)
    written = figures(res2, out, [c.split(":", 1)[1] for c in countries])
    print_wide(by_sector, "By sector")
    print_wide(by_country, "By country of the demand node")
    worst = by_country.sort_values("unfilled_t", ascending=False).groupby("scope").head(1)
    print("\nMost unfilled tonnes per country (at its worst point):")
    print(worst[["scope", "approval_probability", "review_days", "unfilled_t", "unfilled_t_ci95"]]
          .head(8).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if res.failures:
        print(f"\n{len(res.failures)} replication(s) FAILED, e.g. {res.failures[0]['error']}")
    print(f"\nwrote {out}/ (sweep tables, manifest.json, severity_by_*.csv) and figures:")
    for p in sorted({Path(p).name for p in written} | {p.name for p in out.glob("sweep_*.png")}):
        print(f"  {out / p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
