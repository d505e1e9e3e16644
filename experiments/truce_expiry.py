"""What happens to defense and civil users when the truce of 10 November 2025 expires?

Covers: the probability that the truce is renewed at its expiry on 2026-11-10
(``truce.renewal_probability``; the rest is split between reinstating and escalating the
suspended October 2025 controls in the file's 0.35 : 0.15 proportion) crossed with the size of
the US National Defense Stockpile of high-temperature NdFeB magnets
(``nodes.nds_us.initial.ndfeb_hre_magnet``: 0, 0.5x, 1x, 2x and 4x the file's 36.4 t). For each
point: type-2 fill rate of defense users and of civil users (automotive, electronics and wind
pooled by tonnes), the probability of a shortage after the expiry, and the time from the expiry
to the first shortage (restricted to the end of the horizon, 2028-12-31), with 95% CIs.
Every point runs the same replication streams (common random numbers), so differences between
points are not sampling noise of the demand, lead-time or licence draws.

Scenario: ``truce-uncertain`` on the default network ``rare_earth_2025`` (2025-01-01 to
2029-01-01). Note that the stockpile reorders within its (s, S) band (35.5 t, 37.2 t), so the
initial stock sets how much it holds above or below that band at the start, not the band.

Run from the repository root::

    python experiments/truce_expiry.py                 # REPS replications per point
    python experiments/truce_expiry.py --quick         # smoke test (2 replications per point)

Results (sweep tables, manifest, figures, ``truce_expiry_summary.csv``) go to ``--out``
(default ``results/truce_expiry``; ``results/truce_expiry-quick`` with ``--quick``). A rerun
with the same settings resumes an interrupted sweep; other settings need another ``--out``.
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

import numpy as np
import pandas as pd

from sim import plots
from sim.cli import add_figure_options, figure_output
from sim.experiment import summarise
from sim.sweep import sweep

# ---- parameters ------------------------------------------------------------------------------
NETWORK = "rare_earth_2025"
SCENARIO = "truce-uncertain"
RANDOM_SEED = 20251110
REPS = 40                           # replications per point (25 points)
QUICK_REPS = 2
WORKERS = None                      # None: all available cores
RENEWAL_PROBABILITIES = [0.0, 0.25, 0.5, 0.75, 1.0]
STOCKPILE_NODE = "nds_us"
STOCKPILE_MATERIAL = "ndfeb_hre_magnet"
STOCKPILE_MULTIPLIERS = [0.0, 0.5, 1.0, 2.0, 4.0]     # x the network file's initial stock
DEFENSE_SECTORS = ("defense",)
CIVIL_SECTORS = ("automotive", "electronics", "wind")
OUT_DIR = Path("results/truce_expiry")

P_RENEW = "truce.renewal_probability"
P_STOCK = f"nodes.{STOCKPILE_NODE}.initial.{STOCKPILE_MATERIAL}"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None,
                   help=f"replications per point (default {REPS})")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help="worker processes (default: all cores)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT_DIR})")
    p.add_argument("--seed", type=int, default=RANDOM_SEED,
                   help=f"root seed (default {RANDOM_SEED})")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_REPS} replications per point, 3 x 3 points")
    add_figure_options(p)              # --figure-format, --dpi, --figure-size
    return p.parse_args(argv)


def file_stock(network: sim.Network) -> float:
    """Initial stock of the stockpile's magnets in the network file."""
    return float(network.to_dict()["nodes"][STOCKPILE_NODE]["stock"][STOCKPILE_MATERIAL]["initial"])


def add_group_columns(table: pd.DataFrame, name: str, sectors, expiry_day: float,
                      horizon: float) -> list[str]:
    """Add pooled columns for a group of sectors to a sweep table: fill rate (filled / demand
    tonnes), shortage after the expiry (0/1) and days from the expiry to the first shortage
    (the end of the horizon when there is none: a restricted time). Returns the new columns."""
    present = [s for s in sectors if f"demand_t|sector:{s}" in table.columns]
    if not present:
        raise KeyError(f"no sector of {sectors} in the results")
    demand = sum(table[f"demand_t|sector:{s}"] for s in present)
    filled = sum(table[f"filled_t|sector:{s}"] for s in present)
    first = np.min([table[f"first_shortage_day|sector:{s}"] for s in present], axis=0)
    occurred = np.max([table[f"shortage_occurred|sector:{s}"] for s in present], axis=0)
    fill = np.where(demand > 0, filled / demand.where(demand > 0, 1), 1.0)
    cols = {f"fill_rate|sector:{name}": fill,
            f"shortage_occurred|sector:{name}": occurred,
            f"days_to_first_shortage_after_expiry|sector:{name}":
                np.where(occurred > 0, first, horizon) - expiry_day}
    for k, v in cols.items():
        table[k] = np.asarray(v, dtype=float)
    return list(cols)


def point_table(table: pd.DataFrame, horizon_after_expiry: float) -> pd.DataFrame:
    """One row per point: means and 95% CIs of the pooled defense and civil columns."""
    rows = []
    for (p, s), g in table.groupby([P_RENEW, P_STOCK], sort=True):
        row = {"renewal_probability": p, "stockpile_t": s}
        for grp in ("defense", "civil"):
            f = summarise(g[f"fill_rate|sector:{grp}"].to_numpy())
            row[f"{grp}_fill_rate"] = f["mean"]
            row[f"{grp}_fill_rate_ci95"] = f["ci95_halfwidth"]
            row[f"{grp}_p_shortage"] = float(g[f"shortage_occurred|sector:{grp}"].mean())
            d = g[f"days_to_first_shortage_after_expiry|sector:{grp}"].to_numpy()
            row[f"{grp}_median_days_to_shortage"] = (float(np.median(d))
                                                      if np.median(d) < horizon_after_expiry
                                                      else np.inf)
            row[f"{grp}_restricted_mean_days_to_shortage"] = float(d.mean())
        row["reps"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows)


def print_table(df: pd.DataFrame, horizon_after_expiry: float) -> None:
    def days(v):
        return f">{horizon_after_expiry:.0f}" if not np.isfinite(v) else f"{v:.0f}"
    print(f"{'renew p':>7} {'stock t':>7} | {'defense fill %':>15} {'P(short)':>8} {'days':>5} |"
          f" {'civil fill %':>15} {'P(short)':>8} {'days':>5}")
    for _, r in df.iterrows():
        print(f"{r['renewal_probability']:7.2f} {r['stockpile_t']:7.1f} | "
              f"{100 * r['defense_fill_rate']:7.2f} +-{100 * r['defense_fill_rate_ci95']:5.2f} "
              f"{r['defense_p_shortage']:8.2f} {days(r['defense_median_days_to_shortage']):>5} | "
              f"{100 * r['civil_fill_rate']:7.2f} +-{100 * r['civil_fill_rate_ci95']:5.2f} "
              f"{r['civil_p_shortage']:8.2f} {days(r['civil_median_days_to_shortage']):>5}")
    print("(+- : 95% CI half-width; P(short): share of replications with a shortage after the "
          "expiry;\n days: median days from the expiry to the first shortage, '>N' when most "
          "replications have none by the end of the horizon)")


def figures(res, out: Path) -> list[Path]:
    """Heatmaps of the pooled KPIs over (renewal probability, stockpile) and lines against the
    renewal probability, one line per stockpile size."""
    written = []
    for grp in ("defense", "civil"):
        for kpi in ("fill_rate", "shortage_occurred", "days_to_first_shortage_after_expiry"):
            col = f"{kpi}|sector:{grp}"
            written.append(plots.sweep_heatmap(res, col, P_RENEW, P_STOCK,
                                               out / f"truce_heatmap_{kpi}_{grp}.png"))
        written.append(plots.sweep_lines(res, f"fill_rate|sector:{grp}", P_RENEW,
                                         out / f"truce_lines_fill_rate_{grp}.png", by=P_STOCK))
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
    base_stock = file_stock(network)
    renewals = [0.0, 0.5, 1.0] if args.quick else RENEWAL_PROBABILITIES
    multipliers = [0.0, 1.0, 4.0] if args.quick else STOCKPILE_MULTIPLIERS
    params = {P_RENEW: renewals, P_STOCK: [round(m * base_stock, 6) for m in multipliers]}
    print(f"{SCENARIO} on {NETWORK}: {len(renewals)} x {len(multipliers)} points x {reps} "
          f"replications, seed {args.seed} (stockpile in the file: {base_stock:g} t)")
    try:
        res = sweep(network, scenario, params, reps=reps, seed=args.seed, out_dir=out,
                    workers=args.workers)
    except sim.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start = scenario.start
    expiry_day = float((scenario.truce.expiry - start).days)
    horizon = float((scenario.end - start).days)
    table = res.table.copy()
    add_group_columns(table, "defense", DEFENSE_SECTORS, expiry_day, horizon)
    add_group_columns(table, "civil", CIVIL_SECTORS, expiry_day, horizon)
    res2 = dataclasses.replace(res, table=table)
    summary = point_table(table, horizon - expiry_day)
    summary.to_csv(out / "truce_expiry_summary.csv", index=False)
    written = figures(res2, out)
    print()
    print_table(summary, horizon - expiry_day)
    if res.failures:
        print(f"\n{len(res.failures)} replication(s) FAILED, e.g. {res.failures[0]['error']}")
    print(f"\nwrote {out}/ (sweep tables, manifest.json, truce_expiry_summary.csv) and figures:")
    for p in sorted({Path(p).name for p in written} | {p.name for p in out.glob("sweep_*.png")}):
        print(f"  {out / p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
